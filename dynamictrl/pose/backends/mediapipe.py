"""MediaPipe (0.10.21 legacy solutions) as an offline pose backend, mapped onto the DWPose keypoint structure.

mediapipe 0.10.21 ships its .tflite models inside the wheel, so this works on a fresh machine with no download
(`model_complexity=1` only: the lite and heavy pose models are not in the wheel; the Tasks API needs downloaded
`.task` bundles). Holistic gives 33 body + 468 face-mesh + 2x21 hand landmarks; Pose gives the body only.

What the mapping approximates (see docs/pose.md):

- body: 17 of the 18 OpenPose points have a MediaPipe counterpart; the neck is the mean of the shoulders with
  DWPose's rule for its score (1 if both shoulders score above 0.3, else 0). MediaPipe's hips sit a little higher
  and wider than COCO's, and its eyes are the pupil centres;
- scores: body scores are MediaPipe's per-landmark visibility (0..1), close in use to DWPose's SimCC maxima (both
  drive the 0.3 threshold and the colour dimming); MediaPipe has no per-point confidence for hands and faces, so a
  found hand or face gets `FACE_HAND_SCORE` on every point, and a missing one is left out (score 0, not drawn);
- face: the 68 iBUG points are picked from the 468-point mesh (`FACE_MESH_TO_68`); a few are the mean of two mesh
  points. The jaw line follows the mesh contour, which runs slightly inside the dlib jaw;
- people: the legacy solutions find one person per image (the most prominent); DWPose finds everyone;
- video: `extract_sequence` runs MediaPipe in tracking mode (landmarks carried over and smoothed between frames),
  which is steadier and faster than per-image detection.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import re
import sys
import threading
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
import numpy.typing as npt

from ...errors import ModelNotFoundError
from ..types import NUM_HAND, SCORE_THRESHOLD, FramePose, PersonPose
from .base import PoseExtractor, check_image

logger = logging.getLogger(__name__)

MEDIAPIPE_VERSION = "0.10.21"
FACE_HAND_SCORE = 1.0

# OpenPose body slot -> MediaPipe Pose landmark (the neck, slot 1, is computed).
POSE_TO_OPENPOSE = {
    0: 0,  # nose
    2: 12,  # right shoulder
    3: 14,  # right elbow
    4: 16,  # right wrist
    5: 11,  # left shoulder
    6: 13,  # left elbow
    7: 15,  # left wrist
    8: 24,  # right hip
    9: 26,  # right knee
    10: 28,  # right ankle
    11: 23,  # left hip
    12: 25,  # left knee
    13: 27,  # left ankle
    14: 5,  # right eye
    15: 2,  # left eye
    16: 8,  # right ear
    17: 7,  # left ear
}

# iBUG-300W 68-point layout (COCO-WholeBody face) -> face-mesh vertices (averaged when two are given).
FACE_MESH_TO_68: tuple[tuple[int, ...], ...] = (
    # 0-16 jaw, from the person's right (image left) to their left
    (127,),
    (234,),
    (93,),
    (132, 58),
    (58, 172),
    (136,),
    (150,),
    (176,),
    (152,),
    (400,),
    (379,),
    (365,),
    (397, 288),
    (361,),
    (323,),
    (454,),
    (356,),
    # 17-21 right eyebrow, outer to inner; 22-26 left eyebrow, inner to outer
    (70,),
    (63,),
    (105,),
    (66,),
    (107,),
    (336,),
    (296,),
    (334,),
    (293,),
    (300,),
    # 27-30 nose bridge, top to tip; 31-35 nostrils, right to left
    (168, 6),
    (197, 195),
    (5,),
    (4,),
    (75,),
    (97,),
    (2,),
    (326,),
    (305,),
    # 36-41 right eye: outer corner, upper lid x2, inner corner, lower lid x2; 42-47 left eye from its inner corner
    (33,),
    (160,),
    (158,),
    (133,),
    (153,),
    (144,),
    (362,),
    (385,),
    (387,),
    (263,),
    (373,),
    (380,),
    # 48-59 outer lips from the right corner, clockwise on the image; 60-67 inner lips
    (61,),
    (39,),
    (37,),
    (0,),
    (267,),
    (269,),
    (291,),
    (405,),
    (314,),
    (17,),
    (84,),
    (181,),
    (78,),
    (82,),
    (13,),
    (312,),
    (308,),
    (317,),
    (14,),
    (87,),
)


def import_mediapipe() -> Any:
    """The mediapipe legacy solutions module, or None when mediapipe (0.10.21, with solutions) is not installed."""
    # Keep MediaPipe's C++ logging (glog/absl INFO lines on stderr) out of command-line output.
    os.environ.setdefault("GLOG_minloglevel", "2")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        from mediapipe.python import solutions
    except ImportError:
        return None
    return solutions


# The start of a line MediaPipe's C++ code logs (absl or glog format,
# e.g. "W0000 00:00:1796161139.825601  4195 file.cc:114] ..."), or absl's banner about logging before InitializeLog.
_NATIVE_LOG_LINE = re.compile(rb"(?:[IWEF]\d{4} [\d:.]+ +\d+ [^\]]*\] |WARNING: All log messages before absl)")


class _NativeLogFilter:
    """Drop MediaPipe's C++ log lines from file descriptor 2 while any MediaPipe graph is alive.

    absl/TFLite write INFO and W0000 lines to fd 2 that no setting turns off, and they write some of them from the
    graph's own threads after `process()` has returned, so silencing fd 2 around each call is not enough. While a
    graph is alive fd 2 is a pipe; a thread forwards everything that is not a native log line to the real stderr,
    so our own logging and progress bars still show, in order. Reference-counted (one per live graph); when the last
    graph closes, fd 2 is restored and the pipe drained. Debug logging (`-v`) keeps MediaPipe's output.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._users = 0
        self._saved: int | None = None
        self._thread: threading.Thread | None = None

    def acquire(self) -> None:
        with self._lock:
            self._users += 1
            if self._users > 1 or logger.isEnabledFor(logging.DEBUG):
                return
            try:
                sys.stderr.flush()
                saved = os.dup(2)
            except (OSError, ValueError):  # no real stderr (embedded interpreter): nothing to filter
                return
            read_end, write_end = os.pipe()
            os.dup2(write_end, 2)
            os.close(write_end)
            self._saved = saved
            self._thread = threading.Thread(target=_forward, args=(read_end, saved), daemon=True)
            self._thread.start()

    def release(self) -> None:
        with self._lock:
            self._users = max(0, self._users - 1)
            if self._users == 0:
                self._restore_locked()

    def _restore(self) -> None:
        with self._lock:
            self._users = 0
            self._restore_locked()

    def _restore_locked(self) -> None:
        if self._saved is None:
            return
        with contextlib.suppress(OSError, ValueError):
            sys.stderr.flush()
        os.dup2(self._saved, 2)  # closes the pipe's last write end: the forwarder drains and ends
        if self._thread is not None:
            self._thread.join(timeout=5)
        os.close(self._saved)
        self._saved, self._thread = None, None


def _forward(read_end: int, target: int) -> None:
    """Copy `read_end` to `target` until end of file, dropping the native log lines (`_NATIVE_LOG_LINE`)."""
    pending = b""
    try:
        while chunk := os.read(read_end, 65536):
            lines = (pending + chunk).split(b"\n")
            pending = lines.pop()
            kept = [_without_native_log(line) for line in lines]
            # A partial line is held back only when it could be the start of a native log line (those are written
            # whole); anything else (a progress bar redrawn with \r) goes through at once.
            if pending and not re.match(rb"^[IWEF]\d|^WARNING: All", pending):
                kept.append(pending)
                pending = b""
            if kept:
                _write_all(target, b"".join(kept))
        if pending:
            _write_all(target, _without_native_log(pending, newline=b""))
    except OSError:
        pass
    finally:
        os.close(read_end)


def _without_native_log(line: bytes, newline: bytes = b"\n") -> bytes:
    """`line` with its newline, or only what came before a native log line in it (a progress bar that was still
    on the line when the native line was written), or nothing."""
    match = _NATIVE_LOG_LINE.search(line)
    return line + newline if match is None else line[: match.start()]


def _write_all(target: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(target, view) :]


NATIVE_LOGS = _NativeLogFilter()
atexit.register(NATIVE_LOGS._restore)  # a graph never closed: drain the pipe before the interpreter goes


def _landmarks(container: Any, count: int) -> npt.NDArray[np.float64] | None:
    """(x, y, visibility) of a NormalizedLandmarkList as `[count, 3]`, or None when absent."""
    if container is None:
        return None
    points = container.landmark
    if len(points) < count:
        return None
    return np.array([(p.x, p.y, p.visibility) for p in points[:count]], dtype=np.float64)


def person_from_landmarks(
    pose: npt.ArrayLike,
    face: npt.ArrayLike | None = None,
    left_hand: npt.ArrayLike | None = None,
    right_hand: npt.ArrayLike | None = None,
) -> PersonPose:
    """Map MediaPipe landmarks (normalised x, y; pose with visibility: `[33, 3]`) onto a `PersonPose`.

    `face [468, 2+]`, `left_hand [21, 2+]`, `right_hand [21, 2+]` are optional (None = not found). MediaPipe's
    left/right are the person's own, like COCO-WholeBody's.
    """
    pose = np.asarray(pose, dtype=np.float64)
    person = PersonPose.empty()
    for slot, index in POSE_TO_OPENPOSE.items():
        person.body[slot] = pose[index, :2]
        person.body_scores[slot] = np.clip(pose[index, 2], 0.0, 1.0)
    person.body[1] = (pose[11, :2] + pose[12, :2]) / 2
    person.body_scores[1] = float(person.body_scores[2] > SCORE_THRESHOLD and person.body_scores[5] > SCORE_THRESHOLD)
    if face is not None:
        mesh = np.asarray(face, dtype=np.float64)[:, :2]
        person.face = np.stack([mesh[list(ids)].mean(axis=0) for ids in FACE_MESH_TO_68])
        person.face_scores[:] = FACE_HAND_SCORE
    for part, hand in (("left_hand", left_hand), ("right_hand", right_hand)):
        if hand is not None:
            setattr(person, part, np.asarray(hand, dtype=np.float64)[:NUM_HAND, :2].copy())
            setattr(person, f"{part}_scores", np.full(NUM_HAND, FACE_HAND_SCORE))
    return person


def frame_pose_from_results(results: Any, height: int, width: int) -> FramePose:
    """A `FramePose` from a Pose or Holistic result (zero or one person)."""
    pose = _landmarks(getattr(results, "pose_landmarks", None), 33)
    if pose is None:
        return FramePose(people=[], height=height, width=width)
    person = person_from_landmarks(
        pose,
        face=_landmarks(getattr(results, "face_landmarks", None), 468),
        left_hand=_landmarks(getattr(results, "left_hand_landmarks", None), NUM_HAND),
        right_hand=_landmarks(getattr(results, "right_hand_landmarks", None), NUM_HAND),
    )
    return FramePose(people=[person], height=height, width=width)


class MediaPipeExtractor(PoseExtractor):
    """MediaPipe Holistic (`holistic=True`: body, hands, face) or Pose (body only), CPU, no download."""

    def __init__(self, holistic: bool = True, min_detection_confidence: float = 0.5) -> None:
        self.solutions = import_mediapipe()
        if self.solutions is None:
            raise ModelNotFoundError(
                f"mediapipe is not installed; pip install --no-deps mediapipe=={MEDIAPIPE_VERSION}, "
                "or use --backend dwpose"
            )
        self.holistic = holistic
        self.name = "mediapipe" if holistic else "mediapipe-body"
        self.min_detection_confidence = min_detection_confidence
        self._static = None

    def _solution(self, static: bool):
        """A new MediaPipe graph; the native log filter is held until `_close_solution`."""
        kwargs = {
            "static_image_mode": static,
            "model_complexity": 1,
            "min_detection_confidence": self.min_detection_confidence,
            "min_tracking_confidence": 0.5,
        }
        NATIVE_LOGS.acquire()
        try:
            if self.holistic:
                return self.solutions.holistic.Holistic(**kwargs)
            return self.solutions.pose.Pose(**kwargs)
        except BaseException:
            NATIVE_LOGS.release()
            raise

    @staticmethod
    def _close_solution(solution: Any) -> None:
        try:
            solution.close()
        finally:
            NATIVE_LOGS.release()

    def __call__(self, image: npt.NDArray[np.uint8]) -> FramePose:
        image = check_image(image)
        if self._static is None:
            self._static = self._solution(static=True)
        results = self._static.process(np.ascontiguousarray(image))
        return frame_pose_from_results(results, image.shape[0], image.shape[1])

    def extract_sequence(self, frames: Iterable[npt.NDArray[np.uint8]]) -> Iterator[FramePose]:
        """Tracking mode: each frame starts from the previous frame's landmarks (steadier, faster than detection)."""
        solution = self._solution(static=False)
        try:
            for frame in frames:
                frame = check_image(frame, "video frame")
                results = solution.process(np.ascontiguousarray(frame))
                yield frame_pose_from_results(results, frame.shape[0], frame.shape[1])
        finally:
            self._close_solution(solution)

    def identity(self) -> str:
        import mediapipe

        return f"{self.name}|mediapipe {getattr(mediapipe, '__version__', '?')}|det {self.min_detection_confidence}"

    def close(self) -> None:
        if self._static is not None:
            static, self._static = self._static, None
            self._close_solution(static)
