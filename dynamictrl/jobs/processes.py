"""The processes of one launch (`accelerate launch`, torchrun, or a plain run): accelerate's `PartialState` for this
one and the device it works on. `animate --jobs` shares jobs out over them (jobs/batch.py); `animate
--context-parallel` splits one video over them (jobs/animate.py)."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Any

from ..io.devices import env_flag, launched_processes
from ..options import AnimateOptions

# A barrier may wait for the slowest process's whole share of the jobs: far beyond torch's default 30 minutes.
BARRIER_TIMEOUT = timedelta(days=7)


def process_state(cpu: bool = False) -> Any:
    """accelerate's `PartialState` for this process: one process, or one of `accelerate launch`'s (torchrun's).

    Several processes without CUDA (configs/accelerate/cpu_2proc.yaml), `accelerate launch --cpu` or `cpu` (the
    command line's `--device cpu`) form a CPU (gloo) group, as `training.distributed.make_accelerator` does.
    """
    import torch
    from accelerate import PartialState

    several = launched_processes() > 1
    cpu = cpu or env_flag("ACCELERATE_USE_CPU") or (several and not torch.cuda.is_available())
    return PartialState(cpu=cpu, timeout=BARRIER_TIMEOUT) if several else PartialState(cpu=cpu)


def on_process_device(options: AnimateOptions, state: Any) -> AnimateOptions:
    """`--device auto` → this process's own device when launched as several processes (or with `--cpu`)."""
    if options.device != "auto" or state.device is None:
        return options
    if not (state.num_processes > 1 or env_flag("ACCELERATE_USE_CPU")):
        return options  # one plain process: auto, as a plain animate run
    if state.device.type == "cpu":
        return dataclasses.replace(options, device="cpu")
    if state.device.type == "cuda":
        index = state.device.index if state.device.index is not None else state.local_process_index
        return dataclasses.replace(options, device=f"cuda:{index}")
    return options
