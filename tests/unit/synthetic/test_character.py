"""Characters: seeded sampling, validation, and caption words that name what is drawn."""

from __future__ import annotations

import numpy as np
import pytest

from dynamictrl.errors import InputError
from dynamictrl.synthetic.character import Character, Proportions, sample_character
from dynamictrl.synthetic.palette import MIN_CONTRAST, distance


def test_same_generator_seed_gives_the_same_character_and_seeds_vary_it():
    a = sample_character(np.random.default_rng(3))
    assert a == sample_character(np.random.default_rng(3))
    others = {sample_character(np.random.default_rng(s)) for s in range(30)}
    assert len(others) == 30
    assert len({c.shirt_colour for c in others}) >= 6 and len({c.hair_style for c in others}) >= 3
    assert len({c.proportions.height for c in others}) == 30


def test_clothes_stand_apart_from_the_skin_and_each_other():
    for seed in range(50):
        c = sample_character(np.random.default_rng(seed))
        assert distance(c.shirt_colour, c.skin) >= MIN_CONTRAST
        assert distance(c.lower_colour, c.shirt_colour) >= MIN_CONTRAST
        if c.pattern_colour is not None:
            assert distance(c.pattern_colour, c.shirt_colour) >= MIN_CONTRAST
        # Thick limbs: at 64 px a body unit is 32-40 px, so a forearm is at least 3.5 px wide.
        assert c.proportions.arm_width * c.proportions.scale(64) >= 3.2


def test_caption_words_name_every_attribute():
    c = Character(
        Proportions(),
        skin="dark",
        hair_style="long",
        hair_colour="yellow",
        shirt_colour="orange",
        pattern="stripes",
        pattern_colour="white",
        sleeves="short",
        lower="skirt",
        lower_colour="blue",
    )
    assert c.describe() == (
        "a person with dark skin and long yellow hair wearing an orange t-shirt with white stripes and a blue skirt"
    )
    bald = Character(Proportions(), hair_style="bald", lower="trousers", lower_colour="black")
    assert bald.describe() == "a bald person with light skin wearing a red shirt and black trousers"
    assert Character.from_dict(c.to_dict()) == c


@pytest.mark.parametrize(
    "kwargs",
    [{"skin": "green"}, {"shirt_colour": "teal"}, {"pattern": "stripes"}, {"hair_style": "mohawk"}],
)
def test_bad_attributes_are_input_errors(kwargs):
    with pytest.raises(InputError):
        Character(Proportions(), **kwargs)
    with pytest.raises(InputError):
        Proportions(height=-1)
