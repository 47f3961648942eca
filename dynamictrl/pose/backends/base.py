"""The interface every pose backend implements: an RGB uint8 image `[H, W, 3]` in, a `FramePose` out.

A `FramePose` holds 18 OpenPose body points, two hands and 68 face points per person, in normalised coordinates
(see `dynamictrl.pose.types`), so later stages never know which backend produced it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np
import numpy.typing as npt

from ...errors import InputError
from ..types import FramePose


class PoseExtractor:
    """Image in, keypoints out. Subclasses implement `__call__`; `extract_sequence` may use temporal tracking."""

    name: str = "base"

    def __call__(self, image: npt.NDArray[np.uint8]) -> FramePose:  # pragma: no cover - interface
        raise NotImplementedError

    def extract_sequence(self, frames: Iterable[npt.NDArray[np.uint8]]) -> Iterator[FramePose]:
        """Poses of consecutive video frames, in order. The default treats each frame as a still image."""
        for frame in frames:
            yield self(frame)

    def identity(self) -> str:
        """What determines this backend's output (name, model files, settings): part of the pose cache key."""
        return self.name

    def close(self) -> None:
        """Release sessions and graphs; the extractor can still be called afterwards (they are re-created)."""


def check_image(image: npt.NDArray, what: str = "image") -> npt.NDArray[np.uint8]:
    """Validate an RGB uint8 `[H, W, 3]` array (the contract of every backend)."""
    arr = np.asarray(image)
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.dtype != np.uint8 or min(arr.shape[:2]) < 1:
        raise InputError(f"Pose extraction needs an RGB uint8 [H, W, 3] {what}, got {arr.dtype} {list(arr.shape)}")
    return arr
