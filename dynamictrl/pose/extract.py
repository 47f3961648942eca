"""Pose extraction backends behind one interface, and the choice between them.

Every backend maps an RGB uint8 image `[H, W, 3]` to a `FramePose` (18 OpenPose body points, two hands, 68 face
points, normalised coordinates). The released model was trained on DWPose skeletons, so `dwpose` is preferred when
its ONNX weights are on disk; `mediapipe` ships its models inside its wheel and works on a fresh machine with no
download. `get_extractor("auto")` picks the best available one and logs the choice.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator

import numpy as np
import numpy.typing as npt

from ..errors import InputError, ModelNotFoundError
from .types import FramePose

logger = logging.getLogger(__name__)

# name -> what it is (shown in --help and in errors).
BACKENDS = {
    "auto": "dwpose if its weights are available locally, else mediapipe",
    "dwpose": "DWPose ONNX networks (yolox_l + dw-ll_ucoco_384), as the reference; weights from hub yzd-v/DWPose",
    "mediapipe": "MediaPipe Holistic (body, hands, face) from the mediapipe wheel; offline",
    "mediapipe-body": "MediaPipe Pose (body only, faster) from the mediapipe wheel; offline",
}


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


def mediapipe_available() -> bool:
    try:
        from . import mediapipe_backend

        return mediapipe_backend.import_mediapipe() is not None
    except ImportError:
        return False


def get_extractor(
    name: str = "auto", device: str = "cpu", model_dir: str | os.PathLike | None = None
) -> PoseExtractor:
    """Build a pose extractor by backend name ("auto", "dwpose", "mediapipe", "mediapipe-body").

    `model_dir` is a folder with the DWPose ONNX files (default: $DYNAMICTRL_DWPOSE_DIR, then the hub cache; the
    `dwpose` backend downloads them from `yzd-v/DWPose` when online). `device` is "cpu" or "cuda[:N]" (DWPose only;
    MediaPipe runs on the CPU).
    """
    if name not in BACKENDS:
        raise InputError(f"Unknown pose backend {name!r}; use one of: {', '.join(BACKENDS)}")
    from . import dwpose

    if name == "auto":
        # An explicit folder means DWPose is wanted: missing files there are an error, not a silent fallback.
        found = dwpose.resolve_dwpose_weights(model_dir) if model_dir is not None else dwpose.find_dwpose_weights()
        if found is not None:
            logger.info("Pose backend: dwpose (weights in %s)", found[0].parent)
            return dwpose.DWPoseExtractor(*found, device=device)
        if not mediapipe_available():
            raise ModelNotFoundError(
                "No pose backend available: DWPose weights are not on disk and mediapipe is not installed; "
                "install mediapipe==0.10.21 (pip install --no-deps), or pass --pose-model-dir with the DWPose files"
            )
        logger.info(
            "Pose backend: mediapipe (offline; DWPose weights not found locally, "
            "pass --backend dwpose to download them for poses closest to the ones the model was trained on)"
        )
        name = "mediapipe"
    if name == "dwpose":
        detector, pose = dwpose.resolve_dwpose_weights(model_dir)
        logger.info("Pose backend: dwpose (weights in %s)", detector.parent)
        return dwpose.DWPoseExtractor(detector, pose, device=device)

    from .mediapipe_backend import MediaPipeExtractor

    if device != "cpu":
        logger.info("The mediapipe pose backend runs on the CPU (device %r ignored)", device)
    return MediaPipeExtractor(holistic=(name == "mediapipe"))
