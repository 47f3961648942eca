"""Checks before generation: catch the poses that waste GPU minutes, and say what to do about them.

Peer projects answer bad results with "align your pose"; nothing checks it. These checks run on the extracted and
aligned keypoints (cheap) and return warnings. `enforce` turns warnings into one `PoseError` under `--strict`.
A reference image without any person is always an error: there is nothing to align to.

`looks_like_pose_render` checks the other way in: that a video given as a ready pose video (`--pose-video`) is a
skeleton render at all, not the driving video itself.

Thresholds are conservative on purpose: a warning should mean a visible defect in the pose video.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from ..errors import InputError, PoseError
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

# A skeleton render (`render.draw_pose`) is a black canvas with thin, saturated limbs. On the published code's renders
# (one to several people, drawn at 96x160 to 1360x768, also through H.264, whose half-resolution chroma greys thin
# lines) at least 98.5% of the pixels are black and at least half of the others saturated (HSV saturation >= 0.5).
# Camera footage is under 20% black, dark footage (the night sky, a dance video darkened to 12%) under 85%; a
# black-and-white skeleton has no saturated pixels. The limits sit between, nearer to footage: a real pose video
# must never be flagged.
_BLACK_LEVEL = 24  # a pixel is background when no channel exceeds this
RENDER_MIN_BLACK_SHARE = 0.9
RENDER_MIN_SATURATED_SHARE = 0.3  # of the lit pixels
_RENDER_SAMPLE_FRAMES = 8
_RENDER_SAMPLE_SIDE = 256  # frames are subsampled to about this short side


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
    several = several_people_warning(reference, source)
    if several:
        warnings.append(several)
    person = reference.people[0]
    missing = [i for i in KEY_REFERENCE_POINTS if person.body_scores[i] <= SCORE_THRESHOLD]
    if missing:
        warnings.append(
            f"{source} does not show the {_names(missing)}: alignment is fitted on fewer points and may misplace "
            "the skeleton; a photo showing the head, shoulders and hips works best"
        )
    return warnings


def _where(person: PersonPose) -> str:
    """Where a person is in the image, for messages: "centre at x=31% of the width, 62% of the image height tall"."""
    box = person.body_box()
    if box is None:
        return "position unknown"
    x0, y0, x1, y1 = box
    return f"centre at x={(x0 + x1) / 2:.0%} of the width, {y1 - y0:.0%} of the image height tall"


def several_people_warning(reference: FramePose, source: str = "the reference image") -> str | None:
    """Which person is animated when the reference image shows several (None when it shows one or none).

    Alignment fits the driving motion to `reference.people[0]`, the detector's most confident person (DWPose sorts
    its boxes by score; MediaPipe finds one person only), and frame 0 draws every person: the message says where
    that person is, so a user can tell whether the right one is animated.
    """
    people = [p for p in reference.people if is_person(p)]
    if len(people) < 2:
        return None
    others = [p for p in people if p is not reference.people[0]]
    return (
        f"{source} shows {len(people)} people; the most confident one ({_where(reference.people[0])}) is animated: "
        f"the driving motion is aligned to it, and the {'other' if len(others) == 1 else 'others'} "
        f"({'; '.join(_where(p) for p in others)}) only appear in frame 0; crop the photo to one person to choose "
        "who is animated"
    )


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


# --------------------------------------------------------------------------------------------- pose videos
def _render_like_frame(frame: npt.NDArray[np.uint8]) -> bool:
    step = max(1, min(frame.shape[:2]) // _RENDER_SAMPLE_SIDE)
    pixels = frame[::step, ::step].astype(np.int16)
    high, low = pixels.max(axis=-1), pixels.min(axis=-1)
    lit = high > _BLACK_LEVEL
    if 1.0 - lit.mean() < RENDER_MIN_BLACK_SHARE:
        return False
    if not lit.any():  # an empty pose frame (nobody in that driving frame)
        return True
    saturated = (high - low)[lit] * 2 >= high[lit]
    return bool(saturated.mean() >= RENDER_MIN_SATURATED_SHARE)


def looks_like_pose_render(frames: npt.NDArray[np.uint8]) -> bool:
    """Whether a video `[F, H, W, 3]` (RGB uint8) looks like a skeleton render (`draw_pose`), not camera footage.

    Up to 8 frames spread over the video are looked at; it is a render when at least half of them are almost all
    black with saturated colours on the rest (`RENDER_MIN_BLACK_SHARE`, `RENDER_MIN_SATURATED_SHARE`). All-black
    frames count as renders (pose frames of driving frames without anyone).
    """
    arr = np.asarray(frames)
    if arr.ndim != 4 or arr.shape[-1] != 3 or arr.dtype != np.uint8 or 0 in arr.shape:
        raise InputError(f"A pose video must be RGB uint8 [F, H, W, 3], got {arr.dtype} {list(arr.shape)}")
    picks = np.unique(np.linspace(0, len(arr) - 1, min(len(arr), _RENDER_SAMPLE_FRAMES)).round().astype(int))
    votes = [_render_like_frame(arr[i]) for i in picks]
    return 2 * sum(votes) >= len(votes)


def pose_video_warning(frames: npt.NDArray[np.uint8], source: str = "--pose-video") -> str | None:
    """A warning when `frames`, given as a ready pose video, do not look like a skeleton render; else None."""
    if looks_like_pose_render(frames):
        return None
    return (
        f"{source} does not look like a pose video (a skeleton drawn on black, as `dynamictrl pose` writes it): "
        "the model would read the picture itself as the skeleton; to take the motion of an ordinary video, pass it "
        "as --driving-video instead"
    )
