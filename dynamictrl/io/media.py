"""Images and videos as uint8 RGB arrays (`[H, W, 3]`, `[F, H, W, 3]`), and back to files.

Decoding and encoding go through PyAV (bundled FFmpeg with libx264), so nothing else has to be installed. Every
failure a user can cause (missing file, not an image, corrupt video, empty video) raises a `MediaError` that names
the file and says what to do.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import InputError, MediaError
from .atomic import atomic_path

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")
VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".avi", ".webm", ".gif", ".m4v")


def _existing_file(path: str | os.PathLike, what: str) -> Path:
    p = Path(path).expanduser()
    if not p.exists():
        raise InputError(f"{what} not found: {p} (check the path)")
    if p.is_dir():
        raise InputError(f"{what} is a folder, not a file: {p}")
    return p


# ----------------------------------------------------------------------------------------------------- images
def load_image(path: str | os.PathLike) -> npt.NDArray[np.uint8]:
    """Read an image file as RGB uint8 `[H, W, 3]`, applying its EXIF orientation (phone photos)."""
    p = _existing_file(path, "Image")
    try:
        with Image.open(p) as img:
            img = ImageOps.exif_transpose(img)
            if img.mode in ("RGBA", "LA") or (img.mode == "P" and "transparency" in img.info):
                # Composite transparency on white instead of letting it turn black.
                rgba = img.convert("RGBA")
                background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
                img = Image.alpha_composite(background, rgba)
            return np.asarray(img.convert("RGB"), dtype=np.uint8).copy()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise MediaError(f"{p} is not a readable image ({type(exc).__name__}); give a PNG, JPEG or WebP file") from exc


def save_image(path: str | os.PathLike, image: npt.NDArray[np.uint8] | Image.Image) -> Path:
    """Write an RGB image atomically; the format comes from the suffix."""
    pil = image if isinstance(image, Image.Image) else Image.fromarray(np.asarray(image, dtype=np.uint8))
    with atomic_path(path) as tmp:
        pil.save(tmp)
    return Path(path)


# ----------------------------------------------------------------------------------------------------- videos
@dataclass(frozen=True)
class VideoInfo:
    """What a video file holds. `num_frames` is counted by decoding when the container does not say."""

    path: Path
    width: int
    height: int
    fps: float
    num_frames: int

    @property
    def duration(self) -> float:
        return self.num_frames / self.fps if self.fps > 0 else 0.0


def _open_container(p: Path):
    import av

    try:
        container = av.open(str(p))
    except (av.error.InvalidDataError, av.error.FFmpegError, OSError, UnicodeDecodeError) as exc:
        raise MediaError(
            f"{p} is not a readable video ({type(exc).__name__}); give an MP4, MOV, MKV or WebM file"
        ) from exc
    if not container.streams.video:
        container.close()
        raise MediaError(f"{p} has no video stream; give a video file")
    return container


def _stream_fps(stream) -> float:
    rate = stream.average_rate or stream.base_rate or stream.guessed_rate
    return float(rate) if rate else 0.0


def iter_video_frames(path: str | os.PathLike) -> Iterator[npt.NDArray[np.uint8]]:
    """Decode every frame of a video as RGB uint8 `[H, W, 3]`, one at a time (constant memory)."""
    import av

    p = _existing_file(path, "Video")
    container = _open_container(p)
    try:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        try:
            for frame in container.decode(stream):
                yield frame.to_ndarray(format="rgb24")
        except (av.error.InvalidDataError, av.error.FFmpegError) as exc:
            raise MediaError(f"{p} is corrupt: decoding failed ({exc}); re-encode or re-download it") from exc
    finally:
        container.close()


def probe_video(path: str | os.PathLike) -> VideoInfo:
    """Size, frame rate and frame count of a video. Decodes it if the container has no frame count."""
    p = _existing_file(path, "Video")
    container = _open_container(p)
    try:
        stream = container.streams.video[0]
        fps = _stream_fps(stream)
        width, height, count = stream.codec_context.width, stream.codec_context.height, stream.frames
    finally:
        container.close()
    if not count:
        count = sum(1 for _ in iter_video_frames(p))
    if count == 0:
        raise MediaError(f"{p} contains no video frames; give a non-empty video")
    return VideoInfo(path=p, width=width, height=height, fps=fps, num_frames=count)


def resample_indices(num_source: int, source_fps: float, target_fps: float | None) -> list[int]:
    """Source frame indices that play the same motion at `target_fps` (nearest frame in time).

    With no target (or the same rate) every frame is kept. Slower targets drop frames, faster ones repeat them.
    """
    if not target_fps or not source_fps or abs(target_fps - source_fps) < 1e-6:
        return list(range(num_source))
    duration = num_source / source_fps
    count = max(1, int(np.floor(duration * target_fps + 1e-6)))
    idx = np.floor(np.arange(count) * source_fps / target_fps + 1e-6).astype(int)
    return [int(i) for i in idx if i < num_source]


def read_video(
    path: str | os.PathLike,
    *,
    start: int = 0,
    max_frames: int | None = None,
    stride: int = 1,
    target_fps: float | None = None,
) -> tuple[npt.NDArray[np.uint8], float]:
    """Decode a video to RGB uint8 `[F, H, W, 3]` and return it with its (effective) frame rate.

    Frames are first resampled to `target_fps` (if given), then `start`, `stride` and `max_frames` select from the
    resampled sequence, so `stride` counts output frames, not source frames. The returned rate is the rate at
    which the selected frames play the original motion at real speed.
    """
    if start < 0 or stride < 1 or (max_frames is not None and max_frames < 1):
        raise InputError(f"Invalid frame selection: start={start}, stride={stride}, max_frames={max_frames}")
    p = _existing_file(path, "Video")
    frames = list(iter_video_frames(p))
    if not frames:
        raise MediaError(f"{p} contains no video frames; give a non-empty video")
    container = _open_container(p)
    try:
        fps = _stream_fps(container.streams.video[0]) or 30.0
    finally:
        container.close()
    indices = resample_indices(len(frames), fps, target_fps)
    effective_fps = target_fps or fps
    indices = indices[start::stride]
    if max_frames is not None:
        indices = indices[:max_frames]
    if not indices:
        raise InputError(f"{p} has no frames left after start={start}, stride={stride}; lower --start")
    return np.stack([frames[i] for i in indices]), effective_fps / stride


def _even(frames: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    """H.264 in yuv420p needs even sizes; pad odd ones by repeating the last row/column."""
    h, w = frames.shape[1:3]
    ph, pw = h % 2, w % 2
    if ph or pw:
        logger.warning("Video size %dx%d is odd; padding to %dx%d for H.264", w, h, w + pw, h + ph)
        frames = np.pad(frames, ((0, 0), (0, ph), (0, pw), (0, 0)), mode="edge")
    return frames


def to_uint8_frames(frames: npt.ArrayLike | Sequence[Image.Image]) -> npt.NDArray[np.uint8]:
    """Accept PIL images, uint8 arrays or float arrays in [0, 1] (`[F, H, W, 3]`) and return uint8 `[F,H,W,3]`."""
    if isinstance(frames, (list, tuple)) and frames and isinstance(frames[0], Image.Image):
        return np.stack([np.asarray(f.convert("RGB"), dtype=np.uint8) for f in frames])
    arr = np.asarray(frames)
    if arr.ndim != 4 or arr.shape[-1] != 3:
        raise ValueError(f"Expected frames of shape [F, H, W, 3], got {arr.shape}")
    if arr.dtype != np.uint8:
        arr = (np.clip(arr, 0.0, 1.0) * 255.0).round().astype(np.uint8)
    return arr


def write_video(
    path: str | os.PathLike,
    frames: npt.ArrayLike | Iterable[Image.Image],
    fps: float,
    *,
    crf: int = 18,
) -> Path:
    """Encode frames as an H.264 MP4 (yuv420p, playable everywhere), atomically.

    `frames` are uint8 `[F, H, W, 3]`, float `[F, H, W, 3]` in [0, 1], or a list of PIL images.
    """
    from fractions import Fraction

    import av

    arr = _even(to_uint8_frames(list(frames) if not isinstance(frames, np.ndarray) else frames))
    if len(arr) == 0:
        raise ValueError("write_video needs at least one frame")
    if fps <= 0:
        raise InputError(f"fps must be positive, got {fps}")
    rate = Fraction(fps).limit_denominator(1001)
    with atomic_path(path) as tmp:
        with av.open(str(tmp), mode="w", format="mp4") as container:
            stream = container.add_stream("libx264", rate=rate)
            stream.width, stream.height = int(arr.shape[2]), int(arr.shape[1])
            stream.pix_fmt = "yuv420p"
            stream.options = {"crf": str(crf), "preset": "medium"}
            for frame in arr:
                for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)
    return Path(path)


def side_by_side(*videos: npt.NDArray[np.uint8], height: int | None = None) -> npt.NDArray[np.uint8]:
    """Put videos `[F, H_i, W_i, 3]` next to each other, resized to a common height (frame counts must match)."""
    import cv2

    if not videos:
        raise ValueError("side_by_side needs at least one video")
    count = len(videos[0])
    if any(len(v) != count for v in videos):
        raise ValueError(f"Frame counts differ: {[len(v) for v in videos]}")
    height = height or max(v.shape[1] for v in videos)
    panels = []
    for v in videos:
        h, w = v.shape[1:3]
        new_w = max(1, round(w * height / h))
        if (h, w) == (height, new_w):
            panels.append(v)
        else:
            panels.append(np.stack([cv2.resize(f, (new_w, height), interpolation=cv2.INTER_AREA) for f in v]))
    return np.concatenate(panels, axis=2)
