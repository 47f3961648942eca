"""Mask videos for the masked-reference variants (published Mask_B01 / Mask_C01).

A mask video is frame-aligned with its clip, white where the reference keeps its pixels (the dataset keeps
`mask > 127`; the published code `> 200`, so masks are written as pure black and white). Only the reference frame
is masked in training.

- `background` (Mask_B01): the person region, from MediaPipe's selfie segmentation (it ships in the mediapipe wheel,
  no download). The published repository does not say how its masks were made.
- user masks (Mask_C01, masked clothes, or any other): mask videos of the same names in `--mask-dir`, cut and
  cropped exactly as their clips.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt

from ..errors import InputError, ModelNotFoundError

MASK_MODES = ("none", "background")
# Selfie segmentation gives a person probability per pixel; above this the pixel is the person.
PERSON_THRESHOLD = 0.5


class PersonSegmenter:
    """RGB uint8 frames → person masks (uint8 `[F, H, W, 3]`, 255 = person), MediaPipe selfie segmentation."""

    def __init__(self) -> None:
        from ..pose.backends.mediapipe import import_mediapipe

        solutions = import_mediapipe()
        if solutions is None:
            raise ModelNotFoundError(
                "--mask background needs mediapipe (0.10.21, with its legacy solutions); "
                "install it with pip install --no-deps mediapipe==0.10.21"
            )
        # model 0 ("general", 256x256) handles full bodies; model 1 ("landscape") is for video calls.
        self._segmenter = solutions.selfie_segmentation.SelfieSegmentation(model_selection=0)

    def __call__(self, frames: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
        masks = []
        for frame in frames:
            probability = self._segmenter.process(np.ascontiguousarray(frame)).segmentation_mask
            masks.append(probability > PERSON_THRESHOLD)
        keep = np.stack(masks).astype(np.uint8) * 255
        return np.repeat(keep[..., None], 3, axis=-1)

    def close(self) -> None:
        self._segmenter.close()


def find_user_mask(mask_dir: Path, video: Path, raw_dir: Path) -> Path | None:
    """The user's mask video for `video`: same relative path in `mask_dir`, or the same stem with any extension."""
    relative = video.relative_to(raw_dir) if video.is_relative_to(raw_dir) else Path(video.name)
    candidate = mask_dir / relative
    if candidate.is_file():
        return candidate
    matches = sorted(p for p in (mask_dir / relative.parent).glob(f"{video.stem}.*") if p.suffix != ".txt")
    return matches[0] if matches else None


def binarise(frames: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    """A user mask (any colour) → pure black and white, from its first channel (the dataset's test)."""
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise InputError(f"a mask video must decode to [F, H, W, 3] frames, got {list(frames.shape)}")
    keep = (frames[..., 0] > 127).astype(np.uint8) * 255
    return np.repeat(keep[..., None], 3, axis=-1)
