"""Pose stage: DWPose-compatible extraction, the reference's skeleton drawing, alignment, checks, caching.

The names below load their module on first use, so importing `dynamictrl.pose` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_LAZY = {
    "prepare_pose_video": "prepare",
    "PreparedPose": "prepare",
    "get_extractor": "extract",
    "PoseExtractor": "extract",
    "draw_pose": "render",
    "cover_crop": "reference",
    "AlignOptions": "align",
    "align_poses": "align",
    "FramePose": "types",
    "PersonPose": "types",
}
__all__ = [
    "prepare_pose_video",
    "PreparedPose",
    "get_extractor",
    "PoseExtractor",
    "draw_pose",
    "cover_crop",
    "AlignOptions",
    "align_poses",
    "FramePose",
    "PersonPose",
]

if TYPE_CHECKING:
    from .align import AlignOptions, align_poses
    from .extract import PoseExtractor, get_extractor
    from .prepare import PreparedPose, prepare_pose_video
    from .reference import cover_crop
    from .render import draw_pose
    from .types import FramePose, PersonPose


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
