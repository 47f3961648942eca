"""The choice between pose backends (`dynamictrl.pose.backends`), by name.

Every backend maps an RGB uint8 image `[H, W, 3]` to a `FramePose` (18 OpenPose body points, two hands, 68 face
points, normalised coordinates). The released model was trained on DWPose skeletons, so `dwpose` is preferred when
its ONNX weights are on disk; `mediapipe` ships its models inside its wheel and works on a fresh machine with no
download. `get_extractor("auto")` picks the best available one and logs the choice.
"""

from __future__ import annotations

import logging
import os

from ..errors import InputError, ModelNotFoundError
from .backends.base import PoseExtractor
from .backends.dwpose import DWPoseExtractor, find_dwpose_weights, resolve_dwpose_weights
from .backends.mediapipe import MediaPipeExtractor, import_mediapipe

logger = logging.getLogger(__name__)

# name -> what it is (shown in --help and in errors).
BACKENDS = {
    "auto": "dwpose if its weights are available locally, else mediapipe",
    "dwpose": "DWPose ONNX networks (yolox_l + dw-ll_ucoco_384), as the published code; weights from hub yzd-v/DWPose",
    "mediapipe": "MediaPipe Holistic (body, hands, face) from the mediapipe wheel; offline",
    "mediapipe-body": "MediaPipe Pose (body only, faster) from the mediapipe wheel; offline",
}


def mediapipe_available() -> bool:
    """Whether the mediapipe backend can run here (mediapipe 0.10.21 with its legacy solutions is installed)."""
    return import_mediapipe() is not None


def get_extractor(
    name: str = "auto", device: str = "cpu", model_dir: str | os.PathLike | None = None
) -> PoseExtractor:
    """Build a pose extractor by backend name ("auto", "dwpose", "mediapipe", "mediapipe-body").

    `model_dir` is a folder with the DWPose ONNX files (default: $DYNAMICTRL_DWPOSE_DIR, then the hub cache; the
    `dwpose` backend downloads them from `yzd-v/DWPose` when online). `device` is "cpu", "auto" or "cuda[:N]"
    (DWPose only; MediaPipe runs on the CPU).
    """
    if name not in BACKENDS:
        raise InputError(f"Unknown pose backend {name!r}; use one of: {', '.join(BACKENDS)}")
    if name == "auto":
        # An explicit folder means DWPose is wanted: missing files there are an error, not a silent fallback.
        found = resolve_dwpose_weights(model_dir) if model_dir is not None else find_dwpose_weights()
        if found is not None:
            logger.info("Pose backend: dwpose (weights in %s)", found[0].parent)
            return DWPoseExtractor(*found, device=device)
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
        detector, pose = resolve_dwpose_weights(model_dir)
        logger.info("Pose backend: dwpose (weights in %s)", detector.parent)
        return DWPoseExtractor(detector, pose, device=device)
    if device not in ("cpu", "auto"):
        logger.info("The mediapipe pose backend runs on the CPU (device %r ignored)", device)
    return MediaPipeExtractor(holistic=(name == "mediapipe"))
