"""Backgrounds: the colours and orientation their words say, apart from the character's colours."""

from __future__ import annotations

import numpy as np
import pytest

from dynamictrl.errors import InputError
from dynamictrl.synthetic.background import (
    BackgroundSpec,
    background_phrase,
    parse_background_colours,
    render_background,
    sample_background,
    sample_plain_background,
)
from dynamictrl.synthetic.palette import MIN_CONTRAST, PALETTE, distance


def test_solid_gradient_and_stripes_look_as_named():
    solid = render_background(BackgroundSpec("solid", ("green",)), 32, 48)
    assert solid.shape == (32, 48, 3) and solid.dtype == np.uint8
    assert (solid == PALETTE["green"]).all()

    vertical = render_background(BackgroundSpec("gradient", ("red", "blue"), "vertical"), 64, 32)
    assert np.abs(vertical[0].astype(int) - PALETTE["red"]).max() <= 6
    assert np.abs(vertical[-1].astype(int) - PALETTE["blue"]).max() <= 6
    assert (vertical == vertical[:, :1]).all()  # constant along each row

    stripes = render_background(BackgroundSpec("stripes", ("white", "black"), "vertical", 0.25), 16, 64)
    row = stripes[0, :, 0]
    assert list(row[::16]) == [240, 25, 240, 25]  # 16-px upright bands, white first at the left
    assert (stripes == stripes[:1]).all()
    horizontal = render_background(BackgroundSpec("stripes", ("white", "black"), "horizontal", 0.25), 64, 16)
    assert (horizontal == horizontal[:, :1]).all()


def test_phrases():
    assert background_phrase(BackgroundSpec("solid", ("pink",))) == "a plain pink background"
    assert (
        background_phrase(BackgroundSpec("gradient", ("red", "blue"), "horizontal"))
        == "a horizontal red to blue gradient background"
    )
    assert (
        background_phrase(BackgroundSpec("stripes", ("green", "white"), "vertical", 0.1))
        == "a background of vertical green and white stripes"
    )


def test_sampled_backgrounds_avoid_the_character_colours():
    kinds = set()
    for seed in range(60):
        spec = sample_background(np.random.default_rng(seed), ["red", "blue", "light"])
        kinds.add(spec.kind)
        for colour in spec.colours:
            assert min(distance(colour, a) for a in ("red", "blue", "light")) >= MIN_CONTRAST
        assert BackgroundSpec.from_dict(spec.to_dict()) == spec
    assert kinds == {"solid", "gradient", "stripes"}


def test_plain_backgrounds_of_the_asked_colours_stand_apart_or_are_none():
    assert parse_background_colours(None) is None and parse_background_colours(" , ") is None
    assert parse_background_colours("white, black,white") == ("white", "black")
    with pytest.raises(InputError, match="Unknown background colour 'grey'; use one or more of: red"):
        parse_background_colours(["white", "grey"])
    seen = set()
    for seed in range(20):
        spec = sample_plain_background(np.random.default_rng(seed), ("white", "pink", "black"), ["dark", "green"])
        assert spec is not None and spec.kind == "solid"
        seen.add(spec.colours[0])
    assert seen == {"white", "pink", "black"}
    # white and pink are within MIN_CONTRAST of light skin, so only black stands apart from it
    assert sample_plain_background(np.random.default_rng(0), ("white", "pink", "black"), ["light"]).colours == (
        "black",
    )
    assert sample_plain_background(np.random.default_rng(0), ("white", "pink"), ["light"]) is None


@pytest.mark.parametrize(
    "args",
    [
        ("solid", ("teal",)),
        ("solid", ("red", "blue")),
        ("gradient", ("red", "blue")),
        ("stripes", ("red", "blue"), "vertical"),
    ],
)
def test_bad_specs_are_input_errors(args):
    with pytest.raises(InputError):
        BackgroundSpec(*args)
