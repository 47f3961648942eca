"""Checkpoints (resumable, `checkpoint-N/`) and the final weights (released layout or diffusers LoRA).

A checkpoint is written by `accelerator.save_state` into `checkpoint-N.tmp/` and renamed to `checkpoint-N/` when
complete, so an interrupted save never looks like a checkpoint. Only trainable parameters are stored (for LoRA
runs: the adapters), next to accelerate's optimizer, LR-schedule, RNG and `TrainState` files.
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


def trainable_state_dict(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: p.detach().cpu().contiguous() for name, p in model.named_parameters() if p.requires_grad}


def trainable_digest(model: torch.nn.Module) -> str:
    """sha256 (16 hex digits) of the trainable parameters' names and float32 values: equal iff the weights are."""
    import hashlib

    h = hashlib.sha256()
    for name, value in trainable_state_dict(model).items():
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
    """Make `save_state` / `load_state` store only the trainable parameters of the (single) model, and each
    process's `TrainState` (`train_state_<rank>.pt`: accelerate's own custom-object files are main-process only)."""
    from safetensors.torch import load_file, save_file

    rank = accelerator.process_index

    def save_hook(models, weights, output_dir):
        if accelerator.is_main_process:
            for model in models:
                save_file(
                    trainable_state_dict(accelerator.unwrap_model(model)), os.path.join(output_dir, TRAINABLE_FILE)
                )
        torch.save(train_state.state_dict(), os.path.join(output_dir, f"train_state_{rank}.pt"))
        while weights:
            weights.pop()

    def load_hook(models, input_dir):
        state_file = os.path.join(input_dir, f"train_state_{rank}.pt")
        if not os.path.isfile(state_file):
            raise InputError(f"{input_dir} has no {os.path.basename(state_file)}: resume with the same process count")
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
def save_transformer(model: torch.nn.Module, folder: str | Path, image_latent_scale: float, dtype=None) -> Path:
    """A full `transformer/` folder in the released layout (+ `dynamictrl.json`), loadable by
    `DynamiCtrlTransformer.from_pretrained`. Written atomically."""
    from ..io.atomic import atomic_dir
    from .spec import write_model_settings

    folder = Path(folder)
    with atomic_dir(folder) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        if dtype is not None:  # save in the run's dtype without touching the live model
            from safetensors.torch import load_file, save_file

            for file in tmp.glob("*.safetensors"):
                save_file({k: v.to(dtype) for k, v in load_file(file).items()}, str(file), metadata={"format": "pt"})
        config_path = tmp / "config.json"
        config = json.loads(config_path.read_text())
        config["_class_name"] = RELEASED_CLASS_NAME
        config_path.write_text(json.dumps(config, indent=2))
        write_model_settings(tmp, image_latent_scale)
    return folder


def save_lora(model: torch.nn.Module, folder: str | Path, image_latent_scale: float, adapter: str = "default") -> Path:
    """`pytorch_lora_weights.safetensors` (diffusers format, `transformer.` keys, with the LoRA config as metadata)
    and `dynamictrl.json`; loads with `DynamiCtrlPipeline.load_lora_weights`."""
    from peft.utils import get_peft_model_state_dict

    from ..io.atomic import atomic_dir
    from ..pipelines.pipeline_dynamictrl import DynamiCtrlPipeline
    from .spec import write_model_settings

    folder = Path(folder)
    layers = get_peft_model_state_dict(model, adapter_name=adapter)
    metadata = model.peft_config[adapter].to_dict()
    metadata = {k: (sorted(v) if isinstance(v, set) else v) for k, v in metadata.items()}
    with atomic_dir(folder) as tmp:
        DynamiCtrlPipeline.save_lora_weights(
            tmp, transformer_lora_layers=layers, transformer_lora_adapter_metadata=metadata
        )
        write_model_settings(tmp, image_latent_scale)
    return folder
