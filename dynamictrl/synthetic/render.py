"""A character drawn from keypoints alone: frames, person mask and clothes mask, anti-aliased and deterministic.

Only the body keypoints (and the hand points, when present) of `people[0]` place the parts; widths, head size and
colours come from the `Character`. So any keypoint sequence works: a generated motion, or real motion extracted from
a video and retargeted to the character (`synthetic.retarget`).

Each frame is drawn at `SUPERSAMPLE`× the output size as a *label map* (one material per pixel: skin, hair, shirt,
pattern, lower garment, shoes, eyes, mouth, and a darker outline of each), coloured over the background and
area-downscaled (`cv2.INTER_AREA`, an exact box filter for an integer factor). The masks are the label map's person
and clothes pixels, downscaled the same way and thresholded at half coverage: white (255) where the person or
their clothes cover most of a pixel, black elsewhere.

Depth order comes from the keypoints too. The shoulders' left-right order says whether the person faces the camera
(person's right shoulder on the image left) or shows the back; the nose's offset from the neck (or the one visible
ear) says which side is nearer in a profile. Facing the camera: legs, torso, then arms over it; the back: arms behind
the torso; a profile: far arm, far leg, near leg, torso, near arm. The head is drawn last.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
import numpy.typing as npt

from ..errors import InputError
from ..pose.types import SCORE_THRESHOLD, FramePose, PersonPose
from .background import BackgroundSpec, render_background
from .character import Character
from .palette import rgb

SUPERSAMPLE = 4
_SHIFT = 2  # sub-pixel bits of the cv2 drawing calls
_ONE = 1 << _SHIFT

# Materials of the label map; each drawn material m has its outline at m + 1.
SKIN, HAIR, SHIRT, LOWER, SHOE = 1, 3, 5, 7, 9
PATTERN, EYE, MOUTH = 11, 12, 13
CLOTHES_LABELS = (SHIRT, SHIRT + 1, PATTERN, LOWER, LOWER + 1)
OUTLINE_SHADE = 0.55
# Outline width in output pixels (drawn at SUPERSAMPLE × this).
OUTLINE = 0.5
# Shirt patterns in body units: stripe band width; dot spacing and radius.
STRIPE_WIDTH = 0.08
DOT_SPACING, DOT_RADIUS = 0.15, 0.045

RIGHT_ARM, LEFT_ARM = (2, 3, 4), (5, 6, 7)
RIGHT_LEG, LEFT_LEG = (8, 9, 10), (11, 12, 13)


def _lut(character: Character) -> npt.NDArray[np.uint8]:
    lut = np.zeros((16, 3), dtype=np.float64)
    for material, name in (
        (SKIN, character.skin),
        (HAIR, character.hair_colour),
        (SHIRT, character.shirt_colour),
        (LOWER, character.lower_colour),
        (SHOE, character.shoe_colour),
    ):
        lut[material] = rgb(name)
        lut[material + 1] = np.multiply(rgb(name), OUTLINE_SHADE)
    lut[PATTERN] = rgb(character.pattern_colour) if character.pattern_colour else lut[SHIRT]
    lut[EYE] = (30, 20, 20)
    lut[MOUTH] = (150, 40, 50)
    return np.rint(lut).astype(np.uint8)


# ------------------------------------------------------------------------------------------------ shapes
def _pt(p: npt.NDArray[np.float64]) -> tuple[int, int]:
    return int(round(p[0] * _ONE)), int(round(p[1] * _ONE))


class _Canvas:
    """A label map and the groups drawn on it: each group's outline is drawn first, then its fill, so a part drawn
    later is ringed by its own outline where it overlaps an earlier one."""

    def __init__(self, height: int, width: int, outline: float) -> None:
        self.labels = np.zeros((height, width), dtype=np.uint8)
        self.outline = outline

    def _shape(self, shape: tuple, value: int, grow: float) -> None:
        kind = shape[0]
        if kind == "capsule":
            _, a, b, w = shape
            thickness = max(1, int(round(w + 2 * grow)))
            cv2.line(self.labels, _pt(a), _pt(b), value, thickness=thickness, lineType=cv2.LINE_8, shift=_SHIFT)
        elif kind == "circle":
            _, c, r = shape
            radius = max(1, int(round((r + grow) * _ONE)))
            cv2.circle(self.labels, _pt(c), radius, value, thickness=-1, lineType=cv2.LINE_8, shift=_SHIFT)
        else:  # polygon
            pts = np.array([_pt(p) for p in shape[1]], dtype=np.int32)
            cv2.fillPoly(self.labels, [pts], value, lineType=cv2.LINE_8, shift=_SHIFT)
            if grow > 0:
                thickness = max(1, int(round(2 * grow)))
                cv2.polylines(self.labels, [pts], True, value, thickness=thickness, lineType=cv2.LINE_8, shift=_SHIFT)

    def group(self, material: int, shapes: list[tuple], outline: bool = True) -> None:
        if not shapes:
            return
        if outline:
            for shape in shapes:
                self._shape(shape, material + 1, self.outline)
        for shape in shapes:
            self._shape(shape, material, 0.0)


def _unit(v: npt.NDArray[np.float64], fallback: tuple[float, float] = (0.0, 1.0)) -> npt.NDArray[np.float64]:
    n = float(np.hypot(v[0], v[1]))
    return v / n if n > 1e-9 else np.array(fallback, dtype=np.float64)


# ---------------------------------------------------------------------------------------------- the person
class _Figure:
    """One person's keypoints in canvas pixels and the character's sizes there, with the view estimated."""

    def __init__(self, character: Character, person: PersonPose, height: int, width: int, scale: int) -> None:
        p = character.proportions
        self.character = character
        self.s = p.scale(height) * scale  # canvas pixels per body unit
        self.size = size = np.array([width * scale, height * scale], dtype=np.float64)
        self.body = person.body * size
        self.ok = (person.body_scores > SCORE_THRESHOLD) & np.isfinite(self.body).all(axis=1)
        self.hands = {}
        hands = ((4, person.right_hand, person.right_hand_scores), (7, person.left_hand, person.left_hand_scores))
        for wrist, points, scores in hands:
            visible = (scores > SCORE_THRESHOLD) & np.isfinite(points).all(axis=1)
            self.hands[wrist] = points[visible] * size if visible.sum() >= 5 else None
        self.arm_w, self.leg_w = p.arm_width * self.s, p.leg_width * self.s
        self.torso_w, self.head_r = p.torso_width * self.s, p.head_radius * self.s
        self.frontness, self.heading, self.near = self._view()

    def has(self, *ids: int) -> bool:
        return bool(all(self.ok[i] for i in ids))

    def _view(self) -> tuple[float, float, tuple[int, ...] | None]:
        """(frontness in [-1, 1]: 1 facing the camera, -1 the back; heading in [-1, 1]: +1 facing the image
        right; the near side's arm ids in a profile, else None)."""
        p = self.character.proportions
        frontness = 1.0
        for a, b, half in ((2, 5, p.shoulder), (8, 11, p.hip)):
            if self.has(a, b):
                frontness = float(np.clip((self.body[b, 0] - self.body[a, 0]) / (2 * half * self.s), -1, 1))
                break
        heading, near = 0.0, None
        if self.has(0, 1):
            heading = float(np.clip((self.body[0, 0] - self.body[1, 0]) / self.head_r, -1, 1))
            if abs(heading) > 0.3:
                near = RIGHT_ARM if heading > 0 else LEFT_ARM
        elif self.ok[16] != self.ok[17]:
            near = RIGHT_ARM if self.ok[16] else LEFT_ARM
            heading = 0.5 if near == RIGHT_ARM else -0.5
        return frontness, heading, near

    def head_centre(self) -> npt.NDArray[np.float64] | None:
        """Along the torso axis from the neck (the character's neck/torso ratio), nudged so the nose is on the head."""
        if not self.ok[1]:
            if self.ok[0]:
                return self.body[0].copy()
            return None
        p = self.character.proportions
        neck = self.body[1]
        if self.has(8, 11):
            centre = neck + (neck - (self.body[8] + self.body[11]) / 2) * (p.neck / p.torso)
        else:
            centre = neck + np.array([0.0, -p.neck * self.s])
        if self.ok[0]:
            off = self.body[0] - centre
            dist = float(np.hypot(*off))
            if dist > self.head_r:
                centre = centre + off * (1 - self.head_r / dist)
        return centre

    # ------------------------------------------------------------------------------------------- parts
    def arm(self, canvas: _Canvas, ids: tuple[int, int, int]) -> None:
        sh, el, wr = ids
        c = self.character
        upper = [("capsule", self.body[sh], self.body[el], self.arm_w)] if self.has(sh, el) else []
        lower = [("capsule", self.body[el], self.body[wr], self.arm_w * 0.9)] if self.has(el, wr) else []
        hand = []
        if self.ok[wr]:
            points = self.hands[wr]
            if points is not None:
                centre = points.mean(axis=0)
            else:
                axis = _unit(self.body[wr] - self.body[el]) if self.ok[el] else np.array([0.0, 1.0])
                centre = self.body[wr] + axis * 0.35 * c.proportions.hand * self.s
            reach = float(np.hypot(*(centre - self.body[wr])))
            limit = c.proportions.hand * self.s
            if reach > limit:
                centre = self.body[wr] + (centre - self.body[wr]) * (limit / reach)
            hand = [("circle", centre, 0.58 * self.arm_w)]
        if c.sleeves == "long":
            canvas.group(SKIN, hand)
            canvas.group(SHIRT, upper + lower)
        else:
            canvas.group(SKIN, upper + lower + hand)
            if upper:
                end = self.body[sh] + 0.6 * (self.body[el] - self.body[sh])
                canvas.group(SHIRT, [("capsule", self.body[sh], end, self.arm_w * 1.12)])

    def leg(self, canvas: _Canvas, ids: tuple[int, int, int]) -> None:
        hp, kn, an = ids
        c = self.character
        thigh = [("capsule", self.body[hp], self.body[kn], self.leg_w)] if self.has(hp, kn) else []
        shin = [("capsule", self.body[kn], self.body[an], self.leg_w * 0.92)] if self.has(kn, an) else []
        if c.lower == "trousers":
            canvas.group(LOWER, thigh + shin)
        else:
            canvas.group(SKIN, thigh + shin)
            if c.lower == "shorts" and thigh:
                end = self.body[hp] + 0.6 * (self.body[kn] - self.body[hp])
                canvas.group(LOWER, [("capsule", self.body[hp], end, self.leg_w * 1.1)])
        if self.ok[an]:
            foot = c.proportions.foot * self.s
            toe = self.body[an] + np.array([self.heading * 0.8 * foot, 0.3 * self.leg_w])
            canvas.group(SHOE, [("capsule", self.body[an], toe, self.leg_w * 0.85)])

    def pelvis(self, canvas: _Canvas) -> None:
        """Trousers and shorts join at the crotch; a skirt is a flared trapezoid over the thighs."""
        c = self.character
        if not self.has(8, 11):
            return
        if c.lower != "skirt":
            canvas.group(LOWER, [("capsule", self.body[8], self.body[11], self.leg_w)])
            return
        pts = []
        across = _unit(self.body[11] - self.body[8], (1.0, 0.0))
        for hp, kn, out in ((8, 9, -1), (11, 12, 1)):
            pts.append(self.body[hp] + across * out * 0.6 * self.leg_w)
            if self.ok[kn]:
                hem = self.body[hp] + 0.75 * (self.body[kn] - self.body[hp])
            else:
                hem = self.body[hp] + np.array([0.0, 0.2 * self.s])
            pts.append(hem + across * out * 0.9 * self.leg_w)
        hull = cv2.convexHull(np.array(pts, dtype=np.float32))[:, 0].astype(np.float64)
        canvas.group(LOWER, [("poly", hull)])

    def torso_shapes(self) -> list[tuple]:
        shapes = []
        if self.has(2, 5, 8, 11):
            shapes.append(("poly", self.body[[2, 5, 11, 8]]))
        if self.has(2, 5):
            shapes.append(("capsule", self.body[2], self.body[5], self.arm_w))
        if self.has(8, 11):
            shapes.append(("capsule", self.body[8], self.body[11], self.leg_w))
            if self.ok[1]:
                mid = (self.body[8] + self.body[11]) / 2
                shapes.append(("capsule", self.body[1], mid, self.torso_w))
        return shapes

    def torso(self, canvas: _Canvas) -> list[tuple]:
        shapes = self.torso_shapes()
        canvas.group(SHIRT, shapes)
        return shapes

    def long_hair(self, canvas: _Canvas) -> None:
        centre = self.head_centre()
        if centre is None or self.character.hair_style != "long":
            return
        up = self._up()
        back = np.array([-self.heading * 0.35 * self.head_r, 0.0])
        top, bottom = centre + back, centre + back - up * 1.7 * self.head_r
        canvas.group(HAIR, [("capsule", top, bottom, 2.1 * self.head_r)])

    def _up(self) -> npt.NDArray[np.float64]:
        centre = self.head_centre()
        if centre is None or not self.ok[1]:
            return np.array([0.0, -1.0])
        return _unit(centre - self.body[1], (0.0, -1.0))

    def head(self, canvas: _Canvas) -> None:
        c = self.character
        centre = self.head_centre()
        if centre is None:
            return
        r = self.head_r
        if self.ok[1]:
            canvas.group(SKIN, [("capsule", self.body[1], centre, self.arm_w)])
        back_view = self.frontness < -0.3 and not self.ok[0]
        if back_view and c.hair_style != "bald":
            canvas.group(HAIR, [("circle", centre, 1.04 * r)])
        else:
            canvas.group(SKIN, [("circle", centre, r)])
            if c.hair_style != "bald":
                canvas.group(HAIR, [("poly", self._cap(centre))])
            for eye in (14, 15):
                if self.ok[eye]:
                    canvas.group(EYE, [("circle", self.body[eye], 0.14 * r)], outline=False)
        if c.hair_style == "bun":
            up = self._up()
            bun = centre + up * 1.0 * r - np.array([self.heading * 0.5 * r, 0.0])
            canvas.group(HAIR, [("circle", bun, 0.45 * r)])

    def mouth(self, canvas: _Canvas, person: PersonPose) -> None:
        if self.frontness < -0.3 or self.head_centre() is None:
            return
        lips = person.face[48:60]
        visible = (person.face_scores[48:60] > SCORE_THRESHOLD) & np.isfinite(lips).all(axis=1)
        if visible.sum() < 6:
            return
        pts = lips[visible] * self.size
        left, right = pts[np.argmin(pts[:, 0])], pts[np.argmax(pts[:, 0])]
        canvas.group(MOUTH, [("capsule", left, right, 0.12 * self.head_r)], outline=False)

    def _cap(self, centre: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """The hair cap: an arc over the top of the head, lower at the back of the head than over the face."""
        up = self._up()
        h = self.heading
        face_angle, back_angle = 70 - 10 * abs(h), 70 + 50 * abs(h)
        # Positive angles turn `up` towards the image right (screen coordinates, y down).
        right, left = (face_angle, back_angle) if h >= 0 else (back_angle, face_angle)
        angles = np.radians(np.linspace(-left, right, 24))
        cos, sin = np.cos(angles), np.sin(angles)
        dirs = np.stack([up[0] * cos - up[1] * sin, up[0] * sin + up[1] * cos], axis=1)
        return centre + dirs * 1.08 * self.head_r

    # ------------------------------------------------------------------------------------------- order
    def draw(self, canvas: _Canvas, person: PersonPose) -> list[tuple]:
        """Draw every part in depth order; returns the torso shapes (the pattern is laid out along them)."""
        hair_behind = self.character.hair_style == "long" and self.frontness >= -0.3
        if hair_behind:
            self.long_hair(canvas)
        if self.near is not None and abs(self.frontness) < 0.45:  # a profile
            near_arm = self.near
            far_arm = LEFT_ARM if near_arm == RIGHT_ARM else RIGHT_ARM
            near_leg = RIGHT_LEG if near_arm == RIGHT_ARM else LEFT_LEG
            far_leg = LEFT_LEG if near_leg == RIGHT_LEG else RIGHT_LEG
            self.arm(canvas, far_arm)
            self.leg(canvas, far_leg)
            self.leg(canvas, near_leg)
            self.pelvis(canvas)
            torso = self.torso(canvas)
            self.arm(canvas, near_arm)
        elif self.frontness >= 0:
            self.leg(canvas, RIGHT_LEG)
            self.leg(canvas, LEFT_LEG)
            self.pelvis(canvas)
            torso = self.torso(canvas)
            self.arm(canvas, RIGHT_ARM)
            self.arm(canvas, LEFT_ARM)
        else:
            self.arm(canvas, RIGHT_ARM)
            self.arm(canvas, LEFT_ARM)
            self.leg(canvas, RIGHT_LEG)
            self.leg(canvas, LEFT_LEG)
            self.pelvis(canvas)
            torso = self.torso(canvas)
        if self.character.hair_style == "long" and not hair_behind:
            self.long_hair(canvas)
        self.head(canvas)
        self.mouth(canvas, person)
        return torso


def _apply_pattern(labels: npt.NDArray[np.uint8], figure: _Figure) -> None:
    """Relabel shirt pixels as pattern where the shirt's stripes or dots fall, laid out in the torso's own frame
    (origin at the neck, rows across the spine), so the pattern moves and turns with the body."""
    c = figure.character
    if c.pattern == "plain" or not figure.ok[1]:
        return
    ys, xs = np.nonzero(labels == SHIRT)
    if len(ys) == 0:
        return
    neck = figure.body[1]
    if figure.has(8, 11):
        down = _unit((figure.body[8] + figure.body[11]) / 2 - neck)
    else:
        down = np.array([0.0, 1.0])
    across = np.array([-down[1], down[0]])
    rel = np.stack([xs + 0.5 - neck[0], ys + 0.5 - neck[1]], axis=1) / figure.s
    v, u = rel @ down, rel @ across
    if c.pattern == "stripes":
        hit = np.floor(v / STRIPE_WIDTH).astype(np.int64) % 2 == 1
    else:
        du = u / DOT_SPACING - np.round(u / DOT_SPACING)
        dv = v / DOT_SPACING - np.round(v / DOT_SPACING)
        hit = (du**2 + dv**2) * DOT_SPACING**2 <= DOT_RADIUS**2
    labels[ys[hit], xs[hit]] = PATTERN


def _background_canvas(
    background: BackgroundSpec | npt.NDArray[np.uint8], height: int, width: int, scale: int
) -> npt.NDArray[np.uint8]:
    if isinstance(background, BackgroundSpec):
        return render_background(background, height * scale, width * scale)
    image = np.asarray(background)
    if image.shape != (height, width, 3) or image.dtype != np.uint8:
        raise InputError(f"A background image must be uint8 of shape ({height}, {width}, 3), got {image.shape}")
    return np.repeat(np.repeat(image, scale, axis=0), scale, axis=1)


def _downscale(image: npt.NDArray[np.uint8], height: int, width: int) -> npt.NDArray[np.uint8]:
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)


def render_frame(
    character: Character,
    pose: FramePose | PersonPose | None,
    background: BackgroundSpec | npt.NDArray[np.uint8],
    height: int,
    width: int,
    *,
    supersample: int = SUPERSAMPLE,
) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint8], npt.NDArray[np.uint8]]:
    """One frame: (RGB `[H, W, 3]`, person mask `[H, W]`, clothes mask `[H, W]`), masks 0 or 255.

    `pose` places the character (its first person; None or no people: the background alone). `background` is a
    `BackgroundSpec` or an RGB uint8 image `[H, W, 3]`.
    """
    big = _background_canvas(background, height, width, supersample)
    return _render(character, pose, big, height, width, supersample)


def _render(
    character: Character,
    pose: FramePose | PersonPose | None,
    big_background: npt.NDArray[np.uint8],
    height: int,
    width: int,
    scale: int,
) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint8], npt.NDArray[np.uint8]]:
    person = pose.people[0] if isinstance(pose, FramePose) and pose.people else pose
    if not isinstance(person, PersonPose):
        person = None
    canvas = _Canvas(height * scale, width * scale, OUTLINE * scale)
    if person is not None:
        figure = _Figure(character, person, height, width, scale)
        figure.draw(canvas, person)
        _apply_pattern(canvas.labels, figure)
    labels = canvas.labels
    image = big_background.copy()
    drawn = labels > 0
    image[drawn] = _lut(character)[labels[drawn]]
    person_mask = _downscale(drawn.astype(np.uint8) * 255, height, width)
    clothes_mask = _downscale(np.isin(labels, CLOTHES_LABELS).astype(np.uint8) * 255, height, width)
    return (
        _downscale(image, height, width),
        np.where(person_mask >= 128, 255, 0).astype(np.uint8),
        np.where(clothes_mask >= 128, 255, 0).astype(np.uint8),
    )


def render_character(
    character: Character,
    poses: Sequence[FramePose | PersonPose | None],
    background: BackgroundSpec | npt.NDArray[np.uint8],
    height: int,
    width: int,
    *,
    supersample: int = SUPERSAMPLE,
) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint8], npt.NDArray[np.uint8]]:
    """The character moved by a keypoint sequence: (frames `[F, H, W, 3]` uint8, person masks `[F, H, W]` uint8,
    clothes masks `[F, H, W]` uint8), masks 0 or 255 (white = person / clothes).

    Any keypoint sequence works (normalised coordinates, `people[0]` drawn): generated motion, or real motion
    retargeted to the character. Missing body points (score <= 0.3) leave out the parts they hold.
    """
    if height < 1 or width < 1:
        raise InputError(f"height and width must be positive, got {height}x{width}")
    if not isinstance(supersample, int) or not 1 <= supersample <= 8:
        raise InputError(f"supersample must be an integer from 1 to 8, got {supersample!r}")
    if len(poses) == 0:
        raise InputError("render_character needs at least one pose")
    big = _background_canvas(background, height, width, supersample)
    out = [_render(character, pose, big, height, width, supersample) for pose in poses]
    frames, person, clothes = (np.stack(parts) for parts in zip(*out, strict=True))
    return frames, person, clothes
