"""Aggregation: frame metrics over all frames, one Fréchet distance per set, FID reliability, pooled pose stats."""

from __future__ import annotations

import numpy as np
import pytest

from dynamictrl.evaluation.aggregate import FID_MIN_RELIABLE_SAMPLES, aggregate, fid_reliability, pool_pose
from dynamictrl.evaluation.measure import Collected
from dynamictrl.evaluation.protocols import PROTOCOLS

DISCO = PROTOCOLS["disco"]
OK = {"a": {"status": "ok", "frames": 3}, "b": {"status": "ok", "frames": 1}, "c": {"status": "error"}}


def _fid_collected(samples: int, dim: int = 8) -> Collected:
    rng = np.random.default_rng(0)
    collected = Collected()
    collected.features["fid"]["generated"].append(rng.normal(size=(samples, dim)))
    collected.features["fid"]["ground_truth"].append(rng.normal(size=(samples, dim)) + 1.0)
    return collected


def test_frame_metrics_are_means_over_all_frames_not_over_videos():
    collected = Collected()
    collected.per_frame["psnr"] = [np.array([10.0, 20.0, 30.0]), np.array([40.0])]
    result = aggregate(collected, OK, {}, ("frame",), DISCO)
    assert result["psnr"] == 25.0  # (10 + 20 + 30 + 40) / 4, not (20 + 40) / 2
    assert result["videos_evaluated"] == 2 and result["frames_evaluated"] == 4


def test_fid_on_fewer_than_2048_samples_is_marked_unreliable():
    small = aggregate(_fid_collected(24), OK, {}, ("fid",), DISCO)
    assert small["fid"] > 0 and small["fid_samples"] == 24
    assert small["fid_reliable"] is False
    assert "24 frames" in small["fid_note"] and "2048" in small["fid_note"]
    large = aggregate(_fid_collected(FID_MIN_RELIABLE_SAMPLES), OK, {}, ("fid",), DISCO)
    assert large["fid_reliable"] is True and "fid_note" not in large
    assert fid_reliability(FID_MIN_RELIABLE_SAMPLES - 1)["fid_reliable"] is False


def test_a_distance_on_one_sample_is_unavailable_not_a_number():
    unavailable: dict[str, str] = {}
    result = aggregate(_fid_collected(1), OK, unavailable, ("fid",), DISCO)
    assert "fid" not in result and "fid_reliable" not in result and result["fid_samples"] == 1
    assert "at least 2 per set" in unavailable["fid"]


def _pose_stats(keypoints: int, distance: float, pck: float) -> dict:
    return {
        "keypoints": keypoints,
        "pose_distance": distance,
        "pose_detection_rate": 1.0,
        "pck@0.05": pck,
        "pck@0.1": pck,
    }


def test_pose_is_pooled_over_keypoints():
    records = [
        {**_pose_stats(30, 0.1, 1.0), "parts": {"body": _pose_stats(30, 0.1, 1.0)}, "keypoint_jitter": 1.0,
         "keypoint_jitter_reference": None},
        {**_pose_stats(10, 0.5, 0.0), "parts": {"body": _pose_stats(10, 0.5, 0.0)}, "keypoint_jitter": 3.0,
         "keypoint_jitter_reference": None},
    ]  # fmt: skip
    pooled = pool_pose(records, (0.05, 0.1))
    assert pooled["keypoints"] == 40 and pooled["pck@0.1"] == pytest.approx(0.75)
    assert pooled["pose_distance"] == pytest.approx((30 * 0.1 + 10 * 0.5) / 40)
    assert pooled["parts"]["body"]["pck@0.05"] == pytest.approx(0.75)
    assert pooled["keypoint_jitter"] == 2.0 and pooled["keypoint_jitter_reference"] is None
