"""Keypoints to a skeleton image, drawn exactly as the pose videos DynamiCtrl was trained on.

This follows the published code's `dwpose/util.py::draw_pose` step by step, because the model was conditioned on
these renders and any change of colour, thickness or order is a distribution shift:

- drawing happens on a canvas whose short side is 2160 px, which is then resized (bilinear) to the target size;
- the canvas is BGR and converted to RGB at the end, so every colour of the lists below comes out with red and
  blue swapped (the first limb colour (255, 0, 0) is blue in the output);
- 17 limbs (the two ear-shoulder limbs of the OpenPose list are skipped) as filled ellipses, dimmed by the product
  of their endpoint scores and drawn only if both are at least 0.3; then the whole canvas is multiplied by 0.6;
- body points (score above 0.3), hands (no score threshold: any point at pixel x, y >= 1 is drawn), face last.

`PoseStyle` holds the sizes (canvas, stick width, point radii); `PUBLISHED_STYLE` is the published drawing. A model
trained at a small size draws thicker (at 64 px the published sticks shrink to a few pixels): its folder stores its
style in `dynamictrl.json` (`pose_render`), and inference draws with it.

One deliberate difference: for a body point scored exactly 0.3 (drawn as a limb end, not as a point) the published
code draws the limb to the last body point of the last person (its `subset` index is -1); we draw it to the point
itself. No network output hits 0.3 exactly (the scores are float32 upcast).
"""

from __future__ import annotations

import colorsys
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from ..errors import InputError
from .types import SCORE_THRESHOLD, FramePose, PersonPose

CANVAS_SHORT_SIDE = 2160
STICK_WIDTH = 4
BODY_POINT_RADIUS = 4
HAND_LINE_THICKNESS = 2
HAND_POINT_RADIUS = 4
FACE_POINT_RADIUS = 3


@dataclass(frozen=True)
class PoseStyle:
    """Sizes of a pose drawing, in pixels of the canvas (whose short side is `canvas_short_side`).

    The defaults are the published drawing. Lines and points keep their canvas size whatever the output size, so a
    small output from the published 2160-px canvas gets sticks `4 * size / 2160` px wide.
    """

    canvas_short_side: int = CANVAS_SHORT_SIDE
    stick_width: int = STICK_WIDTH  # half the short axis of each limb's ellipse
    body_point_radius: int = BODY_POINT_RADIUS
    hand_line_thickness: int = HAND_LINE_THICKNESS
    hand_point_radius: int = HAND_POINT_RADIUS
    face_point_radius: int = FACE_POINT_RADIUS

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            low = 16 if f.name == "canvas_short_side" else 1
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= 8192:
                raise InputError(f"pose_render.{f.name} must be an integer from {low} to 8192, got {value!r}")

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any] | None) -> PoseStyle:
        """The style a model folder's `pose_render` settings describe (None or {}: the published drawing)."""
        if not settings:
            return PUBLISHED_STYLE
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(settings) - known)
        if unknown:
            raise InputError(f"pose_render has unknown keys {unknown}; known: {sorted(known)}")
        return cls(**dict(settings))

    def to_json(self) -> dict[str, int]:
        return asdict(self)


PUBLISHED_STYLE = PoseStyle()

# Hand and face points are drawn when their integer pixel coordinates exceed this (the published code's `eps`).
_EPS = 0.01

# OpenPose limbs, 0-based (the published code lists them 1-based). Only the first 17 are drawn.
LIMBS = (
    (1, 2),
    (1, 5),
    (2, 3),
    (3, 4),
    (5, 6),
    (6, 7),
    (1, 8),
    (8, 9),
    (9, 10),
    (1, 11),
    (11, 12),
    (12, 13),
    (1, 0),
    (0, 14),
    (14, 16),
    (0, 15),
    (15, 17),
    (2, 16),
    (5, 17),
)
NUM_DRAWN_LIMBS = 17

# Canvas (BGR) colours of limb i / body point i.
BODY_COLORS = (
    (255, 0, 0),
    (255, 85, 0),
    (255, 170, 0),
    (255, 255, 0),
    (170, 255, 0),
    (85, 255, 0),
    (0, 255, 0),
    (0, 255, 85),
    (0, 255, 170),
    (0, 255, 255),
    (0, 170, 255),
    (0, 85, 255),
    (0, 0, 255),
    (85, 0, 255),
    (170, 0, 255),
    (255, 0, 255),
    (255, 0, 170),
    (255, 0, 85),
)

HAND_EDGES = tuple((0 if j % 4 == 0 else j, j + 1) for j in range(20))
# Canvas colour of hand edge i at full score: HSV hue i/20 (the published code uses matplotlib's hsv_to_rgb, whose
# formula colorsys shares).
HAND_EDGE_COLORS = tuple(colorsys.hsv_to_rgb(i / float(len(HAND_EDGES)), 1.0, 1.0) for i in range(len(HAND_EDGES)))

# floor(v * 0.6) for every uint8 v: the published `(canvas * 0.6).astype(np.uint8)` without a float64 canvas.
_DIM_LUT = (np.arange(256) * 0.6).astype(np.uint8)


def canvas_size(height: int, width: int, short_side: int = CANVAS_SHORT_SIDE) -> tuple[int, int]:
    """(height, width) of the drawing canvas: the target scaled so that its short side is `short_side` px."""
    short = min(height, width)
    ratio = (short_side / short) if short != short_side else 1
    return int(height * ratio), int(width * ratio)


def _as_people(pose: FramePose | Sequence[PersonPose] | Mapping[str, Any]) -> list[PersonPose]:
    if isinstance(pose, FramePose):
        return list(pose.people)
    if isinstance(pose, PersonPose):
        return [pose]
    if isinstance(pose, Mapping):
        return people_from_dwpose_dict(pose)
    return list(pose)


def people_from_dwpose_dict(pose: Mapping[str, Any]) -> list[PersonPose]:
    """Read the pose dict of the published code's DWPose wrapper (`bodies.candidate/subset/score`, `hands`,
    `hands_score`, `faces`, `faces_score`).
    """
    bodies = pose["bodies"]
    scores = np.asarray(bodies["score"], dtype=np.float64).reshape(-1, 18)
    n = len(scores)
    candidate = np.asarray(bodies["candidate"], dtype=np.float64).reshape(n, 18, 2)
    hands = np.asarray(pose["hands"], dtype=np.float64).reshape(2 * n, 21, 2)
    hands_score = np.asarray(pose["hands_score"], dtype=np.float64).reshape(2 * n, 21)
    faces = np.asarray(pose["faces"], dtype=np.float64).reshape(n, 68, 2)
    faces_score = np.asarray(pose["faces_score"], dtype=np.float64).reshape(n, 68)
    return [
        PersonPose(
            body=candidate[i],
            body_scores=scores[i],
            left_hand=hands[i],
            left_hand_scores=hands_score[i],
            right_hand=hands[n + i],
            right_hand_scores=hands_score[n + i],
            face=faces[i],
            face_scores=faces_score[i],
        )
        for i in range(n)
    ]


def _blend(color: Sequence[int], alpha: float) -> list[int]:
    return [int(c * alpha) for c in color]


def _finite(*values: float) -> bool:
    return all(math.isfinite(v) and abs(v) < 1e7 for v in values)


def _draw_body(canvas: npt.NDArray[np.uint8], people: list[PersonPose], style: PoseStyle) -> None:
    h, w = canvas.shape[:2]
    # Bounding box of everything drawn so far: the 0.6 dimming only changes non-zero pixels, so it is applied there.
    x0, y0, x1, y1 = w, h, 0, 0
    for i in range(NUM_DRAWN_LIMBS):
        a, b = LIMBS[i]
        for person in people:
            s1, s2 = person.body_scores[a], person.body_scores[b]
            if s1 < SCORE_THRESHOLD or s2 < SCORE_THRESHOLD:
                continue
            # The published code calls canvas x "Y" and canvas y "X"; kept so every float operation matches.
            y_a, y_b = person.body[a, 0] * float(w), person.body[b, 0] * float(w)
            x_a, x_b = person.body[a, 1] * float(h), person.body[b, 1] * float(h)
            if not _finite(y_a, y_b, x_a, x_b):
                continue
            m_x, m_y = (x_a + x_b) / 2, (y_a + y_b) / 2
            length = ((x_a - x_b) ** 2 + (y_a - y_b) ** 2) ** 0.5
            angle = math.degrees(math.atan2(x_a - x_b, y_a - y_b))
            polygon = cv2.ellipse2Poly(
                (int(m_y), int(m_x)), (int(length / 2), style.stick_width), int(angle), 0, 360, 1
            )
            cv2.fillConvexPoly(canvas, polygon, _blend(BODY_COLORS[i], s1 * s2))
            x0, y0 = min(x0, int(polygon[:, 0].min())), min(y0, int(polygon[:, 1].min()))
            x1, y1 = max(x1, int(polygon[:, 0].max()) + 1), max(y1, int(polygon[:, 1].max()) + 1)

    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if x1 > x0 and y1 > y0:
        region = canvas[y0:y1, x0:x1]
        region[...] = cv2.LUT(region, _DIM_LUT)

    for i in range(len(BODY_COLORS)):
        for person in people:
            score = person.body_scores[i]
            if not score > SCORE_THRESHOLD:
                continue
            x, y = person.body[i, 0] * w, person.body[i, 1] * h
            if not _finite(x, y):
                continue
            cv2.circle(canvas, (int(x), int(y)), style.body_point_radius, _blend(BODY_COLORS[i], score), thickness=-1)


def _draw_hands(canvas: npt.NDArray[np.uint8], hands: list[tuple[npt.NDArray, npt.NDArray]], style: PoseStyle) -> None:
    h, w = canvas.shape[:2]
    for points, scores in hands:
        px = [(points[k, 0] * w, points[k, 1] * h) for k in range(len(points))]
        ok = [_finite(x, y) for x, y in px]
        ipx = [(int(x), int(y)) if good else (0, 0) for (x, y), good in zip(px, ok, strict=True)]
        for e, (a, b) in enumerate(HAND_EDGES):
            (x1, y1), (x2, y2) = ipx[a], ipx[b]
            if x1 > _EPS and y1 > _EPS and x2 > _EPS and y2 > _EPS:
                level = int(scores[a] * scores[b] * 255)
                color = tuple(c * level for c in HAND_EDGE_COLORS[e])
                cv2.line(canvas, (x1, y1), (x2, y2), color, thickness=style.hand_line_thickness)
        for k, (x, y) in enumerate(ipx):
            if x > _EPS and y > _EPS:
                cv2.circle(canvas, (x, y), style.hand_point_radius, (0, 0, int(scores[k] * 255)), thickness=-1)


def _draw_faces(canvas: npt.NDArray[np.uint8], people: list[PersonPose], style: PoseStyle) -> None:
    h, w = canvas.shape[:2]
    for person in people:
        for (fx, fy), score in zip(person.face, person.face_scores, strict=True):
            x, y = fx * w, fy * h
            if not _finite(x, y):
                continue
            x, y = int(x), int(y)
            level = int(score * 255)
            if x > _EPS and y > _EPS:
                cv2.circle(canvas, (x, y), style.face_point_radius, (level, level, level), thickness=-1)


def draw_pose(
    pose: FramePose | PersonPose | Sequence[PersonPose] | Mapping[str, Any],
    height: int,
    width: int,
    style: PoseStyle | None = None,
) -> npt.NDArray[np.uint8]:
    """Draw all people of `pose` (normalised coordinates) as an RGB uint8 image `[height, width, 3]`.

    `pose` may be a `FramePose`, one or several `PersonPose`, or the published code's pose dict. The image size is
    independent of the size the keypoints were detected at: coordinates are fractions of the image. `style`
    (default: the published drawing) sets the canvas and the line and point sizes.
    """
    style = style or PUBLISHED_STYLE
    if height < 1 or width < 1:
        raise ValueError(f"height and width must be positive, got {height}x{width}")
    people = _as_people(pose)
    # np.zeros maps zero pages lazily: only the pages drawn on cost anything, unlike clearing a reused canvas.
    canvas = np.zeros((*canvas_size(height, width, style.canvas_short_side), 3), dtype=np.uint8)
    _draw_body(canvas, people, style)
    # The published code stacks all left hands, then all right hands.
    hands = [(p.left_hand, p.left_hand_scores) for p in people] + [(p.right_hand, p.right_hand_scores) for p in people]
    _draw_hands(canvas, hands, style)
    _draw_faces(canvas, people, style)
    small = cv2.resize(canvas, (width, height)) if canvas.shape[:2] != (height, width) else canvas.copy()
    return np.ascontiguousarray(small[:, :, ::-1])
