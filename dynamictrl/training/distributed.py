"""The `Accelerator` of a run, for every shipped launch config (configs/accelerate/), GPUs or CPU processes alike.

`make_accelerator(config)` reads what `accelerate launch` asked for (its environment: `ACCELERATE_USE_DEEPSPEED`,
`ACCELERATE_USE_FSDP` and the plugin variables) and builds the accelerator the trainer uses unchanged:

- **DDP** (`ddp.yaml`, `cpu_2proc.yaml`): several processes and no CUDA: `cpu=True`, a gloo group
  (`DistributedType.MULTI_CPU`).
- **DeepSpeed** (`deepspeed_zero2.yaml`, `cpu_deepspeed_zero2.yaml`): accelerate turns DeepSpeed off when `cpu=True`
  (accelerate 1.15 `state.py`, `AcceleratorState.__init__`: `... and not cpu`), so on the CPU it gets `cpu=False`
  and `InitProcessGroupKwargs(backend="gloo")`: `deepspeed.comm` forms a gloo group through DeepSpeed's CPU
  accelerator (gloo, since oneCCL is not installed). The DeepSpeed keys that our config owns are filled from it
  (`configure_deepspeed`): micro-batch size (the trainer builds its own loader, so accelerate cannot read it from
  one), gradient accumulation and clipping. DeepSpeed's shared-memory all-reduce op (`deepspeed_shm_comm`, only a
  fast path of its inference all-reduce) is marked unavailable on the CPU (`skip_deepspeed_shm_op`): it is a C++
  JIT build (about 90 s and a compiler on every fresh machine), and gloo's all-reduce gives the same sums.
- **FSDP2** (`fsdp.yaml`, `cpu_fsdp.yaml`): accelerate enables FSDP only for GPU-like distributed types
  (`AcceleratorState.__init__` lists MULTI_GPU, MULTI_XPU, ...; MULTI_CPU is not among them), so an FSDP launch on
  the CPU would silently train DDP. `enable_cpu_fsdp` puts the plugin the launcher described into the state as
  accelerate does on GPUs. FSDP2 (`fully_shard`) runs on gloo in torch 2.13; FSDP1 does not through accelerate
  (its plugin needs a GPU for `sync_module_states`), so the CPU config takes `fsdp_version: 2`.

Under FSDP the parameters are shards (DTensors): `full_state_dict` gathers them for saving. `config` arguments are
`training.config.TrainConfig`s (not imported: the config module imports the checkpoints, which import this).
"""

from __future__ import annotations

import logging
import os
from typing import Any

import torch

from ..errors import InputError
from ..io.devices import env_flag, launched_processes

logger = logging.getLogger(__name__)


def make_accelerator(config: Any) -> Any:
    """The run's `Accelerator` (see the module docstring for what each launch config gets)."""
    from accelerate import Accelerator
    from accelerate.utils import DistributedType, InitProcessGroupKwargs, ProjectConfiguration

    c = config
    # Several CPU processes (torchrun, or `accelerate launch` with a configs/accelerate/cpu_*.yaml) need cpu=True to
    # form a gloo group; `accelerate launch --cpu` sets ACCELERATE_USE_CPU (but starts one process).
    multi_cpu = not torch.cuda.is_available() and launched_processes() > 1
    cpu = env_flag("ACCELERATE_USE_CPU") or multi_cpu
    handlers = []
    if multi_cpu and env_flag("ACCELERATE_USE_DEEPSPEED"):
        cpu = False
        handlers.append(InitProcessGroupKwargs(backend="gloo"))
        skip_deepspeed_shm_op()
    accelerator = Accelerator(
        cpu=cpu,
        mixed_precision=c.mixed_precision.value,
        gradient_accumulation_steps=c.gradient_accumulation_steps,
        project_config=ProjectConfiguration(project_dir=str(c.output_dir)),
        kwargs_handlers=handlers,
    )
    if accelerator.distributed_type is DistributedType.MULTI_CPU and env_flag("ACCELERATE_USE_FSDP"):
        enable_cpu_fsdp(accelerator)
    if accelerator.distributed_type is DistributedType.DEEPSPEED:
        configure_deepspeed(accelerator.state.deepspeed_plugin, c)
    return accelerator


def skip_deepspeed_shm_op() -> None:
    """Make `deepspeed.comm` use plain gloo on the CPU instead of JIT-building its shared-memory op.

    DeepSpeed probes op compatibility once per process (`deepspeed.ops.__compatible_ops__`, a cached dict) and
    builds `deepspeed_shm_comm` when its CPU backend starts; marking it incompatible is DeepSpeed's own fallback
    for platforms without the op.
    """
    import deepspeed.ops

    deepspeed.ops.__compatible_ops__["deepspeed_shm_comm"] = False


def enable_cpu_fsdp(accelerator: Any) -> None:
    """Switch a MULTI_CPU accelerator to FSDP with the plugin the launcher described (`FSDP_*` variables), as
    `AcceleratorState.__init__` does for GPUs. Only FSDP2 runs on the CPU."""
    from accelerate.state import PartialState
    from accelerate.utils import DistributedType, FullyShardedDataParallelPlugin

    if os.environ.get("FSDP_VERSION", "1") != "2":
        raise InputError("FSDP on the CPU needs fsdp_version: 2 in the accelerate config (see cpu_fsdp.yaml)")
    plugin = FullyShardedDataParallelPlugin()
    if accelerator.mixed_precision != "no":
        plugin.set_mixed_precision(accelerator.mixed_precision)
    state = accelerator.state
    state.fsdp_plugin = plugin
    state.distributed_type = DistributedType.FSDP
    PartialState._shared_state["distributed_type"] = DistributedType.FSDP
    logger.info("FSDP%d on %d CPU processes (gloo)", plugin.fsdp_version, accelerator.num_processes)


def configure_deepspeed(plugin: Any, config: Any) -> None:
    """Fill the DeepSpeed keys our config owns; a DeepSpeed config file that sets one differently is an error."""
    ds = plugin.deepspeed_config
    wanted = {
        "train_micro_batch_size_per_gpu": config.batch_size,
        "gradient_accumulation_steps": config.gradient_accumulation_steps,
        "gradient_clipping": float(config.max_grad_norm),  # 0: DeepSpeed does not clip
    }
    flags = {
        "train_micro_batch_size_per_gpu": "batch_size",
        "gradient_accumulation_steps": "gradient_accumulation_steps",
        "gradient_clipping": "max_grad_norm",
    }
    for key, value in wanted.items():
        current = ds.get(key, "auto")
        if current == "auto":
            ds[key] = value
        elif current != value:
            raise InputError(
                f"the DeepSpeed config sets {key}={current} but the training config has {flags[key]}={value}; "
                f'set it to "auto" there (the training config decides)'
            )


def model_dtype(accelerator: Any, config: Any) -> torch.dtype:
    """The dtype the transformer's inputs need. DeepSpeed casts the model itself to bf16/fp16 (it keeps fp32 master
    weights in its optimizer) and does not autocast; everything else keeps float32 weights and autocasts."""
    from accelerate.utils import DistributedType

    if accelerator.distributed_type is DistributedType.DEEPSPEED:
        return {"bf16": torch.bfloat16, "fp16": torch.float16}.get(config.mixed_precision.value, torch.float32)
    return torch.float32


def autocast(accelerator: Any, config: Any) -> Any:
    """`accelerator.autocast()`, except under DeepSpeed with bf16/fp16: its accelerator does not autocast (DeepSpeed
    casts the model itself), but inference with the frozen half-precision VAE still needs it (validation)."""
    from accelerate.utils import DistributedType

    dtype = model_dtype(accelerator, config)
    if accelerator.distributed_type is DistributedType.DEEPSPEED and dtype != torch.float32:
        return torch.autocast(accelerator.device.type, dtype=dtype)
    return accelerator.autocast()


def is_sharded(accelerator: Any) -> bool:
    """True when no process holds the whole model (FSDP, DeepSpeed ZeRO-3): saving must gather it first."""
    from accelerate.utils import DistributedType

    if accelerator.distributed_type is DistributedType.FSDP:
        return True
    if accelerator.distributed_type is DistributedType.DEEPSPEED:
        return accelerator.state.deepspeed_plugin.zero_stage == 3
    return False


def full_state_dict(accelerator: Any, model: torch.nn.Module, trainable_only: bool = False) -> dict[str, torch.Tensor]:
    """The prepared `model`'s weights at full size, on the CPU, under any backend.

    Collective when the model is sharded: every process must call it; then only the main process gets the tensors
    (the others an empty dict). `trainable_only`: just the parameters that require gradients (names as in the
    unwrapped model, which FSDP2 and DeepSpeed keep).
    """
    if accelerator.is_fsdp2:  # gathers only what is asked for (LoRA: the adapters, not the base model)
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

        options = StateDictOptions(full_state_dict=True, cpu_offload=True, ignore_frozen_params=trainable_only)
        state = get_model_state_dict(model, options=options)
    elif is_sharded(accelerator):
        state = accelerator.get_state_dict(model)
    else:
        state = accelerator.unwrap_model(model).state_dict()
    if trainable_only:
        names = {n for n, p in accelerator.unwrap_model(model).named_parameters() if p.requires_grad}
        state = {k: v for k, v in state.items() if k in names}
    return {k: v.detach().cpu().contiguous() for k, v in state.items()}
