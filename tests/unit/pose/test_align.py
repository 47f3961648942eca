"""Alignment: the published code's global rescale reproduced exactly, plus what it lacks."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from dynamictrl.errors import InputError, PoseError
from dynamictrl.pose.align import (
    AlignOptions,
    align_poses,
    fit_linear_transform,
    retarget_ratios,
    smooth_people,
    track_main_person,
)
from dynamictrl.pose.render import draw_pose
from dynamictrl.pose.synthetic import standing_person
from dynamictrl.pose.types import FramePose, PersonPose

person = standing_person


def _cases(fixtures_dir):
    cases = json.loads((fixtures_dir / "pose-reference" / "cases.json").read_text())
    return [c for c in cases if c["kind"] == "align"]


def test_every_align_case_matches_the_published_code_pixel_for_pixel(fixtures_dir):
    cases = _cases(fixtures_dir)
    assert len(cases) == 2
    for case in cases:
        h, w = case["reference_height"], case["reference_width"]
        ref = FramePose.from_wholebody(
            np.float32(case["reference_raw_keypoints"]), np.float32(case["reference_raw_scores"]), h, w
        )
        driving = [
            FramePose.from_wholebody(
                np.float32(f["raw_keypoints"]), np.float32(f["raw_scores"]), case["video_height"], case["video_width"]
            )
            for f in case["frames"]
        ]
        result = align_poses(ref, driving)
        assert len(result.frames) == len(case["expected"])
        for i, (frame, expected_name) in enumerate(zip(result.frames, case["expected"], strict=True)):
            expected = np.asarray(Image.open(fixtures_dir / "pose-reference" / expected_name).convert("RGB"))
            differing = int((draw_pose(frame, h, w) != expected).any(axis=-1).sum())
            assert differing == 0, f"{case['name']} frame {i}: {differing} pixels differ"
        # Frame 2 holds two people: the published code draws both; the fit skipped that frame.
        assert len(result.frames[2].people) == 2 and 2 not in result.transform.fit_frames


def test_linear_fit_maps_a_scaled_shifted_copy_back_onto_the_reference():
    ref = FramePose([person(200, 100, 400, 640, 384)], 640, 384)
    # Driving video 1280x720: the same pose, 300 px tall, nose at (900, 200).
    driving = [FramePose([person(900, 200, 300, 720, 1280)], 720, 1280) for _ in range(3)]
    result = align_poses(ref, driving)
    np.testing.assert_allclose(result.frames[1].people[0].body, ref.people[0].body, atol=1e-9)
    ax, ay = result.transform.scale
    # Pixel scale is isotropic: one driving pixel is 400/300 reference pixels both ways.
    np.testing.assert_allclose([ax * 384 / 1280, ay * 640 / 720], [4 / 3, 4 / 3])


def test_frames_with_no_or_several_people_follow_the_main_person_instead_of_crashing():
    ref = FramePose([person(200, 100, 400, 640, 384)], 640, 384)
    h, w = 720, 1280
    frames = []
    for t in range(6):
        main = person(300 + 10 * t, 200, 300, h, w)
        bystander = person(1000, 250, 200, h, w, score=0.95)
        frames.append(FramePose([bystander, main] if t % 2 else [main, bystander], h, w))
    frames[3] = FramePose([], h, w)  # the dancer is lost for one frame
    # The published code crashes here (no frame has exactly one person); we fit on the tracked main person.
    result = align_poses(ref, frames, AlignOptions(people="main"))
    assert result.main == [0, 1, 0, None, 0, 1]
    assert result.transform.fit_on == "the main person of every frame"
    assert [len(f.people) for f in result.frames] == [1, 1, 1, 0, 1, 1]
    # Every drawn skeleton is the dancer, scaled onto the reference (height 400 px of 640).
    for f in result.frames:
        for p in f.people:
            assert (p.body[10, 1] - p.body[0, 1]) * 640 == pytest.approx(400, rel=1e-6)
    # people="all" keeps the bystander too, transformed like everyone else.
    assert [len(f.people) for f in align_poses(ref, frames).frames] == [2, 2, 2, 0, 2, 2]


def test_track_main_person_starts_with_the_most_prominent_and_follows_proximity():
    h, w = 720, 1280
    small, big = person(200, 100, 150, h, w), person(700, 100, 500, h, w)
    frames = [FramePose([small, big], h, w), FramePose([person(720, 100, 500, h, w), small], h, w)]
    assert track_main_person(frames) == [1, 0]
    noise = PersonPose.empty()
    noise.body_scores[:3] = 0.9  # three points: not a person
    assert track_main_person([FramePose([noise], h, w)]) == [None]


def test_missing_nose_anchor_falls_back_to_a_point_both_show():
    ref = FramePose([person(200, 100, 400, 640, 384)], 640, 384)
    driving = [FramePose([person(900, 200, 300, 720, 1280)], 720, 1280) for _ in range(3)]
    garbage = driving[0].people[0]
    garbage.body[0] = (0.5, 0.9)  # the published code would anchor on this low-confidence nose
    garbage.body_scores[0] = 0.05
    result = align_poses(ref, driving)
    # The first confident nose (frame 1) lands on the reference nose height; the published code would have put the
    # garbage nose of frame 0 there, shifting the whole sequence by 0.7 of the picture.
    assert result.transform.anchor_frame == 1
    assert result.frames[1].people[0].body[0, 1] == pytest.approx(ref.people[0].body[0, 1], abs=1e-12)

    # The reference shows no nose: its neck pairs with the driving neck (not with the driving nose).
    ref.people[0].body_scores[0] = 0.1
    driving = [FramePose([person(900, 200, 300, 720, 1280)], 720, 1280) for _ in range(3)]
    result = align_poses(ref, driving)
    assert result.transform.anchor_point == 1
    np.testing.assert_allclose(result.frames[1].people[0].body[1], ref.people[0].body[1], atol=1e-9)


def test_no_reference_person_or_no_driving_person_is_a_pose_error():
    driving = [FramePose([person(900, 200, 300, 720, 1280)], 720, 1280)]
    with pytest.raises(PoseError, match="reference"):
        fit_linear_transform(FramePose([], 640, 384), driving, [0])
    ref = FramePose([person(200, 100, 400, 640, 384)], 640, 384)
    with pytest.raises(PoseError, match="No person found in any frame"):
        align_poses(ref, [FramePose([], 720, 1280)] * 3)
    with pytest.raises(InputError):
        align_poses(ref, [])


def test_smoothing_removes_jitter_but_keeps_still_poses_and_missing_points():
    h, w = 720, 1280
    rng = np.random.default_rng(0)
    still = [person(600, 200, 300, h, w) for _ in range(30)]
    jittery = []
    for p in still:
        q = p.copy()
        q.body = q.body + rng.normal(0, 0.005, q.body.shape)
        jittery.append(q)
    jittery[10].body_scores[4] = 0.0
    jittery[10].body[4] = (5.0, 5.0)  # garbage at a missing point: neither moved nor spread to neighbours
    smoothed = smooth_people(jittery, sigma=2.0)
    before = np.std([p.body[2] for p in jittery], axis=0).mean()
    after = np.std([p.body[2] for p in smoothed], axis=0).mean()
    assert after < before / 2
    np.testing.assert_allclose(smooth_people(still, 2.0)[5].body, still[5].body, atol=1e-12)
    assert tuple(smoothed[10].body[4]) == (5.0, 5.0)
    assert abs(smoothed[11].body[4] - still[11].body[4]).max() < 0.02
    assert smooth_people([None, jittery[0]], 1.0)[0] is None


def test_retarget_gives_the_driving_person_the_reference_arm_length():
    ref = FramePose([person(200, 100, 400, 640, 384, arm_scale=1.0)], 640, 384)
    driving = [FramePose([person(900, 200, 300, 720, 1280, arm_scale=1.5)], 720, 1280) for _ in range(4)]
    plain = align_poses(ref, driving)
    retargeted = align_poses(ref, driving, AlignOptions(retarget=True))
    ratios = retarget_ratios(ref.people[0], plain.main_people, 640, 384)
    assert ratios[(3, 4)] == pytest.approx(1 / 1.5) and ratios[(8, 9)] == pytest.approx(1.0)
    px = np.array([384, 640])

    def forearm(p):
        return np.linalg.norm((p.body[4] - p.body[3]) * px)

    assert forearm(plain.frames[0].people[0]) == pytest.approx(1.5 * forearm(ref.people[0]))
    assert forearm(retargeted.frames[0].people[0]) == pytest.approx(forearm(ref.people[0]))
    # The legs and the neck do not move; the hand follows the wrist.
    out = retargeted.frames[0].people[0]
    np.testing.assert_allclose(out.body[[1, 8, 10]], plain.frames[0].people[0].body[[1, 8, 10]])
    np.testing.assert_allclose(
        out.left_hand[0] - out.body[7], plain.frames[0].people[0].left_hand[0] - plain.frames[0].people[0].body[7]
    )


def test_align_options_are_validated_with_the_valid_values():
    with pytest.raises(InputError, match="linear, none"):
        AlignOptions(mode="affine")
    with pytest.raises(InputError, match="all, main"):
        AlignOptions(people="everyone")
    with pytest.raises(InputError, match="smooth"):
        AlignOptions(smooth=-1)


def test_mode_none_draws_driving_coordinates_unchanged():
    ref = FramePose([person(200, 100, 400, 640, 384)], 640, 384)
    driving = [FramePose([person(900, 200, 300, 720, 1280)], 720, 1280)]
    result = align_poses(ref, driving, AlignOptions(mode="none"))
    np.testing.assert_array_equal(result.frames[0].people[0].body, driving[0].people[0].body)
    assert (result.frames[0].height, result.frames[0].width) == (640, 384)


def test_detections_that_are_not_people_are_not_drawn():
    ref = FramePose([person(200, 100, 400, 640, 384)], 640, 384)
    garbage = PersonPose.empty()  # DWPose's whole-image "person" on an empty frame
    garbage.body_scores[:] = 0.1
    garbage.face[:] = 0.5
    garbage.face_scores[:] = 0.2  # would be drawn as grey dots: face points have no threshold
    driving = [FramePose([person(900, 200, 300, 720, 1280)], 720, 1280), FramePose([garbage], 720, 1280)]
    result = align_poses(ref, driving)
    assert result.main == [0, None] and result.frames[1].people == []
    assert draw_pose(result.frames[1], 640, 384).max() == 0
