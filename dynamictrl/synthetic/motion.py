"""Motions of a character as keypoint sequences in our layout: body 18 + two 21-point hands + 68 face points.

A motion is a sequence of `RigFrame`s (pelvis position, yaw, torso bend, joint angles) that `pose_from_rig` turns
into a `PersonPose` by forward kinematics on the character's bones, in 3-D, projected orthographically:

- body frame: x = the person's left, y = down, z = forward; the pelvis is the origin; `yaw` turns the body about
  the vertical axis (0 faces the camera, +90° faces the image right, 180° shows the back);
- a limb segment's direction is two angles relative to the torso: `abduction` (away from hanging down, sideways in
  the frontal plane) and `flexion` (forwards in the sagittal plane);
- the head is a sphere: nose, eyes, ears and the 68 face points sit on it; a point turned away from the camera
  scores 0 (a profile shows one eye and one ear; the back shows the ears only), every other point scores 1;
- hands are fanned around the wrist along the forearm.

The feet are kept on a ground line (the lowest ankle of each frame touches it, minus the jump height), so knee
bends lower the body as they would. The default motions are large on purpose (walking across much of the frame, big
arm and leg swings, jumps): with small motions copying the reference frame is the best a model can do. `gesture`
(in place, arms and head) is the exception, asked for by name: real dance videos are often filmed that way.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from ..errors import InputError
from ..pose.types import NUM_FACE, FramePose, PersonPose
from .character import Character
from .palette import parse_names

# Sides: +1 = the person's left (body +x), -1 = their right.
LEFT, RIGHT = 1, -1
# Body indices (OpenPose order) of each side's shoulder, elbow, wrist, hip, knee, ankle.
ARM_IDS = {RIGHT: (2, 3, 4), LEFT: (5, 6, 7)}
LEG_IDS = {RIGHT: (8, 9, 10), LEFT: (11, 12, 13)}

# A head point is shown when its depth relative to the head centre exceeds this many head radii: the nose and one
# eye stay visible in profile, the far ear does not.
HEAD_POINT_MIN_DEPTH = -0.3
FACE_POINT_MIN_DEPTH = -0.1


def _face_template() -> npt.NDArray[np.float64]:
    """The 68 iBUG face points on a unit head sphere facing +z, `[68, 3]` (x = the person's left, y down).

    Point 0 is the jaw at the person's right temple, 17-26 the brows, 27-35 the nose, 36-47 the eyes, 48-67 the lips,
    as in COCO-WholeBody.
    """
    pts: list[tuple[float, float]] = []
    for t in range(17):  # jaw, from the right temple round the chin to the left temple
        a = math.pi * t / 16
        pts.append((-0.85 * math.cos(a), 0.05 + 0.75 * math.sin(a)))
    for x0, x1 in ((-0.6, -0.15), (0.15, 0.6)):  # brows
        for k in range(5):
            x = x0 + (x1 - x0) * k / 4
            pts.append((x, -0.4 - 0.06 * math.sin(math.pi * k / 4)))
    for k in range(4):  # nose bridge
        pts.append((0.0, -0.25 + 0.13 * k))
    for k in range(5):  # nose bottom
        pts.append((-0.15 + 0.075 * k, 0.25 + 0.03 * math.sin(math.pi * k / 4)))
    eye_angles = [math.pi, 2 * math.pi / 3, math.pi / 3, 0.0, -math.pi / 3, -2 * math.pi / 3]
    for cx in (-0.35, 0.35):  # right eye (outer corner first), left eye (inner corner first)
        for a in eye_angles:
            pts.append((cx + 0.14 * math.cos(a), -0.15 - 0.06 * math.sin(a)))
    for count, rx, ry in ((12, 0.3, 0.1), (8, 0.2, 0.04)):  # outer lip, inner lip, from the right corner
        for k in range(count):
            a = math.pi - 2 * math.pi * k / count
            pts.append((rx * math.cos(a), 0.5 - ry * math.sin(a)))
    xy = np.array(pts, dtype=np.float64)
    z = np.sqrt(np.clip(1.0 - (xy**2).sum(axis=1), 0.0, None))
    return np.concatenate([xy, z[:, None]], axis=1)


FACE_TEMPLATE = _face_template()
assert FACE_TEMPLATE.shape == (NUM_FACE, 3)
# Nose, right eye, left eye, right ear, left ear on the unit head sphere (body indices 0, 14, 15, 16, 17).
HEAD_POINTS = {
    0: (0.0, 0.2, 0.98),
    14: (-0.38, -0.15, 0.91),
    15: (0.38, -0.15, 0.91),
    16: (-0.99, 0.0, -0.05),
    17: (0.99, 0.0, -0.05),
}

# Hand fan: (angle from the forearm direction in degrees, toward the thumb side) and base distance (hand lengths)
# of the thumb, index, middle, ring and little finger; each finger then has three segments.
_FINGERS = ((-48.0, 0.2), (-16.0, 0.45), (-4.0, 0.47), (8.0, 0.45), (20.0, 0.42))
_SEGMENTS = (0.2, 0.17, 0.15)


@dataclass(frozen=True)
class Limb:
    """Angles of one limb in radians, relative to the torso: the upper segment's abduction and flexion, and the
    lower segment's extra abduction and flexion (an elbow bends forwards, a knee backwards: give it negative)."""

    abduction: float = 0.0
    flexion: float = 0.0
    lower_abduction: float = 0.0
    lower_flexion: float = 0.0


@dataclass(frozen=True)
class RigFrame:
    """One frame of a motion: pelvis x in pixels, `lift` (pixels the lowest ankle is above the ground), yaw, torso
    bend (forwards) and side lean, head tilt (radians), and the four limbs."""

    x: float
    lift: float = 0.0
    yaw: float = 0.0
    bend: float = 0.0
    lean: float = 0.0
    head_tilt: float = 0.0
    arms: dict[int, Limb] = field(default_factory=lambda: {LEFT: Limb(0.15), RIGHT: Limb(0.15)})
    legs: dict[int, Limb] = field(default_factory=lambda: {LEFT: Limb(0.04), RIGHT: Limb(0.04)})


def _direction(abduction: float, flexion: float, side: int) -> npt.NDArray[np.float64]:
    """Unit vector of a segment (body frame) that hangs down at (0, 0) and swings out to `side` / forwards."""
    return np.array(
        [
            side * math.sin(abduction) * math.cos(flexion),
            math.cos(abduction) * math.cos(flexion),
            math.sin(flexion),
        ]
    )


def _rot_x(a: float) -> npt.NDArray[np.float64]:  # forward bend: the top (−y) goes to +z
    c, s = math.cos(a), math.sin(a)
    return np.array([[1, 0, 0], [0, c, s], [0, -s, c]], dtype=np.float64)


def _rot_z(a: float) -> npt.NDArray[np.float64]:  # side lean: the top (−y) goes to +x
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]], dtype=np.float64)


def _rot_y(a: float) -> npt.NDArray[np.float64]:  # yaw: forward (+z) goes to +x for a = 90°
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]], dtype=np.float64)


def hand_points(
    wrist: npt.ArrayLike, elbow: npt.ArrayLike, length: float, side: int, spread: float = 1.0
) -> npt.NDArray[np.float64]:
    """21 hand points `[21, 2]` (pixels) fanned from `wrist` along the elbow→wrist direction (down when the
    forearm points at the camera). `length` is the hand length in pixels; `side` mirrors the thumb."""
    wrist, elbow = np.asarray(wrist, np.float64), np.asarray(elbow, np.float64)
    axis = wrist - elbow
    norm = float(np.hypot(*axis))
    axis = axis / norm if norm > 1e-6 * max(length, 1.0) else np.array([0.0, 1.0])
    out = [wrist]
    for angle, base in _FINGERS:
        a = math.radians(angle * spread) * side
        d = np.array([axis[0] * math.cos(a) - axis[1] * math.sin(a), axis[0] * math.sin(a) + axis[1] * math.cos(a)])
        p = wrist + d * base * length
        out.append(p)
        for seg in _SEGMENTS:
            p = p + d * seg * length
            out.append(p)
    return np.array(out)


def pose_from_rig(
    character: Character, rig: RigFrame, ground: float, height: int, width: int
) -> tuple[PersonPose, npt.NDArray[np.float64]]:
    """Forward kinematics of one frame: the person (normalised coordinates) and the depth of each body point
    `[18]` (body units, positive towards the camera). `ground` is the ground line's y in pixels."""
    p = character.proportions
    s = p.scale(height)
    upper = _rot_z(rig.lean) @ _rot_x(rig.bend)
    head_rot = upper @ _rot_z(rig.head_tilt)
    body = np.zeros((18, 3))
    neck = upper @ np.array([0.0, -p.torso, 0.0])
    body[1] = neck
    for side, (sh, el, wr) in ARM_IDS.items():
        limb = rig.arms[side]
        body[sh] = neck + upper @ np.array([side * p.shoulder, 0.02, 0.0])
        body[el] = body[sh] + upper @ _direction(limb.abduction, limb.flexion, side) * p.upper_arm
        lower = _direction(limb.abduction + limb.lower_abduction, limb.flexion + limb.lower_flexion, side)
        body[wr] = body[el] + upper @ lower * p.forearm
    for side, (hp, kn, an) in LEG_IDS.items():
        limb = rig.legs[side]
        body[hp] = np.array([side * p.hip, 0.0, 0.0])
        body[kn] = body[hp] + _direction(limb.abduction, limb.flexion, side) * p.thigh
        lower = _direction(limb.abduction + limb.lower_abduction, limb.flexion + limb.lower_flexion, side)
        body[an] = body[kn] + lower * p.shin
    head = neck + upper @ np.array([0.0, -p.neck, 0.0])
    for index, unit in HEAD_POINTS.items():
        body[index] = head + head_rot @ np.array(unit) * p.head_radius
    face = head + (head_rot @ FACE_TEMPLATE.T).T * p.head_radius

    yaw = _rot_y(rig.yaw)
    body, face, head = body @ yaw.T, face @ yaw.T, yaw @ head
    lowest = float(body[[10, 13], 1].max())
    origin = np.array([rig.x, ground - rig.lift - lowest * s])
    to_norm = np.array([1.0 / width, 1.0 / height])

    person = PersonPose.empty()
    person.body = (origin + body[:, :2] * s) * to_norm
    person.body_scores[:] = 1.0
    depth = (body[:, 2] - head[2]) / p.head_radius
    for index in HEAD_POINTS:
        person.body_scores[index] = float(depth[index] > HEAD_POINT_MIN_DEPTH)
    face_depth = (face[:, 2] - head[2]) / p.head_radius
    person.face = (origin + face[:, :2] * s) * to_norm
    person.face_scores[:] = (face_depth > FACE_POINT_MIN_DEPTH).astype(np.float64)
    px = person.body * np.array([width, height])
    hand_len = p.hand * s
    # Facing the camera, the right hand's thumb points to the image right of its forearm axis when hanging down.
    facing = 1 if math.cos(rig.yaw) >= 0 else -1
    person.right_hand = hand_points(px[4], px[3], hand_len, -facing) * to_norm
    person.left_hand = hand_points(px[7], px[6], hand_len, facing) * to_norm
    person.right_hand_scores[:] = 1.0
    person.left_hand_scores[:] = 1.0
    return person, body[:, 2]


def ground_line(rng: np.random.Generator, height: int) -> float:
    """A ground line y (pixels) near the bottom of the frame."""
    return float(rng.uniform(0.88, 0.95) * height)


def rest_pose(character: Character, height: int, width: int, x: float | None = None) -> PersonPose:
    """The character standing, facing the camera, arms a little out, centred (or at pixel `x`), feet at 0.92 H."""
    rig = RigFrame(x=width / 2 if x is None else x, arms={LEFT: Limb(0.25), RIGHT: Limb(0.25)})
    return pose_from_rig(character, rig, 0.92 * height, height, width)[0]


def poses_from_rigs(
    character: Character, rigs: list[RigFrame], ground: float, height: int, width: int
) -> list[FramePose]:
    return [
        FramePose(people=[pose_from_rig(character, r, ground, height, width)[0]], height=height, width=width)
        for r in rigs
    ]


def _times(frames: int, fps: float) -> npt.NDArray[np.float64]:
    if frames < 1:
        raise InputError(f"A motion needs at least one frame, got {frames}")
    if not (math.isfinite(fps) and fps > 0):
        raise InputError(f"fps must be a positive number, got {fps}")
    return np.arange(frames, dtype=np.float64) / fps


def _travel(
    rng: np.random.Generator, width: int, low: float, high: float, margin: float = 0.15
) -> tuple[float, float]:
    """(start x, end x) pixels of a crossing of `low`..`high` frame widths, kept `margin` widths from the edges."""
    distance = rng.uniform(low, high) * width
    direction = 1 if rng.random() < 0.5 else -1
    lo, hi = margin * width, (1 - margin) * width
    distance = min(distance, hi - lo)
    start = rng.uniform(lo, hi - distance) if direction > 0 else rng.uniform(lo + distance, hi)
    return float(start), float(start + direction * distance)


def _headroom(character: Character, ground: float, height: int) -> float:
    """Pixels a jump may lift the character before the head leaves the frame (a small margin kept)."""
    p = character.proportions
    s = p.scale(height)
    standing = (p.thigh + p.shin + p.torso + p.neck + p.head_radius) * s
    return max(0.0, ground - standing - 0.03 * height)


# --------------------------------------------------------------------------------------------------- motions
def walk_across(
    character: Character, rng: np.random.Generator, frames: int, fps: float, height: int, width: int
) -> list[FramePose]:
    """Walking across 40-65 % of the frame width, seen in profile or three-quarter, legs and arms swinging."""
    t = _times(frames, fps)
    x0, x1 = _travel(rng, width, 0.4, 0.6, margin=0.2)
    direction = 1 if x1 > x0 else -1
    yaw = direction * math.radians(rng.uniform(60, 90))
    freq, phase0 = rng.uniform(0.8, 1.3), rng.uniform(0, 2 * math.pi)
    hip_amp, knee_amp = math.radians(rng.uniform(28, 42)), math.radians(rng.uniform(35, 65))
    arm_amp, elbow = math.radians(rng.uniform(25, 45)), math.radians(rng.uniform(10, 40))
    bend = math.radians(rng.uniform(0, 8))
    rigs = []
    for i, ti in enumerate(t):
        ph = 2 * math.pi * freq * ti + phase0
        legs, arms = {}, {}
        for side, offset in ((LEFT, 0.0), (RIGHT, math.pi)):
            q = ph + offset
            legs[side] = Limb(0.03, hip_amp * math.sin(q), 0.0, -knee_amp * max(0.0, math.cos(q)))
            arms[side] = Limb(0.12, -arm_amp * math.sin(q), 0.0, elbow + 0.5 * arm_amp * max(0.0, -math.sin(q)))
        x = x0 + (x1 - x0) * (i / max(1, frames - 1))
        rigs.append(RigFrame(x=x, yaw=yaw, bend=bend, arms=arms, legs=legs))
    return poses_from_rigs(character, rigs, ground_line(rng, height), height, width)


def dance(
    character: Character, rng: np.random.Generator, frames: int, fps: float, height: int, width: int
) -> list[FramePose]:
    """Dancing: hips swaying across the frame, arms swinging high and low, knees bending, body turning a little."""
    t = _times(frames, fps)
    base_yaw, yaw_amp = math.radians(rng.uniform(-40, 40)), math.radians(rng.uniform(0, 35))
    f_body, f_arms = rng.uniform(0.4, 0.8), rng.uniform(0.7, 1.4)
    sway, drift = rng.uniform(0.08, 0.16) * width, rng.uniform(-0.2, 0.2) * width
    centre = rng.uniform(0.4, 0.6) * width
    arm_base = {s: math.radians(rng.uniform(40, 100)) for s in (LEFT, RIGHT)}
    arm_amp = {s: math.radians(rng.uniform(45, 70)) for s in (LEFT, RIGHT)}
    arm_phase = {s: rng.uniform(0, 2 * math.pi) for s in (LEFT, RIGHT)}
    elbow_amp = math.radians(rng.uniform(20, 60))
    squat, lean_amp = math.radians(rng.uniform(15, 35)), math.radians(rng.uniform(5, 15))
    phase = rng.uniform(0, 2 * math.pi)
    rigs = []
    for i, ti in enumerate(t):
        pb, pa = 2 * math.pi * f_body * ti + phase, 2 * math.pi * f_arms * ti
        arms = {
            s: Limb(
                arm_base[s] + arm_amp[s] * math.sin(pa + arm_phase[s]),
                math.radians(10),
                elbow_amp * math.sin(pa + arm_phase[s] + math.pi / 2),
                math.radians(15),
            )
            for s in (LEFT, RIGHT)
        }
        knee = squat * (0.5 + 0.5 * math.sin(2 * pb))
        legs = {s: Limb(math.radians(8) + 0.1 * math.sin(pb) * s, knee, 0.0, -2 * knee) for s in (LEFT, RIGHT)}
        x = centre + sway * math.sin(pb) + drift * (i / max(1, frames - 1) - 0.5)
        rigs.append(
            RigFrame(
                x=x,
                yaw=base_yaw + yaw_amp * math.sin(pb + 1.0),
                lean=lean_amp * math.sin(pb),
                bend=0.3 * knee,
                head_tilt=0.5 * lean_amp * math.sin(pb + 0.5),
                arms=arms,
                legs=legs,
            )
        )
    return poses_from_rigs(character, rigs, ground_line(rng, height), height, width)


def wave(
    character: Character, rng: np.random.Generator, frames: int, fps: float, height: int, width: int
) -> list[FramePose]:
    """Waving one or both raised arms fast while side-stepping across 20-40 % of the frame."""
    t = _times(frames, fps)
    x0, x1 = _travel(rng, width, 0.2, 0.4)
    yaw = math.radians(rng.uniform(-30, 30))
    both = rng.random() < 0.35
    waving = {LEFT, RIGHT} if both else {LEFT if rng.random() < 0.5 else RIGHT}
    freq, step_freq = rng.uniform(1.2, 2.2), rng.uniform(0.6, 1.0)
    raise_angle = {s: math.radians(rng.uniform(120, 165)) for s in (LEFT, RIGHT)}
    swing = math.radians(rng.uniform(30, 50))
    step = math.radians(rng.uniform(8, 16))
    rigs = []
    for i, ti in enumerate(t):
        pw, ps = 2 * math.pi * freq * ti, 2 * math.pi * step_freq * ti
        arms = {}
        for s in (LEFT, RIGHT):
            if s in waving:
                w = swing * math.sin(pw + (0 if s == LEFT else math.pi))
                arms[s] = Limb(raise_angle[s] + 0.3 * w, math.radians(10), math.radians(20) + w, 0.0)
            else:
                arms[s] = Limb(math.radians(12), 0.1 * math.sin(ps), 0.0, math.radians(20))
        legs = {
            s: Limb(math.radians(4) + step * max(0.0, math.sin(ps + (0 if s == LEFT else math.pi))), 0.0, 0.0, 0.0)
            for s in (LEFT, RIGHT)
        }
        x = x0 + (x1 - x0) * (i / max(1, frames - 1))
        rigs.append(RigFrame(x=x, yaw=yaw, lean=0.06 * math.sin(pw), arms=arms, legs=legs))
    return poses_from_rigs(character, rigs, ground_line(rng, height), height, width)


def jump(
    character: Character, rng: np.random.Generator, frames: int, fps: float, height: int, width: int
) -> list[FramePose]:
    """Jumping (star or tuck jumps): crouch, take off high with the arms up, land, while moving sideways."""
    t = _times(frames, fps)
    x0, x1 = _travel(rng, width, 0.15, 0.35)
    ground = ground_line(rng, height)
    top = min(rng.uniform(0.14, 0.24) * height, _headroom(character, ground, height) + 0.05 * height)
    period, phase = rng.uniform(0.8, 1.2), rng.uniform(0, 1)
    star = rng.random() < 0.5
    yaw = math.radians(rng.uniform(-30, 30)) if star else math.radians(rng.choice([-1, 1]) * rng.uniform(0, 80))
    rigs = []
    for i, ti in enumerate(t):
        p = (ti / period + phase) % 1.0
        if p < 0.25:  # crouch
            air, crouch = 0.0, math.sin(math.pi * p / 0.25)
        elif p < 0.75:  # flight
            air, crouch = math.sin(math.pi * (p - 0.25) / 0.5), 0.0
        else:  # landing
            air, crouch = 0.0, 0.6 * math.sin(math.pi * (p - 0.75) / 0.25)
        knee = math.radians(50) * crouch
        if star:
            arms = {s: Limb(math.radians(20 + 140 * air), 0.0, math.radians(10), 0.0) for s in (LEFT, RIGHT)}
            legs = {s: Limb(math.radians(3 + 25 * air), knee, 0.0, -2 * knee) for s in (LEFT, RIGHT)}
        else:
            tuck = math.radians(70) * air
            arms = {s: Limb(math.radians(15), math.radians(-30 + 190 * air), 0.0, 0.3) for s in (LEFT, RIGHT)}
            legs = {s: Limb(math.radians(4), knee + tuck, 0.0, -2 * (knee + tuck)) for s in (LEFT, RIGHT)}
        x = x0 + (x1 - x0) * (i / max(1, frames - 1))
        rigs.append(RigFrame(x=x, lift=top * air, yaw=yaw, bend=0.5 * knee, arms=arms, legs=legs))
    return poses_from_rigs(character, rigs, ground, height, width)


def turn(
    character: Character, rng: np.random.Generator, frames: int, fps: float, height: int, width: int
) -> list[FramePose]:
    """Turning round (180-360°) with the arms held out, stepping on the spot and drifting sideways."""
    t = _times(frames, fps)
    x0, x1 = _travel(rng, width, 0.1, 0.3)
    yaw0 = math.radians(rng.uniform(-40, 40))
    total = (1 if rng.random() < 0.5 else -1) * math.radians(rng.uniform(180, 360))
    arm = math.radians(rng.uniform(60, 100))
    arm_amp, arm_freq = math.radians(rng.uniform(10, 30)), rng.uniform(0.5, 1.0)
    step_freq = rng.uniform(1.0, 1.6)
    rigs = []
    for i, ti in enumerate(t):
        u = i / max(1, frames - 1)
        ps = 2 * math.pi * step_freq * ti
        arms = {
            s: Limb(arm + arm_amp * math.sin(2 * math.pi * arm_freq * ti), 0.0, 0.0, math.radians(15))
            for s in (LEFT, RIGHT)
        }
        legs = {}
        for s, offset in ((LEFT, 0.0), (RIGHT, math.pi)):
            lift = max(0.0, math.sin(ps + offset))
            legs[s] = Limb(math.radians(5), math.radians(30) * lift, 0.0, -math.radians(60) * lift)
        yaw = yaw0 + total * (3 * u**2 - 2 * u**3)  # ease in and out
        rigs.append(RigFrame(x=x0 + (x1 - x0) * u, yaw=yaw, arms=arms, legs=legs))
    return poses_from_rigs(character, rigs, ground_line(rng, height), height, width)


def gesture(
    character: Character, rng: np.random.Generator, frames: int, fps: float, height: int, width: int
) -> list[FramePose]:
    """Gesturing in place, as a dancer filmed standing does: the feet stay where they are (the hips sway by at most
    2 % of the width), one or both arms rise slowly towards the head or out and come back, the elbows bend, the
    head tilts, the knees give a little. The whole clip keeps most of the silhouette where it was, so copying the
    reference is close to right and the appearance has to be carried from it."""
    t = _times(frames, fps)
    centre = rng.uniform(0.35, 0.65) * width
    sway, f_body = rng.uniform(0.0, 0.02) * width, rng.uniform(0.2, 0.6)
    yaw = math.radians(rng.uniform(-30, 30))
    moving = {LEFT, RIGHT} if rng.random() < 0.4 else {LEFT if rng.random() < 0.5 else RIGHT}
    rest = {s: math.radians(rng.uniform(8, 25)) for s in (LEFT, RIGHT)}
    target = {s: math.radians(rng.uniform(40, 160)) for s in (LEFT, RIGHT)}
    forward = {s: math.radians(rng.uniform(-10, 40)) for s in (LEFT, RIGHT)}
    elbow = {s: math.radians(rng.uniform(10, 110)) for s in (LEFT, RIGHT)}
    f_arms = {s: rng.uniform(0.2, 0.5) for s in (LEFT, RIGHT)}
    phase = {s: rng.uniform(0, 2 * math.pi) for s in (LEFT, RIGHT)}
    tilt, knee_amp = math.radians(rng.uniform(0, 15)), math.radians(rng.uniform(0, 12))
    body_phase = rng.uniform(0, 2 * math.pi)
    rigs = []
    for ti in t:
        pb = 2 * math.pi * f_body * ti + body_phase
        arms = {}
        for s in (LEFT, RIGHT):
            if s in moving:
                u = 0.5 - 0.5 * math.cos(2 * math.pi * f_arms[s] * ti + phase[s])  # 0 = down, 1 = raised
                arms[s] = Limb(
                    rest[s] + (target[s] - rest[s]) * u, forward[s] * u, 0.0, math.radians(10) + elbow[s] * u
                )
            else:
                arms[s] = Limb(rest[s], 0.0, 0.0, math.radians(15))
        knee = knee_amp * (0.5 + 0.5 * math.sin(2 * pb))
        legs = {s: Limb(math.radians(5), knee, 0.0, -2 * knee) for s in (LEFT, RIGHT)}
        rigs.append(
            RigFrame(
                x=centre + sway * math.sin(pb),
                yaw=yaw,
                bend=0.3 * knee,
                head_tilt=tilt * math.sin(pb + 0.7),
                arms=arms,
                legs=legs,
            )
        )
    return poses_from_rigs(character, rigs, ground_line(rng, height), height, width)


MotionFn = Callable[[Character, np.random.Generator, int, float, int, int], list[FramePose]]

# name -> (generator, caption words)
MOTIONS: dict[str, tuple[MotionFn, str]] = {
    "walk": (walk_across, "walking across"),
    "dance": (dance, "dancing"),
    "wave": (wave, "waving"),
    "jump": (jump, "jumping"),
    "turn": (turn, "turning around"),
    "gesture": (gesture, "gesturing in place"),
}
MOTION_NAMES = tuple(MOTIONS)
# The motions a set draws from when none are named: the large ones. `gesture` keeps the silhouette in place, so it
# is asked for by name (`synth --motions gesture`); adding it here would also change every default set's clips.
DEFAULT_MOTIONS = ("walk", "dance", "wave", "jump", "turn")


def parse_motions(names: str | list[str] | tuple[str, ...] | None) -> tuple[str, ...]:
    """ "walk,dance" (or a list) → checked motion names; None or empty → `DEFAULT_MOTIONS`."""
    return parse_names(names, MOTION_NAMES, "motion") or DEFAULT_MOTIONS


def make_motion(
    name: str, character: Character, rng: np.random.Generator, frames: int, fps: float, height: int, width: int
) -> list[FramePose]:
    """The poses of motion `name` (one of `MOTION_NAMES`) for `character`."""
    if name not in MOTIONS:
        raise InputError(f"Unknown motion {name!r}; use one of: {', '.join(MOTION_NAMES)}")
    return MOTIONS[name][0](character, rng, frames, fps, height, width)


def mirror_frames(frames: list[FramePose]) -> list[FramePose]:
    """Poses mirrored left-right: x → 1 − x, and the person's left and right parts swapped (OpenPose and iBUG)."""
    body_swap = [0, 1, 5, 6, 7, 2, 3, 4, 11, 12, 13, 8, 9, 10, 15, 14, 17, 16]
    face_swap = (
        list(range(16, -1, -1))
        + list(range(26, 21, -1))
        + list(range(21, 16, -1))
        + list(range(27, 31))
        + list(range(35, 30, -1))
        + [45, 44, 43, 42, 47, 46, 39, 38, 37, 36, 41, 40]
        + [54, 53, 52, 51, 50, 49, 48, 59, 58, 57, 56, 55]
        + [64, 63, 62, 61, 60, 67, 66, 65]
    )
    out = []
    for frame in frames:
        people = []
        for person in frame.people:
            m = person.copy()
            flip = np.array([-1.0, 1.0])
            shift = np.array([1.0, 0.0])
            m.body = person.body[body_swap] * flip + shift
            m.body_scores = person.body_scores[body_swap].copy()
            m.left_hand, m.right_hand = person.right_hand * flip + shift, person.left_hand * flip + shift
            m.left_hand_scores, m.right_hand_scores = person.right_hand_scores.copy(), person.left_hand_scores.copy()
            m.face = person.face[face_swap] * flip + shift
            m.face_scores = person.face_scores[face_swap].copy()
            people.append(m)
        out.append(frame.with_people(people))
    return out
