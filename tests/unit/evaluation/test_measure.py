"""Measuring one aligned pair: per-video values, what is kept for the aggregate, the worst-frame thumbnail."""

from __future__ import annotations

import numpy as np
import pytest

from dynamictrl.evaluation.measure import THUMBNAIL_HEIGHT, PairMeasurer, thumbnail
from dynamictrl.evaluation.network_set import NetworkSet
from dynamictrl.evaluation.protocols import PROTOCOLS

DISCO = PROTOCOLS["disco"]


def _pair() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    ground_truth = rng.integers(0, 256, (4, 32, 24, 3), dtype=np.uint8)
    generated = ground_truth.copy()
    generated[2] = 255 - generated[2]  # one bad frame
    return generated, ground_truth


def test_frame_metrics_and_flicker_of_a_pair():
    generated, ground_truth = _pair()
    measurer = PairMeasurer(DISCO, ("frame", "temporal"), NetworkSet())
    values: dict = {}
    notes: list[str] = []
    measurer.measure(
        "clip", generated, ground_truth, values, lambda message, severity="warning": notes.append(message)
    )
    assert not notes
    assert set(values) == {"l1", "psnr", "psnr_disco_legacy", "ssim", "temporal"}  # disco: L1, not MAE
    assert values["psnr"] == pytest.approx((3 * 100.0 + float(measurer.collected.per_frame["psnr"][0][2])) / 4)
    assert [len(v[0]) for v in measurer.collected.per_frame.values()] == [4, 4, 4, 4]
    assert set(values["temporal"]) == {"frame_diff", "frame_diff_reference", "warp_error", "warp_error_reference"}
    (thumb,) = measurer.collected.thumbnails
    assert thumb.video == "clip" and thumb.frame == 2  # the lowest-SSIM frame
    assert np.array_equal(thumb.generated, generated[2]) and np.array_equal(thumb.ground_truth, ground_truth[2])


def test_clip_metrics_note_a_video_too_short_for_one_clip():
    class FakeExtractor:
        def clip_features(self, frames, starts, length):  # pragma: no cover - never reached: 4 frames < 16
            raise AssertionError

    nets = NetworkSet()
    nets.fvd = FakeExtractor()
    notes: list[str] = []
    generated, ground_truth = _pair()
    PairMeasurer(DISCO, ("fvd",), nets).measure(
        "clip", generated, ground_truth, {}, lambda m, s="warning": notes.append(m)
    )
    assert notes == ["fvd: 4 frames are too few for 16-frame clips; not counted"]


def test_thumbnails_are_at_most_256_rows():
    tall = np.zeros((1024, 512, 3), np.uint8)
    assert thumbnail(tall).shape == (THUMBNAIL_HEIGHT, 128, 3)
    small = np.zeros((100, 50, 3), np.uint8)
    assert thumbnail(small).shape == small.shape
