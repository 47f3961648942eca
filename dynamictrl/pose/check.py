"""Checks before generation: catch the poses that waste GPU minutes, and say what to do about them.

Peer projects answer bad results with "align your pose"; nothing checks it. These checks run on the extracted and
aligned keypoints (cheap) and return warnings. `enforce` turns warnings into one `PoseError` under `--strict`.
A reference without any person is always an error: there is nothing to align to.

Thresholds are conservative on purpose: a warning should mean a visible defect in the pose video.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..errors import PoseError
from .align import FIT_IDS, AlignResult, is_person
from .types import BODY_NAMES, SCORE_THRESHOLD, FramePose, PersonPose

# Points whose absence in the reference makes the fit guess: head, neck, shoulders and hips.
KEY_REFERENCE_POINTS = (0, 1, 2, 5, 8, 11)
# Points that tell whether the driving person is in the picture: nose, shoulders, hips.
_TRACKED_POINTS = (0, 2, 5, 8, 11)
# A frame loses a point it usually shows when the point is missing or more than this far outside the image.
_FRAME_MARGIN = 0.02
# A body part the reference shows must be shown (confident and inside the picture) by the driving person in at
# least this share of frames; otherwise the framings differ (e.g. a full-body reference and a half-body dance video)
# and those parts of the pose video are guesses or missing.
MIN_SHOWN_SHARE = 0.5
# RMS residual of the global fit relative to the reference skeleton height above which one transform cannot explain
# the pairs (a sitting reference and a standing dancer, or a body in another orientation).
MAX_RELATIVE_RESIDUAL = 0.15
# Share of frames in which the aligned skeleton may leave the reference frame before we warn.
MAX_OUT_OF_FRAME_SHARE = 0.1


def _ranges(indices: Sequence[int], limit: int = 4) -> str:
    """Frame numbers as compact ranges: "3-7, 12, 40-41 (and 2 more)"."""
    if not indices:
        return ""
    spans: list[tuple[int, int]] = []
    for i in sorted(indices):
        if spans and i == spans[-1][1] + 1:
            spans[-1] = (spans[-1][0], i)
        else:
            spans.append((i, i))
    text = ", ".join(f"{a}-{b}" if a != b else f"{a}" for a, b in spans[:limit])
    return text + (f" (and {len(spans) - limit} more)" if len(spans) > limit else "")


def _names(ids: Sequence[int]) -> str:
    return ", ".join(BODY_NAMES[i].replace("_", " ") for i in ids)


def check_reference(reference: FramePose, source: str = "the reference image") -> list[str]:
    """Errors out when the reference shows no person; warns about several people or missing key parts."""
    people = [p for p in reference.people if is_person(p)]
    if not people:
        raise PoseError(
            f"No person found in {source}: use a photo in which one person is clearly visible "
            "(at least head, shoulders and hips)"
        )
    warnings = []
    if len(people) > 1:
        warnings.append(
            f"{source} shows {len(people)} people; the driving motion is aligned to the most confident one and "
            "frame 0 draws them all: crop the photo to one person"
        )
    person = reference.people[0]
    missing = [i for i in KEY_REFERENCE_POINTS if person.body_scores[i] <= SCORE_THRESHOLD]
    if missing:
        warnings.append(
            f"{source} does not show the {_names(missing)}: alignment is fitted on fewer points and may misplace "
            "the skeleton; a photo showing the head, shoulders and hips works best"
        )
    return warnings


def check_driving(driving: Sequence[FramePose], main: Sequence[int | None], people_mode: str = "all") -> list[str]:
    """Warns when the driving person is missing, leaves the frame, or shares it with other people."""
    total = len(driving)
    if total == 0 or all(m is None for m in main):
        raise PoseError(
            "No person found in any frame of the driving video: use a video in which one person is clearly visible"
        )
    warnings = []
    absent = [i for i, m in enumerate(main) if m is None]
    if absent:
        warnings.append(
            f"No person in {len(absent)} of {total} driving frames ({_ranges(absent)}): those pose frames are "
            "empty; trim the video with --start/--num-frames or pick another clip"
        )
    present = [(i, driving[i].people[m]) for i, m in enumerate(main) if m is not None]
    usual = [k for k in _TRACKED_POINTS if np.mean([_in_frame(p, k) for _, p in present]) >= 0.5]
    leaving = [i for i, p in present if any(not _in_frame(p, k) for k in usual)]
    if leaving and len(leaving) / total > 0.05:
        warnings.append(
            f"The driving person partly leaves the picture in {len(leaving)} of {total} frames ({_ranges(leaving)}; "
            f"missing {_names(_missing_points(driving, main, leaving, usual))}): the skeleton loses limbs there; "
            "use a clip where the person stays in view"
        )
    crowded = [i for i, f in enumerate(driving) if sum(is_person(p) for p in f.people) > 1]
    if crowded:
        hint = "only the main person is drawn" if people_mode == "main" else "add --people main to draw only them"
        warnings.append(
            f"{len(crowded)} of {total} driving frames show several people ({_ranges(crowded)}); the main person "
            f"is followed, {hint}"
        )
    return warnings


def _in_frame(person: PersonPose, k: int) -> bool:
    x, y = person.body[k]
    inside = -_FRAME_MARGIN <= x <= 1 + _FRAME_MARGIN and -_FRAME_MARGIN <= y <= 1 + _FRAME_MARGIN
    return bool(person.body_scores[k] > SCORE_THRESHOLD and inside)


def _missing_points(driving, main, frames, usual) -> list[int]:
    return [k for k in usual if any(not _in_frame(driving[i].people[main[i]], k) for i in frames)]


def check_alignment(reference: FramePose, driving: Sequence[FramePose], result: AlignResult) -> list[str]:
    """Warns when one global transform cannot place the driving person well on the reference."""
    warnings = []
    t = result.transform
    if t.fit_on == "none":
        return warnings
    if t.scale[1] <= 0:
        return [
            "Alignment flipped the driving pose upside down (negative scale): reference and driving framings are "
            "incompatible; use a reference photo framed like the driving video"
        ]
    fitted = [driving[f].people[result.main[f]] for f in t.fit_frames]
    shown = {i: float(np.mean([_in_frame(p, i) for p in fitted])) for i in t.fit_ids}
    unshown = [i for i, share in shown.items() if share < MIN_SHOWN_SHARE]
    if unshown:
        warnings.append(
            f"Reference and driving framings differ: the reference shows the {_names(unshown)} but the driving "
            f"person does so in only {min(shown[i] for i in unshown):.0%} of the frames, so those parts of the pose "
            "video are guessed or missing and the scale is less reliable; crop the reference like the driving video, "
            "or use a driving video that shows as much of the body"
        )
    elif t.relative_residual > MAX_RELATIVE_RESIDUAL:
        warnings.append(
            f"The driving body proportions do not match the reference (fit error {t.relative_residual:.0%} of the "
            "reference height): alignment is unreliable; use a reference in a similar posture and framing "
            "(standing, facing the camera); --retarget gives the skeleton the reference's limb proportions"
        )
    outside = []
    for i, person in enumerate(result.main_people):
        if person is None:
            continue
        vis = person.body_scores[list(FIT_IDS)] > SCORE_THRESHOLD
        pts = person.body[list(FIT_IDS)][vis]
        if (
            len(pts)
            and ((pts < -_FRAME_MARGIN).any() or (pts > 1 + _FRAME_MARGIN).any())
            and not _reference_also_outside(reference, person)
        ):
            outside.append(i)
    if outside and len(outside) / len(result.main_people) > MAX_OUT_OF_FRAME_SHARE:
        warnings.append(
            f"The aligned skeleton leaves the picture in {len(outside)} of {len(result.main_people)} frames "
            f"({_ranges(outside)}): the driving person moves farther than the reference framing allows; "
            "use a wider reference photo or a driving clip with less travel"
        )
    return warnings


def _reference_also_outside(reference: FramePose, person: PersonPose) -> bool:
    """True when every point of `person` outside the picture is one the reference does not show either.

    A reference cropped at the thighs has its knees and ankles out of the picture; the driving legs landing there
    too is the alignment working, not failing.
    """
    if not reference.people:
        return False
    ref = reference.people[0]
    for k in FIT_IDS:
        x, y = person.body[k]
        out = not (-_FRAME_MARGIN <= x <= 1 + _FRAME_MARGIN and -_FRAME_MARGIN <= y <= 1 + _FRAME_MARGIN)
        if out and person.body_scores[k] > SCORE_THRESHOLD and ref.body_scores[k] > SCORE_THRESHOLD:
            return False
    return True


def enforce(warnings: Sequence[str], strict: bool) -> None:
    """Raise one `PoseError` carrying every warning when `strict`; otherwise do nothing."""
    if strict and warnings:
        raise PoseError("Pose check failed (--strict): " + " | ".join(warnings))
