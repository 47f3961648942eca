"""Metrics that need the synthetic world's ground truth: the character region, silhouettes, centroids, quarters.

`dynamictrl.synthetic` knows, for every frame, where the person is (the person mask) and what the background is
(`synthetic.background.render_background`), so a generated video can be scored on the person alone:

- `masked_psnr` / `masked_ssim`: PSNR and SSIM restricted to a region, e.g. the person mask dilated by a few pixels
  (`dilate`). `masked_psnr` is `metrics.psnr` with the MSE over the region's pixels only; `masked_ssim` averages
  the SSIM map of `ssim_map` over the region (the map is `metrics.ssim`'s, kept at full size with reflected
  borders, so that a region may touch the frame's edge; its mean over the window-valid crop is `metrics.ssim`).
- `silhouette`: the pixels of a frame far (RGB distance above `SILHOUETTE_THRESHOLD`) from the known background,
  i.e. where the video draws something that is not background. The world keeps every colour a character wears at
  least `synthetic.palette.MIN_CONTRAST` (90) from its background, so half of that separates person from
  background with room for compression and generation error.
- `iou` of two masks and `centroid_error`, the distance in pixels between their centroids.
- `frame_quarters`: frames 1..F-1 of a clip (frame 0 is the reference the model is given) split into four runs.

Inputs are uint8 RGB videos `[F, H, W, 3]` and boolean masks `[F, H, W]`; per-frame functions return float64 `[F]`
with NaN where a value is undefined (an empty region), so callers average with `np.nanmean`.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from ..errors import InputError
from .metrics import IDENTICAL_PSNR, SSIM_WINDOW, SsimMode, to_gray

SILHOUETTE_THRESHOLD = 45.0
"""RGB Euclidean distance from the background above which a pixel counts as drawn: half `MIN_CONTRAST`."""
REGION_DILATION = 3
"""Pixels the person mask grows by for the character region: the outline, and a model's small misplacements."""


def _check_video(frames: np.ndarray, what: str) -> None:
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise InputError(f"{what} must be uint8 RGB [F, H, W, 3], got {frames.dtype} {frames.shape}")


def _check_masks(masks: np.ndarray, shape: tuple[int, ...], what: str) -> npt.NDArray[np.bool_]:
    masks = np.asarray(masks)
    if masks.shape != shape:
        raise InputError(f"{what} must be [F, H, W] = {list(shape)}, got {list(masks.shape)}")
    return masks.astype(bool)


def dilate(masks: npt.ArrayLike, pixels: int) -> npt.NDArray[np.bool_]:
    """Boolean masks `[F, H, W]` grown by `pixels` (a disc of that radius; 0 returns them unchanged)."""
    import cv2

    masks = np.asarray(masks, dtype=bool)
    if pixels <= 0:
        return masks.copy()
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * pixels + 1, 2 * pixels + 1))
    return np.stack([cv2.dilate(m.astype(np.uint8), kernel) > 0 for m in masks])


def silhouette(
    frames: npt.NDArray[np.uint8], background: npt.NDArray[np.uint8], threshold: float = SILHOUETTE_THRESHOLD
) -> npt.NDArray[np.bool_]:
    """Where `frames [F, H, W, 3]` differ from `background [H, W, 3]` by more than `threshold` (RGB distance)."""
    _check_video(frames, "frames")
    if background.shape != frames.shape[1:]:
        raise InputError(f"background must be {list(frames.shape[1:])}, got {list(background.shape)}")
    diff = frames.astype(np.float32) - background.astype(np.float32)[None]
    return np.sqrt((diff * diff).sum(axis=-1)) > threshold


def masked_psnr(
    generated: npt.NDArray[np.uint8], ground_truth: npt.NDArray[np.uint8], region: npt.ArrayLike
) -> npt.NDArray[np.float64]:
    """PSNR in dB per frame over the pixels of `region [F, H, W]` (all channels); NaN for an empty region, 100 for
    an exact match (as `metrics.psnr`)."""
    _check_video(generated, "generated")
    if generated.shape != ground_truth.shape:
        raise InputError(f"masked_psnr needs equal shapes, got {generated.shape} and {ground_truth.shape}")
    region = _check_masks(region, generated.shape[:3], "region")
    out = np.full(len(generated), np.nan)
    for i, (a, b, m) in enumerate(zip(generated, ground_truth, region, strict=True)):
        count = int(m.sum())
        if count == 0:
            continue
        diff = a[m].astype(np.int64) - b[m].astype(np.int64)
        mse = float((diff * diff).sum()) / (3.0 * count)
        out[i] = IDENTICAL_PSNR if mse == 0 else 10.0 * np.log10(255.0**2 / mse)
    return out


def _ssim_map_plane(x: npt.NDArray[np.uint8], y: npt.NDArray[np.uint8], data_range: float = 255.0) -> np.ndarray:
    """The SSIM map of one `[H, W]` plane at full size: `metrics._ssim_plane` before its border crop and mean."""
    import cv2

    x, y = x.astype(np.float64), y.astype(np.float64)
    size = (SSIM_WINDOW, SSIM_WINDOW)

    def mean(plane: np.ndarray) -> np.ndarray:
        return cv2.boxFilter(plane, -1, size, normalize=True, borderType=cv2.BORDER_REFLECT)

    count = SSIM_WINDOW * SSIM_WINDOW
    cov_norm = count / (count - 1.0)
    ux, uy = mean(x), mean(y)
    vx = cov_norm * (mean(x * x) - ux * ux)
    vy = cov_norm * (mean(y * y) - uy * uy)
    vxy = cov_norm * (mean(x * y) - ux * uy)
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    return ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))


def ssim_map(
    generated: npt.NDArray[np.uint8], ground_truth: npt.NDArray[np.uint8], mode: SsimMode = "rgb"
) -> npt.NDArray[np.float64]:
    """Per-pixel SSIM `[F, H, W]` (`rgb`: the mean of the three channel maps; `gray`: of the gray plane).

    Its mean over `[:, 3:-3, 3:-3]` (the 7×7 windows fully inside the frame) equals `metrics.ssim(..., mode)`.
    """
    _check_video(generated, "generated")
    if generated.shape != ground_truth.shape:
        raise InputError(f"ssim_map needs equal shapes, got {generated.shape} and {ground_truth.shape}")
    if min(generated.shape[1:3]) < SSIM_WINDOW:
        raise InputError(f"SSIM needs frames of at least {SSIM_WINDOW}x{SSIM_WINDOW}, got {generated.shape[1:3]}")
    if mode == "gray":
        a, b = to_gray(generated), to_gray(ground_truth)
        return np.stack([_ssim_map_plane(x, y) for x, y in zip(a, b, strict=True)])
    if mode != "rgb":
        raise ValueError(f"SSIM mode must be 'gray' or 'rgb', got {mode!r}")
    return np.stack(
        [
            np.mean([_ssim_map_plane(x[..., c], y[..., c]) for c in range(3)], axis=0)
            for x, y in zip(generated, ground_truth, strict=True)
        ]
    )


def masked_ssim(
    generated: npt.NDArray[np.uint8],
    ground_truth: npt.NDArray[np.uint8],
    region: npt.ArrayLike,
    mode: SsimMode = "rgb",
) -> npt.NDArray[np.float64]:
    """Mean of `ssim_map` over `region [F, H, W]` per frame; NaN for an empty region."""
    region = _check_masks(region, generated.shape[:3], "region")
    values = ssim_map(generated, ground_truth, mode)
    out = np.full(len(generated), np.nan)
    for i, (v, m) in enumerate(zip(values, region, strict=True)):
        if m.any():
            out[i] = float(v[m].mean())
    return out


def iou(a: npt.ArrayLike, b: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Intersection over union per frame of two mask stacks `[F, H, W]`; 1 where both are empty."""
    a, b = np.asarray(a, dtype=bool), np.asarray(b, dtype=bool)
    if a.shape != b.shape or a.ndim != 3:
        raise InputError(f"iou needs two [F, H, W] mask stacks of one shape, got {a.shape} and {b.shape}")
    inter = (a & b).sum(axis=(1, 2)).astype(np.float64)
    union = (a | b).sum(axis=(1, 2)).astype(np.float64)
    return np.where(union > 0, inter / np.maximum(union, 1.0), 1.0)


def centroids(masks: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """`[F, 2]` centroid (x, y) in pixels (pixel centres at integers) of each mask; NaN for an empty one."""
    masks = np.asarray(masks, dtype=bool)
    if masks.ndim != 3:
        raise InputError(f"centroids needs masks [F, H, W], got {list(masks.shape)}")
    ys, xs = np.mgrid[: masks.shape[1], : masks.shape[2]]
    out = np.full((len(masks), 2), np.nan)
    for i, m in enumerate(masks):
        if m.any():
            out[i] = (xs[m].mean(), ys[m].mean())
    return out


def centroid_error(a: npt.ArrayLike, b: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Distance in pixels between the centroids of two mask stacks per frame; NaN where either mask is empty."""
    return np.linalg.norm(centroids(a) - centroids(b), axis=1)


def frame_quarters(num_frames: int, first: int = 1, parts: int = 4) -> list[npt.NDArray[np.int64]]:
    """Frames `first..num_frames-1` split into `parts` consecutive runs as equal as possible (earlier runs get the
    extra frame): 21 frames give 1-5, 6-10, 11-15, 16-20."""
    if num_frames - first < parts:
        raise InputError(f"{num_frames} frames starting at {first} cannot be split into {parts} parts")
    return [np.asarray(run, dtype=np.int64) for run in np.array_split(np.arange(first, num_frames), parts)]


def mean_colour(frames: npt.NDArray[np.uint8], region: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Mean RGB `[3]` of `frames [F, H, W, 3]` over `region [F, H, W]` (all frames pooled); NaN if it is empty."""
    _check_video(frames, "frames")
    region = _check_masks(region, frames.shape[:3], "region")
    if not region.any():
        return np.full(3, np.nan)
    return frames[region].astype(np.float64).mean(axis=0)


def colour_distance(a: npt.ArrayLike, b: npt.ArrayLike) -> float:
    """RGB Euclidean distance of two colours (0-255 scale), as `synthetic.palette.distance`."""
    return float(np.linalg.norm(np.asarray(a, np.float64) - np.asarray(b, np.float64)))
