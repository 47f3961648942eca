"""Pose checks: what is caught before generation, and --strict."""

from __future__ import annotations

import numpy as np
import pytest

from dynamictrl.errors import PoseError
from dynamictrl.pose.align import align_poses
from dynamictrl.pose.check import check_alignment, check_driving, check_reference, enforce
from dynamictrl.pose.synthetic import standing_person as person
from dynamictrl.pose.types import FramePose, PersonPose

H, W = 720, 1280


def _driving(n=20, **kwargs):
    return [FramePose([person(600, 150, 400, H, W, **kwargs)], H, W) for _ in range(n)]


def _run_checks(ref, driving):
    result = align_poses(ref, driving)
    return check_driving(driving, result.main) + check_alignment(ref, driving, result)


def test_a_good_pair_passes():
    ref = FramePose([person(200, 100, 450, 640, 384)], 640, 384)
    assert check_reference(ref) == [] and _run_checks(ref, _driving()) == []
    enforce([], strict=True)


def test_reference_without_a_person_is_an_error_and_low_scores_count_as_none():
    with pytest.raises(PoseError, match="No person found in the reference image"):
        check_reference(FramePose([], 640, 384))
    garbage = PersonPose.empty()  # what DWPose's whole-image fallback gives on a blank image: low scores
    garbage.body_scores[:] = 0.2
    with pytest.raises(PoseError, match="No person found"):
        check_reference(FramePose([garbage], 640, 384))


def test_reference_missing_hips_or_with_two_people_warns():
    half = person(200, 100, 450, 640, 384)
    half.body_scores[[8, 9, 10, 11, 12, 13]] = 0.1
    warnings = check_reference(FramePose([half], 640, 384))
    assert len(warnings) == 1 and "right hip, left hip" in warnings[0]
    two = FramePose([person(100, 100, 450, 640, 384), person(300, 100, 450, 640, 384)], 640, 384)
    assert "2 people" in check_reference(two)[0]


def test_driving_person_leaving_the_frame_or_missing_is_reported_with_frame_numbers():
    driving = _driving()
    for i in range(5, 10):  # walks out to the right: a shoulder and a hip beyond the edge
        driving[i] = FramePose([person(1320, 150, 400, H, W)], H, W)
    driving[15] = FramePose([], H, W)
    main = align_poses(FramePose([person(200, 100, 450, 640, 384)], 640, 384), driving).main
    warnings = check_driving(driving, main)
    assert any("No person in 1 of 20 driving frames (15)" in w for w in warnings)
    assert any("leaves the picture in 5 of 20 frames (5-9" in w for w in warnings)
    with pytest.raises(PoseError, match="strict"):
        enforce(warnings, strict=True)


def test_full_body_reference_with_half_body_driving_warns_that_alignment_is_unreliable():
    ref = FramePose([person(200, 100, 450, 640, 384)], 640, 384)
    driving = _driving()
    for f in driving:
        f.people[0].body_scores[[9, 10, 12, 13]] = 0.05  # knees and ankles out of view
        f.people[0].body[[9, 10, 12, 13], 1] = 0.99  # where a network puts points it cannot see
    warnings = _run_checks(ref, driving)
    assert any("framings differ" in w and "knee" in w for w in warnings)


def test_reference_cropped_at_the_thighs_does_not_warn_about_legs_leaving_the_frame():
    ref = FramePose([person(200, 150, 800, 640, 384)], 640, 384)  # ankles at y=950 > 640: not visible
    ref.people[0].body_scores[[9, 10, 12, 13]] = 0.05
    assert not any("leaves the picture" in w for w in _run_checks(ref, _driving()))


def test_driving_without_anyone_is_an_error():
    with pytest.raises(PoseError, match="No person found in any frame"):
        check_driving([FramePose([], H, W)] * 3, [None] * 3)


def test_several_people_in_the_driving_video_warn_and_suggest_people_main():
    driving = _driving(n=4)
    driving[1] = FramePose([driving[1].people[0], person(100, 100, 300, H, W)], H, W)
    result = align_poses(FramePose([person(200, 100, 450, 640, 384)], 640, 384), driving)
    assert "--people main" in check_driving(driving, result.main)[0]
    assert "only the main person is drawn" in check_driving(driving, result.main, "main")[0]


def test_aligned_skeleton_leaving_the_reference_frame_warns():
    ref = FramePose([person(200, 60, 450, 640, 384)], 640, 384)
    driving = _driving()
    for i, f in enumerate(driving):  # travels far to the left: on a tight reference it leaves the picture
        f.people[0].body[:, 0] -= 0.03 * i
    warnings = _run_checks(ref, driving)
    assert any("aligned skeleton leaves the picture" in w for w in warnings)
    assert np.isfinite(align_poses(ref, driving).transform.relative_residual)
