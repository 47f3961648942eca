"""Pose checks: what is caught before generation, and --strict."""

from __future__ import annotations

import numpy as np
import pytest

from dynamictrl.errors import InputError, PoseError
from dynamictrl.io.media import load_image, read_video, write_video
from dynamictrl.pose.align import align_poses
from dynamictrl.pose.check import (
    check_alignment,
    check_driving,
    check_reference,
    enforce,
    looks_like_pose_render,
    pose_video_warning,
    several_people_warning,
)
from dynamictrl.pose.render import draw_pose
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


def test_several_people_in_the_reference_says_which_one_is_animated():
    tall, small = person(100, 100, 450, 640, 384), person(300, 150, 300, 640, 384)
    # The tall one spans x 37..163 of 384 px (centre 26%) and y 91..550 of 640 (72%): eyes above the nose.
    warning = several_people_warning(FramePose([tall, small], 640, 384))
    assert warning.startswith(
        "the reference image shows 2 people; the most confident one (centre at x=26% of the width, 72% of the image "
        "height tall) is animated"
    )
    assert "the other (centre at x=78% of the width, 48% of the image height tall) only appear" in warning
    assert "crop the photo to one person" in warning
    assert check_reference(FramePose([tall, small], 640, 384)) == [warning]
    # The first detection is the one animated, whatever its size.
    assert "the most confident one (centre at x=78%" in several_people_warning(FramePose([small, tall], 640, 384))
    three = several_people_warning(FramePose([tall, small, person(200, 50, 200, 640, 384)], 640, 384))
    assert three.startswith("the reference image shows 3 people") and "the others (" in three
    garbage = person(300, 100, 450, 640, 384, score=0.2)  # DWPose's whole-image fallback: not a person
    assert several_people_warning(FramePose([tall, garbage], 640, 384)) is None
    assert several_people_warning(FramePose([tall], 640, 384)) is None


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


def _standing_renders(height, width, count=6):
    """`count` skeleton frames of a person swaying left and right, drawn by `draw_pose`."""
    frames = []
    for i in range(count):
        x = width / 2 + width * 0.05 * np.sin(i)
        frames.append(
            draw_pose(FramePose([person(x, height * 0.15, height * 0.7, height, width)], height, width), height, width)
        )
    return np.stack(frames)


def test_skeleton_renders_look_like_pose_videos(fixtures_dir, tmp_path):
    renders = sorted((fixtures_dir / "pose-reference").glob("*.png"))
    assert len(renders) == 15
    for path in renders:  # the published code's renders, 96x160 to 1360x768, one to several people
        assert looks_like_pose_render(load_image(path)[None]), path.name
    # Through H.264 at a small size (as `dynamictrl pose` writes it): chroma subsampling greys the thin limbs.
    video = write_video(tmp_path / "pose.mp4", _standing_renders(320, 192), fps=8)
    frames, _ = read_video(video)
    assert looks_like_pose_render(frames) and pose_video_warning(frames) is None
    assert looks_like_pose_render(_standing_renders(1360, 768, count=2))
    # Pose frames of driving frames without anyone are black: still a pose video.
    assert looks_like_pose_render(np.zeros((4, 64, 48, 3), dtype=np.uint8))
    # A black-and-white skeleton is black enough but has no colour: not what the model was trained on.
    grey = _standing_renders(320, 192, count=2).max(axis=-1, keepdims=True).repeat(3, axis=-1)
    assert not looks_like_pose_render(grey)


def test_camera_footage_does_not_look_like_a_pose_video(media_dir):
    frames, _ = read_video(media_dir / "motion1.mp4", stride=10)
    assert not looks_like_pose_render(frames)
    # Darkened to 12%: 70-85% black, still far from a render's 98%.
    dark = (frames.astype(np.float32) * 0.12).astype(np.uint8)
    assert not looks_like_pose_render(dark)
    for name in ("human1.jpg", "human2.jpg"):
        assert not looks_like_pose_render(load_image(media_dir / name)[None]), name
    warning = pose_video_warning(frames)
    assert warning.startswith("--pose-video does not look like a pose video") and "--driving-video" in warning
    with pytest.raises(InputError, match=r"RGB uint8 \[F, H, W, 3\]"):
        looks_like_pose_render(frames[0])
