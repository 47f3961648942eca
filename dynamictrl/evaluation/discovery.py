"""Finding the videos of a folder, pairing generated with ground-truth videos by name, reading and aligning a pair.

A "video" is a video file (named by its stem) or a sub-folder of frame images (named by the folder, as DisCo writes
its results). Pairs are matched by that name. A pair is read one at a time and aligned by the protocol: frame
selection (`drop_generated_prefix`, `frame_count`) and the size both are compared at (`resolution`).
"""

from __future__ import annotations

import itertools
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ..errors import InputError, MediaError
from ..io.images import cover_crop_frames, resize_frames
from ..io.media import IMAGE_SUFFIXES, VIDEO_SUFFIXES, iter_video_frames, load_image, probe_video
from .protocols import Protocol

logger = logging.getLogger(__name__)


def _natural_key(text: str) -> list[Any]:
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", text)]


def discover_videos(folder: Path) -> dict[str, Path]:
    """Name -> path of every video file and every sub-folder holding frame images in `folder`, in natural order."""
    found: dict[str, Path] = {}
    for entry in sorted(Path(folder).iterdir(), key=lambda p: _natural_key(p.name)):
        if entry.name.startswith("."):
            continue
        if entry.is_file() and entry.suffix.lower() in VIDEO_SUFFIXES:
            name = entry.stem
        elif entry.is_dir() and any(p.suffix.lower() in IMAGE_SUFFIXES for p in entry.iterdir()):
            name = entry.name
        else:
            continue
        if name in found:
            logger.warning("Two entries named %s in %s; using %s", name, folder, found[name].name)
            continue
        found[name] = entry
    return found


@dataclass
class Pairing:
    """The videos of both folders, the names found in both (in generated order), and the names found in one only."""

    generated: dict[str, Path]
    ground_truth: dict[str, Path]
    names: list[str]
    unmatched: dict[str, str]
    """name -> why it is not evaluated (generated without ground truth first, then ground truth without generated)."""


def pair_videos(generated_dir: Path, ground_truth_dir: Path) -> Pairing:
    """Match the two folders by name; `InputError` when a folder is empty or no name is in both."""
    generated = discover_videos(generated_dir)
    ground_truth = discover_videos(ground_truth_dir)
    if not generated:
        raise InputError(f"No videos (or folders of frames) in --generated {generated_dir}")
    if not ground_truth:
        raise InputError(f"No videos (or folders of frames) in --ground-truth {ground_truth_dir}")
    names = [n for n in generated if n in ground_truth]
    if not names:
        raise InputError(
            f"No generated video has a reference of the same name in --ground-truth (generated: "
            f"{', '.join(list(generated)[:3])}...; ground truth: {', '.join(list(ground_truth)[:3])}...); "
            "name the pairs alike"
        )
    # These per-file messages are stored in metrics.json and kept word for word across versions.
    unmatched = {n: "no reference video of this name" for n in generated if n not in ground_truth}
    unmatched.update({n: "no generated video of this name" for n in ground_truth if n not in generated})
    return Pairing(generated, ground_truth, names, unmatched)


def read_frames(path: Path, max_frames: int | None = None) -> npt.NDArray[np.uint8]:
    """A video file or a folder of frames as uint8 `[F, H, W, 3]`; at most `max_frames` frames are decoded."""
    if path.is_dir():
        files = sorted(
            (p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES), key=lambda p: _natural_key(p.name)
        )
        frames = [load_image(p) for p in itertools.islice(files, max_frames)]
        sizes = {f.shape for f in frames}
        if len(sizes) > 1:
            raise MediaError(f"{path}: frame images differ in size ({sorted(sizes)[:2]}...); resize them to one size")
    else:
        frames = list(itertools.islice(iter_video_frames(path), max_frames))
    if not frames:
        raise MediaError(f"{path} holds no frames")
    return np.stack(frames)


def count_frames(path: Path) -> int:
    """Frames of a video file (from its header) or of a folder of frame images, without decoding them."""
    if path.is_dir():
        return sum(1 for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    return probe_video(path).num_frames


def align_pair(
    generated: npt.NDArray[np.uint8], ground_truth: npt.NDArray[np.uint8], protocol: Protocol, ground_truth_total: int
) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint8], list[str]]:
    """Apply the protocol's frame selection and resolution; returns equal-shape videos and warnings.

    `ground_truth` holds at most one frame more than needed; `ground_truth_total` is its real length (for messages).
    Raises `InputError` when the protocol cannot pair the videos. The messages say "reference" for the ground truth:
    they are stored in metrics.json and kept word for word across versions.
    """
    notes: list[str] = []
    prefix = protocol.drop_generated_prefix
    if len(generated) <= prefix:
        raise InputError(f"generated video has {len(generated)} frame(s); the protocol drops the first {prefix}")
    generated = generated[prefix:]
    needed = len(generated)
    if protocol.frame_count == "exact" and ground_truth_total != needed:
        raise InputError(
            f"different frame counts: {needed} generated (after dropping {prefix}) vs {ground_truth_total} "
            f"reference; protocol {protocol.name} pairs frames 1:1"
        )
    if ground_truth_total < needed:
        raise InputError(f"reference has {ground_truth_total} frames, fewer than the {needed} generated ones to pair")
    if ground_truth_total > needed:
        notes.append(f"reference has {ground_truth_total} frames; its first {needed} are used")
    ground_truth = ground_truth[:needed]
    if generated.shape[1:3] != ground_truth.shape[1:3]:
        (gh, gw), (th, tw) = generated.shape[1:3], ground_truth.shape[1:3]
        if protocol.resolution == "reference":  # the ground truth's size (DisCo's `cv2.resize` of generated frames)
            generated = resize_frames(generated, th, tw)
            notes.append(f"different sizes: generated {gw}x{gh} resized to the ground truth's {tw}x{th}")
        else:  # the generated size: the ground truth is treated as the published code treats the reference photo
            ground_truth = cover_crop_frames(ground_truth, gh, gw)
            notes.append(f"different sizes: reference {tw}x{th} scaled and centre-cropped to the generated {gw}x{gh}")
    return generated, ground_truth, notes


def load_pair(
    generated_path: Path, ground_truth_path: Path, protocol: Protocol
) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint8], list[str]]:
    """Read one pair and align it (`align_pair`); the ground truth is decoded only as far as the pairing needs.

    Raises a `DynamiCtrlError` (`MediaError`, `InputError`) for a pair that cannot be read or paired.
    """
    generated = read_frames(generated_path)
    limit = len(generated) - protocol.drop_generated_prefix
    ground_truth = read_frames(ground_truth_path, max_frames=max(limit, 0) + 1)
    total = len(ground_truth) if len(ground_truth) <= limit else count_frames(ground_truth_path)
    return align_pair(generated, ground_truth, protocol, total)
