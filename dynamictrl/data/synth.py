"""`dynamictrl synth`: samples of the synthetic world (`dynamictrl.synthetic`) written in the training layout.

The layout is prepare-data's, so the trainer reads it unchanged, plus the ground truth of every clip:

```
OUT_DIR/videos/<name>.mp4        RGB frames                              (manifest "video")
OUT_DIR/poses/<name>.mp4         the pose render of the keypoints        (manifest "pose")
OUT_DIR/mask_video/<name>.mp4    person mask, white = person (the published Mask_B01 path: videos -> mask_video)
OUT_DIR/clothes_mask/<name>.mp4  clothes mask, white = clothes
OUT_DIR/keypoints/<name>.json    keypoints (`pose.types.save_keypoints_json`; meta: seed, index, fps)
OUT_DIR/attributes/<name>.json   caption, attributes (`synthetic.world.recaption` reads them), files; written last
OUT_DIR/manifest.jsonl           `ClipRecord`s, no mask (train as released); manifest_masked.jsonl: mask = person;
                                 manifest_mixed.jsonl: every clip twice, whole and masked (the small model's mix)
OUT_DIR/prompts.txt, video.txt   the published `name#####caption` / `videos/<name>.mp4` pair, same order
OUT_DIR/synth.json               the settings; a run with other settings into the same folder is refused
```

Clip `i` is `synthetic.world.make_sample(seed, i)`, so clips are byte-identical for the same settings, whatever
`n` (a larger `n` later adds clips; a smaller one lists the first `n`). A clip whose attributes file exists with
all its files is finished and skipped on a re-run (resume).

Videos: frames and pose renders as H.264 at crf 10 in yuv444p: at 64 px the 4:2:0 chroma subsampling of the usual
yuv420p blurs every coloured edge (mean error 2.9/255 against 0.9 at crf 10 in 4:4:4), and the pose render is
thin coloured sticks. Masks, grey, are lossless (crf 0, yuv420p): they decode to exactly 0 and 255.

With `motion_videos`, every clip is driven by real motion instead of a named one: the pose stage's extractor
runs once per video (at `fps`, frames shrunk to at most `MOTION_MAX_SIDE` px, keypoints cached in
`OUT_DIR/motion/<stem>.json`), and each clip retargets a window of one video's keypoints to its character.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from ..pose.types import FramePose
from .manifest import ClipRecord, write_manifest

logger = logging.getLogger(__name__)

SYNTH_FORMAT = 1
SETTINGS_FILE = "synth.json"
VIDEO_CRF = 10
VIDEO_PIX_FMT = "yuv444p"
MASK_CRF = 0
# Driving-video frames are shrunk to this long side before pose extraction (the detectors work at lower sizes).
MOTION_MAX_SIDE = 640
MIN_FRAMES = 5


@dataclass(frozen=True)
class SynthOptions:
    """Settings of a synthetic set (saved in synth.json; all but `n` and `quiet` must match on a re-run)."""

    n: int
    seed: int = 0
    frames: int = 17
    height: int = 64
    width: int = 64
    fps: float = 8.0
    motions: tuple[str, ...] | None = None
    backgrounds: tuple[str, ...] | str | None = None  # "a,b" or names; checked into a tuple (None: any background)
    motion_videos: tuple[Path, ...] = ()
    pose_backend: str = "auto"
    crf: int = VIDEO_CRF
    quiet: bool = False

    def __post_init__(self) -> None:
        from ..models.geometry import validate_num_frames, validate_size
        from ..synthetic.background import parse_background_colours
        from ..synthetic.motion import parse_motions

        for name, low in (("n", 1), ("seed", 0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise InputError(f"--{name} must be an integer >= {low}, got {value!r}")
        validate_num_frames(self.frames, flag="--frames")
        if self.frames < MIN_FRAMES:
            raise InputError(f"--frames must be at least {MIN_FRAMES} (4k+1), got {self.frames}")
        validate_size(self.height, self.width, flags=("--height", "--width"))
        if not (isinstance(self.fps, (int, float)) and math.isfinite(self.fps) and self.fps > 0):
            raise InputError(f"--fps must be a positive number, got {self.fps}")
        if isinstance(self.crf, bool) or not isinstance(self.crf, int) or not 0 <= self.crf <= 51:
            raise InputError(f"--crf must be an integer in 0..51, got {self.crf!r}")
        object.__setattr__(self, "fps", float(self.fps))
        object.__setattr__(self, "motions", parse_motions(self.motions))
        object.__setattr__(self, "backgrounds", parse_background_colours(self.backgrounds))
        videos = tuple(Path(v) for v in self.motion_videos)
        for video in videos:
            if not video.is_file():
                raise InputError(f"--motion-video {video} is not a file; give a video of a person moving")
        object.__setattr__(self, "motion_videos", videos)

    def settings(self) -> dict[str, Any]:
        """What makes the clips (n and quiet left out): the content of synth.json's `settings`."""
        from ..synthetic.world import SYNTH_POSE_STYLE

        out = asdict(self)
        out.pop("n")
        out.pop("quiet")
        out["motions"] = list(self.motions or ())
        out["motion_videos"] = [{"name": v.name, "sha256": _sha256_file(v)} for v in self.motion_videos]
        if not self.motion_videos:
            out.pop("pose_backend")
        if self.backgrounds is None:
            out.pop("backgrounds")  # the settings of a set made before the option stay the same
        else:
            out["backgrounds"] = list(self.backgrounds)
        out["format"] = SYNTH_FORMAT
        out["pose_style"] = SYNTH_POSE_STYLE.to_json()
        return out


@dataclass
class SynthReport:
    out_dir: Path
    written: list[str] = field(default_factory=list)
    resumed: list[str] = field(default_factory=list)
    records: list[ClipRecord] = field(default_factory=list)

    def summary(self) -> str:
        total = len(self.written) + len(self.resumed)
        return f"{total} synthetic clip(s) ready ({len(self.written)} new, {len(self.resumed)} already done)"


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def clip_name(index: int) -> str:
    return f"{index:06d}.mp4"


def clip_paths(out_dir: Path, name: str) -> dict[str, Path]:
    stem = Path(name).stem
    return {
        "video": out_dir / "videos" / name,
        "pose": out_dir / "poses" / name,
        "mask": out_dir / "mask_video" / name,
        "clothes_mask": out_dir / "clothes_mask" / name,
        "keypoints": out_dir / "keypoints" / f"{stem}.json",
        "attributes": out_dir / "attributes" / f"{stem}.json",
    }


def _check_settings(out_dir: Path, settings: dict[str, Any]) -> None:
    """Refuse a folder holding a set made with other settings (one line naming what differs), or another dataset."""
    path = out_dir / SETTINGS_FILE
    if path.is_file():
        try:
            saved = json.loads(path.read_text(encoding="utf-8")).get("settings", {})
        except (OSError, json.JSONDecodeError, AttributeError) as exc:
            raise InputError(f"{path} is unreadable ({exc}); remove it or use another folder") from None
        current = json.loads(json.dumps(settings))
        differ = sorted(k for k in set(saved) | set(current) if saved.get(k) != current.get(k))
        if differ:
            changes = "; ".join(f"{k}: {saved.get(k)!r} -> {current.get(k)!r}" for k in differ)
            raise InputError(
                f"{out_dir} holds a synthetic set made with other settings ({changes}); "
                "use another OUT_DIR or the same settings"
            )
    elif (out_dir / "manifest.jsonl").exists():
        raise InputError(f"{out_dir} already holds a dataset not made by `dynamictrl synth`; use another OUT_DIR")


def _record(paths: dict[str, Path], caption: str, options: SynthOptions) -> ClipRecord:
    return ClipRecord(
        video=paths["video"],
        pose=paths["pose"],
        caption=caption,
        frames=options.frames,
        height=options.height,
        width=options.width,
        fps=options.fps,
    )


def _finished(paths: dict[str, Path], options: SynthOptions) -> ClipRecord | None:
    if not all(p.is_file() for p in paths.values()):
        return None
    try:
        saved = json.loads(paths["attributes"].read_text(encoding="utf-8"))
        return _record(paths, str(saved["caption"]), options)
    except (OSError, json.JSONDecodeError, KeyError, TypeError):
        return None


def load_motion(
    video: Path,
    fps: float,
    cache_dir: Path,
    *,
    backend: str = "auto",
    extractor_factory: Callable[[], Any] | None = None,
) -> list[FramePose]:
    """The keypoints of a driving video at `fps` (cached in `cache_dir/<stem>.json`, keyed by its content)."""
    import cv2

    from ..io.media import read_video
    from ..pose.types import load_keypoints_json, save_keypoints_json

    digest = _sha256_file(video)
    cache = cache_dir / f"{video.stem}.json"
    if cache.is_file():
        frames, meta = load_keypoints_json(cache)
        if meta.get("source_sha256") == digest and meta.get("fps") == fps and meta.get("backend") == backend:
            return frames
    clip, _ = read_video(video, target_fps=fps)
    scale = MOTION_MAX_SIDE / max(clip.shape[1:3])
    if scale < 1:
        size = (max(1, round(clip.shape[2] * scale)), max(1, round(clip.shape[1] * scale)))
        clip = np.stack([cv2.resize(f, size, interpolation=cv2.INTER_AREA) for f in clip])
    if extractor_factory is not None:
        extractor = extractor_factory()
    else:
        from ..pose.extract import get_extractor

        extractor = get_extractor(backend)
    try:
        frames = list(extractor.extract_sequence(clip))
    finally:
        extractor.close()
    save_keypoints_json(cache, frames, {"source": video.name, "source_sha256": digest, "fps": fps, "backend": backend})
    return frames


def write_clip(out_dir: Path, index: int, options: SynthOptions, driving: Sequence[FramePose] | None) -> ClipRecord:
    """Make sample `index` and write its files, the attributes file last (the clip is then finished)."""
    from ..io.atomic import write_json_atomic
    from ..io.media import write_video
    from ..pose.types import save_keypoints_json
    from ..synthetic.world import make_sample

    o = options
    sample = make_sample(
        o.seed,
        index,
        frames=o.frames,
        height=o.height,
        width=o.width,
        fps=o.fps,
        motion=driving,
        motions=o.motions,
        backgrounds=o.backgrounds,
    )
    name = clip_name(index)
    paths = clip_paths(out_dir, name)
    write_video(paths["video"], sample.frames, o.fps, crf=o.crf, pix_fmt=VIDEO_PIX_FMT)
    write_video(paths["pose"], sample.pose, o.fps, crf=o.crf, pix_fmt=VIDEO_PIX_FMT)
    for key, mask in (("mask", sample.person_mask), ("clothes_mask", sample.clothes_mask)):
        write_video(paths[key], np.repeat(mask[..., None], 3, axis=3), o.fps, crf=MASK_CRF)
    save_keypoints_json(paths["keypoints"], sample.keypoints, {"seed": o.seed, "index": index, "fps": o.fps})
    files = {k: p.relative_to(out_dir).as_posix() for k, p in paths.items() if k != "attributes"}
    document = {"name": name, "caption": sample.caption, "attributes": sample.attributes, "files": files}
    write_json_atomic(paths["attributes"], document)
    return _record(paths, sample.caption, o)


def _driving_for(index: int, options: SynthOptions, motions: list[list[FramePose]]) -> list[FramePose] | None:
    if not motions:
        return None
    rng = np.random.default_rng([options.seed, index, 7])  # which video: apart from the sample's own streams
    return motions[int(rng.integers(len(motions)))]


def write_outputs(out_dir: Path, records: list[ClipRecord]) -> None:
    """manifest.jsonl (no mask), manifest_masked.jsonl (person masks), manifest_mixed.jsonl (both), prompts.txt and
    video.txt, atomically."""
    from dataclasses import replace

    from ..io.atomic import write_text_atomic

    write_manifest(out_dir / "manifest.jsonl", records)
    masked = [replace(r, mask=out_dir / "mask_video" / r.video.name) for r in records]
    write_manifest(out_dir / "manifest_masked.jsonl", masked)
    # One model for whole and background-masked references (as Mask_B01 is used): the prompt then controls the
    # masked background, and an unmasked reference still animates.
    write_manifest(out_dir / "manifest_mixed.jsonl", [r for pair in zip(records, masked, strict=True) for r in pair])
    write_text_atomic(out_dir / "prompts.txt", "".join(f"{r.video.name}#####{r.caption}\n" for r in records))
    write_text_atomic(out_dir / "video.txt", "".join(f"videos/{r.video.name}\n" for r in records))


def write_synthetic_dataset(
    out_dir: str | os.PathLike,
    n: int,
    seed: int = 0,
    *,
    frames: int = 17,
    height: int = 64,
    width: int = 64,
    fps: float = 8.0,
    motions: Sequence[str] | str | None = None,
    backgrounds: Sequence[str] | str | None = None,
    motion_video: str | os.PathLike | Sequence[str | os.PathLike] | None = None,
    pose_backend: str = "auto",
    crf: int = VIDEO_CRF,
    quiet: bool = False,
    extractor_factory: Callable[[], Any] | None = None,
) -> SynthReport:
    """Write clips 0..n-1 of the synthetic world `seed` into `out_dir` (module docstring); resumable."""
    if motion_video is None:
        videos: tuple[Path, ...] = ()
    elif isinstance(motion_video, (str, os.PathLike)):
        videos = (Path(motion_video),)
    else:
        videos = tuple(Path(v) for v in motion_video)
    options = SynthOptions(
        n=n,
        seed=seed,
        frames=frames,
        height=height,
        width=width,
        fps=fps,
        motions=tuple(motions.split(",")) if isinstance(motions, str) else (tuple(motions) if motions else None),
        backgrounds=backgrounds,  # SynthOptions parses "a,b" or a sequence
        motion_videos=videos,
        pose_backend=pose_backend,
        crf=crf,
        quiet=quiet,
    )
    return run_synth(out_dir, options, extractor_factory=extractor_factory)


def run_synth(
    out_dir: str | os.PathLike, options: SynthOptions, *, extractor_factory: Callable[[], Any] | None = None
) -> SynthReport:
    """Write the clips of `options` into `out_dir`: settings checked first, then driving videos, then each clip
    not yet finished; returns what was written and what was already there."""
    from tqdm.auto import tqdm

    from ..io.atomic import write_json_atomic

    out = Path(out_dir).resolve()
    if out.exists() and not out.is_dir():
        raise InputError(f"{out} exists and is not a folder")
    settings = options.settings()
    _check_settings(out, settings)
    out.mkdir(parents=True, exist_ok=True)
    motions = []
    for video in options.motion_videos:
        keypoints = load_motion(
            video, options.fps, out / "motion", backend=options.pose_backend, extractor_factory=extractor_factory
        )
        if len(keypoints) < options.frames:
            raise InputError(
                f"--motion-video {video} gives {len(keypoints)} frames at {options.fps:g} fps; a clip needs "
                f"{options.frames}: use a longer video, a higher --fps or fewer --frames"
            )
        motions.append(keypoints)
    write_json_atomic(out / SETTINGS_FILE, {"format": SYNTH_FORMAT, "settings": settings})
    report = SynthReport(out_dir=out)
    for index in tqdm(range(options.n), desc="synth", unit="clip", disable=options.quiet):
        paths = clip_paths(out, clip_name(index))
        record = _finished(paths, options)
        if record is not None:
            report.resumed.append(record.video.name)
        else:
            record = write_clip(out, index, options, _driving_for(index, options, motions))
            report.written.append(record.video.name)
        report.records.append(record)
    write_outputs(out, report.records)
    return report
