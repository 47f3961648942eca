"""Pose stage: DWPose-compatible extraction, the published code's skeleton drawing, alignment, checks, caching.

The names below load their module on first use, so importing `dynamictrl.pose` stays cheap. No module of this
package imports `dynamictrl.pose` itself; they import each other by full module path.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_LAZY = {
    "prepare_pose_video": "prepare",
    "PreparedPose": "prepare",
    "get_extractor": "extract",
    "PoseExtractor": "backends.base",
    "draw_pose": "render",
    "AlignOptions": "align",
    "align_poses": "align",
    "looks_like_pose_render": "check",
    "FramePose": "types",
    "PersonPose": "types",
}
__all__ = [
    "prepare_pose_video",
    "PreparedPose",
    "get_extractor",
    "PoseExtractor",
    "draw_pose",
    "AlignOptions",
    "align_poses",
    "looks_like_pose_render",
    "FramePose",
    "PersonPose",
]

if TYPE_CHECKING:
    from .align import AlignOptions, align_poses
    from .backends.base import PoseExtractor
    from .check import looks_like_pose_render
    from .extract import get_extractor
    from .prepare import PreparedPose, prepare_pose_video
    from .render import draw_pose
    from .types import FramePose, PersonPose


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
