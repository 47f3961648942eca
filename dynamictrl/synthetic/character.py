"""A synthetic character: body proportions and appearance (skin, hair, clothes), sampled from a seeded generator.

Lengths are in *body units*: the standing nose-to-ankle distance is about 1 (as in `dynamictrl.pose.synthetic`);
`Proportions.height` says what fraction of the frame height one body unit is. Limbs are thick on purpose (at 64 px
a forearm is 4-6 px wide): thin limbs vanish after downscaling, and a model then learns to copy the reference.

The appearance is a handful of named attributes (`caption_words`), each visible in the frames, so a caption made from
them is true of the video.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from ..errors import InputError
from .palette import COLOUR_NAMES, PALETTE, SKIN_TONES, distinct

HAIR_STYLES = ("short", "long", "bun", "bald")
HAIR_COLOURS = ("black", "brown", "yellow", "orange", "white")
PATTERNS = ("plain", "stripes", "dots")
SLEEVES = ("long", "short")
LOWER_GARMENTS = ("trousers", "shorts", "skirt")
SHOE_COLOURS = ("black", "white", "brown")


def article(word: str) -> str:
    """ "a" or "an" before `word` (by its first letter, right for every word of this world)."""
    return "an" if word[:1] in "aeiou" else "a"


@dataclass(frozen=True)
class Proportions:
    """Body geometry in body units (standing nose-to-ankle ≈ 1); `height` is a body unit in frame heights.

    Bone lengths: `neck` (neck point to head centre), `torso` (neck to mid-hip), `shoulder` / `hip` (half widths),
    `upper_arm`, `forearm`, `thigh`, `shin`. Thicknesses (full widths): `arm_width`, `leg_width`, `torso_width`
    (the torso seen from the side). `head_radius`, `hand` (hand length), `foot` (foot length).
    """

    height: float = 0.6
    head_radius: float = 0.085
    neck: float = 0.14
    torso: float = 0.38
    shoulder: float = 0.11
    hip: float = 0.065
    upper_arm: float = 0.18
    forearm: float = 0.16
    thigh: float = 0.25
    shin: float = 0.25
    arm_width: float = 0.11
    leg_width: float = 0.13
    torso_width: float = 0.18
    hand: float = 0.09
    foot: float = 0.1

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if not (isinstance(value, (int, float)) and np.isfinite(value) and value > 0):
                raise InputError(f"Proportions.{name} must be a positive number, got {value!r}")

    def scale(self, frame_height: int) -> float:
        """Pixels per body unit in a frame `frame_height` px high."""
        return self.height * frame_height


@dataclass(frozen=True)
class Character:
    """Proportions plus appearance; colours are `palette.PALETTE` names, `skin` a `palette.SKIN_TONES` name."""

    proportions: Proportions
    skin: str = "light"
    hair_style: str = "short"
    hair_colour: str = "black"
    shirt_colour: str = "red"
    pattern: str = "plain"
    pattern_colour: str | None = None
    sleeves: str = "long"
    lower: str = "trousers"
    lower_colour: str = "blue"
    shoe_colour: str = "black"

    def __post_init__(self) -> None:
        choices = {
            "skin": tuple(SKIN_TONES),
            "hair_style": HAIR_STYLES,
            "hair_colour": COLOUR_NAMES,
            "shirt_colour": COLOUR_NAMES,
            "pattern": PATTERNS,
            "sleeves": SLEEVES,
            "lower": LOWER_GARMENTS,
            "lower_colour": COLOUR_NAMES,
            "shoe_colour": COLOUR_NAMES,
        }
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise InputError(f"Character.{name} must be one of {', '.join(allowed)}, got {getattr(self, name)!r}")
        if (self.pattern == "plain") != (self.pattern_colour is None):
            raise InputError("Character.pattern_colour is set exactly when the pattern is not plain")
        if self.pattern_colour is not None and self.pattern_colour not in PALETTE:
            raise InputError(f"Character.pattern_colour must be one of {', '.join(COLOUR_NAMES)}")

    def colours(self) -> list[str]:
        """The colour names a background must stay apart from (skin, hair, clothes, shoes)."""
        out = [self.skin, self.shirt_colour, self.lower_colour, self.shoe_colour]
        if self.hair_style != "bald":
            out.append(self.hair_colour)
        if self.pattern_colour is not None:
            out.append(self.pattern_colour)
        return out

    def caption_words(self) -> dict[str, str]:
        """The caption's phrases: `person` (skin and hair) and `clothes`; `describe` joins them."""
        if self.hair_style == "bald":
            person = f"a bald person with {self.skin} skin"
        elif self.hair_style == "bun":
            person = f"a person with {self.skin} skin and {self.hair_colour} hair in a bun"
        else:
            person = f"a person with {self.skin} skin and {self.hair_style} {self.hair_colour} hair"
        top = "shirt" if self.sleeves == "long" else "t-shirt"
        shirt = f"{article(self.shirt_colour)} {self.shirt_colour} {top}"
        if self.pattern != "plain":
            shirt += f" with {self.pattern_colour} {self.pattern}"
        if self.lower == "skirt":
            lower = f"{article(self.lower_colour)} {self.lower_colour} skirt"
        else:
            lower = f"{self.lower_colour} {self.lower}"
        return {"person": person, "clothes": f"wearing {shirt} and {lower}"}

    def describe(self) -> str:
        words = self.caption_words()
        return f"{words['person']} {words['clothes']}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Character:
        values = dict(data)
        values["proportions"] = Proportions(**values["proportions"])
        return cls(**values)


def sample_proportions(rng: np.random.Generator) -> Proportions:
    """Varied but plausible proportions: each length drawn around the defaults, limbs kept thick."""
    u = rng.uniform
    legs = u(0.23, 0.28)
    return Proportions(
        height=u(0.5, 0.62),
        head_radius=u(0.075, 0.1),
        neck=u(0.13, 0.15),
        torso=u(0.34, 0.42),
        shoulder=u(0.09, 0.135),
        hip=u(0.055, 0.085),
        upper_arm=u(0.16, 0.2),
        forearm=u(0.14, 0.18),
        thigh=legs,
        shin=legs * u(0.92, 1.08),
        arm_width=u(0.1, 0.13),
        leg_width=u(0.12, 0.15),
        torso_width=u(0.17, 0.22),
        hand=u(0.08, 0.1),
        foot=u(0.09, 0.12),
    )


def _pick(rng: np.random.Generator, options: list[str] | tuple[str, ...]) -> str:
    return str(options[int(rng.integers(len(options)))])


def sample_character(rng: np.random.Generator) -> Character:
    """A random character: clothes colours far apart from each other and from the skin, so every part reads."""
    proportions = sample_proportions(rng)
    skin = _pick(rng, tuple(SKIN_TONES))
    hair_style = _pick(rng, HAIR_STYLES)
    hair_colour = _pick(rng, distinct(HAIR_COLOURS, [skin], 60.0))
    shirt = _pick(rng, distinct(COLOUR_NAMES, [skin]))
    lower = _pick(rng, distinct(COLOUR_NAMES, [skin, shirt]))
    pattern = _pick(rng, PATTERNS)
    pattern_colour = _pick(rng, distinct(COLOUR_NAMES, [shirt])) if pattern != "plain" else None
    return Character(
        proportions=proportions,
        skin=skin,
        hair_style=hair_style,
        hair_colour=hair_colour,
        shirt_colour=shirt,
        pattern=pattern,
        pattern_colour=pattern_colour,
        sleeves=_pick(rng, SLEEVES),
        lower=_pick(rng, LOWER_GARMENTS),
        lower_colour=lower,
        shoe_colour=_pick(rng, distinct(SHOE_COLOURS, [lower], 60.0) or ["black"]),
    )
