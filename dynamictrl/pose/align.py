"""Driving poses to the reference person: the published global rescale, main-person tracking, smoothing, retarget.

The published code (`dwpose/preprocess.py::get_video_pose`) fits one scale-and-translate transform for the whole
sequence:

1. keypoint ids `FIT_IDS` (head, neck, shoulders, hips, knees, ankles; not arms) kept where person 0 of the
   reference image scores above 0.3;
2. y scale `ay` by least squares pairing every kept point of every single-person driving frame with the same point
   of the reference person (`np.polyfit`, degree 1);
3. x scale from it, so that one pixel stays square: `ax = ay / (fh / fw / H * W)`;
4. x offset: mean residual over all pairs; y offset: the nose of driving frame 0 lands on the reference nose height;
5. `p' = p * (ax, ay) + (bx, by)` for every point of every person of every frame.

`align_poses` reproduces this bit for bit (`mode="linear"`, the default) when the reference person shows the nose,
the first driving frame shows the main person's nose, and at least one driving frame has exactly one person. What it
adds:

- frames with no or several people do not crash: the main person is tracked from frame to frame, the fit falls back
  to the main person of every frame when no frame has exactly one person, and `people="main"` draws only them;
- the y anchor falls back to the first fitted keypoint (neck, shoulder...) visible in both the reference person and
  the earliest driving frame that shows it, instead of pairing the reference neck with a missing driving nose;
- optional temporal smoothing of the main person's keypoints (`smooth`, a Gaussian sigma in frames, zero-phase);
- optional per-limb retarget (`retarget`): each bone of the driving skeleton is rescaled to the reference person's
  proportions, keeping its direction and its foreshortening over time.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from ..errors import InputError, PoseError
from .render import LIMBS, NUM_DRAWN_LIMBS
from .types import PARTS, SCORE_THRESHOLD, FramePose, PersonPose

logger = logging.getLogger(__name__)

# Reference keypoint ids for the fit: nose, neck, shoulders, hips, knees, ankles, eyes, ears. Elbows and wrists move
# too much to say anything about scale.
FIT_IDS = (0, 1, 2, 5, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17)

ALIGN_MODES = ("linear", "none")
PEOPLE_MODES = ("all", "main")

# A detection counts as a person when at least this many body points score above the threshold, one of them on
# the head or the torso. DWPose always returns a "person" (the whole image, when its detector finds none), with low
# scores on an image without anyone.
MIN_VISIBLE_BODY_POINTS = 5
_CORE_POINTS = (0, 1, 2, 5, 8, 11)

# Parent -> child bones of the OpenPose body tree: the drawn limbs, which list every parent before its children.
BONES = LIMBS[:NUM_DRAWN_LIMBS]
# Left/right pairs share one retarget ratio, so a turned reference does not make one arm longer than the other.
_MIRROR = {
    (1, 2): (1, 5),
    (2, 3): (5, 6),
    (3, 4): (6, 7),
    (1, 8): (1, 11),
    (8, 9): (11, 12),
    (9, 10): (12, 13),
    (0, 14): (0, 15),
    (14, 16): (15, 17),
}
RETARGET_RATIO_LIMITS = (0.5, 2.0)
# Typical driving bone length: a high percentile over frames, so that foreshortened frames do not shrink it.
_RETARGET_PERCENTILE = 90


@dataclass(frozen=True)
class AlignOptions:
    """How driving poses are mapped onto the reference (saved with the outputs; part of the cache key).

    mode: "linear" (the published code's global rescale) or "none" (driving coordinates drawn as they are, stretched to
        the reference size: for a driving video already framed like the reference).
    people: "all" draws every detected person (as the published code), "main" only the tracked main person. Detections
        that are not people (`is_person`: DWPose's whole-image fallback on a frame without anyone) are never drawn;
        the published code draws their hand and face points, which have no score threshold, as stray dots.
    smooth: Gaussian sigma in frames for temporal smoothing of the main person's keypoints; 0 turns it off.
    retarget: rescale each bone to the reference person's proportions.
    """

    mode: str = "linear"
    people: str = "all"
    smooth: float = 0.0
    retarget: bool = False

    def __post_init__(self) -> None:
        if self.mode not in ALIGN_MODES:
            raise InputError(f"Unknown alignment mode {self.mode!r}; use one of: {', '.join(ALIGN_MODES)}")
        if self.people not in PEOPLE_MODES:
            raise InputError(f"Unknown people mode {self.people!r}; use one of: {', '.join(PEOPLE_MODES)}")
        if not (self.smooth >= 0 and np.isfinite(self.smooth)):
            raise InputError(f"smooth must be a non-negative number of frames, got {self.smooth}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class LinearTransform:
    """`p' = p * scale + offset` from driving-normalised to reference-normalised coordinates, and how it was fitted."""

    scale: tuple[float, float]
    offset: tuple[float, float]
    fit_ids: tuple[int, ...] = ()
    fit_frames: tuple[int, ...] = ()
    fit_on: str = "single-person frames"
    anchor_frame: int = 0
    anchor_point: int = 0
    # RMS of the y least-squares residual divided by the reference skeleton's height over the fit ids: how well one
    # global transform explains the pairs (large when reference and driving framings differ).
    relative_residual: float = 0.0

    def apply(self, person: PersonPose) -> PersonPose:
        return person.transformed(self.scale, self.offset)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class AlignResult:
    """Aligned poses (reference-normalised, reference size) and what the alignment found out."""

    frames: list[FramePose]
    main: list[int | None]
    main_people: list[PersonPose | None]
    transform: LinearTransform
    retarget_ratios: dict[str, float] = field(default_factory=dict)


# --------------------------------------------------------------------------------------------- main person
def is_person(person: PersonPose) -> bool:
    """True when a detection has enough confident body points to be a person rather than background."""
    visible = person.visible_body()
    return int(visible.sum()) >= MIN_VISIBLE_BODY_POINTS and bool(visible[list(_CORE_POINTS)].any())


def _box(person: PersonPose) -> tuple[npt.NDArray[np.float64], float] | None:
    """Centre (normalised) and size (max side) of the visible body points."""
    box = person.body_box()
    if box is None:
        return None
    x0, y0, x1, y1 = box
    return np.array([(x0 + x1) / 2, (y0 + y1) / 2]), max(x1 - x0, y1 - y0, 1e-3)


def _prominence(person: PersonPose) -> float:
    found = _box(person)
    if found is None:
        return 0.0
    vis = person.visible_body()
    return found[1] * float(person.body_scores[vis].mean())


def track_main_person(frames: Sequence[FramePose], max_jump: float = 1.5) -> list[int | None]:
    """Index of the main person in every frame (None where there is none).

    The main person starts as the most prominent person (body size times confidence) of the first frame that has
    one, then is followed by proximity: in each frame, the person whose body centre is nearest to the last known
    centre, if it moved less than `max_jump` body sizes; otherwise (a cut, or the person left) the most prominent
    person takes over.
    """
    out: list[int | None] = []
    last: tuple[npt.NDArray[np.float64], float] | None = None
    for frame in frames:
        candidates = [i for i, p in enumerate(frame.people) if is_person(p)]
        if not candidates:
            out.append(None)
            continue
        chosen = None
        if last is not None:
            centre, size = last
            dists = []
            for i in candidates:
                found = _box(frame.people[i])
                assert found is not None  # a person has visible points
                dists.append(float(np.linalg.norm(found[0] - centre)) / size)
            best = int(np.argmin(dists))
            if dists[best] <= max_jump:
                chosen = candidates[best]
        if chosen is None:
            chosen = max(candidates, key=lambda i: _prominence(frame.people[i]))
        out.append(chosen)
        last = _box(frame.people[chosen])
    return out


# --------------------------------------------------------------------------------------------- linear fit
def fit_linear_transform(
    reference: FramePose,
    driving: Sequence[FramePose],
    main: Sequence[int | None],
) -> LinearTransform:
    """The published code's global rescale (module docstring), with its crashes turned into fallbacks or PoseErrors."""
    if not reference.people:
        raise PoseError("No person found in the reference image; use a photo in which one person is clearly visible")
    ref_person = reference.people[0]
    ids = [i for i in FIT_IDS if ref_person.body_scores[i] > SCORE_THRESHOLD]
    if len(ids) < 2:
        raise PoseError(
            "The reference person shows fewer than 2 of the points alignment needs (head, neck, shoulders, hips, "
            "knees, ankles); use a photo where at least the head and shoulders are visible"
        )
    ref_body = ref_person.body[ids]

    fit_frames = [
        f for f, frame in enumerate(driving) if len(frame.people) == 1 and main[f] is not None and main[f] == 0
    ]
    fit_on = "single-person frames"
    if not fit_frames:
        fit_frames = [f for f, m in enumerate(main) if m is not None]
        fit_on = "the main person of every frame"
        if fit_frames:
            logger.info("No driving frame has exactly one person; fitting on the tracked main person instead")
    if not fit_frames:
        raise PoseError(
            "No person found in any frame of the driving video; use a video in which one person is clearly visible"
        )
    det = np.stack([driving[f].people[main[f]].body[ids] for f in fit_frames])  # [N, K, 2]
    n = len(fit_frames)
    det_y = det[:, :, 1].flatten()
    if float(np.ptp(det_y)) < 1e-9:
        raise PoseError("The driving keypoints used for alignment have no vertical extent; check the driving video")
    ay, by = np.polyfit(det_y, np.tile(ref_body[:, 1], n), 1)
    ref_extent = float(np.ptp(ref_body[:, 1]))
    residual = float(np.sqrt(np.mean((ay * det_y + by - np.tile(ref_body[:, 1], n)) ** 2)))
    relative_residual = residual / ref_extent if ref_extent > 0 else float("inf")

    # Same float operations, in the same order, as the published code (it overwrites `by` twice).
    ref_y0, det_y0 = ref_body[:, 1][0], det[0, :, 1][0]
    if ref_y0 > det_y0:
        by = ref_y0 - det_y0
    elif ref_y0 < det_y0:
        by = -(det_y0 - ref_y0)
    fh, fw = driving[0].height, driving[0].width
    height, width = reference.height, reference.width
    ax = ay / (fh / fw / height * width)
    bx = np.mean(np.tile(ref_body[:, 0], n) - det[:, :, 0].flatten() * ax)

    # Anchor: the first fitted id (the nose when the reference shows it) of the main person in the earliest frame
    # where it is visible. The published code always takes frame 0's person 0 nose, whatever its score.
    anchor_point = ids[0]
    anchor_frame = next(
        (
            f
            for f, m in enumerate(main)
            if m is not None and driving[f].people[m].body_scores[anchor_point] > SCORE_THRESHOLD
        ),
        None,
    )
    if anchor_frame is None:
        anchor_frame = fit_frames[0]
        logger.warning(
            "The driving person never shows keypoint %d clearly; anchoring the vertical offset on frame %d anyway",
            anchor_point,
            anchor_frame,
        )
    elif anchor_frame != 0 or main[0] != 0:
        logger.info("Vertical anchor: keypoint %d of driving frame %d", anchor_point, anchor_frame)
    anchored = driving[anchor_frame].people[main[anchor_frame]].body[anchor_point, 1] * ay + by
    if ref_y0 > anchored:
        by = by + ref_y0 - anchored
    elif ref_y0 < anchored:
        by = by - (anchored - ref_y0)

    return LinearTransform(
        scale=(float(ax), float(ay)),
        offset=(float(bx), float(by)),
        fit_ids=tuple(ids),
        fit_frames=tuple(fit_frames),
        fit_on=fit_on,
        anchor_frame=int(anchor_frame),
        anchor_point=int(anchor_point),
        relative_residual=relative_residual,
    )


# --------------------------------------------------------------------------------------------- smoothing


def smooth_people(people: Sequence[PersonPose | None], sigma: float) -> list[PersonPose | None]:
    """Zero-phase Gaussian smoothing of keypoints over time, each point weighted by its visibility.

    Only points scoring above 0.3 contribute and are moved, so a point that disappears is neither dragged towards
    its garbage location nor invented. Frames without the person are gaps, not zeros.
    """
    from scipy.ndimage import gaussian_filter1d

    if sigma <= 0 or not any(p is not None for p in people):
        return list(people)
    template = next(p for p in people if p is not None)
    out = [p.copy() if p is not None else None for p in people]
    for part, _ in PARTS:
        count = getattr(template, part).shape[0]
        xy = np.zeros((len(people), count, 2))
        weight = np.zeros((len(people), count))
        for t, p in enumerate(people):
            if p is not None:
                xy[t] = getattr(p, part)
                weight[t] = getattr(p, f"{part}_scores") > SCORE_THRESHOLD
        num = gaussian_filter1d(xy * weight[..., None], sigma, axis=0, mode="nearest")
        den = gaussian_filter1d(weight, sigma, axis=0, mode="nearest")
        for t, p in enumerate(out):
            if p is None:
                continue
            move = (weight[t] > 0) & (den[t] > 1e-6)
            pts = getattr(p, part)
            pts[move] = num[t][move] / den[t][move][:, None]
    return out


# --------------------------------------------------------------------------------------------- retarget
def _bone_lengths(points: npt.NDArray[np.float64], scores: npt.NDArray[np.float64]) -> dict[tuple[int, int], float]:
    out = {}
    for parent, child in BONES:
        if scores[parent] > SCORE_THRESHOLD and scores[child] > SCORE_THRESHOLD:
            out[(parent, child)] = float(np.linalg.norm(points[child] - points[parent]))
    return out


def retarget_ratios(
    reference: PersonPose, driving: Sequence[PersonPose | None], height: int, width: int
) -> dict[tuple[int, int], float]:
    """Per-bone length ratio reference / typical driving, measured in reference pixels, mirrored pairs shared."""
    px = np.array([width, height], dtype=np.float64)
    ref_len = _bone_lengths(reference.body * px, reference.body_scores)
    drv: dict[tuple[int, int], list[float]] = {}
    for p in driving:
        if p is None:
            continue
        for bone, length in _bone_lengths(p.body * px, p.body_scores).items():
            drv.setdefault(bone, []).append(length)
    raw = {}
    for bone in BONES:
        if bone in ref_len and drv.get(bone):
            typical = float(np.percentile(drv[bone], _RETARGET_PERCENTILE))
            if typical > 1e-6 and ref_len[bone] > 1e-6:
                raw[bone] = ref_len[bone] / typical
    ratios = {}
    lo, hi = RETARGET_RATIO_LIMITS
    inverse = {v: k for k, v in _MIRROR.items()}
    for bone in BONES:
        twin = _MIRROR.get(bone) or inverse.get(bone)
        values = [raw[b] for b in (bone, twin) if b is not None and b in raw]
        ratio = float(np.exp(np.mean(np.log(values)))) if values else 1.0
        ratios[bone] = float(np.clip(ratio, lo, hi))
    return ratios


def retarget_person(person: PersonPose, ratios: dict[tuple[int, int], float], height: int, width: int) -> PersonPose:
    """Rescale each bone by its ratio from the neck outwards; hands follow the wrists, the face follows the nose."""
    px = np.array([width, height], dtype=np.float64)
    old = person.body * px
    new = old.copy()
    for parent, child in BONES:
        new[child] = new[parent] + ratios.get((parent, child), 1.0) * (old[child] - old[parent])
    out = person.copy()
    out.body = new / px
    out.left_hand = person.left_hand + (new[7] - old[7]) / px
    out.right_hand = person.right_hand + (new[4] - old[4]) / px
    out.face = person.face + (new[0] - old[0]) / px
    return out


# --------------------------------------------------------------------------------------------- all together
def align_poses(
    reference: FramePose, driving: Sequence[FramePose], options: AlignOptions | None = None
) -> AlignResult:
    """Map driving poses (normalised to the driving video) into the reference image's frame.

    Returns one `FramePose` per driving frame, of the reference's size, ready for `draw_pose`.
    """
    options = options or AlignOptions()
    if not driving:
        raise InputError("No driving poses to align; the driving video selection is empty")
    main = track_main_person(driving)
    if options.mode == "linear":
        transform = fit_linear_transform(reference, driving, main)
    else:
        if not any(m is not None for m in main):
            raise PoseError(
                "No person found in any frame of the driving video; use a video in which one person is clearly visible"
            )
        transform = LinearTransform(scale=(1.0, 1.0), offset=(0.0, 0.0), fit_on="none")

    main_people: list[PersonPose | None] = [
        transform.apply(frame.people[m]) if m is not None else None for frame, m in zip(driving, main, strict=True)
    ]
    if options.smooth > 0:
        main_people = smooth_people(main_people, options.smooth)
    ratios: dict[tuple[int, int], float] = {}
    if options.retarget:
        if not reference.people:
            raise PoseError("Retargeting needs a person in the reference image; none was found")
        ratios = retarget_ratios(reference.people[0], main_people, reference.height, reference.width)
        main_people = [
            retarget_person(p, ratios, reference.height, reference.width) if p is not None else None
            for p in main_people
        ]

    frames = []
    for frame, m, mp in zip(driving, main, main_people, strict=True):
        if options.people == "main":
            people = [mp] if mp is not None else []
        else:
            people = [
                mp if i == m else transform.apply(p) for i, p in enumerate(frame.people) if i == m or is_person(p)
            ]
        frames.append(FramePose(people=people, height=reference.height, width=reference.width))
    return AlignResult(
        frames=frames,
        main=list(main),
        main_people=main_people,
        transform=transform,
        retarget_ratios={f"{a}-{b}": r for (a, b), r in ratios.items()},
    )
