"""Synthetic poses with known geometry, for tests, benchmarks and examples (no network, no media).

`standing_person` draws a front-facing standing figure whose proportions are given in units of its height (nose at
0, ankles at 1), so alignment, retargeting and the checks can be exercised with exactly known answers.
"""

from __future__ import annotations

import numpy as np

from .types import PersonPose

# OpenPose order: nose, neck, right shoulder/elbow/wrist, left shoulder/elbow/wrist, right hip/knee/ankle,
# left hip/knee/ankle, right/left eye, right/left ear. x to the image right, y down; the person's right is on the
# image left (they face the camera).
STANDING_SKELETON = np.array(
    [
        (0.0, 0.0),
        (0.0, 0.12),
        (-0.1, 0.12),
        (-0.13, 0.3),
        (-0.14, 0.45),
        (0.1, 0.12),
        (0.13, 0.3),
        (0.14, 0.45),
        (-0.06, 0.5),
        (-0.06, 0.75),
        (-0.06, 1.0),
        (0.06, 0.5),
        (0.06, 0.75),
        (0.06, 1.0),
        (-0.02, -0.02),
        (0.02, -0.02),
        (-0.04, -0.01),
        (0.04, -0.01),
    ]
)
_ARM_BONES = ((2, 3), (3, 4), (5, 6), (6, 7))


def standing_person(
    x: float,
    y: float,
    height: float,
    image_height: int,
    image_width: int,
    score: float = 0.9,
    arm_scale: float = 1.0,
) -> PersonPose:
    """A standing person with the nose at pixel (x, y), `height` pixels from nose to ankles, normalised to an image
    of `image_height` x `image_width`. `arm_scale` lengthens or shortens the upper arms and forearms. Hands sit at
    the wrists, the face points at the nose; every point has `score`.
    """
    points = STANDING_SKELETON.copy()
    for parent, child in _ARM_BONES:
        points[child] = points[parent] + (STANDING_SKELETON[child] - STANDING_SKELETON[parent]) * arm_scale
    person = PersonPose.empty()
    person.body = (points * height + (x, y)) / (image_width, image_height)
    person.body_scores[:] = score
    spread = np.linspace(0.0, 0.01, 21)[:, None]
    person.left_hand = np.repeat(person.body[7:8], 21, axis=0) + spread
    person.right_hand = np.repeat(person.body[4:5], 21, axis=0) - spread
    person.left_hand_scores[:] = score
    person.right_hand_scores[:] = score
    person.face = np.repeat(person.body[0:1], 68, axis=0)
    person.face_scores[:] = score
    return person
