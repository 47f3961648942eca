"""Samples: deterministic by (seed, index), ground truth consistent with itself, captions from attributes."""

from __future__ import annotations

import numpy as np
import pytest

from dynamictrl.errors import InputError
from dynamictrl.pose.render import draw_pose
from dynamictrl.pose.synthetic import standing_person
from dynamictrl.pose.types import FramePose
from dynamictrl.synthetic.background import BackgroundSpec, background_phrase
from dynamictrl.synthetic.palette import MIN_CONTRAST, distance
from dynamictrl.synthetic.world import SYNTH_POSE_STYLE, caption_parts, make_sample, recaption

ARRAYS = ("frames", "pose", "person_mask", "clothes_mask")


def test_same_seed_and_index_give_identical_samples_and_others_differ():
    a, b = make_sample(7, 3, frames=9), make_sample(7, 3, frames=9)
    for name in ARRAYS:
        assert getattr(a, name).tobytes() == getattr(b, name).tobytes()
    assert a.caption == b.caption and a.attributes == b.attributes
    assert [f.to_dict() for f in a.keypoints] == [f.to_dict() for f in b.keypoints]
    for other in (make_sample(8, 3, frames=9), make_sample(7, 4, frames=9)):
        assert other.frames.tobytes() != a.frames.tobytes() and other.caption != a.caption
    assert a.frames.shape == (9, 64, 64, 3) and a.pose.shape == (9, 64, 64, 3) and a.person_mask.shape == (9, 64, 64)


def test_motion_choice_does_not_change_the_character():
    walk, jump = make_sample(1, 2, frames=5, motion="walk"), make_sample(1, 2, frames=5, motion="jump")
    assert walk.character == jump.character and walk.background == jump.background
    assert walk.motion == "walk" and "walking across" in walk.caption and "jumping" in jump.caption
    assert {make_sample(1, i, frames=5, motions="wave").motion for i in range(3)} == {"wave"}


def test_background_colours_give_plain_backgrounds_apart_from_the_character_and_keep_the_default_world():
    colours = set()
    for index in range(12):
        s = make_sample(5, index, frames=5, backgrounds="white,pink")
        assert s.background.kind == "solid" and s.caption.endswith(f"on a plain {s.background.colours[0]} background")
        assert all(distance(s.background.colours[0], c) >= MIN_CONTRAST for c in s.character.colours())
        assert make_sample(5, index, frames=5, backgrounds="white,pink").frames.tobytes() == s.frames.tobytes()
        colours.add(s.background.colours[0])
    assert colours == {"white", "pink"}
    # characters with light skin (too close to white and pink) are drawn again; the default world is untouched
    default = [make_sample(5, index, frames=5) for index in range(12)]
    assert any(d.character.skin == "light" for d in default)
    assert default[0].frames.tobytes() == make_sample(5, 0, frames=5, backgrounds=None).frames.tobytes()


def test_the_pose_render_is_drawn_from_the_keypoints():
    s = make_sample(2, 0, frames=5)
    for frame, keypoints in zip(s.pose, s.keypoints, strict=True):
        assert np.array_equal(frame, draw_pose(keypoints, 64, 64, SYNTH_POSE_STYLE))
    assert (s.pose.reshape(5, -1, 3).max(axis=1) > 100).any(axis=1).all()  # every frame shows a skeleton


def test_caption_names_the_attributes_and_recaption_swaps_only_the_background():
    for index in range(6):
        s = make_sample(3, index, frames=5)
        c = s.character
        for word in (c.skin, c.shirt_colour, c.lower_colour, c.lower, *s.background.colours):
            assert word in s.caption
        parts = caption_parts(s.attributes)
        assert s.caption.endswith(f"on {parts['background']}")
        assert parts["background"] == background_phrase(s.background)
        for new in ("red", BackgroundSpec("stripes", ("white", "black"), "horizontal", 0.1)):
            swapped = recaption(s.attributes, new)
            spec = new if isinstance(new, BackgroundSpec) else BackgroundSpec("solid", (new,))
            assert swapped == s.caption.replace(parts["background"], background_phrase(spec))
        assert recaption(s.attributes, s.background.to_dict()) == s.caption


def test_a_keypoint_sequence_drives_the_sample():
    driving = [FramePose([standing_person(x, 120.0, 300.0, 480, 640)], 480, 640) for x in np.linspace(200, 440, 7)]
    s = make_sample(4, 0, frames=5, motion=driving)
    assert s.motion == "driven" and "moving" in s.caption and len(s.keypoints) == 5
    assert s.person_mask.any(axis=(1, 2)).all()
    with pytest.raises(InputError, match="needs 9"):
        make_sample(4, 0, frames=9, motion=driving)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"seed": -1}, {"frames": 0}, {"height": 8}, {"fps": 0.0},
        {"motion": "fly"}, {"motions": "walk,x"}, {"backgrounds": "grey"},
    ],
)  # fmt: skip
def test_bad_arguments_are_input_errors(kwargs):
    args = {"seed": 0, "index": 0, **kwargs}
    with pytest.raises(InputError):
        make_sample(args.pop("seed"), args.pop("index"), **args)
