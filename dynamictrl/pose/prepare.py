"""The whole pose stage: reference photo + driving video -> aligned pose frames and the cropped reference, cached.

`prepare_pose_video` is what `dynamictrl pose` and `dynamictrl animate --driving-video` run. It is the published
code's `utils/pre_process.py::preprocess` with its bugs fixed (docs/pose.md lists the differences):

1. the reference photo is cover-resized and centre-cropped to the target size; *that* array is returned for
   generation (the published code passed the uncropped original, which the pipeline stretched);
2. its pose is extracted and checked first (no person: error before any video work);
3. driving frames are selected (fps, start, stride), decoded one at a time and their poses extracted;
4. too few frames: an error, or an explicit loop / hold-last;
5. poses are aligned to the reference person and checked (warnings; `strict` refuses);
6. frame 0 is the reference image's own pose (all its people, unaligned, as in the published code), then the
   aligned driving poses, all drawn as the model was trained.

Extraction results are cached on disk (one `.npz` per reference image and per driving selection, keyed by a hash of
the file contents, the extraction options and the backend's identity), so running again with other alignment
options or from `animate` costs only alignment and drawing.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from tqdm.auto import tqdm

from .._version import __version__
from ..errors import InputError
from ..io.atomic import atomic_path
from ..io.cache import cache_root
from ..io.images import cover_crop
from ..io.media import FrameSelection, iter_selected_frames, load_image, probe_video
from .align import AlignOptions, LinearTransform, align_poses, is_person
from .backends.base import PoseExtractor
from .check import check_alignment, check_driving, check_reference, enforce
from .driving import ON_SHORT, describe_selection, expand_to_length
from .extract import get_extractor
from .render import PUBLISHED_STYLE, PoseStyle, draw_pose
from .types import FramePose, frames_from_arrays, frames_to_arrays

logger = logging.getLogger(__name__)

# Bump when extraction output changes for the same inputs (mapping, decoding, selection): old entries are ignored.
CACHE_VERSION = 1


def default_cache_dir() -> Path:
    """`cache_root()/pose`: $DYNAMICTRL_CACHE_DIR/pose, else ~/.cache/dynamictrl/pose."""
    return cache_root() / "pose"


@dataclass
class PreparedPose:
    """Output of the pose stage. `frames[0]` is the reference image's pose; `reference_image` is what to generate from.

    frames: uint8 `[num_frames, height, width, 3]` RGB skeleton images.
    reference_image: uint8 `[height, width, 3]`, the cover-resized, centre-cropped reference photo.
    keypoints: one `FramePose` per frame (normalised to the target size), exactly what `frames` draws.
    warnings: what the pose check found (empty when all is well).
    fps: rate at which the driving frames replay the motion at its real speed.
    source_indices: driving-video frame index of each frame (None for frame 0, the reference pose).
    """

    frames: npt.NDArray[np.uint8]
    reference_image: npt.NDArray[np.uint8]
    keypoints: list[FramePose]
    warnings: list[str]
    fps: float
    source_indices: list[int | None]
    backend: str
    transform: LinearTransform
    align: AlignOptions
    cache_hit: bool = False
    timings: dict[str, float] = field(default_factory=dict)
    style: PoseStyle = PUBLISHED_STYLE  # how `frames` were drawn

    def metadata(self) -> dict[str, Any]:
        """What produced these poses (saved next to the keypoints)."""
        return {
            "dynamictrl_version": __version__,
            "backend": self.backend,
            "height": int(self.reference_image.shape[0]),
            "width": int(self.reference_image.shape[1]),
            "num_frames": len(self.keypoints),
            "fps": self.fps,
            "source_indices": self.source_indices,
            "align": self.align.to_dict(),
            "transform": self.transform.to_dict(),
            "warnings": self.warnings,
            "pose_render": self.style.to_json(),
        }


# ------------------------------------------------------------------------------------------------ hashing
def _file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _array_digest(array: npt.NDArray) -> str:
    h = hashlib.sha256(str((array.shape, str(array.dtype))).encode())
    h.update(np.ascontiguousarray(array).tobytes())
    return h.hexdigest()


def _key(*parts: Any) -> str:
    text = json.dumps([CACHE_VERSION, *parts], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


class _PoseCache:
    """`.npz` files of extracted poses in one folder; unreadable entries count as misses."""

    def __init__(self, folder: Path | None) -> None:
        self.folder = folder

    def load(self, key: str) -> tuple[list[FramePose], dict[str, Any]] | None:
        if self.folder is None:
            return None
        path = self.folder / f"{key}.npz"
        if not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {k: data[k] for k in data.files}
            meta = json.loads(str(arrays.pop("meta_json")))
            return frames_from_arrays(arrays), meta
        except Exception as exc:  # a truncated or foreign file must not break the run: recompute instead
            logger.warning("Ignoring unreadable pose cache entry %s (%s)", path, exc)
            return None

    def save(self, key: str, frames: list[FramePose], meta: dict[str, Any]) -> None:
        if self.folder is None:
            return
        arrays = frames_to_arrays(frames)
        arrays["meta_json"] = np.array(json.dumps(meta))
        try:
            with atomic_path(self.folder / f"{key}.npz") as tmp:
                np.savez_compressed(tmp, **arrays)
        except OSError as exc:  # a read-only cache folder only costs speed
            logger.warning("Could not write the pose cache in %s (%s)", self.folder, exc)


# ------------------------------------------------------------------------------------------------ stages
def _timed(timings: dict[str, float], name: str, iterator: Iterator) -> Iterator:
    """Yield from `iterator`, adding the time spent inside it to `timings[name]`."""
    while True:
        start = time.perf_counter()
        try:
            item = next(iterator)
        except StopIteration:
            timings[name] = timings.get(name, 0.0) + time.perf_counter() - start
            return
        timings[name] = timings.get(name, 0.0) + time.perf_counter() - start
        yield item


def _load_reference(reference_image: str | os.PathLike | npt.NDArray) -> tuple[npt.NDArray[np.uint8], str]:
    if isinstance(reference_image, np.ndarray):
        image = np.asarray(reference_image)
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise InputError(f"Reference image must be uint8 [H, W, 3], got {image.dtype} {list(image.shape)}")
        return image, _array_digest(image)
    image = load_image(reference_image)
    return image, _file_digest(Path(reference_image).expanduser())


def prepare_pose_video(
    reference_image: str | os.PathLike | npt.NDArray[np.uint8],
    driving_video: str | os.PathLike,
    height: int,
    width: int,
    num_frames: int | None = None,
    *,
    backend: str = "auto",
    device: str = "cpu",
    model_dir: str | os.PathLike | None = None,
    fps: float | None = None,
    start: int = 0,
    stride: int = 1,
    on_short: str = "error",
    strict: bool = False,
    align: AlignOptions | None = None,
    cache_dir: str | os.PathLike | None = None,
    use_cache: bool = True,
    extractor: PoseExtractor | None = None,
    progress: bool = True,
    style: PoseStyle | None = None,
) -> PreparedPose:
    """Run the pose stage (see module docstring) and return `num_frames` pose frames plus the cropped reference.

    num_frames: total frames including frame 0 (the reference pose), so `num_frames - 1` driving frames are used;
        None takes every driving frame the selection reaches.
    backend/device/model_dir: see `get_extractor`; `extractor` overrides them with a ready one.
    fps/start/stride: driving frame selection (`FrameSelection`); fps None keeps the video's rate.
    on_short: "error", "loop" or "hold-last" when the video gives fewer than `num_frames - 1` frames.
    strict: turn pose-check warnings into a `PoseError`.
    cache_dir: where extraction results are kept (default `default_cache_dir()`); `use_cache=False` disables it.
    progress: show progress bars (tqdm; also silenced by TQDM_DISABLE=1 or a non-terminal stderr).
    style: how the skeletons are drawn (default: the published drawing; a model folder may store its own).
    """
    if height < 1 or width < 1:
        raise InputError(f"Target size must be positive, got {height}x{width}")
    if num_frames is not None and num_frames < 2:
        raise InputError(
            f"num_frames counts the reference pose plus driving frames, so it must be 2 or more, got {num_frames}"
        )
    if on_short not in ON_SHORT:
        raise InputError(f"Unknown on_short policy {on_short!r}; use one of: {', '.join(ON_SHORT)}")
    align = align or AlignOptions()
    needed = None if num_frames is None else num_frames - 1
    selection = FrameSelection(count=needed, fps=fps, start=start, stride=stride)
    timings: dict[str, float] = {}

    # Inputs first: bad files fail in a second, before any model loads.
    t0 = time.perf_counter()
    original, reference_digest = _load_reference(reference_image)
    video_path = Path(driving_video).expanduser()
    info = probe_video(video_path)
    planned = selection.planned_indices(info)
    what = describe_selection(video_path, selection)
    if needed is not None and on_short == "error" and len(planned) < needed:
        expand_to_length(len(planned), needed, on_short, what)  # raises with the explanation
    if not planned:
        raise InputError(f"No driving frames selected{what}: the video has {info.num_frames} frames; lower --start")
    video_digest = _file_digest(video_path)
    if extractor is None:
        extractor = get_extractor(backend, device=device, model_dir=model_dir)
    reference = cover_crop(original, height, width)
    timings["load_inputs"] = time.perf_counter() - t0

    identity = extractor.identity()
    cache = _PoseCache((Path(cache_dir).expanduser() if cache_dir else default_cache_dir()) if use_cache else None)

    # Reference pose (on the cropped image, as the published code does), checked before the video is touched.
    t0 = time.perf_counter()
    ref_key = _key("reference", reference_digest, height, width, identity)
    cached_ref = cache.load(ref_key)
    ref_hit = cached_ref is not None
    if cached_ref is not None:
        reference_pose = cached_ref[0][0]
    else:
        reference_pose = extractor(reference)
        cache.save(ref_key, [reference_pose], {"kind": "reference"})
    timings["reference_pose"] = time.perf_counter() - t0
    warnings = check_reference(reference_pose)

    # Driving poses.
    video_key = _key(
        "driving", video_digest, selection.count, selection.fps, selection.start, selection.stride, identity
    )
    cached_video = cache.load(video_key)
    video_hit = cached_video is not None
    if cached_video is not None:
        driving_poses, meta = cached_video
        source_indices = [int(i) for i in meta["source_indices"]]
    else:
        source_indices = []

        def frames() -> Iterator[npt.NDArray[np.uint8]]:
            for index, frame in _timed(timings, "decode", iter_selected_frames(video_path, selection, info.fps)):
                source_indices.append(index)
                yield frame

        t0 = time.perf_counter()
        bar = tqdm(
            extractor.extract_sequence(frames()),
            total=len(planned),
            desc=f"pose ({extractor.name})",
            unit="frame",
            disable=None if progress else True,
        )
        driving_poses = list(bar)
        timings["extract"] = time.perf_counter() - t0 - timings.get("decode", 0.0)
        if not driving_poses:
            raise InputError(f"No driving frames could be decoded{what}; check the video")
        cache.save(video_key, driving_poses, {"kind": "driving", "source_indices": source_indices})

    positions = expand_to_length(len(driving_poses), needed or len(driving_poses), on_short, what)

    t0 = time.perf_counter()
    result = align_poses(reference_pose, driving_poses, align)
    warnings += check_driving(driving_poses, result.main, align.people)
    warnings += check_alignment(reference_pose, driving_poses, result)
    timings["align_and_check"] = time.perf_counter() - t0
    for w in warnings:
        logger.warning("%s", w)
    enforce(warnings, strict)

    t0 = time.perf_counter()
    # Frame 0: the reference image's own pose, every person in it, unaligned (as the published code does).
    keypoints = [FramePose([p for p in reference_pose.people if is_person(p)], height=height, width=width)]
    keypoints += [result.frames[p] for p in positions]
    frames_out = np.empty((len(keypoints), height, width, 3), dtype=np.uint8)
    for i, pose in enumerate(tqdm(keypoints, desc="drawing", unit="frame", disable=None if progress else True)):
        frames_out[i] = draw_pose(pose, height, width, style)
    timings["render"] = time.perf_counter() - t0

    return PreparedPose(
        frames=frames_out,
        reference_image=reference,
        keypoints=keypoints,
        warnings=warnings,
        fps=selection.output_fps(info.fps),
        source_indices=[None] + [source_indices[p] for p in positions],
        backend=extractor.name,
        transform=result.transform,
        align=align,
        cache_hit=ref_hit and video_hit,
        timings=timings,
        style=style or PUBLISHED_STYLE,
    )
