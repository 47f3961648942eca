"""Flicker measures: zero for a still video, larger for an added flicker than for the motion itself."""

from __future__ import annotations

import numpy as np
import pytest

from dynamictrl.evaluation.temporal import frame_difference, warping_errors
from dynamictrl.io.media import read_video


@pytest.fixture(scope="module")
def dance(media_dir) -> np.ndarray:
    import cv2

    frames, _ = read_video(media_dir / "motion1.mp4", max_frames=8)
    return np.stack([cv2.resize(f, (135, 240), interpolation=cv2.INTER_AREA) for f in frames])


def test_still_video_has_no_flicker(dance):
    still = np.repeat(dance[:1], 4, axis=0)
    assert frame_difference(still) == 0.0
    gen, ref = warping_errors(still, still)
    # Farneback returns sub-pixel noise flow on identical frames; the resampling error stays far below 1 grey level.
    assert gen == pytest.approx(0.0, abs=1e-4) and ref == pytest.approx(0.0, abs=1e-4)
    assert frame_difference(dance[:1]) is None


def test_flicker_is_caught_relative_to_the_ground_truth(dance):
    flicker = dance.astype(np.int16)
    flicker[1::2] += 25  # every other frame brighter: the classic generation flicker
    flicker = np.clip(flicker, 0, 255).astype(np.uint8)
    gen, ref = warping_errors(flicker, dance)
    assert gen > ref + 0.05  # ~25/255 of extra error on the non-occluded pixels
    assert frame_difference(flicker) > frame_difference(dance)
    same, ref_again = warping_errors(dance, dance)
    assert same == pytest.approx(ref_again)
