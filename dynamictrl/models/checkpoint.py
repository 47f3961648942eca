"""Reading what a saved diffusers model folder holds, cheaply: parameter names from safetensors headers."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

WEIGHTS_INDEX_SUFFIX = ".safetensors.index.json"


def safetensors_names(path: Path) -> set[str]:
    """Tensor names of one safetensors file, from its header (no tensor is loaded)."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        return set(f.keys())


def checkpoint_parameter_names(
    model_dir: str | os.PathLike, subfolder: str | None = None, kwargs: dict[str, Any] | None = None
) -> set[str] | None:
    """Parameter names stored in a diffusers model folder, read from safetensors headers (no tensor is loaded).

    Returns None when they cannot be read cheaply (hub id, `.bin` weights); callers then rely on the loader.
    """
    folder = Path(model_dir) / (subfolder or "")
    if not folder.is_dir():
        return None
    variant = (kwargs or {}).get("variant")
    stem = "diffusion_pytorch_model" + (f".{variant}" if variant else "")
    index = folder / f"{stem}{WEIGHTS_INDEX_SUFFIX}"
    if index.is_file():
        return set(json.loads(index.read_text())["weight_map"])
    single = folder / f"{stem}.safetensors"
    if single.is_file():
        return safetensors_names(single)
    return None
