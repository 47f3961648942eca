"""Fine-tuning DynamiCtrl (full or LoRA) with accelerate: `dynamictrl train CONFIG.yaml` or `training.run(config)`.

- `config.py`: `TrainConfig` (YAML + flags, checked before anything loads);
- `spec.py`: what is model-specific: loading, latents, conditions, `diffusion_loss`;
- `state.py`, `checkpoint.py`: exact resume and the final weights;
- `distributed.py`: the accelerator for each launch config (DDP, DeepSpeed, FSDP; GPUs or CPU processes);
- `trainer.py`: the loop (`run`).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .config import TrainConfig, load_config

if TYPE_CHECKING:
    from .spec import diffusion_loss, rotary_embeddings

_LAZY = {"diffusion_loss": "spec", "rotary_embeddings": "spec"}  # torch loads on first use: `--help` stays fast


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def run(config: TrainConfig):
    """See `dynamictrl.training.trainer.run`."""
    from .trainer import run as _run

    return _run(config)


__all__ = ["TrainConfig", "diffusion_loss", "load_config", "rotary_embeddings", "run"]
