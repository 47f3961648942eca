"""Pose fidelity: does the generated person follow the driving pose? Keypoint math plus the pose-stage glue.

Poses of the generated video are re-extracted with the pose stage and compared with the driving poses (extracted
from the ground-truth video in the self-driven protocol, or read from the pose stage's keypoint JSON).

Keypoints use the pose stage's layout, concatenated into one array of 128 points per frame: 18 OpenPose body
points (0 nose, 1 neck, 2-4 right arm, 5-7 left arm, 8-10 right leg, 11-13 left leg, 14-17 eyes and ears), 21
left-hand, 21 right-hand and 68 face points; coordinates normalised to [0, 1] by width and height, score 0 =
missing.

Metrics (per video, and per body part):

- `pose_distance`: mean Euclidean distance between generated and driving keypoints, in pixels, divided by the
  driving person's size in that frame (the larger side of the bounding box of its confident body keypoints, the
  normalisation of PCK in Yang & Ramanan, TPAMI 2013). Only keypoints confident in both are averaged.
- `pck@a`: fraction of the driving person's confident keypoints that the generated person has within `a` times that
  size. A keypoint the generated frame lacks counts as wrong, so PCK also penalises missing limbs.
- `pose_detection_rate`: fraction of the driving person's confident keypoints that are confident in the generated
  frame.
- `keypoint_jitter`: mean norm of the second difference (acceleration) of each keypoint over three consecutive
  frames where it is confident, divided by the person's size: shaky, flickering limbs raise it. Reported for the
  generated and the driving video (`keypoint_jitter_reference`), since real motion has acceleration too.

The headline numbers are over the 18 body keypoints. Hands and face are 110 of the 128 points and would otherwise
dominate them, and the offline backend loses them on soft or blurry frames even when the body is right; they are
reported under `parts` (`hands`, `face`), and all 128 points together under `parts.whole_body`.

Only the main person of each frame is compared: the one whose confident body keypoints span the largest box.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from ..errors import InputError, MetricUnavailableError

logger = logging.getLogger(__name__)

PART_SIZES = {"body": 18, "left_hand": 21, "right_hand": 21, "face": 68}
NUM_KEYPOINTS = sum(PART_SIZES.values())
_OFFSETS = {"body": 0, "left_hand": 18, "right_hand": 39, "face": 60}

# Body parts reported separately (indices into the 128-point layout).
BODY_GROUPS: dict[str, tuple[int, ...]] = {
    "head": (0, 14, 15, 16, 17),
    "torso": (1, 2, 5, 8, 11),
    "arms": (3, 4, 6, 7),
    "legs": (9, 10, 12, 13),
    "hands": tuple(range(18, 60)),
    "face": tuple(range(60, 128)),
}
BODY_INDICES = tuple(range(18))


@dataclass
class PoseTrack:
    """The main person's keypoints over a video: `keypoints [F, 128, 2]` normalised, `scores [F, 128]`.

    `height`/`width` are the frame size the coordinates were normalised by; distances are measured in pixels of it.
    """

    keypoints: npt.NDArray[np.float64]
    scores: npt.NDArray[np.float64]
    height: int
    width: int

    def __post_init__(self) -> None:
        self.keypoints = np.asarray(self.keypoints, np.float64)
        self.scores = np.asarray(self.scores, np.float64)
        if self.keypoints.ndim != 3 or self.keypoints.shape[2] != 2 or self.scores.shape != self.keypoints.shape[:2]:
            raise ValueError(
                f"PoseTrack wants keypoints [F, K, 2] and scores [F, K], got "
                f"{self.keypoints.shape} and {self.scores.shape}"
            )

    def __len__(self) -> int:
        return len(self.keypoints)

    def pixels(self) -> npt.NDArray[np.float64]:
        return self.keypoints * np.asarray([self.width, self.height], np.float64)

    def shifted(self, dx: float = 0.0, dy: float = 0.0) -> PoseTrack:
        """A copy moved by (`dx`, `dy`) in normalised units (tests and sanity checks)."""
        return PoseTrack(self.keypoints + np.asarray([dx, dy]), self.scores.copy(), self.height, self.width)


# ------------------------------------------------------------------------------------------------ sizes
def person_sizes(track: PoseTrack, min_score: float) -> npt.NDArray[np.float64]:
    """Per frame, the larger side (pixels) of the box around the confident body keypoints; NaN if fewer than 2."""
    pixels = track.pixels()[:, BODY_INDICES]
    confident = track.scores[:, BODY_INDICES] >= min_score
    sizes = np.full(len(track), np.nan)
    for f in range(len(track)):
        points = pixels[f][confident[f]]
        if len(points) >= 2:
            extent = points.max(axis=0) - points.min(axis=0)
            if extent.max() > 0:
                sizes[f] = float(extent.max())
    return sizes


def _group_stats(
    distance: np.ndarray, valid: np.ndarray, detected: np.ndarray, thresholds: Sequence[float]
) -> dict[str, float | int | None]:
    n_valid = int(valid.sum())
    both = valid & detected
    stats: dict[str, float | int | None] = {"keypoints": n_valid}
    stats["pose_distance"] = float(distance[both].mean()) if both.any() else None
    stats["pose_detection_rate"] = float(both.sum() / n_valid) if n_valid else None
    for a in thresholds:
        hit = both & (distance <= a)
        stats[f"pck@{a:g}"] = float(hit.sum() / n_valid) if n_valid else None
    return stats


def compare_poses(
    generated: PoseTrack,
    driving: PoseTrack,
    *,
    thresholds: Sequence[float] = (0.05, 0.1),
    min_score: float = 0.3,
) -> dict[str, Any]:
    """Pose fidelity of `generated` against `driving` (same number of frames); see the module doc."""
    if len(generated) != len(driving):
        raise InputError(f"Pose tracks differ in length: {len(generated)} generated vs {len(driving)} driving frames")
    sizes = person_sizes(driving, min_score)
    frames_ok = ~np.isnan(sizes)
    valid = (driving.scores >= min_score) & frames_ok[:, None]
    detected = generated.scores >= min_score
    # Both tracks are compared in the driving frame's pixels (the protocol gives both videos the same size).
    gen_px = generated.keypoints * np.asarray([driving.width, driving.height], np.float64)
    distance = np.linalg.norm(gen_px - driving.pixels(), axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        distance = distance / sizes[:, None]
    distance = np.where(valid & detected, distance, np.inf)

    result: dict[str, Any] = {
        "frames": len(driving),
        "frames_with_driving_person": int(frames_ok.sum()),
        "frames_with_generated_person": int((detected.any(axis=1) & frames_ok).sum()),
    }
    body = list(BODY_INDICES)
    result.update(_group_stats(distance[:, body], valid[:, body], detected[:, body], thresholds))
    result["parts"] = {
        name: _group_stats(distance[:, list(idx)], valid[:, list(idx)], detected[:, list(idx)], thresholds)
        for name, idx in BODY_GROUPS.items()
    }
    result["parts"]["whole_body"] = _group_stats(distance, valid, detected, thresholds)
    result["keypoint_jitter"] = keypoint_jitter(generated, min_score, sizes)
    result["keypoint_jitter_reference"] = keypoint_jitter(driving, min_score, sizes)
    return result


def keypoint_jitter(track: PoseTrack, min_score: float, sizes: npt.NDArray[np.float64] | None = None) -> float | None:
    """Mean |p[t+1] - 2 p[t] + p[t-1]| / size over keypoints confident in the three frames; None if none are."""
    if len(track) < 3:
        return None
    if sizes is None:
        sizes = person_sizes(track, min_score)
    pixels = track.pixels()
    confident = track.scores >= min_score
    accel = np.linalg.norm(pixels[2:] - 2 * pixels[1:-1] + pixels[:-2], axis=-1)
    ok = confident[2:] & confident[1:-1] & confident[:-2] & ~np.isnan(sizes[1:-1])[:, None]
    if not ok.any():
        return None
    with np.errstate(invalid="ignore", divide="ignore"):
        normalised = accel / sizes[1:-1, None]
    return float(normalised[ok].mean())


# ------------------------------------------------------------------------------------------ pose-stage glue
def _person_arrays(person: Any) -> tuple[np.ndarray, np.ndarray]:
    """A pose-stage `PersonPose` (or a dict with the same fields) to (keypoints [128, 2], scores [128])."""
    keypoints = np.zeros((NUM_KEYPOINTS, 2))
    scores = np.zeros(NUM_KEYPOINTS)
    for part, size in PART_SIZES.items():
        get = person.get if isinstance(person, dict) else lambda name, _p=person: getattr(_p, name, None)
        points, part_scores = get(part), get(f"{part}_scores")
        if points is None or part_scores is None:
            continue
        points = np.asarray(points, np.float64).reshape(-1, 2)
        part_scores = np.asarray(part_scores, np.float64).reshape(-1)
        if len(points) != size or len(part_scores) != size:
            raise ValueError(f"{part} has {len(points)} points and {len(part_scores)} scores, expected {size}")
        start = _OFFSETS[part]
        keypoints[start : start + size] = points
        scores[start : start + size] = part_scores
    return keypoints, scores


def select_main_person(people: Sequence[Any], height: int, width: int, min_score: float) -> int | None:
    """Index of the person whose confident body keypoints span the largest box (ties: higher mean body score)."""
    best, best_key = None, (-1.0, -1.0)
    for index, person in enumerate(people):
        keypoints, scores = _person_arrays(person)
        body, body_scores = keypoints[:18] * [width, height], scores[:18]
        points = body[body_scores >= min_score]
        area = float(np.prod(points.max(axis=0) - points.min(axis=0))) if len(points) >= 2 else 0.0
        key = (area, float(body_scores.mean()))
        if len(points) >= 1 and key > best_key:
            best, best_key = index, key
    return best


def track_from_frame_poses(frame_poses: Iterable[Any], min_score: float, height: int, width: int) -> PoseTrack:
    """Main person of each pose-stage `FramePose` (`people`, `height`, `width`) as a `PoseTrack`."""
    keypoints, scores = [], []
    for frame_pose in frame_poses:
        people = frame_pose["people"] if isinstance(frame_pose, dict) else frame_pose.people
        h = int((frame_pose.get("height") if isinstance(frame_pose, dict) else frame_pose.height) or height)
        w = int((frame_pose.get("width") if isinstance(frame_pose, dict) else frame_pose.width) or width)
        index = select_main_person(people, h, w, min_score)
        if index is None:
            keypoints.append(np.zeros((NUM_KEYPOINTS, 2)))
            scores.append(np.zeros(NUM_KEYPOINTS))
        else:
            k, s = _person_arrays(people[index])
            keypoints.append(k)
            scores.append(s)
    if not keypoints:
        return PoseTrack(np.zeros((0, NUM_KEYPOINTS, 2)), np.zeros((0, NUM_KEYPOINTS)), height, width)
    return PoseTrack(np.stack(keypoints), np.stack(scores), height, width)


def load_pose_extractor(name: str = "auto", device: str = "cpu") -> Callable[[np.ndarray], Any]:
    """The pose stage's extractor, or `MetricUnavailableError` saying why pose fidelity cannot run."""
    try:
        from ..pose.extract import get_extractor
    except ImportError as exc:
        if (exc.name or "").startswith("dynamictrl"):
            hint = "this build has no pose stage"
        else:
            hint = "install the offline-pose extra: pip install mediapipe==0.10.21 --no-deps"
        raise MetricUnavailableError(
            f"pose fidelity needs the pose stage (dynamictrl.pose.extract), which cannot be imported ({exc}); {hint}"
        ) from exc
    try:
        return get_extractor(name=name, device=device)
    except MetricUnavailableError:
        raise
    except Exception as exc:  # PoseError, ModelNotFoundError, ... : only pose fidelity is lost
        raise MetricUnavailableError(f"pose fidelity: no pose extractor available ({exc})") from exc


def extract_track(
    extractor: Callable[[np.ndarray], Any], frames: npt.NDArray[np.uint8], min_score: float
) -> PoseTrack:
    """Run the pose stage on a video (uint8 RGB `[F, H, W, 3]`) and keep the main person of each frame.

    A `PoseExtractor` with `extract_sequence` gets the whole video (MediaPipe then tracks between frames, as the pose
    stage does for driving videos); a plain callable is applied frame by frame.
    """
    height, width = frames.shape[1:3]
    contiguous = (np.ascontiguousarray(f) for f in frames)
    sequence = getattr(extractor, "extract_sequence", None)
    poses = sequence(contiguous) if callable(sequence) else (extractor(f) for f in contiguous)
    return track_from_frame_poses(poses, min_score, height, width)


def load_pose_json(path: str | os.PathLike, min_score: float, height: int, width: int) -> PoseTrack:
    """The main person of each frame of a pose-stage keypoints file (`dynamictrl pose` writes it next to the video).

    Its frames are the pose video's: frame 0 is the reference photo's pose, then the aligned driving poses,
    normalised to the generated size, so frame k pairs with generated frame k.
    """
    try:
        from ..pose.types import load_keypoints_json
    except ImportError as exc:
        raise MetricUnavailableError(f"--poses needs the pose stage to read keypoint files ({exc})") from exc
    frames, _meta = load_keypoints_json(path)
    try:
        return track_from_frame_poses(frames, min_score, height, width)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{path} does not follow the pose stage's keypoint format ({exc})") from exc
