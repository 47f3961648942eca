"""The numbers over the whole set, from what `measure` collected.

- Frame metrics: the mean over all frames of all videos (a long video weighs more, as in DisCo, which averages per
  frame file).
- FID, FID-VID, FVD: one Fréchet distance between all generated and all ground-truth samples (`<key>_samples` says
  how many per set). FID on fewer than `FID_MIN_RELIABLE_SAMPLES` samples per set is marked `fid_reliable: false`
  with a `fid_note`: below the 2048 feature dimensions the covariances are rank-deficient and the distance is biased
  upward by the sample count, so it is comparable only with FIDs on as many samples, not with published ones
  (the pytorch-fid README recommends at least 2048 samples: https://github.com/mseitzer/pytorch-fid).
- Pose fidelity: pooled over all keypoints of all videos (counts, not video means).
- Flicker: the mean over videos.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .measure import Collected
from .protocols import Protocol

FID_MIN_RELIABLE_SAMPLES = 2048
"""Samples per set below which FID is marked unreliable: the Inception features' dimension."""


def mean_or_none(values: list[float]) -> float | None:
    return float(np.mean(values)) if values else None


def pool_pose(records: list[dict[str, Any]], thresholds: tuple[float, ...]) -> dict[str, Any]:
    """Pool per-video pose stats over all keypoints (counts, not video means)."""

    def pool(stats: list[dict[str, Any]]) -> dict[str, float | int | None]:
        total = sum(s["keypoints"] for s in stats)
        out: dict[str, float | int | None] = {"keypoints": total}
        matched = [(s["keypoints"] * (s["pose_detection_rate"] or 0.0), s["pose_distance"]) for s in stats]
        weight = sum(w for w, d in matched if d is not None)
        out["pose_distance"] = sum(w * d for w, d in matched if d is not None) / weight if weight else None
        out["pose_detection_rate"] = (
            sum(s["keypoints"] * (s["pose_detection_rate"] or 0.0) for s in stats) / total if total else None
        )
        for a in thresholds:
            key = f"pck@{a:g}"
            out[key] = sum(s["keypoints"] * (s[key] or 0.0) for s in stats) / total if total else None
        return out

    result = pool(records)
    result["parts"] = {part: pool([r["parts"][part] for r in records]) for part in records[0]["parts"]}
    for key in ("keypoint_jitter", "keypoint_jitter_reference"):
        result[key] = mean_or_none([r[key] for r in records if r[key] is not None])
    return result


def fid_reliability(samples: int) -> dict[str, Any]:
    """`fid_reliable` (and a `fid_note` when it is false) for an FID computed on `samples` samples per set."""
    if samples >= FID_MIN_RELIABLE_SAMPLES:
        return {"fid_reliable": True}
    return {
        "fid_reliable": False,
        "fid_note": (
            f"FID on {samples} frames per set, fewer than {FID_MIN_RELIABLE_SAMPLES} (the feature dimension): biased "
            f"upward by the sample count; compare it only with FIDs on as many frames, not with published ones"
        ),
    }


def aggregate(
    collected: Collected,
    videos: dict[str, dict[str, Any]],
    unavailable: dict[str, str],
    metrics: tuple[str, ...],
    protocol: Protocol,
) -> dict[str, Any]:
    """The `aggregate` of metrics.json. A distribution metric with fewer than 2 samples per set goes to
    `unavailable` (which is updated in place) instead."""
    from .video_metrics import frechet_distance_from_features

    wanted = set(metrics)
    result: dict[str, Any] = {m: float(np.mean(np.concatenate(v))) for m, v in collected.per_frame.items()}
    for key in ("fid", "fid_vid", "fvd"):
        if key in unavailable or key not in wanted:
            continue
        generated, ground_truth = collected.features[key]["generated"], collected.features[key]["ground_truth"]
        if not generated:
            continue
        generated_all, ground_truth_all = np.concatenate(generated), np.concatenate(ground_truth)
        result[f"{key}_samples"] = len(generated_all)
        if len(generated_all) < 2 or len(ground_truth_all) < 2:
            unavailable[key] = f"{key}: {len(generated_all)} sample(s); a Fréchet distance needs at least 2 per set"
            continue
        result[key] = frechet_distance_from_features(generated_all, ground_truth_all)
        if key == "fid":
            result.update(fid_reliability(min(len(generated_all), len(ground_truth_all))))
    if collected.pose:
        result["pose"] = pool_pose(collected.pose, protocol.pose_thresholds)
    if collected.temporal:
        result["temporal"] = {
            key: mean_or_none([r[key] for r in collected.temporal if r[key] is not None])
            for key in collected.temporal[0]
        }
    evaluated = [v for v in videos.values() if v.get("status") == "ok"]
    result["videos_evaluated"] = len(evaluated)
    result["frames_evaluated"] = int(sum(v.get("frames", 0) for v in evaluated))
    return result
