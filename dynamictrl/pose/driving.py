"""Which driving-video frames become pose frames: frame rate, start, stride, count, and what to do when short.

Selection is `dynamictrl.io.media.FrameSelection`: the video is first resampled to `fps` (nearest earlier frame in
time; none = native rate), then `start`, `stride` and the count pick from the resampled sequence; frames are decoded
one at a time and only the selected ones are kept. The published code applied its stride twice when it counted the
frames to read (docs/pose.md); here `stride` means one thing.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from ..errors import InputError
from ..io.media import FrameSelection

logger = logging.getLogger(__name__)

ON_SHORT = ("error", "loop", "hold-last")


def expand_to_length(available: int, needed: int, on_short: str, what: str = "") -> list[int]:
    """Positions (into `available` frames) that make `needed` frames, per the `on_short` policy.

    "error" refuses, "loop" repeats the sequence from its start, "hold-last" repeats the last frame.
    """
    if on_short not in ON_SHORT:
        raise InputError(f"Unknown on_short policy {on_short!r}; use one of: {', '.join(ON_SHORT)}")
    if available < 1:
        raise InputError(f"No driving frames selected{what}; lower --start")
    if available >= needed:
        return list(range(needed))
    if on_short == "error":
        raise InputError(
            f"The driving video gives {available} frames{what} but {needed} are needed; use a longer video, a "
            "smaller --stride or --fps, fewer --num-frames, or --loop / --hold-last"
        )
    logger.info("Driving video gives %d of %d frames; %s", available, needed, on_short)
    if on_short == "loop":
        return [i % available for i in range(needed)]
    return [min(i, available - 1) for i in range(needed)]


def describe_selection(path: str | os.PathLike, selection: FrameSelection) -> str:
    rate = selection.fps or "native"
    return f" from {Path(path).name} (start {selection.start}, stride {selection.stride}, fps {rate})"
