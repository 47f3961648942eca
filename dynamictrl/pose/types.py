"""Whole-body keypoints of one image: the structure every backend returns and every later stage reads.

Layout follows what the DWPose wrapper of the published code hands to its drawing code (`dwpose/dwpose_detector.py`),
split per person instead of flattened:

- `body [18, 2]` in OpenPose order (see `BODY_NAMES`), the neck being the mean of the shoulders;
- `left_hand [21, 2]`, `right_hand [21, 2]` (the person's own left and right, COCO-WholeBody/MediaPipe hand order:
  wrist, then thumb, index, middle, ring and little finger from base to tip);
- `face [68, 2]` (the iBUG-300W 68-point layout of COCO-WholeBody);
- one score per point (`*_scores`), 0 where a point is missing.

Coordinates are normalised by the image width (x) and height (y), like the published code's `candidate`, so a pose
can be drawn on a canvas of another size. Points outside the image have coordinates outside [0, 1].

COCO-WholeBody (133 points, what the DWPose network outputs) converts with `FramePose.from_wholebody`, which applies
the published code's neck point, thresholds and re-ordering.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ..errors import InputError
from ..io.atomic import write_json_atomic

BODY_NAMES = (
    "nose",
    "neck",
    "right_shoulder",
    "right_elbow",
    "right_wrist",
    "left_shoulder",
    "left_elbow",
    "left_wrist",
    "right_hip",
    "right_knee",
    "right_ankle",
    "left_hip",
    "left_knee",
    "left_ankle",
    "right_eye",
    "left_eye",
    "right_ear",
    "left_ear",
)
NUM_BODY, NUM_HAND, NUM_FACE = 18, 21, 68

# A body point counts as present above this score: the published code's `subset` threshold (dwpose_detector.py) and
# its limb threshold (util.py).
SCORE_THRESHOLD = 0.3

# The parts of a person, in serialisation order: (name, number of points).
PARTS = (("body", NUM_BODY), ("left_hand", NUM_HAND), ("right_hand", NUM_HAND), ("face", NUM_FACE))

# COCO-WholeBody -> OpenPose body order, after the neck is inserted at index 17 (wholebody.py):
# OpenPose slot WHOLEBODY_TO_OPENPOSE_DST[i] takes point WHOLEBODY_TO_OPENPOSE_SRC[i]; slots 0 (nose), 5 (left
# shoulder) and 11 (left hip) keep their COCO index.
WHOLEBODY_TO_OPENPOSE_DST = (1, 2, 3, 4, 6, 7, 8, 9, 10, 12, 13, 14, 15, 16, 17)
WHOLEBODY_TO_OPENPOSE_SRC = (17, 6, 8, 10, 7, 9, 12, 14, 16, 13, 15, 2, 1, 4, 3)
# Slices of the 134-point array (133 + neck): feet 18:24 are dropped, as in the published code.
_FACE = slice(24, 92)
_LEFT_HAND = slice(92, 113)
_RIGHT_HAND = slice(113, 134)


def _points(value: npt.ArrayLike, count: int, name: str) -> npt.NDArray[np.float64]:
    arr = np.asarray(value, dtype=np.float64)
    if arr.shape != (count, 2):
        raise ValueError(f"{name} must have shape ({count}, 2), got {arr.shape}")
    return arr


def _scores(value: npt.ArrayLike, count: int, name: str) -> npt.NDArray[np.float64]:
    arr = np.asarray(value, dtype=np.float64)
    if arr.shape != (count,):
        raise ValueError(f"{name} must have shape ({count},), got {arr.shape}")
    return arr


@dataclass
class PersonPose:
    """One person's whole-body keypoints, normalised to [0, 1] by image width/height. Scores 0 = missing."""

    body: npt.NDArray[np.float64]
    body_scores: npt.NDArray[np.float64]
    left_hand: npt.NDArray[np.float64]
    left_hand_scores: npt.NDArray[np.float64]
    right_hand: npt.NDArray[np.float64]
    right_hand_scores: npt.NDArray[np.float64]
    face: npt.NDArray[np.float64]
    face_scores: npt.NDArray[np.float64]

    def __post_init__(self) -> None:
        for part, count in PARTS:
            setattr(self, part, _points(getattr(self, part), count, part))
            setattr(self, f"{part}_scores", _scores(getattr(self, f"{part}_scores"), count, f"{part}_scores"))

    @classmethod
    def empty(cls) -> PersonPose:
        """A person with every point missing (zeros, score 0): nothing of it is drawn."""
        kwargs: dict[str, Any] = {}
        for part, count in PARTS:
            kwargs[part] = np.zeros((count, 2))
            kwargs[f"{part}_scores"] = np.zeros(count)
        return cls(**kwargs)

    def copy(self) -> PersonPose:
        return PersonPose(**{k: v.copy() for k, v in self._fields().items()})

    def _fields(self) -> dict[str, npt.NDArray[np.float64]]:
        out = {}
        for part, _ in PARTS:
            out[part] = getattr(self, part)
            out[f"{part}_scores"] = getattr(self, f"{part}_scores")
        return out

    def transformed(self, scale: npt.ArrayLike, offset: npt.ArrayLike) -> PersonPose:
        """Every point (body, hands, face, visible or not) mapped by `p * scale + offset`, as in the published code."""
        scale, offset = np.asarray(scale, dtype=np.float64), np.asarray(offset, dtype=np.float64)
        new = self.copy()
        for part, _ in PARTS:
            setattr(new, part, getattr(self, part) * scale + offset)
        return new

    def visible_body(self, threshold: float = SCORE_THRESHOLD) -> npt.NDArray[np.bool_]:
        return self.body_scores > threshold

    def body_box(self, threshold: float = SCORE_THRESHOLD) -> tuple[float, float, float, float] | None:
        """(x0, y0, x1, y1) of the visible body points, or None if none is visible."""
        vis = self.visible_body(threshold)
        if not vis.any():
            return None
        pts = self.body[vis]
        return float(pts[:, 0].min()), float(pts[:, 1].min()), float(pts[:, 0].max()), float(pts[:, 1].max())

    def to_dict(self) -> dict[str, list]:
        return {k: v.tolist() for k, v in self._fields().items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PersonPose:
        missing = [k for k in cls.empty()._fields() if k not in data]
        if missing:
            raise ValueError(f"person keypoints lack {', '.join(missing)}")
        return cls(**{k: data[k] for k in cls.empty()._fields()})


@dataclass
class FramePose:
    """All people found in one image of `height` x `width` pixels (people[0] = the detector's most confident)."""

    people: list[PersonPose] = field(default_factory=list)
    height: int = 0
    width: int = 0

    @classmethod
    def from_wholebody(cls, keypoints: npt.ArrayLike, scores: npt.ArrayLike, height: int, width: int) -> FramePose:
        """Build from COCO-WholeBody output in pixels (`keypoints [n,133,2]`, `scores [n,133]`).

        This is the published code's `Wholebody.__call__` + `DWposeDetector.__call__`: a neck point (mean of the
        shoulders, score 1 if both shoulders score above 0.3 else 0) is inserted at index 17, the first 18 points
        are re-ordered to OpenPose order, coordinates are divided by the image size, and the feet are dropped.
        """
        kpts, scs = np.asarray(keypoints), np.asarray(scores)
        # The published code computes in the dtype it is given (float64 from its network path, float32 when fed float32
        # keypoints); the last bits decide which pixel a point lands on, so keep it.
        dtype = np.result_type(kpts.dtype, scs.dtype)
        if not np.issubdtype(dtype, np.floating):
            dtype = np.dtype(np.float64)
        kpts = kpts.astype(dtype).reshape(-1, 133, 2)
        scs = scs.astype(dtype).reshape(-1, 133)
        if len(kpts) != len(scs):
            raise ValueError(f"{len(kpts)} keypoint rows but {len(scs)} score rows")
        neck = kpts[:, [5, 6]].mean(axis=1)
        neck_score = np.logical_and(scs[:, 5] > SCORE_THRESHOLD, scs[:, 6] > SCORE_THRESHOLD).astype(dtype)
        kpts = np.insert(kpts, 17, neck, axis=1)
        scs = np.insert(scs, 17, neck_score, axis=1)
        kpts[:, WHOLEBODY_TO_OPENPOSE_DST] = kpts[:, WHOLEBODY_TO_OPENPOSE_SRC]
        scs[:, WHOLEBODY_TO_OPENPOSE_DST] = scs[:, WHOLEBODY_TO_OPENPOSE_SRC]
        kpts[..., 0] /= float(width)
        kpts[..., 1] /= float(height)
        kpts, scs = kpts.astype(np.float64), scs.astype(np.float64)
        people = [
            PersonPose(
                body=k[:NUM_BODY],
                body_scores=s[:NUM_BODY],
                left_hand=k[_LEFT_HAND],
                left_hand_scores=s[_LEFT_HAND],
                right_hand=k[_RIGHT_HAND],
                right_hand_scores=s[_RIGHT_HAND],
                face=k[_FACE],
                face_scores=s[_FACE],
            )
            for k, s in zip(kpts, scs, strict=True)
        ]
        return cls(people=people, height=int(height), width=int(width))

    def to_dict(self) -> dict[str, Any]:
        return {"height": self.height, "width": self.width, "people": [p.to_dict() for p in self.people]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FramePose:
        return cls(
            people=[PersonPose.from_dict(p) for p in data.get("people", [])],
            height=int(data["height"]),
            width=int(data["width"]),
        )

    def with_people(self, people: list[PersonPose]) -> FramePose:
        return FramePose(people=people, height=self.height, width=self.width)


# ------------------------------------------------------------------------------------------- serialisation
KEYPOINTS_FORMAT = "dynamictrl-pose-keypoints"
KEYPOINTS_VERSION = 1


def keypoints_document(frames: Sequence[FramePose], meta: dict[str, Any] | None = None) -> dict[str, Any]:
    """The JSON document of a pose sequence: format tag, point names, metadata and one entry per frame."""
    return {
        "format": KEYPOINTS_FORMAT,
        "version": KEYPOINTS_VERSION,
        "coordinates": "normalised: x / image width, y / image height",
        "body_names": list(BODY_NAMES),
        "meta": meta or {},
        "frames": [f.to_dict() for f in frames],
    }


def save_keypoints_json(
    path: str | os.PathLike, frames: Sequence[FramePose], meta: dict[str, Any] | None = None
) -> Path:
    """Write a pose sequence as JSON, atomically."""
    return write_json_atomic(path, keypoints_document(frames, meta), indent=None)


def load_keypoints_json(path: str | os.PathLike) -> tuple[list[FramePose], dict[str, Any]]:
    """Read what `save_keypoints_json` wrote: (frames, meta)."""
    p = Path(path)
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
        if doc.get("format") != KEYPOINTS_FORMAT:
            raise ValueError(f"format is {doc.get('format')!r}")
        return [FramePose.from_dict(f) for f in doc["frames"]], dict(doc.get("meta", {}))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(f"{p} is not a dynamictrl keypoints file ({exc}); write one with `dynamictrl pose`") from exc


def frames_to_arrays(frames: Iterable[FramePose]) -> dict[str, npt.NDArray]:
    """Pack a pose sequence into a few flat arrays (for `.npz` caches): people are stacked over frames."""
    frames = list(frames)
    out: dict[str, npt.NDArray] = {
        "num_people": np.array([len(f.people) for f in frames], dtype=np.int64),
        "sizes": np.array([[f.height, f.width] for f in frames], dtype=np.int64).reshape(-1, 2),
    }
    people = [p for f in frames for p in f.people]
    for part, count in PARTS:
        out[part] = np.stack([getattr(p, part) for p in people]) if people else np.zeros((0, count, 2))
        scores = [getattr(p, f"{part}_scores") for p in people]
        out[f"{part}_scores"] = np.stack(scores) if people else np.zeros((0, count))
    return out


def frames_from_arrays(arrays: dict[str, npt.NDArray]) -> list[FramePose]:
    """Inverse of `frames_to_arrays`."""
    frames, cursor = [], 0
    for n, (h, w) in zip(arrays["num_people"].tolist(), arrays["sizes"].tolist(), strict=True):
        people = []
        for i in range(cursor, cursor + n):
            kwargs = {}
            for part, _ in PARTS:
                kwargs[part] = arrays[part][i]
                kwargs[f"{part}_scores"] = arrays[f"{part}_scores"][i]
            people.append(PersonPose(**kwargs))
        cursor += n
        frames.append(FramePose(people=people, height=h, width=w))
    return frames
