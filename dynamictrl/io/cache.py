"""Where dynamictrl keeps what it can rebuild: pose-stage results, the demo's tiny model."""

from __future__ import annotations

import os
from pathlib import Path

ENV_CACHE_DIR = "DYNAMICTRL_CACHE_DIR"


def cache_root() -> Path:
    """$DYNAMICTRL_CACHE_DIR, else $XDG_CACHE_HOME/dynamictrl, else ~/.cache/dynamictrl."""
    if os.environ.get(ENV_CACHE_DIR):
        return Path(os.environ[ENV_CACHE_DIR]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "dynamictrl"
