"""Skeleton drawing: pixel parity with the published code's renders, and robustness to odd keypoints."""

from __future__ import annotations

import json

import matplotlib.colors
import numpy as np
import pytest
from PIL import Image

from dynamictrl.errors import InputError
from dynamictrl.pose.render import (
    HAND_EDGE_COLORS,
    PUBLISHED_STYLE,
    PoseStyle,
    canvas_size,
    draw_pose,
    people_from_dwpose_dict,
)
from dynamictrl.pose.types import FramePose, PersonPose


def _cases(fixtures_dir, kind):
    cases = json.loads((fixtures_dir / "pose-reference" / "cases.json").read_text())
    return [c for c in cases if c["kind"] == kind]


def _expected(fixtures_dir, name):
    return np.asarray(Image.open(fixtures_dir / "pose-reference" / name).convert("RGB"))


def test_every_render_case_matches_the_published_code_pixel_for_pixel(fixtures_dir):
    cases = _cases(fixtures_dir, "render")
    assert len(cases) == 4
    for case in cases:
        # The fixtures hold float32 network outputs; the published code computes in the dtype it is given.
        pose = FramePose.from_wholebody(
            np.float32(case["raw_keypoints"]), np.float32(case["raw_scores"]), case["height"], case["width"]
        )
        image = draw_pose(pose, case["height"], case["width"])
        expected = _expected(fixtures_dir, case["expected"])
        assert image.shape == expected.shape and image.dtype == np.uint8
        differing = int((image != expected).any(axis=-1).sum())
        assert differing == 0, f"{case['name']}: {differing} pixels differ"


def test_dwpose_dict_input_draws_the_same_image(fixtures_dir):
    case = _cases(fixtures_dir, "render")[1]  # two people
    pose = FramePose.from_wholebody(
        np.float32(case["raw_keypoints"]), np.float32(case["raw_scores"]), case["height"], case["width"]
    )
    n = len(pose.people)
    pose_dict = {
        "bodies": {
            "candidate": np.concatenate([p.body for p in pose.people]),
            "subset": np.zeros((n, 18)),
            "score": np.stack([p.body_scores for p in pose.people]),
        },
        "hands": np.concatenate([[p.left_hand for p in pose.people], [p.right_hand for p in pose.people]]),
        "hands_score": np.concatenate(
            [[p.left_hand_scores for p in pose.people], [p.right_hand_scores for p in pose.people]]
        ),
        "faces": np.stack([p.face for p in pose.people]),
        "faces_score": np.stack([p.face_scores for p in pose.people]),
    }
    people = people_from_dwpose_dict(pose_dict)
    np.testing.assert_array_equal(people[1].right_hand, pose.people[1].right_hand)
    np.testing.assert_array_equal(draw_pose(pose_dict, 320, 640), draw_pose(pose, 320, 640))


def test_hand_colours_are_matplotlibs_hsv_ramp():
    for i, colour in enumerate(HAND_EDGE_COLORS):
        np.testing.assert_array_equal(colour, matplotlib.colors.hsv_to_rgb([i / 20.0, 1.0, 1.0]))


@pytest.mark.parametrize(("height", "width", "expected"), [(1360, 768, (3825, 2160)), (2160, 3840, (2160, 3840))])
def test_canvas_short_side_is_2160(height, width, expected):
    assert canvas_size(height, width) == expected


def test_limb_colours_come_out_with_red_and_blue_swapped():
    # A right shoulder -> right elbow limb (limb 2, listed as (255, 170, 0)) appears as (0, 170, 255) * 0.6.
    person = PersonPose.empty()
    person.body[2], person.body[3] = (0.3, 0.3), (0.3, 0.7)
    person.body_scores[2] = person.body_scores[3] = 1.0
    # At 2160 px the canvas is the image (no resize), so colours are exact.
    image = draw_pose(FramePose([person], 2160, 2160), 2160, 2160)
    assert tuple(image[1080, 648]) == (0, int(170 * 0.6), int(255 * 0.6))
    # Nothing else is drawn: scores below 0.3 hide body points, zero hand/face coordinates are skipped.
    assert image[:, 700:].max() == 0


def test_empty_and_degenerate_poses_do_not_crash():
    assert draw_pose(FramePose([], 64, 48), 64, 48).max() == 0
    person = PersonPose.empty()
    person.body[:] = np.nan
    person.body[5] = (1e12, -1e12)
    person.body_scores[:] = 1.0
    person.left_hand[:] = np.inf
    person.left_hand_scores[:] = 1.0
    person.face[:] = (-3.0, 5.0)  # far outside the image
    person.face_scores[:] = 1.0
    image = draw_pose(person, 64, 48)
    assert image.shape == (64, 48, 3) and image.max() == 0


def test_a_model_style_draws_thicker_and_the_published_style_is_the_default(fixtures_dir):
    case = _cases(fixtures_dir, "render")[0]
    pose = FramePose.from_wholebody(
        np.float32(case["raw_keypoints"]), np.float32(case["raw_scores"]), case["height"], case["width"]
    )
    published = draw_pose(pose, 64, 48)
    assert np.array_equal(published, draw_pose(pose, 64, 48, PUBLISHED_STYLE))
    assert PoseStyle.from_settings(None) is PUBLISHED_STYLE and PoseStyle.from_settings({}) is PUBLISHED_STYLE
    thick = draw_pose(pose, 64, 48, PoseStyle.from_settings({"canvas_short_side": 192, "stick_width": 8}))
    lit = [(img.max(axis=-1) > 40).mean() for img in (published, thick)]
    assert lit[1] > 3 * lit[0], lit  # at 48 px the published sticks are thinner than a pixel


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"stick_width": 0}, "stick_width must be an integer"),
        ({"stick_width": 2.5}, "stick_width must be an integer"),
        ({"canvas_short_side": 8}, "canvas_short_side must be an integer from 16"),
        ({"thickness": 3}, "unknown keys"),
    ],
)
def test_bad_pose_render_settings_are_one_line_errors(settings, message):
    with pytest.raises(InputError, match=message):
        PoseStyle.from_settings(settings)
