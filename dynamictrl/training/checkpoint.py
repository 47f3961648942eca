"""Checkpoints (resumable, `checkpoint-N/`) and the final weights (released layout or diffusers LoRA).

A checkpoint is written by `accelerator.save_state` into `checkpoint-N.tmp/` and renamed to `checkpoint-N/` when
complete, so an interrupted save never looks like a checkpoint. Only trainable parameters are stored (for LoRA
runs: the adapters), next to accelerate's optimizer, LR-schedule, RNG and `TrainState` files; under FSDP and
DeepSpeed accelerate also writes its own sharded model and optimizer files, which are what a resume loads.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
from pathlib import Path
from typing import Any

import torch

from ..errors import InputError
from ..io.atomic import publish_tree

logger = logging.getLogger(__name__)

CHECKPOINT_RE = re.compile(r"^checkpoint-(\d+)$")
TRAINABLE_FILE = "trainable.safetensors"
RELEASED_CLASS_NAME = "DynamiCtrlTransformerModel"


def list_checkpoints(output_dir: str | Path) -> list[tuple[int, Path]]:
    """Complete checkpoints in `output_dir`, oldest first (`*.tmp` folders are unfinished and ignored)."""
    output_dir = Path(output_dir)
    if not output_dir.is_dir():
        return []
    found = []
    for child in output_dir.iterdir():
        match = CHECKPOINT_RE.match(child.name)
        if match and child.is_dir():
            found.append((int(match.group(1)), child))
    return sorted(found)


def find_checkpoint(output_dir: str | Path, resume: str) -> Path:
    """`resume` = 'latest' (newest in `output_dir`) or a checkpoint folder; an `InputError` when there is none."""
    if resume == "latest":
        found = list_checkpoints(output_dir)
        if not found:
            raise InputError(
                f"resume: latest, but {output_dir} has no checkpoint-N folder; drop --resume to start anew"
            )
        return found[-1][1]
    path = Path(resume)
    if not (path / TRAINABLE_FILE).is_file():
        raise InputError(f"resume: {resume} is not a checkpoint folder (no {TRAINABLE_FILE}); give one or 'latest'")
    return path


def trainable_digest(state: dict[str, torch.Tensor]) -> str:
    """sha256 (16 hex digits) of a state dict's names and float32 values (in its order): equal iff the weights are."""
    import hashlib

    h = hashlib.sha256()
    for name, value in state.items():
        h.update(name.encode())
        h.update(value.float().numpy().tobytes())
    return h.hexdigest()[:16]


def load_trainable_state_dict(model: torch.nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Load saved trainable parameters; every trainable parameter must be in `state` and nothing else."""
    params = dict(model.named_parameters())
    trainable = {n for n, p in params.items() if p.requires_grad}
    missing, unexpected = sorted(trainable - set(state)), sorted(set(state) - set(params))
    if missing or unexpected:
        raise InputError(
            f"checkpoint does not fit this run (missing {missing[:3]}, unexpected {unexpected[:3]}); resume with the "
            "same mode and model"
        )
    with torch.no_grad():
        for name, value in state.items():
            params[name].copy_(value)


def register_hooks(accelerator: Any, train_state: Any) -> None:
    """Make `save_state` / `load_state` store the trainable parameters of the (single) model (full size, also under
    FSDP) and each process's `TrainState` (`train_state_<rank>.pt`: accelerate's custom-object files are
    main-process only).

    Under DDP the trainable parameters are the model's whole checkpoint (accelerate's full copy is dropped). Under
    FSDP and DeepSpeed accelerate saves and loads the model itself (sharded, with the optimizer) and hands the hooks
    no weights and, on load, no models; `trainable.safetensors` is then a gathered copy for reading, not resuming.
    """
    from safetensors.torch import load_file, save_file

    from .distributed import full_state_dict

    rank = accelerator.process_index

    def save_hook(models, weights, output_dir):
        for model in models:
            state = full_state_dict(accelerator, model, trainable_only=True)  # every rank: FSDP gathers shards
            if accelerator.is_main_process:
                save_file(state, os.path.join(output_dir, TRAINABLE_FILE))
        torch.save(train_state.state_dict(), os.path.join(output_dir, f"train_state_{rank}.pt"))
        while weights:
            weights.pop()

    def load_hook(models, input_dir):
        state_file = os.path.join(input_dir, f"train_state_{rank}.pt")
        if not os.path.isfile(state_file):
            raise InputError(f"{input_dir} has no {os.path.basename(state_file)}: resume with the same process count")
        if models:
            state = load_file(os.path.join(input_dir, TRAINABLE_FILE))
            while models:
                load_trainable_state_dict(accelerator.unwrap_model(models.pop()), state)
        train_state.load_state_dict(torch.load(state_file, weights_only=True))

    accelerator.register_save_state_pre_hook(save_hook)
    accelerator.register_load_state_pre_hook(load_hook)


def save_checkpoint(accelerator: Any, output_dir: str | Path, step: int, keep: int | None) -> Path:
    """`accelerator.save_state` into `checkpoint-<step>.tmp/`, renamed to `checkpoint-<step>/`; prune to `keep`."""
    output_dir = Path(output_dir)
    final = output_dir / f"checkpoint-{step}"
    tmp = final.with_name(final.name + ".tmp")
    if accelerator.is_main_process:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(tmp))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        publish_tree(tmp)  # safetensors writes the weights 0600
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
        if keep is not None:
            for _, old in list_checkpoints(output_dir)[:-keep]:
                shutil.rmtree(old)
        logger.info("Saved %s", final)
    accelerator.wait_for_everyone()
    return final


# ----------------------------------------------------------------------------------------------- final weights
def save_transformer(
    model: torch.nn.Module,
    folder: str | Path,
    image_latent_scale: float,
    dtype: torch.dtype | None = None,
    state_dict: dict[str, torch.Tensor] | None = None,
    pose_control_function: str = "padaln",
) -> Path:
    """A full `transformer/` folder in the released layout (+ `dynamictrl.json`), loadable by
    `DynamiCtrlTransformer.from_pretrained`. Written atomically.

    `state_dict`: the weights to write (default `model.state_dict()`); a sharded model (FSDP) passes the gathered
    ones (`distributed.full_state_dict`), as its own are shards. Files as diffusers' `save_pretrained` names them
    (one file, or 10 GB shards with their index); `dtype` casts the floating-point tensors of the file only.
    """
    from huggingface_hub import split_torch_state_dict_into_shards
    from safetensors.torch import save_file

    from ..io.atomic import atomic_dir
    from .spec import write_model_settings

    state = model.state_dict() if state_dict is None else state_dict
    if dtype is not None:
        state = {k: v.to(dtype) if v.is_floating_point() else v for k, v in state.items()}
    folder = Path(folder)
    with atomic_dir(folder) as tmp:
        model.save_config(tmp)
        split = split_torch_state_dict_into_shards(
            state, filename_pattern="diffusion_pytorch_model{suffix}.safetensors", max_shard_size="10GB"
        )
        for filename, names in split.filename_to_tensors.items():
            shard = {name: state[name].detach().cpu().contiguous() for name in names}
            save_file(shard, str(tmp / filename), metadata={"format": "pt"})
        if split.is_sharded:
            index = {"metadata": split.metadata, "weight_map": split.tensor_to_filename}
            (tmp / "diffusion_pytorch_model.safetensors.index.json").write_text(json.dumps(index, indent=2))
        config_path = tmp / "config.json"
        config = json.loads(config_path.read_text())
        config["_class_name"] = RELEASED_CLASS_NAME
        config_path.write_text(json.dumps(config, indent=2))
        write_model_settings(tmp, image_latent_scale, pose_control_function)
    return folder


def save_lora(
    model: torch.nn.Module,
    folder: str | Path,
    image_latent_scale: float,
    adapter: str = "default",
    state_dict: dict[str, torch.Tensor] | None = None,
    pose_control_function: str = "padaln",
) -> Path:
    """`pytorch_lora_weights.safetensors` (diffusers format, `transformer.` keys, with the LoRA config as metadata)
    and `dynamictrl.json`; loads with `DynamiCtrlPipeline.load_lora_weights`. `state_dict`: the gathered weights
    of a sharded model (default: the model's own)."""
    from peft.utils import get_peft_model_state_dict

    from ..io.atomic import atomic_dir
    from ..pipelines.pipeline_dynamictrl import DynamiCtrlPipeline
    from .spec import write_model_settings

    folder = Path(folder)
    layers = get_peft_model_state_dict(model, state_dict=state_dict, adapter_name=adapter)
    metadata = model.peft_config[adapter].to_dict()
    metadata = {k: (sorted(v) if isinstance(v, set) else v) for k, v in metadata.items()}
    with atomic_dir(folder) as tmp:
        DynamiCtrlPipeline.save_lora_weights(
            tmp, transformer_lora_layers=layers, transformer_lora_adapter_metadata=metadata
        )
        write_model_settings(tmp, image_latent_scale, pose_control_function)
    return folder
