"""Retargeting: directions from the driver, bone lengths from the character, missing points, real motion."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from dynamictrl.errors import DynamiCtrlError, InputError
from dynamictrl.pose.synthetic import standing_person
from dynamictrl.pose.types import FramePose, PersonPose
from dynamictrl.synthetic.background import BackgroundSpec
from dynamictrl.synthetic.character import sample_character
from dynamictrl.synthetic.motion import rest_pose
from dynamictrl.synthetic.render import render_character
from dynamictrl.synthetic.retarget import bone_lengths, retarget_motion

H = W = 64
LIMB_BONES = [(1, 2), (2, 3), (3, 4), (1, 5), (5, 6), (6, 7), (1, 8), (8, 9), (9, 10), (1, 11), (11, 12), (12, 13)]


def _driver(xs, arm_scale=1.4):
    """A standing person of other proportions walking across a 480×640 video."""
    return [FramePose([standing_person(x, 100.0, 300.0, 480, 640, arm_scale=arm_scale)], 480, 640) for x in xs]


def test_bone_lengths_are_the_characters_and_the_translation_scales_with_the_body():
    character = sample_character(np.random.default_rng(0))
    out = retarget_motion(_driver(np.linspace(150, 490, 6)), character, H, W)
    assert len(out) == 6 and all((f.height, f.width) == (H, W) and len(f.people) == 1 for f in out)
    reference = bone_lengths(rest_pose(character, H, W), H, W)
    for frame in out:
        lengths = bone_lengths(frame.people[0], H, W)
        for bone in LIMB_BONES:
            assert lengths[bone] == pytest.approx(reference[bone], rel=1e-6)
    necks = np.array([f.people[0].body[1] for f in out]) * (W, H)
    assert necks[-1, 0] - necks[0, 0] > 0.3 * W  # the driver crossed half its frame
    assert abs(necks[:, 0].mean() - W / 2) < 0.05 * W  # centred where the character stands


def test_missing_points_are_held_or_hidden():
    character = sample_character(np.random.default_rng(1))
    driving = _driver([200, 260, 320, 380])
    driving[2].people[0].body_scores[[6, 7]] = 0  # left elbow and wrist lost
    driving[2].people[0].left_hand_scores[:] = 0
    driving[3] = FramePose([], 480, 640)  # nobody
    held = retarget_motion(driving, character, H, W)
    p1, p2, p3 = (held[i].people[0] for i in (1, 2, 3))
    assert (p2.body_scores[[6, 7]] == 1).all() and (p2.left_hand_scores == 1).all()  # filled in
    np.testing.assert_allclose(p2.body[7] - p2.body[5], p1.body[7] - p1.body[5], atol=1e-9)
    np.testing.assert_allclose(p3.body, p2.body)
    hidden = retarget_motion(driving, character, H, W, missing="hide")
    assert hidden[2].people[0].body_scores[7] == 0 and hidden[3].people[0].body_scores.sum() == 0

    with pytest.raises(InputError):
        retarget_motion(driving, character, H, W, missing="guess")
    with pytest.raises(DynamiCtrlError):
        retarget_motion([FramePose([PersonPose.empty()], 480, 640)], character, H, W)


def test_real_motion_from_the_pose_stage_drives_a_character(media_dir):
    from dynamictrl.io.media import read_video
    from dynamictrl.pose.extract import get_extractor

    clip, _ = read_video(media_dir / "motion1.mp4", max_frames=4, target_fps=8.0)
    clip = np.stack([cv2.resize(f, (270, 480), interpolation=cv2.INTER_AREA) for f in clip])
    extractor = get_extractor("mediapipe")
    try:
        driving = list(extractor.extract_sequence(clip))
    finally:
        extractor.close()
    character = sample_character(np.random.default_rng(2))
    poses = retarget_motion(driving, character, H, W)
    frames, person, _ = render_character(character, poses, BackgroundSpec("solid", ("green",)), H, W)
    reference = bone_lengths(rest_pose(character, H, W), H, W)
    for f, pose in enumerate(poses):
        p = pose.people[0]
        assert (p.body_scores[1:14] > 0.3).all()
        ys, xs = np.nonzero(person[f])
        centre = p.body[1:14].mean(axis=0) * (W, H)
        assert np.hypot(xs.mean() - centre[0], ys.mean() - centre[1]) < 0.1 * W
        lengths = bone_lengths(p, H, W)
        for bone in ((8, 9), (11, 12)):  # thighs: the character's length at the 90th percentile over frames
            assert 0.6 * reference[bone] <= lengths[bone] <= 1.1 * reference[bone]
