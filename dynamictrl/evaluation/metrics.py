"""Frame metrics between a generated and a ground-truth video: L1, PSNR, DisCo's legacy PSNR, SSIM.

Inputs are uint8 RGB videos `[F, H, W, 3]` of equal shape (the protocol resizes first); every function returns one
float64 value per frame, `[F]`, and the evaluator averages over all frames of all videos (DisCo averages per frame
file, so a long video weighs more than a short one).

Definitions and why:

- `psnr`: `10 log10(255^2 / MSE)` with the MSE in float over all pixels and channels, i.e. scikit-image's
  `peak_signal_noise_ratio(data_range=255)` and DisCo's fixed `psnr_eval` (papers label it PSNR*). Identical frames
  give 100 dB instead of infinity, as DisCo does, so means stay finite.
- `psnr_disco_legacy`: DisCo's code before 2024-04-10 subtracted the two uint8 images in uint8, so differences
  wrapped modulo 256 (|-1| became 255), and squared in uint8, wrapping again. That value (~29-31 dB on TikTok) is in
  most pre-2024 tables as "PSNR"; it is reported here only under this name.
- `ssim`: Wang et al. 2004 with scikit-image's defaults (7x7 uniform window, K1 0.01, K2 0.03, sample covariance,
  data range 255, mean over the valid region) computed in float64 with OpenCV box filters; `gray` converts with
  OpenCV's RGB->GRAY first (DisCo: `cv2.cvtColor(BGR2GRAY)` on `cv2.imread`), `rgb` averages the three channels
  (scikit-image `channel_axis=-1`).
- `l1_disco`: DisCo's `l1_eval`: `|a - b| / (H * W)` on 0-255 values, averaged; hence the 1e-4 magnitudes in tables.
- `mae`: mean absolute error in [0, 1], the usual L1.
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Literal

import numpy as np
import numpy.typing as npt

from ..errors import InputError

SsimMode = Literal["gray", "rgb"]
IDENTICAL_PSNR = 100.0
SSIM_WINDOW = 7


def _check_pair(generated: np.ndarray, ground_truth: np.ndarray) -> None:
    if generated.shape != ground_truth.shape:
        raise InputError(f"Frame metrics need equal shapes, got {generated.shape} and {ground_truth.shape}")
    if generated.dtype != np.uint8 or ground_truth.dtype != np.uint8:
        raise InputError(f"Frame metrics take uint8 frames, got {generated.dtype} and {ground_truth.dtype}")
    if generated.ndim != 4 or generated.shape[-1] != 3:
        raise InputError(f"Frame metrics take RGB videos [F, H, W, 3], got {generated.shape}")


def _abs_diff_sums(generated: np.ndarray, ground_truth: np.ndarray, squared: bool) -> npt.NDArray[np.float64]:
    """Per-frame sum of |a - b| (or (a - b)^2) in exact integer arithmetic, as float64."""
    out = np.empty(len(generated))
    for i, (a, b) in enumerate(zip(generated, ground_truth, strict=True)):
        diff = a.astype(np.int32) - b.astype(np.int32)
        out[i] = float(np.sum(diff * diff if squared else np.abs(diff), dtype=np.int64))
    return out


def _per_frame_mse(generated: np.ndarray, ground_truth: np.ndarray) -> npt.NDArray[np.float64]:
    return _abs_diff_sums(generated, ground_truth, squared=True) / float(generated[0].size)


def psnr(generated: npt.NDArray[np.uint8], ground_truth: npt.NDArray[np.uint8]) -> npt.NDArray[np.float64]:
    """PSNR in dB per frame (the fixed DisCo / scikit-image definition, "PSNR*"); 100 for identical frames."""
    _check_pair(generated, ground_truth)
    mse = _per_frame_mse(generated, ground_truth)
    out = np.full(len(mse), IDENTICAL_PSNR)
    nonzero = mse > 0
    out[nonzero] = 10.0 * np.log10(255.0**2 / mse[nonzero])
    return out


def psnr_disco_legacy(
    generated: npt.NDArray[np.uint8], ground_truth: npt.NDArray[np.uint8]
) -> npt.NDArray[np.float64]:
    """DisCo's original PSNR with its uint8 overflow, per frame: `20 log10(255 / sqrt(mean((a - b) ** 2)))` in uint8.

    `a - b` wraps modulo 256 and so does the square, so the "MSE" is at most 255 and the PSNR at least ~24 dB
    whatever the images. 100 for a zero "MSE", as DisCo returns.
    """
    _check_pair(generated, ground_truth)
    out = np.empty(len(generated))
    for i, (a, b) in enumerate(zip(generated, ground_truth, strict=True)):
        wrapped = a - b  # uint8 - uint8 stays uint8: wraps modulo 256 (the bug, on purpose)
        mse = float(np.mean(wrapped * wrapped))  # the square wraps modulo 256 as well
        out[i] = IDENTICAL_PSNR if mse == 0 else 20.0 * math.log10(255.0 / math.sqrt(mse))
    return out


def l1_disco(generated: npt.NDArray[np.uint8], ground_truth: npt.NDArray[np.uint8]) -> npt.NDArray[np.float64]:
    """DisCo's L1 per frame: mean of `|a - b| / (H * W)` over pixels and channels, on 0-255 values."""
    _check_pair(generated, ground_truth)
    height, width = generated.shape[1:3]
    mean_abs = _abs_diff_sums(generated, ground_truth, squared=False) / float(generated[0].size)
    return mean_abs / float(height * width)


def mae(generated: npt.NDArray[np.uint8], ground_truth: npt.NDArray[np.uint8]) -> npt.NDArray[np.float64]:
    """Mean absolute error per frame with pixel values in [0, 1]."""
    _check_pair(generated, ground_truth)
    return _abs_diff_sums(generated, ground_truth, squared=False) / float(generated[0].size) / 255.0


def to_gray(frames: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    """RGB uint8 `[F, H, W, 3]` to gray `[F, H, W]` with OpenCV's fixed-point BT.601 weights (as DisCo)."""
    import cv2

    return np.stack([cv2.cvtColor(np.ascontiguousarray(f), cv2.COLOR_RGB2GRAY) for f in frames])


def _window_mean(plane: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Mean of every 7x7 block fully inside a 2-D plane (OpenCV box filter, then scikit-image's border crop)."""
    import cv2

    pad = (SSIM_WINDOW - 1) // 2
    means = cv2.boxFilter(plane, -1, (SSIM_WINDOW, SSIM_WINDOW), normalize=True, borderType=cv2.BORDER_REFLECT)
    return means[pad:-pad, pad:-pad]


def _ssim_plane(x: npt.NDArray[np.uint8], y: npt.NDArray[np.uint8], data_range: float = 255.0) -> float:
    """Mean SSIM of one `[H, W]` plane over the window-valid region, in float64."""
    x, y = x.astype(np.float64), y.astype(np.float64)
    count = SSIM_WINDOW * SSIM_WINDOW
    cov_norm = count / (count - 1.0)
    ux, uy = _window_mean(x), _window_mean(y)
    vx = cov_norm * (_window_mean(x * x) - ux * ux)
    vy = cov_norm * (_window_mean(y * y) - uy * uy)
    vxy = cov_norm * (_window_mean(x * y) - ux * uy)
    c1 = (0.01 * data_range) ** 2
    c2 = (0.03 * data_range) ** 2
    s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
    return float(s.mean())


def ssim(
    generated: npt.NDArray[np.uint8],
    ground_truth: npt.NDArray[np.uint8],
    mode: SsimMode = "gray",
) -> npt.NDArray[np.float64]:
    """SSIM per frame, equal to scikit-image's `structural_similarity` with default arguments (see module doc)."""
    _check_pair(generated, ground_truth)
    if min(generated.shape[1:3]) < SSIM_WINDOW:
        raise InputError(f"SSIM needs frames of at least {SSIM_WINDOW}x{SSIM_WINDOW}, got {generated.shape[1:3]}")
    if mode == "gray":
        planes_a, planes_b, channels = to_gray(generated), to_gray(ground_truth), 1
    elif mode == "rgb":
        planes_a = np.moveaxis(generated, -1, 1).reshape(-1, *generated.shape[1:3])
        planes_b = np.moveaxis(ground_truth, -1, 1).reshape(-1, *ground_truth.shape[1:3])
        channels = 3
    else:
        raise ValueError(f"SSIM mode must be 'gray' or 'rgb', got {mode!r}")
    # OpenCV and numpy release the GIL, so planes run in parallel threads.
    with ThreadPoolExecutor(max_workers=max(1, min(os.cpu_count() or 1, len(planes_a)))) as pool:
        values = np.fromiter(pool.map(_ssim_plane, planes_a, planes_b), np.float64, count=len(planes_a))
    return values.reshape(len(generated), channels).mean(axis=1)
