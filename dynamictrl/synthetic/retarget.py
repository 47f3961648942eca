"""Real motion onto a synthetic character: keypoints extracted from a video drive a character with ground truth.

`retarget_motion` is the pose stage's alignment (`dynamictrl.pose.align.align_poses`) with the character's standing
pose (`motion.rest_pose`) as the reference image's person:

1. the main person is tracked from frame to frame (`track_main_person`);
2. one global scale-and-translate (the published rescale, `fit_linear_transform`) maps the driving video's
   coordinates into the frame so that the person's size matches the character's: the root translation is scaled
   with the body, and the sequence is centred where the character stands;
3. every bone is rescaled to the character's length (`retarget_ratios`, `retarget_person`: ratio of the
   character's bone to the driving bone's typical length), keeping its direction and foreshortening;
4. what is missing is filled ("hold", the default) or left out ("hide"): a frame without the person repeats the
   nearest one; a missing limb point (shoulders to ankles) hangs from its parent by the bone vector last seen (or the
   standing pose's); a missing neck is the mean of the shoulders. Head points keep their visibility (a back view has
   no nose), and a hand without enough visible points is fanned around its wrist (`motion.hand_points`).

The result is a keypoint sequence in the frame (normalised), one person per frame, for `render.render_character`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from ..errors import InputError
from ..pose.align import BONES, AlignOptions, align_poses
from ..pose.types import SCORE_THRESHOLD, FramePose, PersonPose
from .character import Character
from .motion import hand_points, rest_pose

MISSING_MODES = ("hold", "hide")
# Body points that are filled when missing: shoulders, elbows, wrists, hips, knees, ankles.
LIMB_POINTS = frozenset(range(2, 14))
# A hand with fewer visible points than this is re-drawn around the wrist.
MIN_HAND_POINTS = 5


def _fill_frames(people: Sequence[PersonPose | None]) -> list[PersonPose]:
    """Frames without the person take the nearest earlier one (the first ones: the nearest later one)."""
    first = next((p for p in people if p is not None), None)
    if first is None:
        raise InputError("The driving motion shows nobody in any frame; use a video in which one person is visible")
    out, last = [], first
    for person in people:
        last = person if person is not None else last
        out.append(last.copy())
    return out


def _fill_points(people: list[PersonPose], rest: PersonPose, height: int, width: int) -> None:
    """Missing limb points (and the neck) filled in place, in pixels so that bone vectors keep their aspect."""
    px = np.array([width, height], dtype=np.float64)
    last_vec = {bone: (rest.body[bone[1]] - rest.body[bone[0]]) * px for bone in BONES}
    last_neck = rest.body[1] * px
    for person in people:
        body, ok = person.body * px, person.body_scores > SCORE_THRESHOLD
        if not ok[1]:
            body[1] = (body[2] + body[5]) / 2 if ok[2] and ok[5] else last_neck
            ok[1] = True
            person.body_scores[1] = 1.0
        last_neck = body[1].copy()
        for parent, child in BONES:
            if ok[parent] and ok[child]:
                last_vec[(parent, child)] = body[child] - body[parent]
            elif ok[parent] and child in LIMB_POINTS:
                body[child] = body[parent] + last_vec[(parent, child)]
                ok[child] = True
                person.body_scores[child] = 1.0
        person.body = body / px


def _fix_hands(person: PersonPose, character: Character, height: int, width: int) -> None:
    px = np.array([width, height], dtype=np.float64)
    body = person.body * px
    length = character.proportions.hand * character.proportions.scale(height)
    facing = 1 if body[5, 0] >= body[2, 0] else -1
    for part, wrist, elbow, side in (("right_hand", 4, 3, -facing), ("left_hand", 7, 6, facing)):
        scores = getattr(person, f"{part}_scores")
        if person.body_scores[wrist] <= SCORE_THRESHOLD:
            scores[:] = 0.0
            continue
        if int((scores > SCORE_THRESHOLD).sum()) >= MIN_HAND_POINTS:
            continue
        setattr(person, part, hand_points(body[wrist], body[elbow], length, side) / px)
        scores[:] = 1.0


def retarget_motion(
    driving: Sequence[FramePose],
    character: Character,
    height: int,
    width: int,
    *,
    missing: str = "hold",
    smooth: float = 0.0,
) -> list[FramePose]:
    """Driving keypoints (normalised to their video, any number of people per frame) → the character's keypoints in
    a `height`×`width` frame, one person per frame: directions from the driving person, bone lengths from the
    character, translation scaled with the body (module docstring). `smooth` is a Gaussian sigma in frames."""
    if missing not in MISSING_MODES:
        raise InputError(f"Unknown missing-point mode {missing!r}; use one of: {', '.join(MISSING_MODES)}")
    if not driving:
        raise InputError("The driving motion has no frames")
    reference = FramePose(people=[rest_pose(character, height, width)], height=height, width=width)
    result = align_poses(reference, driving, AlignOptions(mode="linear", people="main", smooth=smooth, retarget=True))
    if missing == "hide":
        people = [p.copy() if p is not None else PersonPose.empty() for p in result.main_people]
    else:
        people = _fill_frames(result.main_people)
        _fill_points(people, reference.people[0], height, width)
    for person in people:
        _fix_hands(person, character, height, width)
    return [FramePose(people=[p], height=height, width=width) for p in people]


def bone_lengths(person: PersonPose, height: int, width: int) -> dict[tuple[int, int], float]:
    """Pixel length of every drawn bone (parent, child) whose two points are visible."""
    px: npt.NDArray[np.float64] = person.body * np.array([width, height], dtype=np.float64)
    ok = person.body_scores > SCORE_THRESHOLD
    return {(a, b): float(np.linalg.norm(px[b] - px[a])) for a, b in BONES if ok[a] and ok[b]}
