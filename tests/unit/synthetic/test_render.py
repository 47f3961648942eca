"""The renderer: masks aligned with the frames and following the keypoints, from any keypoint sequence."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from dynamictrl.errors import InputError
from dynamictrl.pose.synthetic import standing_person
from dynamictrl.pose.types import FramePose, PersonPose
from dynamictrl.synthetic.background import BackgroundSpec, sample_background
from dynamictrl.synthetic.character import sample_character
from dynamictrl.synthetic.motion import dance, walk_across
from dynamictrl.synthetic.render import render_character, render_frame

H = W = 64
STRIPES = BackgroundSpec("stripes", ("green", "white"), "vertical", 0.15)


def _centroid(mask: np.ndarray) -> np.ndarray:
    ys, xs = np.nonzero(mask)
    return np.array([xs.mean(), ys.mean()])


def _keypoint_centre(frame: FramePose) -> np.ndarray:
    p = frame.people[0]
    return p.body[p.body_scores > 0.3].mean(axis=0) * (W, H)


def test_outputs_and_masks_align_with_the_frames():
    character = sample_character(np.random.default_rng(0))
    poses = dance(character, np.random.default_rng(1), 9, 8.0, H, W)
    background = sample_background(np.random.default_rng(3), character.colours())
    frames, person, clothes = render_character(character, poses, background, H, W)
    assert frames.shape == (9, H, W, 3) and person.shape == clothes.shape == (9, H, W)
    assert frames.dtype == person.dtype == clothes.dtype == np.uint8
    assert set(np.unique(person)) == {0, 255} and set(np.unique(clothes)) <= {0, 255}
    assert not (clothes & ~person).any()  # clothes are part of the person
    empty_frame, empty, _ = render_frame(character, None, background, H, W)
    assert not empty.any()
    kernel = np.ones((3, 3), np.uint8)
    for f in range(9):
        inside = cv2.erode(person[f], kernel) > 0
        outside = cv2.dilate(person[f], kernel) == 0
        diff = np.abs(frames[f].astype(int) - empty_frame).sum(axis=2)
        assert (diff[outside] == 0).all()
        assert (diff[inside] > 0).mean() > 0.95
        assert 0.04 < (person[f] > 0).mean() < 0.35  # clearly a person, not the whole frame


def test_the_person_mask_follows_the_keypoints():
    character = sample_character(np.random.default_rng(2))
    poses = walk_across(character, np.random.default_rng(3), 9, 8.0, H, W)
    _, person, _ = render_character(character, poses, BackgroundSpec("solid", ("blue",)), H, W)
    offsets = np.array([_centroid(person[f]) - _keypoint_centre(poses[f]) for f in range(9)])
    assert (np.linalg.norm(offsets, axis=1) < 0.1 * W).all()
    assert (offsets.std(axis=0) < 0.04 * W).all()  # the mask moves with the keypoints
    travel = _centroid(person[-1])[0] - _centroid(person[0])[0]
    assert abs(travel) >= 0.25 * W


def test_any_keypoint_sequence_drives_the_character():
    """A skeleton from `dynamictrl.pose.synthetic` (other proportions, scores 0.9) moved across the frame."""
    character = sample_character(np.random.default_rng(4))
    poses = [FramePose([standing_person(x, 14.0, 40.0, H, W)], H, W) for x in (16.0, 32.0, 48.0)]
    frames, person, _ = render_character(character, poses, BackgroundSpec("solid", ("white",)), H, W)
    for f, pose in enumerate(poses):
        assert np.linalg.norm(_centroid(person[f]) - _keypoint_centre(pose)) < 0.1 * W
        ys, _ = np.nonzero(person[f])
        assert ys.min() < 14 and ys.max() > 50  # head above the nose, feet at the ankles


def test_missing_points_leave_their_parts_out():
    character = sample_character(np.random.default_rng(5))
    full = standing_person(32.0, 14.0, 40.0, H, W)
    no_legs = full.copy()
    no_legs.body_scores[[9, 10, 12, 13]] = 0
    _, person, _ = render_character(
        character,
        [FramePose([full], H, W), FramePose([no_legs], H, W), FramePose([PersonPose.empty()], H, W)],
        BackgroundSpec("solid", ("white",)),
        H,
        W,
    )
    assert person[1].sum() < person[0].sum() and person[1][52:].sum() == 0
    assert person[2].sum() == 0


def test_same_input_same_bytes_and_bad_input_is_refused():
    character = sample_character(np.random.default_rng(6))
    poses = dance(character, np.random.default_rng(6), 3, 8.0, H, W)
    a = render_character(character, poses, STRIPES, H, W)
    b = render_character(character, poses, STRIPES, H, W)
    assert all(x.tobytes() == y.tobytes() for x, y in zip(a, b, strict=True))
    with pytest.raises(InputError):
        render_character(character, [], STRIPES, H, W)
    with pytest.raises(InputError):
        render_character(character, poses, np.zeros((8, 8, 3), np.uint8), H, W)
    image = np.full((H, W, 3), 77, np.uint8)
    frames, person, _ = render_character(character, poses, image, H, W)
    assert (frames[0][person[0] == 0] == 77).mean() > 0.97
