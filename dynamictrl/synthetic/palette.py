"""The named colours of the synthetic world: few and far apart, because a tiny text model has to learn each name.

Clothes, hair and backgrounds all take their colour from `PALETTE` (ten names); skin has its own three tones, named
in captions as "light", "medium" and "dark" skin. `distinct` keeps a character apart from its background: two
colours closer than `MIN_CONTRAST` (RGB Euclidean distance) are not put next to each other.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from ..errors import InputError

# name -> RGB. Chosen far apart in RGB (the closest pair, orange and yellow or red and pink, is ~100 apart).
PALETTE: dict[str, tuple[int, int, int]] = {
    "red": (215, 35, 35),
    "orange": (245, 135, 15),
    "yellow": (245, 225, 40),
    "green": (35, 165, 60),
    "blue": (35, 75, 215),
    "purple": (125, 45, 175),
    "pink": (245, 135, 195),
    "white": (240, 240, 240),
    "black": (25, 25, 25),
    "brown": (115, 65, 25),
}
COLOUR_NAMES = tuple(PALETTE)

SKIN_TONES: dict[str, tuple[int, int, int]] = {
    "light": (240, 200, 170),
    "medium": (200, 145, 105),
    "dark": (110, 70, 45),
}

# Two colours at least this far apart (RGB distance) are told apart at 64 px after video compression.
MIN_CONTRAST = 90.0


def parse_names(names: str | Iterable[str] | None, known: Iterable[str], what: str) -> tuple[str, ...] | None:
    """ "a, b,a" (or a sequence) → the distinct names in order, each one of `known`; None or empty → None. An
    unknown name is an InputError naming `what` and the known names (the synthetic world's colour and motion lists)."""
    if names is None:
        return None
    items = [n.strip() for n in names.split(",")] if isinstance(names, str) else [str(n).strip() for n in names]
    items = [n for n in items if n]
    if not items:
        return None
    known = tuple(known)
    unknown = [n for n in items if n not in known]
    if unknown:
        raise InputError(f"Unknown {what} {unknown[0]!r}; use one or more of: {', '.join(known)}")
    return tuple(dict.fromkeys(items))


def rgb(name: str) -> tuple[int, int, int]:
    """The RGB triple of a palette colour or skin tone name."""
    if name in PALETTE:
        return PALETTE[name]
    if name in SKIN_TONES:
        return SKIN_TONES[name]
    raise InputError(f"Unknown colour {name!r}; use one of: {', '.join(COLOUR_NAMES)}")


def distance(a: str, b: str) -> float:
    """RGB Euclidean distance of two named colours."""
    return float(np.linalg.norm(np.subtract(rgb(a), rgb(b), dtype=np.float64)))


def distinct(candidates: Iterable[str], avoid: Iterable[str], min_distance: float = MIN_CONTRAST) -> list[str]:
    """The candidate names at least `min_distance` from every name in `avoid` (order kept)."""
    avoid = list(avoid)
    return [c for c in candidates if all(distance(c, a) >= min_distance for a in avoid)]
