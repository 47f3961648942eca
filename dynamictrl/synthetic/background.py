"""Backgrounds of the synthetic world: a solid colour, a two-colour gradient or two-colour stripes, all named.

"vertical" says along which axis the colours *run*: a vertical gradient goes from its first colour at the top to its
second at the bottom; vertical stripes are upright bands side by side (first colour at the left edge). The caption
phrase (`background_phrase`) names kind, colours and orientation, so swapping it swaps exactly the background.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from ..errors import InputError
from .palette import COLOUR_NAMES, PALETTE, distance, distinct, parse_names

BACKGROUND_KINDS = ("solid", "gradient", "stripes")
ORIENTATIONS = ("vertical", "horizontal")
# Sampling weights of the kinds: solid backgrounds are half, the easiest to measure in a generated video.
KIND_WEIGHTS = (0.5, 0.25, 0.25)


@dataclass(frozen=True)
class BackgroundSpec:
    """`kind` with its `colours` (one palette name for solid, two otherwise), `orientation` (gradient and stripes)
    and `stripe_width` (one band's width as a fraction of the frame side it runs across)."""

    kind: str = "solid"
    colours: tuple[str, ...] = ("white",)
    orientation: str | None = None
    stripe_width: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "colours", tuple(self.colours))
        if self.kind not in BACKGROUND_KINDS:
            raise InputError(f"Unknown background kind {self.kind!r}; use one of: {', '.join(BACKGROUND_KINDS)}")
        unknown = [c for c in self.colours if c not in PALETTE]
        if unknown:
            raise InputError(f"Unknown background colour {unknown[0]!r}; use one of: {', '.join(COLOUR_NAMES)}")
        count = 1 if self.kind == "solid" else 2
        if len(self.colours) != count:
            raise InputError(f"A {self.kind} background takes {count} colour(s), got {len(self.colours)}")
        if self.kind == "solid":
            if self.orientation is not None or self.stripe_width is not None:
                raise InputError("A solid background has no orientation or stripe width")
        elif self.orientation not in ORIENTATIONS:
            raise InputError(f"A {self.kind} background needs orientation vertical or horizontal")
        if self.kind == "stripes":
            if self.stripe_width is None or not 0.01 <= self.stripe_width <= 1.0:
                raise InputError(f"stripe_width must be a fraction in [0.01, 1], got {self.stripe_width!r}")
        elif self.stripe_width is not None:
            raise InputError("Only a stripes background has a stripe width")

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["colours"] = list(self.colours)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BackgroundSpec:
        return cls(**data)


def background_phrase(spec: BackgroundSpec) -> str:
    """The caption words of a background, e.g. "a plain green background"."""
    if spec.kind == "solid":
        return f"a plain {spec.colours[0]} background"
    first, second = spec.colours
    if spec.kind == "gradient":
        return f"a {spec.orientation} {first} to {second} gradient background"
    return f"a background of {spec.orientation} {first} and {second} stripes"


def sample_background(rng: np.random.Generator, avoid: list[str] | tuple[str, ...] = ()) -> BackgroundSpec:
    """A random background whose colours all stand apart from `avoid` (the character's colours) and each other."""
    kind = BACKGROUND_KINDS[int(rng.choice(len(BACKGROUND_KINDS), p=KIND_WEIGHTS))]
    allowed = distinct(COLOUR_NAMES, avoid)
    if not allowed:  # cannot happen with the shipped palette; keep the farthest colour rather than fail
        allowed = [max(COLOUR_NAMES, key=lambda c: min(distance(c, a) for a in avoid))]
    first = allowed[int(rng.integers(len(allowed)))]
    partners = distinct(allowed, [first])
    if kind == "solid" or not partners:
        return BackgroundSpec("solid", (first,))
    second = partners[int(rng.integers(len(partners)))]
    orientation = ORIENTATIONS[int(rng.integers(2))]
    width = float(rng.uniform(0.08, 0.2)) if kind == "stripes" else None
    return BackgroundSpec(kind, (first, second), orientation, width)


def parse_background_colours(names: str | list[str] | tuple[str, ...] | None) -> tuple[str, ...] | None:
    """ "white,black" (or a list) → checked palette names for plain backgrounds; None or empty → None (any
    background, as `sample_background` draws)."""
    return parse_names(names, COLOUR_NAMES, "background colour")


def sample_plain_background(
    rng: np.random.Generator, colours: tuple[str, ...], avoid: list[str] | tuple[str, ...] = ()
) -> BackgroundSpec | None:
    """A plain background of one of `colours` standing apart from `avoid`, or None when none of them does."""
    allowed = distinct(colours, avoid)
    if not allowed:
        return None
    return BackgroundSpec("solid", (allowed[int(rng.integers(len(allowed)))],))


def render_background(spec: BackgroundSpec, height: int, width: int) -> npt.NDArray[np.uint8]:
    """The background as an RGB uint8 image `[height, width, 3]`, the same picture at any size (coordinates are
    pixel centres as fractions of the frame)."""
    if height < 1 or width < 1:
        raise InputError(f"Background size must be positive, got {height}x{width}")
    colours = np.array([PALETTE[c] for c in spec.colours], dtype=np.float64)
    if spec.kind == "solid":
        return np.broadcast_to(colours[0].astype(np.uint8), (height, width, 3)).copy()
    along_y = spec.orientation == "vertical" if spec.kind == "gradient" else spec.orientation == "horizontal"
    n = height if along_y else width
    t = (np.arange(n, dtype=np.float64) + 0.5) / n
    if spec.kind == "gradient":
        weight = t
    else:
        weight = (np.floor(t / spec.stripe_width) % 2).astype(np.float64)
    line = np.rint(colours[0] * (1 - weight[:, None]) + colours[1] * weight[:, None]).astype(np.uint8)  # [n, 3]
    image = np.broadcast_to(line[:, None, :], (n, width if along_y else height, 3))
    if not along_y:
        image = image.transpose(1, 0, 2)
    return np.ascontiguousarray(image)
