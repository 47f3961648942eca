"""Temporal consistency (frame-to-frame flicker) of a generated video.

Two pixel measures, both reported for the generated video and for the ground truth, because real motion changes
pixels too and only the excess over the ground truth is flicker:

- `frame_diff`: mean absolute difference between consecutive frames, in [0, 1].
- `warp_error`: the temporal warping error of Lai et al. (ECCV 2018, "Learning Blind Video Temporal Consistency"):
  optical flow is computed on the ground-truth video (whose motion the generated one should share), frame t+1 of
  the evaluated video is warped back to frame t with it, and the mean absolute difference is taken over pixels whose
  forward and backward flows agree (non-occluded). The ground truth's own value is the floor set by flow errors.

Flow is OpenCV's Farneback on gray frames scaled so the short side is at most 256 pixels (speed; flicker is not a
fine-detail effect).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

FLOW_SHORT_SIDE = 256
CONSISTENCY_PIXELS = 1.0


def _downscale(frames: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    import cv2

    height, width = frames.shape[1:3]
    scale = min(1.0, FLOW_SHORT_SIDE / min(height, width))
    if scale >= 1.0:
        return frames
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return np.stack([cv2.resize(f, size, interpolation=cv2.INTER_AREA) for f in frames])


def frame_difference(frames: npt.NDArray[np.uint8]) -> float | None:
    """Mean |I[t+1] - I[t]| / 255 over a uint8 `[F, H, W, 3]` video; None for a single frame."""
    if len(frames) < 2:
        return None
    total = 0.0
    for a, b in zip(frames[:-1], frames[1:], strict=True):
        total += float(np.abs(b.astype(np.int16) - a.astype(np.int16)).mean())
    return total / (len(frames) - 1) / 255.0


def _flow(a_gray: np.ndarray, b_gray: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.calcOpticalFlowFarneback(a_gray, b_gray, None, 0.5, 3, 15, 3, 5, 1.2, 0)


def _sample(image: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """`image` looked up at `x + flow(x)` (bilinear, border replicated)."""
    import cv2

    height, width = flow.shape[:2]
    grid_x, grid_y = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    return cv2.remap(
        image, grid_x + flow[..., 0], grid_y + flow[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )


def warping_errors(
    generated: npt.NDArray[np.uint8], ground_truth: npt.NDArray[np.uint8]
) -> tuple[float | None, float | None]:
    """(warp error of `generated`, warp error of `ground_truth`) with flow from `ground_truth`; equal-shape videos."""
    import cv2

    if generated.shape != ground_truth.shape:
        raise ValueError(f"warping_errors needs equal shapes, got {generated.shape} and {ground_truth.shape}")
    if len(ground_truth) < 2:
        return None, None
    gen_small, ref_small = _downscale(generated), _downscale(ground_truth)
    gray = [cv2.cvtColor(np.ascontiguousarray(f), cv2.COLOR_RGB2GRAY) for f in ref_small]
    gen_total = ref_total = 0.0
    pairs = 0
    for t in range(len(ref_small) - 1):
        forward = _flow(gray[t], gray[t + 1])  # position in t+1 of each pixel of t
        backward = _flow(gray[t + 1], gray[t])
        round_trip = forward + _sample(backward, forward)
        mask = np.linalg.norm(round_trip, axis=-1) < CONSISTENCY_PIXELS
        if not mask.any():
            continue
        for video, acc in ((gen_small, "gen"), (ref_small, "ref")):
            warped = _sample(video[t + 1].astype(np.float32), forward)
            error = float(np.abs(warped - video[t].astype(np.float32)).mean(axis=-1)[mask].mean()) / 255.0
            if acc == "gen":
                gen_total += error
            else:
                ref_total += error
        pairs += 1
    if pairs == 0:
        return None, None
    return gen_total / pairs, ref_total / pairs
