"""Image transforms shared by the pose stage, generation and evaluation: cover-crop and plain resizes.

`cover_crop` is how the published code prepares the reference photo (`utils/pre_process.py::preprocess`): resize to
cover the target size, then centre-crop. The published code computes the pose of this crop but hands the
*original* photo to the pipeline, which stretches it, so skeleton and image disagree whenever the aspect ratios
differ; here the crop is made once and generation uses that very array (docs/pose.md).
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from ..errors import InputError


def cover_size(image_height: int, image_width: int, height: int, width: int) -> tuple[int, int]:
    """(height, width) that covers the target with the image's aspect ratio, rounded up as the published code does."""
    ratio = float(image_height) / float(image_width)
    if ratio < height / width:
        return height, math.ceil(height / ratio)
    return math.ceil(width * ratio), width


def resize_bilinear(image: npt.NDArray[np.uint8], height: int, width: int) -> npt.NDArray[np.uint8]:
    """torchvision `resize(uint8 tensor, antialias=None)`: bilinear, half-pixel centres, no antialiasing, rounded.

    Done with torch itself: its float32 kernel's rounding cannot be reproduced bit for bit with numpy or OpenCV.
    """
    import torch

    tensor = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None].to(torch.float32)
    out = torch.nn.functional.interpolate(tensor, size=(height, width), mode="bilinear", align_corners=False)
    return out.round().clamp(0, 255).to(torch.uint8)[0].permute(1, 2, 0).contiguous().numpy()


def cover_crop(image: npt.NDArray[np.uint8], height: int, width: int) -> npt.NDArray[np.uint8]:
    """Resize `image` (uint8 `[h, w, 3]`) to cover `height` x `width` and crop the centre: uint8 `[height, width, 3]`.

    Same as the published code: torchvision bilinear resize without antialiasing to (H, ceil(H*w/h)) or
    (ceil(W*h/w), W), then `center_crop` (offsets rounded half to even).
    """
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise InputError(f"Reference image must be uint8 [H, W, 3], got {image.dtype} {list(image.shape)}")
    if height < 1 or width < 1:
        raise InputError(f"Target size must be positive, got {height}x{width}")
    h, w = image.shape[:2]
    rh, rw = cover_size(h, w, height, width)
    resized = image if (rh, rw) == (h, w) else resize_bilinear(image, rh, rw)
    top = int(round((rh - height) / 2.0))
    left = int(round((rw - width) / 2.0))
    return np.ascontiguousarray(resized[top : top + height, left : left + width])


def cover_crop_frames(frames: npt.NDArray[np.uint8], height: int, width: int) -> npt.NDArray[np.uint8]:
    """`cover_crop` on every frame of `[F, h, w, 3]`; frames already at the size are returned as they are."""
    if frames.shape[1:3] == (height, width):
        return frames
    return np.stack([cover_crop(frame, height, width) for frame in frames])


def same_aspect(height: int, width: int, other_height: int, other_width: int, tolerance: float = 0.01) -> bool:
    """Whether two sizes have the same aspect ratio within `tolerance` (relative): a cover-crop then loses nothing."""
    return abs(other_width / other_height - width / height) <= tolerance * (width / height)


def resize_frames(frames: npt.NDArray[np.uint8], height: int, width: int) -> npt.NDArray[np.uint8]:
    """`cv2.resize(frame, (width, height))` (bilinear, a stretch) on every frame of `[F, h, w, 3]`."""
    import cv2

    if frames.shape[1:3] == (height, width):
        return frames
    return np.stack([cv2.resize(f, (width, height), interpolation=cv2.INTER_LINEAR) for f in frames])
