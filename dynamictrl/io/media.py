"""Images and videos as uint8 RGB arrays (`[H, W, 3]`, `[F, H, W, 3]`), and back to files.

Decoding and encoding go through PyAV (bundled FFmpeg with libx264), so nothing else has to be installed. Every
failure a user can cause (missing file, not an image, corrupt video, empty video) raises a `MediaError` that names
the file and says what to do.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import os
import struct
import warnings
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
MAX_IMAGE_PIXELS = 64_000_000
"""Largest image `load_image` decodes at full size (8000 x 8000): a bigger PNG would take gigabytes for nothing (the
model sees a few megapixels at most). Bigger JPEGs are decoded at 1/2, 1/4 or 1/8 scale instead (libjpeg's cheap
DCT scaling, `Image.draft`); other formats are refused with the size to resize to."""


def load_image(path: str | os.PathLike) -> npt.NDArray[np.uint8]:
    """Read an image file as RGB uint8 `[H, W, 3]`, applying its EXIF orientation (phone photos).

    Images over `MAX_IMAGE_PIXELS` are reduced while decoding (JPEG) or refused with an `InputError`; PIL's own
    decompression-bomb warning and error never reach the user.
    """
    p = _existing_file(path, "Image")
    try:
        with _open_image(p) as img:
            _reduce_large(img, p)
            img = ImageOps.exif_transpose(img)
            if img.mode in ("RGBA", "LA") or (img.mode == "P" and "transparency" in img.info):
                # Composite transparency on white instead of letting it turn black.
                rgba = img.convert("RGBA")
                background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
                img = Image.alpha_composite(background, rgba)
            return np.asarray(img.convert("RGB"), dtype=np.uint8).copy()
    except InputError:
        raise
    except Image.DecompressionBombError as exc:  # raised while decoding by a few plugins (GIF frames, TIFF tiles)
        side = math.isqrt(MAX_IMAGE_PIXELS)
        raise InputError(f"{p} is too large to decode safely ({exc}); resize it to at most {side}x{side} px") from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise MediaError(f"{p} is not a readable image ({type(exc).__name__}); give a PNG, JPEG or WebP file") from exc


def _open_image(p: Path) -> Image.Image:
    """`Image.open` (lazy: reads the header only) without PIL's decompression-bomb warning or error.

    PIL warns above `Image.MAX_IMAGE_PIXELS` and refuses above twice that before we can look at the size; our own,
    lower limit (`_reduce_large`) applies instead. For a file PIL refuses, the format's plugin is opened directly,
    which parses the header only (what `Image.open` does before its check).
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            return Image.open(p)
        except Image.DecompressionBombError:
            pass
    Image.init()
    with open(p, "rb") as fp:
        prefix = fp.read(16)
    for fmt in Image.ID:
        factory, accept = Image.OPEN[fmt]
        result = accept(prefix) if accept else True
        if result and not isinstance(result, str):
            with contextlib.suppress(SyntaxError, IndexError, TypeError, struct.error, OSError):
                return factory(str(p), str(p))
    raise UnidentifiedImageError(f"cannot identify image file {p}")


def _reduce_large(img: Image.Image, p: Path) -> None:
    """Keep `img` (still lazy) within `MAX_IMAGE_PIXELS`: JPEG by decoding at a reduced scale, others refused."""
    width, height = img.size
    if width * height <= MAX_IMAGE_PIXELS:
        return
    if img.format in ("JPEG", "MPO"):
        scale = next((s for s in (2, 4, 8) if math.ceil(width / s) * math.ceil(height / s) <= MAX_IMAGE_PIXELS), 8)
        img.draft("RGB", (math.ceil(width / scale), math.ceil(height / scale)))
        if img.size[0] * img.size[1] <= MAX_IMAGE_PIXELS:
            logger.info(
                "%s is %dx%d px (%.0f MP); decoding it at 1/%d scale (%dx%d)",
                p,
                width,
                height,
                width * height / 1e6,
                width // img.size[0],
                *img.size,
            )
            return
    factor = math.sqrt(MAX_IMAGE_PIXELS / (width * height))
    raise InputError(
        f"{p} is {width}x{height} px ({width * height / 1e6:.0f} MP), over the {MAX_IMAGE_PIXELS / 1e6:.0f} MP limit; "
        f"resize it to at most {math.floor(width * factor)}x{math.floor(height * factor)} px"
    )


def save_image(path: str | os.PathLike, image: npt.NDArray[np.uint8] | Image.Image) -> Path:
    """Write an RGB image atomically; the format comes from the suffix."""
    pil = image if isinstance(image, Image.Image) else Image.fromarray(np.asarray(image, dtype=np.uint8))
    with atomic_path(path) as tmp:
        pil.save(tmp)
    return Path(path)


# ----------------------------------------------------------------------------------------------------- videos
@dataclass(frozen=True)
class VideoInfo:
    """What a video file holds. `num_frames` is counted by decoding when the container does not say.

    `width` and `height` are the displayed (upright) size: a phone clip stored as 1920x1080 with a 90 degree display
    rotation reports 1080x1920, the shape the readers below return. `rotation` is that display rotation in degrees
    counter-clockwise (PyAV's `VideoFrame.rotation`), 0 for most files.
    """

    path: Path
    width: int
    height: int
    fps: float
    num_frames: int
    rotation: int = 0

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


@dataclass(frozen=True)
class _Orientation:
    """How to turn a stored frame into the displayed one, from the container's display matrix.

    The matrix (ISO/IEC 14496-12 `tkhd`, FFmpeg's `AV_FRAME_DATA_DISPLAYMATRIX`: 9 int32, a b u / c d v / x y w,
    a-d in 16.16 fixed point) maps a stored pixel (x, y), y pointing down, to the displayed (a*x + c*y, b*x + d*y)
    up to a shift. A phone held upright writes a=0, b=1, c=-1, d=0 ("rotate 90" clockwise; PyAV rotation -90).
    """

    transpose: bool = False
    flip_rows: bool = False
    flip_cols: bool = False
    rotation: int = 0

    def apply(self, frame: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
        if self.transpose:
            frame = frame.transpose(1, 0, 2)
        if self.flip_rows:
            frame = frame[::-1]
        if self.flip_cols:
            frame = frame[:, ::-1]
        if frame.flags.c_contiguous:
            return frame
        return np.ascontiguousarray(frame)

    def display_size(self, width: int, height: int) -> tuple[int, int]:
        return (height, width) if self.transpose else (width, height)


_UPRIGHT = _Orientation()


def _frame_orientation(frame, p: Path) -> _Orientation:
    """The display orientation a decoded PyAV frame carries (identity when it has no display matrix)."""
    import av

    rotation = int(round(getattr(frame, "rotation", 0) or 0))
    matrix = None
    for side_data in frame.side_data:
        if side_data.type == av.sidedata.sidedata.Type.DISPLAYMATRIX:
            matrix = np.frombuffer(bytes(side_data), dtype=np.int32)
    if matrix is None or len(matrix) != 9:
        if rotation == 0:
            return _UPRIGHT
        # No readable matrix but a rotation (older PyAV): no flips; an odd quarter turn swaps the axes.
        matrix = np.array([0] * 9, dtype=np.int32)
        cos, sin = round(math.cos(math.radians(rotation))), round(math.sin(math.radians(rotation)))
        # PyAV's rotation r is counter-clockwise: a = d = cos r, b = -sin r, c = sin r.
        matrix[0], matrix[1], matrix[3], matrix[4] = cos * 65536, -sin * 65536, sin * 65536, cos * 65536
    a, b, c, d = (float(v) / 65536.0 for v in matrix[[0, 1, 3, 4]])
    # Snap to the nearest quarter turn: these eight cases are exact array operations (no resampling).
    if abs(a) + abs(d) >= abs(b) + abs(c):
        orientation = _Orientation(False, d < 0, a < 0, rotation)
        exact = abs(b) + abs(c) < 1e-3
    else:
        # displayed x' = c*y, y' = b*x: the displayed rows follow stored columns.
        orientation = _Orientation(True, b < 0, c < 0, rotation)
        exact = abs(a) + abs(d) < 1e-3
    if not exact:
        logger.warning("%s has a display rotation of %d degrees; using the nearest quarter turn", p, rotation)
    return orientation


def _decode_upright(container, p: Path) -> Iterator[npt.NDArray[np.uint8]]:
    """Decode the first video stream of an open container as upright RGB frames."""
    import av

    stream = container.streams.video[0]
    stream.thread_type = "AUTO"
    orientation = None
    try:
        for frame in container.decode(stream):
            if orientation is None:
                orientation = _frame_orientation(frame, p)
            yield orientation.apply(frame.to_ndarray(format="rgb24"))
    except (av.error.InvalidDataError, av.error.FFmpegError) as exc:
        raise MediaError(f"{p} is corrupt: decoding failed ({exc}); re-encode or re-download it") from exc


def iter_video_frames(path: str | os.PathLike) -> Iterator[npt.NDArray[np.uint8]]:
    """Decode every frame of a video as RGB uint8 `[H, W, 3]`, one at a time (constant memory).

    Frames come upright: the container's display rotation (phone clips) is applied, as players do.
    """
    p = _existing_file(path, "Video")
    container = _open_container(p)
    try:
        yield from _decode_upright(container, p)
    finally:
        container.close()


def probe_video(path: str | os.PathLike) -> VideoInfo:
    """Displayed size, frame rate and frame count of a video. Decodes it if the container has no frame count.

    The first frame is decoded to read the display rotation, which PyAV exposes on frames only.
    """
    import av

    p = _existing_file(path, "Video")
    container = _open_container(p)
    orientation = _UPRIGHT
    try:
        stream = container.streams.video[0]
        fps = _stream_fps(stream)
        width, height, count = stream.codec_context.width, stream.codec_context.height, stream.frames
        try:
            first = next(container.decode(stream), None)
        except (av.error.InvalidDataError, av.error.FFmpegError) as exc:
            raise MediaError(f"{p} is corrupt: decoding failed ({exc}); re-encode or re-download it") from exc
        if first is not None:
            orientation = _frame_orientation(first, p)
            width, height = first.width, first.height
    finally:
        container.close()
    if not count:
        count = sum(1 for _ in iter_video_frames(p))
    if count == 0:
        raise MediaError(f"{p} contains no video frames; give a non-empty video")
    width, height = orientation.display_size(width, height)
    return VideoInfo(path=p, width=width, height=height, fps=fps, num_frames=count, rotation=orientation.rotation)


@dataclass(frozen=True)
class FrameSelection:
    """Which frames of a video to take: resample to `fps` (nearest earlier frame in time; None = native rate),
    then `start`, `stride` and `count` pick from the resampled sequence (`count=None`: all it reaches)."""

    count: int | None = None
    fps: float | None = None
    start: int = 0
    stride: int = 1

    def __post_init__(self) -> None:
        if self.start < 0:
            raise InputError(f"--start must be 0 or more, got {self.start}")
        if self.stride < 1:
            raise InputError(f"--stride must be 1 or more, got {self.stride}")
        if self.count is not None and self.count < 1:
            raise InputError(f"The number of frames must be 1 or more, got {self.count}")
        if self.fps is not None and not (self.fps > 0 and np.isfinite(self.fps)):
            raise InputError(f"--fps must be a positive number, got {self.fps}")

    def source_index(self, position: int, source_fps: float) -> int:
        """Source frame index of the `position`-th selected frame."""
        resampled = self.start + position * self.stride
        if not self.fps or not source_fps or abs(self.fps - source_fps) < 1e-6:
            return resampled
        return int(np.floor(resampled * source_fps / self.fps + 1e-6))

    def output_fps(self, source_fps: float) -> float:
        """Rate at which the selected frames replay the motion at its real speed."""
        return (self.fps or source_fps or 30.0) / self.stride

    def planned_indices(self, info: VideoInfo) -> list[int]:
        """Source indices the selection reaches in a video of `info.num_frames` frames."""
        out, position = [], 0
        while self.count is None or position < self.count:
            index = self.source_index(position, info.fps)
            if index >= info.num_frames:
                break
            out.append(index)
            position += 1
        return out


def iter_selected_frames(
    path: str | os.PathLike, selection: FrameSelection, source_fps: float
) -> Iterator[tuple[int, npt.NDArray[np.uint8]]]:
    """Decode the video once and yield (source index, RGB frame) for the selected frames, in order.

    Only selected frames are kept, so a long 1080p video never has to fit in memory; a frame picked twice (a
    target rate above the source rate) is yielded twice.
    """
    position = 0
    wanted = selection.source_index(position, source_fps)
    for index, frame in enumerate(iter_video_frames(path)):
        while index == wanted:
            yield index, frame
            position += 1
            if selection.count is not None and position >= selection.count:
                return
            wanted = selection.source_index(position, source_fps)


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
    resampled sequence (see `FrameSelection`). The returned rate is the one at which the selected frames play the
    motion at real speed.
    """
    p = _existing_file(path, "Video")
    selection = FrameSelection(count=max_frames, fps=target_fps, start=start, stride=stride)
    container = _open_container(p)
    try:
        fps = _stream_fps(container.streams.video[0])
    finally:
        container.close()
    frames = [frame for _, frame in iter_selected_frames(p, selection, fps)]
    if not frames:
        if start == 0:
            raise MediaError(f"{p} contains no video frames; give a non-empty video")
        raise InputError(f"{p} has no frames left after start={start}, stride={stride}; lower --start")
    return np.stack(frames), selection.output_fps(fps)


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


PIX_FMTS = ("yuv420p", "yuv444p")
X264_THREADS = 4
"""Encoder threads of `write_video`: fixed so the same frames give the same file on every machine (x264 is
bit-exact for a given thread count and instruction set); 4 keeps encoding a small part of a run's time."""


@functools.lru_cache(maxsize=1)
def x264_params() -> str:
    """The `x264-params` of `write_video`: "asm=AVX2" on a CPU with AVX-512, else "" (x264's own choice).

    x264's AVX-512 code gives different bytes for the same frames from one call to the next (seen on a Xeon with
    AVX-512: 5 different files in 25 encodes of the same 9 frames, and pixels up to 29/255 apart once decoded);
    its AVX2 code is deterministic and gives the file that CPUs without AVX-512 give. Every CPU with AVX-512 has
    AVX2, FMA3 and BMI2, so the cap is safe there. Read from /proc/cpuinfo (Linux); elsewhere x264 chooses.
    """
    try:
        flags = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return ""
    return "asm=AVX2" if "avx512f" in flags else ""


def write_video(
    path: str | os.PathLike,
    frames: npt.ArrayLike | Iterable[Image.Image],
    fps: float,
    *,
    crf: int = 18,
    pix_fmt: str = "yuv420p",
) -> Path:
    """Encode frames as an H.264 MP4 (by default yuv420p, playable everywhere), atomically and reproducibly.

    The same frames give the same bytes in every process and on every machine with the same PyAV build: fixed
    encoder threads (`X264_THREADS`), x264 held to its AVX2 code on CPUs with AVX-512 (`x264_params`), and no
    creation time in the container (FFmpeg writes none unless asked).

    `frames` are uint8 `[F, H, W, 3]`, float `[F, H, W, 3]` in [0, 1], or a list of PIL images. `pix_fmt`
    "yuv444p" keeps full-resolution colour (High 4:4:4 profile, which FFmpeg-based readers decode but some players
    do not): at 64 px, 4:2:0 chroma subsampling costs more than the compression (mean error 2.9 vs 0.9 at crf 10).
    """
    if pix_fmt not in PIX_FMTS:
        raise InputError(f"pix_fmt must be one of {', '.join(PIX_FMTS)}, got {pix_fmt!r}")
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
            stream.pix_fmt = pix_fmt
            # A fixed thread count: x264's output depends on it, and "auto" follows the machine's cores, so the same
            # frames gave different bytes (and pixels, up to 40/255) on machines with different core counts.
            stream.codec_context.thread_count = X264_THREADS
            options = {"crf": str(crf), "preset": "medium"}
            if params := x264_params():  # x264's AVX-512 code is not deterministic (`x264_params`)
                options["x264-params"] = params
            stream.options = options
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
