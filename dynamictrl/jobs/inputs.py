"""Input-file checks every job runs first (cheap, before torch is imported or any model or pose work starts)."""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import InputError

WHAT = {
    "--image": "Image",
    "--pose-video": "Pose video",
    "--driving-video": "Driving video",
    "--mask-image": "Mask image",
}


def check_input_files(inputs: dict[str, str | os.PathLike | None]) -> None:
    """Each given input (flag → path) exists and is a file; one line naming the flag otherwise."""
    for flag, value in inputs.items():
        if value is None:
            continue
        path = Path(value).expanduser()
        what = WHAT.get(flag, flag)
        if not path.exists():
            raise InputError(f"{what} not found: {path} (check the path given to {flag})")
        if path.is_dir():
            raise InputError(f"{what} is a folder, not a file: {path} ({flag})")
