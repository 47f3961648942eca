"""Person masks and masked references: what the masked-reference variants (Mask_B01, Mask_C01) see.

A mask is white where the reference keeps its pixels (the published dataset keeps `mask > 200`, the dataset here
`> 127`, so masks are written as pure black and white); everything else becomes black, and only the reference
image is masked (the published `utils/dataset_use_mask_entity.py`). For the masked-background model the mask is
the person, found by MediaPipe's selfie segmentation (it ships in the mediapipe wheel: no download).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from ..errors import InputError, ModelNotFoundError

# Selfie segmentation gives a person probability per pixel; above this the pixel is the person.
PERSON_THRESHOLD = 0.5


class PersonSegmenter:
    """RGB uint8 frames → person masks (uint8 `[F, H, W, 3]`, 255 = person), MediaPipe selfie segmentation."""

    def __init__(self) -> None:
        from ..pose.backends.mediapipe import NATIVE_LOGS, import_mediapipe

        solutions = import_mediapipe()
        if solutions is None:
            raise ModelNotFoundError(
                "person masks need mediapipe (0.10.21, with its legacy solutions); "
                "install it with pip install --no-deps mediapipe==0.10.21"
            )
        self._native_logs = NATIVE_LOGS  # held while the graph lives: its threads log to stderr
        self._native_logs.acquire()
        # model 0 ("general", 256x256) handles full bodies; model 1 ("landscape") is for video calls.
        try:
            self._segmenter = solutions.selfie_segmentation.SelfieSegmentation(model_selection=0)
        except BaseException:
            self._native_logs.release()
            raise

    def __call__(self, frames: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
        masks = []
        for frame in frames:
            probability = self._segmenter.process(np.ascontiguousarray(frame)).segmentation_mask
            masks.append(probability > PERSON_THRESHOLD)
        keep = np.stack(masks).astype(np.uint8) * 255
        return np.repeat(keep[..., None], 3, axis=-1)

    def close(self) -> None:
        if self._segmenter is None:
            return
        segmenter, self._segmenter = self._segmenter, None
        try:
            segmenter.close()
        finally:
            self._native_logs.release()


def binarise(frames: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    """A user mask (any colour) → pure black and white, from its first channel (the dataset's test)."""
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise InputError(f"a mask video must decode to [F, H, W, 3] frames, got {list(frames.shape)}")
    keep = (frames[..., 0] > 127).astype(np.uint8) * 255
    return np.repeat(keep[..., None], 3, axis=-1)


def apply_mask(image: npt.NDArray[np.uint8], mask: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    """`image [H, W, 3]` with every pixel outside `mask` (`[H, W, 3]` or `[H, W]`, white = keep) set to black."""
    keep = mask[..., 0] if mask.ndim == 3 else mask
    if keep.shape != image.shape[:2]:
        raise InputError(
            f"the mask is {keep.shape[1]}x{keep.shape[0]} but the image is {image.shape[1]}x{image.shape[0]}"
        )
    return np.where((keep > 127)[..., None], image, 0).astype(np.uint8)
