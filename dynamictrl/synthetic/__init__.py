"""The procedural world with ground truth: animated 2-D characters for training and measuring a small DynamiCtrl.

A sample is a character (`character.py`: proportions, skin, hair, clothes), a background (`background.py`: solid,
gradient, stripes), a motion (`motion.py`: walking across, dancing, waving, jumping, turning, as keypoint sequences in
our body 18 + hands + face layout) drawn by `render.py` from the keypoints alone, so real motion retargeted to the
character (`retarget.py`) drives it too. `world.make_sample(seed, index)` puts them together with every frame's
ground truth: RGB, keypoints, the pose render, person and clothes masks, and a caption from structured attributes.
`dynamictrl.data.synth` writes samples in the training layout (`dynamictrl synth`).

This package imports `errors`, `io` and `pose` only (layer 3). The names below load their module on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_LAZY = {
    "Character": "character",
    "sample_character": "character",
    "BackgroundSpec": "background",
    "render_background": "background",
    "MOTION_NAMES": "motion",
    "make_motion": "motion",
    "render_character": "render",
    "retarget_motion": "retarget",
    "SYNTH_POSE_STYLE": "world",
    "Sample": "world",
    "make_sample": "world",
    "recaption": "world",
}
__all__ = [
    "Character",
    "sample_character",
    "BackgroundSpec",
    "render_background",
    "MOTION_NAMES",
    "make_motion",
    "render_character",
    "retarget_motion",
    "SYNTH_POSE_STYLE",
    "Sample",
    "make_sample",
    "recaption",
]

if TYPE_CHECKING:
    from .background import BackgroundSpec, render_background
    from .character import Character, sample_character
    from .motion import MOTION_NAMES, make_motion
    from .render import render_character
    from .retarget import retarget_motion
    from .world import SYNTH_POSE_STYLE, Sample, make_sample, recaption


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
