"""Device and dtype names, parsed and resolved in one place (animate, pose, evaluate and training all use these).

`parse_device` checks a device string without importing torch (so the CLI validates it before any heavy import);
`resolve_device` / `resolve_dtype` turn names into torch objects and check that the hardware is there.
"""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING

from ..errors import InputError

if TYPE_CHECKING:  # torch loads lazily: the CLI validates names before importing it
    import torch

DEVICE_TYPES = ("auto", "cpu", "cuda", "mps")
DTYPES = ("auto", "float32", "bfloat16", "float16")
_DEVICE_RE = re.compile(r"^(auto|cpu|mps|cuda)(?::(\d+))?$")


def env_flag(name: str) -> bool:
    """Whether the environment variable `name` is set true (`1`, `true`, `yes`), as accelerate's launcher writes
    its flags (`ACCELERATE_USE_CPU`, `ACCELERATE_USE_DEEPSPEED`, ...)."""
    return os.environ.get(name, "").lower() in ("1", "true", "yes")


def launched_processes() -> int:
    """How many processes this launch has (`WORLD_SIZE`, which `accelerate launch` and torchrun set; 1 otherwise)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def parse_device(device: str, flag: str = "--device") -> tuple[str, int | None]:
    """`"cuda:1"` → `("cuda", 1)`; `"cpu"` → `("cpu", None)`. One-line `InputError` for anything else."""
    match = _DEVICE_RE.match(str(device).strip().lower())
    if not match or (match.group(2) is not None and match.group(1) != "cuda"):
        raise InputError(f"{flag} must be auto, cpu, cuda or cuda:N, got {device!r}")
    return match.group(1), int(match.group(2)) if match.group(2) is not None else None


def resolve_device(device: str = "auto", flag: str = "--device") -> torch.device:
    """`auto` is the first CUDA GPU if there is one, else the CPU; a CUDA device that is not there is an error."""
    import torch

    kind, index = parse_device(device, flag)
    if kind == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if kind == "cuda":
        if not torch.cuda.is_available():
            raise InputError(f"{flag} {device} was requested but no CUDA GPU is visible; use {flag} cpu")
        if index is not None and index >= torch.cuda.device_count():
            raise InputError(f"{flag} {device}: only {torch.cuda.device_count()} CUDA device(s) are visible")
    if kind == "mps" and not torch.backends.mps.is_available():
        raise InputError(f"{flag} mps was requested but this torch has no MPS device; use {flag} cpu")
    return torch.device(kind if index is None else f"{kind}:{index}")


def check_dtype(dtype: str, flag: str = "--dtype") -> str:
    if dtype not in DTYPES:
        raise InputError(f"{flag} must be one of {', '.join(DTYPES)}, got {dtype!r}")
    return dtype


def resolve_dtype(dtype: str, device: torch.device, flag: str = "--dtype") -> torch.dtype:
    """`auto` is bfloat16 on GPU (the released weights' precision) and float32 on CPU (bf16 is slow there)."""
    import torch

    check_dtype(dtype, flag)
    if dtype != "auto":
        return getattr(torch, dtype)
    return torch.bfloat16 if device.type == "cuda" else torch.float32
