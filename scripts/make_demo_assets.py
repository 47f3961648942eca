"""Build the bundled demo pose video `dynamictrl/assets/demo_pose.mp4`.

The demo's reference photo is scikit-image's `astronaut` (NASA portrait of Eileen Collins, public domain, shipped in
the scikit-image wheel), cover-cropped to 240x320. Its pose is extracted with the offline (MediaPipe) backend; the
driving motion is that pose with both arms waving, drawn with the reference renderer. Frame 0 is the reference's
own pose, as `dynamictrl pose` writes it. Re-run after changing the renderer: `python scripts/make_demo_assets.py`.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

ASSETS = Path(__file__).resolve().parents[1] / "dynamictrl" / "assets"
HEIGHT, WIDTH, FRAMES, FPS = 320, 240, 25, 8

# OpenPose indices: (shoulder, elbow, wrist) for the person's right and left arm.
ARMS = ((2, 3, 4), (5, 6, 7))


def _rotate(point: np.ndarray, center: np.ndarray, angle: float, aspect: float) -> np.ndarray:
    """Rotate a normalised point about `center` by `angle` in pixel space (x is scaled by the aspect ratio)."""
    d = (point - center) * np.array([aspect, 1.0])
    c, s = math.cos(angle), math.sin(angle)
    rotated = np.array([c * d[0] - s * d[1], s * d[0] + c * d[1]])
    return center + rotated / np.array([aspect, 1.0])


def wave(person, t: float, aspect: float):
    """Raise and wave both arms: upper arms swing up to 70 degrees, forearms wave on top."""
    from dynamictrl.pose.types import PersonPose

    new = PersonPose(**{k: v.copy() for k, v in person._fields().items()})
    for side, (sh, el, wr) in enumerate(ARMS):
        sign = 1.0 if side == 0 else -1.0  # mirror: image-left arm rotates clockwise to go up
        lift = sign * math.radians(70) * math.sin(math.pi * t) ** 2
        swing = sign * math.radians(30) * math.sin(4 * math.pi * t)
        shoulder = person.body[sh]
        elbow = _rotate(person.body[el], shoulder, lift, aspect)
        wrist = _rotate(_rotate(person.body[wr], shoulder, lift, aspect), elbow, swing, aspect)
        hand = new.right_hand if side == 0 else new.left_hand
        hand += wrist - new.body[wr]
        new.body[el], new.body[wr] = elbow, wrist
        new.body_scores[[el, wr]] = np.maximum(new.body_scores[[el, wr]], 0.9)
    return new


def main() -> None:
    from skimage import data

    from dynamictrl.io.images import cover_crop
    from dynamictrl.io.media import write_video
    from dynamictrl.pose.extract import get_extractor
    from dynamictrl.pose.render import draw_pose
    from dynamictrl.pose.types import FramePose

    reference = cover_crop(data.astronaut(), HEIGHT, WIDTH)
    frame0 = get_extractor("mediapipe")(reference)
    if not frame0.people:
        raise SystemExit("no person found in the astronaut photo")
    person = frame0.people[0]
    poses = [FramePose([person], HEIGHT, WIDTH)]
    for i in range(1, FRAMES):
        poses.append(FramePose([wave(person, i / (FRAMES - 1), WIDTH / HEIGHT)], HEIGHT, WIDTH))
    frames = np.stack([draw_pose(p, HEIGHT, WIDTH) for p in poses])
    write_video(ASSETS / "demo_pose.mp4", frames, FPS)
    print(f"wrote {ASSETS / 'demo_pose.mp4'} ({FRAMES} frames, {WIDTH}x{HEIGHT})")


if __name__ == "__main__":
    main()
