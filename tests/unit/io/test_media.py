"""Media reading: huge images are reduced or refused in one line; rotated phone clips come out upright."""

from __future__ import annotations

import hashlib
import os
import struct
import subprocess
import sys
import warnings
import zlib
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from dynamictrl.errors import InputError
from dynamictrl.io import media
from dynamictrl.io.media import (
    FrameSelection,
    iter_selected_frames,
    iter_video_frames,
    load_image,
    probe_video,
    read_video,
    write_video,
)


# ------------------------------------------------------------------------------------------------------ images
def _flat_png(path: Path, width: int, height: int) -> Path:
    """A valid 1-bit greyscale PNG of one colour, written directly (a few hundred KB, milliseconds at 14000 px)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    row = b"\x00" + b"\xff" * ((width + 7) // 8)  # filter byte, then white pixels
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    idat = zlib.compress(row * height, 1)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b""))
    return path


@pytest.mark.parametrize("side", [12000, 14000])  # PIL warns at 12000^2 and refuses at 14000^2
def test_huge_png_is_refused_in_one_line_without_pil_warnings(tmp_path, side):
    path = _flat_png(tmp_path / "big.png", side, side)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(InputError) as info:
            load_image(path)
    message = str(info.value)
    assert f"is {side}x{side} px ({side * side / 1e6:.0f} MP), over the 64 MP limit" in message
    assert message.endswith("resize it to at most 8000x8000 px") and "\n" not in message
    assert not [w for w in caught if issubclass(w.category, Image.DecompressionBombWarning)]


def test_png_at_the_limit_loads(tmp_path, monkeypatch):
    monkeypatch.setattr(media, "MAX_IMAGE_PIXELS", 300 * 200)
    assert load_image(_flat_png(tmp_path / "ok.png", 300, 200)).shape == (200, 300, 3)
    with pytest.raises(InputError, match="resize it to at most 300x200 px"):
        load_image(_flat_png(tmp_path / "big.png", 600, 400))


def _quadrants(height: int, width: int) -> np.ndarray:
    """Red top-left, green top-right, blue bottom-left, white bottom-right: every turn and flip looks different."""
    img = np.zeros((height, width, 3), np.uint8)
    h, w = height // 2, width // 2
    img[:h, :w] = (255, 0, 0)
    img[:h, w:] = (0, 255, 0)
    img[h:, :w] = (0, 0, 255)
    img[h:, w:] = (255, 255, 255)
    return img


@pytest.mark.parametrize("pil_refuses", [False, True])
def test_large_jpeg_is_decoded_at_reduced_scale(tmp_path, monkeypatch, caplog, pil_refuses):
    monkeypatch.setattr(media, "MAX_IMAGE_PIXELS", 300_000)
    if pil_refuses:  # as PIL does above 179 MP (a 200 MP phone photo): refuse before the size can be read
        monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100_000)
    path = tmp_path / "big.jpg"
    Image.fromarray(_quadrants(800, 1200)).save(path, quality=95)
    with warnings.catch_warnings(record=True) as caught, caplog.at_level("INFO", logger="dynamictrl.io.media"):
        warnings.simplefilter("always")
        image = load_image(path)
    assert image.shape == (400, 600, 3)
    assert np.abs(image.astype(int) - _quadrants(400, 600)).mean() < 6
    assert "is 1200x800 px (1 MP); decoding it at 1/2 scale (600x400)" in caplog.text
    assert not [w for w in caught if issubclass(w.category, Image.DecompressionBombWarning)]


def test_reduced_jpeg_keeps_its_exif_orientation(tmp_path, monkeypatch):
    monkeypatch.setattr(media, "MAX_IMAGE_PIXELS", 300_000)
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: display rotated 90 degrees clockwise
    path = tmp_path / "phone.jpg"
    Image.fromarray(_quadrants(800, 1200)).save(path, quality=95, exif=exif)
    image = load_image(path)
    assert image.shape == (600, 400, 3)
    assert np.abs(image.astype(int) - np.rot90(_quadrants(400, 600), k=-1)).mean() < 6


def test_jpeg_too_large_even_at_one_eighth_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(media, "MAX_IMAGE_PIXELS", 1_000)
    path = tmp_path / "big.jpg"
    Image.fromarray(_quadrants(800, 1200)).save(path)
    with pytest.raises(InputError, match=r"big\.jpg is 1200x800 px \(1 MP\), over the 0 MP limit; resize it to at"):
        load_image(path)


# ------------------------------------------------------------------------------------------------------ videos
# Display matrices as phones and FFmpeg write them (9 int32, a b u / c d v / x y w, 16.16 fixed point), keyed by the
# rotation ffprobe prints, and the array operation a player applies. An upright iPhone writes the "-90" matrix: a
# clockwise quarter turn. Each case was checked against `ffmpeg -i clip.mp4 frame.png` (autorotate) from FFmpeg 5.1:
# identical frames.
ONE = 1 << 16
W_ONE = 1 << 30
MATRICES = {
    "none": (None, lambda f: f),
    "-90 (upright iPhone)": ((0, ONE, 0, -ONE, 0, 0, 0, 0, W_ONE), lambda f: np.rot90(f, k=-1)),
    "90": ((0, -ONE, 0, ONE, 0, 0, 0, 0, W_ONE), lambda f: np.rot90(f, k=1)),
    "180": ((-ONE, 0, 0, 0, -ONE, 0, 0, 0, W_ONE), lambda f: np.rot90(f, k=2)),
    "mirrored (hflip)": ((-ONE, 0, 0, 0, ONE, 0, 0, 0, W_ONE), lambda f: f[:, ::-1]),
    "transposed": ((0, ONE, 0, ONE, 0, 0, 0, 0, W_ONE), lambda f: f.transpose(1, 0, 2)),
}
STORED = np.stack([_quadrants(32, 48)] * 4)  # landscape 48x32, as a phone sensor stores it


def _clip(path: Path, matrix) -> Path:
    """A 4-frame H.264 clip of STORED with `matrix` in its track header (PyAV alone: no ffmpeg binary needed)."""
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 48, 32, "yuv420p"
        stream.options = {"crf": "10"}
        if matrix is not None:
            stream.set_display_matrix(list(matrix))
        for frame in STORED:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def _close(frames: np.ndarray, expected: np.ndarray) -> bool:
    return frames.shape == expected.shape and np.abs(frames.astype(int) - expected).mean() < 8


@pytest.mark.parametrize("name", list(MATRICES))
def test_every_reader_returns_upright_frames(tmp_path, name):
    matrix, display = MATRICES[name]
    path = _clip(tmp_path / "clip.mp4", matrix)
    expected = np.stack([display(f) for f in STORED])

    info = probe_video(path)
    assert (info.height, info.width) == expected.shape[1:3]
    assert info.num_frames == 4
    streamed = np.stack(list(iter_video_frames(path)))
    assert _close(streamed, expected) and all(f.flags.c_contiguous for f in streamed)
    frames, fps = read_video(path, start=1, max_frames=2)
    assert fps == 10 and _close(frames, expected[1:3])
    selected = list(iter_selected_frames(path, FrameSelection(count=2, stride=2), info.fps))
    assert [i for i, _ in selected] == [0, 2] and _close(np.stack([f for _, f in selected]), expected[[0, 2]])


def test_probe_reports_the_rotation_pyav_reads(tmp_path):
    assert probe_video(_clip(tmp_path / "a.mp4", MATRICES["-90 (upright iPhone)"][0])).rotation == -90
    assert probe_video(_clip(tmp_path / "b.mp4", MATRICES["90"][0])).rotation == 90
    assert probe_video(_clip(tmp_path / "c.mp4", None)).rotation == 0


def test_our_own_videos_are_unchanged(tmp_path):
    path = write_video(tmp_path / "v.mp4", STORED, fps=8)
    info = probe_video(path)
    assert (info.width, info.height, info.rotation) == (48, 32, 0)
    assert _close(read_video(path)[0], STORED)


_ENCODE = """
import hashlib, os, sys
import numpy as np
from dynamictrl.io.media import write_video
if sys.argv[1] == "one-cpu":
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
noise = (np.random.default_rng(0).random((8, 256, 384, 1)) * 255).astype(np.uint8)
write_video(sys.argv[2], np.repeat(noise, 3, axis=-1), fps=8)
"""


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="CPU affinity is Linux-only")
def test_encoding_is_the_same_whatever_the_cpu_count(tmp_path):
    """x264's output depends on its thread count, which by default follows the CPUs: a fixed count is reproducible."""
    digests = []
    for cpus in ("one-cpu", "all-cpus"):
        out = tmp_path / f"{cpus}.mp4"
        subprocess.run([sys.executable, "-c", _ENCODE, cpus, str(out)], check=True)
        digests.append(hashlib.sha256(out.read_bytes()).hexdigest())
    assert digests[0] == digests[1]


def test_the_same_frames_encode_to_the_same_bytes_every_time(tmp_path):
    """x264's AVX-512 code gave different files for these frames from one call to the next (5 in 25 on a Xeon with
    AVX-512); `write_video` holds it to its AVX2 code there, so every call gives the same file."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:64, 0:96]
    frames = np.stack(
        [
            np.clip(
                128 + 60 * (np.sin(xx / 7 + t) * np.cos(yy / 5 - t / 2))[..., None] + rng.normal(0, 20, (64, 96, 3)),
                0,
                255,
            )
            for t in range(9)
        ]
    ).astype(np.uint8)
    digests = set()
    for i in range(40):  # without the cap about one encode in five differed
        write_video(tmp_path / f"{i}.mp4", frames, fps=8)
        digests.add(hashlib.sha256((tmp_path / f"{i}.mp4").read_bytes()).hexdigest())
    assert len(digests) == 1
