"""The reference photo at the target size: cover-resize, then centre-crop (`utils/pre_process.py::preprocess`).

The reference computes the pose of this cropped image but hands the *original* image to the pipeline, which
stretches it to the target size, so skeleton and image disagree whenever the aspect ratios differ (spec 6.4).
`cover_crop` is the one place that makes the crop; `prepare_pose_video` returns its result, and generation must
use that very array.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from ..errors import InputError


def cover_size(image_height: int, image_width: int, height: int, width: int) -> tuple[int, int]:
    """(height, width) that covers the target with the image's aspect ratio, rounded up as the reference does."""
    ratio = float(image_height) / float(image_width)
    if ratio < height / width:
        return height, math.ceil(height / ratio)
    return math.ceil(width * ratio), width


def _resize_bilinear(image: npt.NDArray[np.uint8], height: int, width: int) -> npt.NDArray[np.uint8]:
    """torchvision `resize(uint8 tensor, antialias=None)`: bilinear, half-pixel centres, no antialiasing, rounded.

    Done with torch itself: its float32 kernel's rounding cannot be reproduced bit for bit with numpy or OpenCV.
    """
    import torch

    tensor = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None].to(torch.float32)
    out = torch.nn.functional.interpolate(tensor, size=(height, width), mode="bilinear", align_corners=False)
    return out.round().clamp(0, 255).to(torch.uint8)[0].permute(1, 2, 0).contiguous().numpy()


def cover_crop(image: npt.NDArray[np.uint8], height: int, width: int) -> npt.NDArray[np.uint8]:
    """Resize `image` (uint8 `[h, w, 3]`) to cover `height` x `width` and crop the centre: uint8 `[height, width, 3]`.

    Same as the reference: torchvision bilinear resize without antialiasing to (H, ceil(H*w/h)) or (ceil(W*h/w), W),
    then `center_crop` (offsets rounded half to even).
    """
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise InputError(f"Reference image must be uint8 [H, W, 3], got {image.dtype} {list(image.shape)}")
    if height < 1 or width < 1:
        raise InputError(f"Target size must be positive, got {height}x{width}")
    h, w = image.shape[:2]
    rh, rw = cover_size(h, w, height, width)
    resized = image if (rh, rw) == (h, w) else _resize_bilinear(image, rh, rw)
    top = int(round((rh - height) / 2.0))
    left = int(round((rw - width) / 2.0))
    return np.ascontiguousarray(resized[top : top + height, left : left + width])
