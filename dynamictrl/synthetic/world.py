"""One sample of the synthetic world: a character, a background and a motion, with ground truth for every frame.

`make_sample(seed, index)` is a pure function of its arguments: a `numpy` generator seeded from `(seed, index)`
(nothing global) is split into independent streams for the character, the background and the motion, so the same
arguments give byte-identical arrays in any process, and changing the motion list keeps the characters.

The caption is built from the sample's structured `attributes` (`caption_from_attributes`): "<person> wearing
<clothes>, <action>, on <background>". `recaption` rebuilds it with another background and changes only the
background words, which is what a benchmark swapping the background colour of a prompt needs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from ..errors import InputError
from ..pose.render import PoseStyle, draw_pose
from ..pose.types import PARTS, FramePose
from .background import (
    BackgroundSpec,
    background_phrase,
    parse_background_colours,
    sample_background,
    sample_plain_background,
)
from .character import Character, sample_character
from .motion import MOTIONS, make_motion, mirror_frames, parse_motions
from .render import render_character
from .retarget import retarget_motion

# Pose drawing for 64-px clips: a 256-px canvas (4× the output), sticks 12 canvas px wide (3 px at 64) so limbs stay
# visible after the bilinear downscale; hands and face small (about 1 px), as at the published size.
SYNTH_POSE_STYLE = PoseStyle(
    canvas_short_side=256,
    stick_width=6,
    body_point_radius=6,
    hand_line_thickness=2,
    hand_point_radius=2,
    face_point_radius=1,
)
# Keypoint coordinates are fractions of the frame: 6 decimals are 1/15000 px at 64 px.
KEYPOINT_DECIMALS = 6
# The action words of a sample driven by a keypoint sequence (real motion) rather than a named motion.
DRIVEN_ACTION = "moving"


@dataclass
class Sample:
    """A clip with its ground truth, all frame-aligned (F frames of H×W).

    frames `[F, H, W, 3]` uint8 RGB; pose `[F, H, W, 3]` uint8, the keypoints drawn by `pose.render.draw_pose` with
    `style`; keypoints, one `FramePose` per frame (normalised, one person); person_mask and clothes_mask
    `[F, H, W]` uint8, 255 on the person / their clothes, else 0; caption and the attributes it was made from.
    """

    frames: npt.NDArray[np.uint8]
    pose: npt.NDArray[np.uint8]
    keypoints: list[FramePose]
    person_mask: npt.NDArray[np.uint8]
    clothes_mask: npt.NDArray[np.uint8]
    caption: str
    attributes: dict[str, Any]
    fps: float
    character: Character
    background: BackgroundSpec
    motion: str


def caption_parts(attributes: dict[str, Any]) -> dict[str, str]:
    """The caption's phrases: `person`, `clothes`, `action`, `background` (from `Sample.attributes`)."""
    words = Character.from_dict(attributes["character"]).caption_words()
    background = BackgroundSpec.from_dict(attributes["background"])
    return {**words, "action": attributes["action"], "background": background_phrase(background)}


def caption_from_attributes(attributes: dict[str, Any]) -> str:
    parts = caption_parts(attributes)
    return f"{parts['person']} {parts['clothes']}, {parts['action']}, on {parts['background']}"


def recaption(attributes: dict[str, Any], background: BackgroundSpec | dict[str, Any] | str) -> str:
    """The caption with another background (a spec, its dict, or a colour name for a plain background); every other
    word stays."""
    if isinstance(background, str):
        background = BackgroundSpec("solid", (background,))
    elif isinstance(background, dict):
        background = BackgroundSpec.from_dict(background)
    return caption_from_attributes({**attributes, "background": background.to_dict()})


def _rounded(frames: list[FramePose]) -> list[FramePose]:
    """Coordinates rounded to `KEYPOINT_DECIMALS` before anything is drawn: the saved keypoints are then exactly
    the ones the frames and pose renders were made from, and a clip's JSON is a third of the size."""
    out = []
    for frame in frames:
        people = []
        for person in frame.people:
            p = person.copy()
            for part, _ in PARTS:
                setattr(p, part, np.round(getattr(p, part), KEYPOINT_DECIMALS))
            people.append(p)
        out.append(frame.with_people(people))
    return out


def _check(seed: int, index: int, frames: int, height: int, width: int, fps: float) -> None:
    for name, value, low in (("seed", seed, 0), ("index", index, 0), ("frames", frames, 1)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise InputError(f"{name} must be an integer >= {low}, got {value!r}")
    for name, value in (("height", height), ("width", width)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 16:
            raise InputError(f"{name} must be an integer >= 16, got {value!r}")
    if not (isinstance(fps, (int, float)) and np.isfinite(fps) and fps > 0):
        raise InputError(f"fps must be a positive number, got {fps!r}")


# Characters drawn at most this many times for a plain background of the asked colours (every palette colour
# stands apart from most characters: a few draws suffice).
MAX_CHARACTER_DRAWS = 100


def _with_plain_background(
    colours: tuple[str, ...], character: Character, char_rng: np.random.Generator, bg_rng: np.random.Generator
) -> tuple[Character, BackgroundSpec]:
    """The first character (this one, then more from `char_rng`) that a plain background of `colours` stands
    apart from, with that background."""
    for _ in range(MAX_CHARACTER_DRAWS):
        background = sample_plain_background(bg_rng, colours, character.colours())
        if background is not None:
            return character, background
        character = sample_character(char_rng)
    raise InputError(
        f"No character in {MAX_CHARACTER_DRAWS} draws stands apart from a plain {' or '.join(colours)} background; "
        "add more background colours"
    )


def make_sample(
    seed: int,
    index: int,
    *,
    frames: int = 17,
    height: int = 64,
    width: int = 64,
    fps: float = 8.0,
    style: PoseStyle = SYNTH_POSE_STYLE,
    motion: str | Sequence[FramePose] | None = None,
    motions: Sequence[str] | str | None = None,
    backgrounds: Sequence[str] | str | None = None,
) -> Sample:
    """Sample `index` of the world `seed`.

    `motion`: a motion name (`motion.MOTION_NAMES`), a keypoint sequence (real motion, e.g. from the pose stage, with
    at least `frames` frames: a window of it is retargeted to the character, mirrored half of the time), or None (one
    of `motions`, default `motion.DEFAULT_MOTIONS`, drawn from the sample's generator).

    `backgrounds`: palette colours (a list or "white,black"); the background is then a plain one of them that
    stands apart from the character, and a character none of them stands apart from is drawn again (from the
    character's own stream, so still deterministic). None (the default) draws any background; the samples are
    then those of every earlier version.
    """
    _check(seed, index, frames, height, width, fps)
    colours = parse_background_colours(backgrounds)
    streams = np.random.SeedSequence([int(seed), int(index)]).spawn(4)
    char_rng, bg_rng, choice_rng, motion_rng = (np.random.default_rng(s) for s in streams)
    character = sample_character(char_rng)
    if colours is None:
        background = sample_background(bg_rng, character.colours())
    else:
        character, background = _with_plain_background(colours, character, char_rng, bg_rng)
    if motion is None or isinstance(motion, str):
        if motion is None:
            names = parse_motions(motions)
            motion = names[int(choice_rng.integers(len(names)))]
        keypoints = make_motion(motion, character, motion_rng, frames, float(fps), height, width)
        name, action = motion, MOTIONS[motion][1]
    else:
        driving = list(motion)
        if len(driving) < frames:
            raise InputError(f"The driving motion has {len(driving)} frames; a sample needs {frames}")
        start = int(motion_rng.integers(0, len(driving) - frames + 1))
        window = driving[start : start + frames]
        if motion_rng.random() < 0.5:
            window = mirror_frames(window)
        keypoints = retarget_motion(window, character, height, width)
        name, action = "driven", DRIVEN_ACTION
    keypoints = _rounded(keypoints)
    clip, person_mask, clothes_mask = render_character(character, keypoints, background, height, width)
    pose = np.stack([draw_pose(k, height, width, style) for k in keypoints])
    attributes = {
        "seed": int(seed),
        "index": int(index),
        "motion": name,
        "action": action,
        "character": character.to_dict(),
        "background": background.to_dict(),
    }
    return Sample(
        frames=clip,
        pose=pose,
        keypoints=keypoints,
        person_mask=person_mask,
        clothes_mask=clothes_mask,
        caption=caption_from_attributes(attributes),
        attributes=attributes,
        fps=float(fps),
        character=character,
        background=background,
        motion=name,
    )
