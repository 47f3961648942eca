"""Motions: keypoints in our full layout, large movements, a turn that shows the back, gesturing, mirroring."""

from __future__ import annotations

import numpy as np
import pytest

from dynamictrl.errors import InputError
from dynamictrl.pose.types import NUM_BODY, NUM_FACE, NUM_HAND
from dynamictrl.synthetic.character import sample_character
from dynamictrl.synthetic.motion import (
    DEFAULT_MOTIONS,
    MOTION_NAMES,
    gesture,
    jump,
    make_motion,
    mirror_frames,
    parse_motions,
    turn,
    walk_across,
)

H = W = 64


def _body(frames) -> np.ndarray:
    """[F, 18, 2] body points in pixels."""
    return np.stack([f.people[0].body for f in frames]) * (W, H)


@pytest.mark.parametrize("name", MOTION_NAMES)
def test_every_motion_gives_full_layout_poses(name):
    character = sample_character(np.random.default_rng(1))
    frames = make_motion(name, character, np.random.default_rng(2), 17, 8.0, H, W)
    assert len(frames) == 17
    for f in frames:
        assert (f.height, f.width) == (H, W) and len(f.people) == 1
        p = f.people[0]
        assert p.body.shape == (NUM_BODY, 2) and p.face.shape == (NUM_FACE, 2)
        assert p.left_hand.shape == p.right_hand.shape == (NUM_HAND, 2)
        assert set(np.unique(p.body_scores)) <= {0.0, 1.0}
        assert (p.body_scores[1:14] == 1).all()  # limbs always shown; head points by facing
        assert np.isfinite(p.body).all()
    body = _body(frames)
    if name in DEFAULT_MOTIONS:
        # Large motion: some limb end moves by a third of the character's height or more over the clip.
        extent = body[:, :, 1].max() - body[:, :, 1].min()
        ends = body[:, [4, 7, 10, 13]]
        assert (ends.max(axis=0) - ends.min(axis=0)).max() >= extent / 3
    assert make_motion(name, character, np.random.default_rng(2), 17, 8.0, H, W)[5].people[0].body.tobytes() == (
        frames[5].people[0].body.tobytes()
    )


def test_walking_crosses_a_good_part_of_the_frame_with_swinging_legs():
    for seed in range(8):
        character = sample_character(np.random.default_rng(seed))
        body = _body(walk_across(character, np.random.default_rng(seed), 17, 8.0, H, W))
        hips = body[:, [8, 11]].mean(axis=1)
        assert abs(hips[-1, 0] - hips[0, 0]) >= 0.25 * W
        stride = (body[:, 10, 0] - body[:, 13, 0]) * np.sign(hips[-1, 0] - hips[0, 0])
        assert stride.max() - stride.min() >= 0.1 * W  # the ankles overtake each other


def test_jumping_leaves_the_ground_and_turning_shows_the_back():
    character = sample_character(np.random.default_rng(4))
    body = _body(jump(character, np.random.default_rng(4), 17, 8.0, H, W))
    lowest_ankle = body[:, [10, 13], 1].max(axis=1)
    assert lowest_ankle.max() - lowest_ankle.min() >= 0.1 * H

    frames = turn(character, np.random.default_rng(5), 17, 8.0, H, W)
    body = _body(frames)
    shoulders = body[:, 5, 0] - body[:, 2, 0]  # > 0 facing the camera, < 0 from the back
    assert shoulders.max() > 0 > shoulders.min()
    back = int(np.argmin(shoulders))
    assert frames[back].people[0].body_scores[0] == 0 and frames[back].people[0].face_scores.sum() == 0


def test_gesturing_stays_in_place_and_moves_an_arm():
    for seed in range(8):
        character = sample_character(np.random.default_rng(seed))
        body = _body(gesture(character, np.random.default_rng(seed), 21, 8.0, H, W))
        hips, ankles = body[:, [8, 11]].mean(axis=1), body[:, [10, 13]]
        assert np.ptp(hips[:, 0]) <= 0.05 * W  # the sway, plus the knees' give
        assert np.ptp(ankles[:, :, 0], axis=0).max() <= 0.05 * W  # feet planted
        wrists = body[:, [4, 7]]
        assert np.linalg.norm(wrists - wrists[0], axis=2).max() >= 0.06 * H  # an arm moves


def test_mirroring_swaps_sides_and_twice_is_identity():
    character = sample_character(np.random.default_rng(6))
    frames = walk_across(character, np.random.default_rng(6), 5, 8.0, H, W)
    mirrored = mirror_frames(frames)
    a, m = frames[2].people[0], mirrored[2].people[0]
    np.testing.assert_allclose(m.body[2], [1 - a.body[5, 0], a.body[5, 1]])
    np.testing.assert_allclose(m.right_hand[:, 0], 1 - a.left_hand[:, 0])
    np.testing.assert_allclose(m.face[36], [1 - a.face[45, 0], a.face[45, 1]])
    back = mirror_frames(mirrored)[2].people[0]
    np.testing.assert_allclose(back.face, a.face)
    np.testing.assert_allclose(back.body, a.body)


def test_motion_names_are_checked():
    assert parse_motions(None) == DEFAULT_MOTIONS and set(DEFAULT_MOTIONS) < set(MOTION_NAMES)
    assert parse_motions("gesture") == ("gesture",)
    assert parse_motions("walk, jump,walk") == ("walk", "jump")
    with pytest.raises(InputError, match="Unknown motion 'fly'"):
        parse_motions("walk,fly")
    with pytest.raises(InputError):
        make_motion("walk", sample_character(np.random.default_rng(0)), np.random.default_rng(0), 0, 8.0, H, W)
