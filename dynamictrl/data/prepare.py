"""`prepare-data`: a folder of videos → training clips with frame-aligned pose videos, captions and a manifest.

For each video (one clip each, from `start`):

1. frame bucket: the largest of `frame_buckets` (each `4k+1`, as the VAE takes) the video has frames for; a video
   shorter than the smallest bucket is skipped;
2. size bucket: the (height, width) of `size_buckets` whose aspect ratio is nearest the video's; frames are
   cover-cropped to it (centre crop, never stretched: the published dataset stretched);
3. poses: the pose stage's extractor runs on the cropped frames at source resolution (small buckets would starve
   the detector), and `pose.render.draw_pose` draws them at the bucket size, as inference draws them;
   clips with nobody, or with several people, are skipped;
4. caption: the user's (sidecar `.txt` or `captions.csv/jsonl`, `data.captions`), else the captioner's; with
   neither the clip is skipped ("missing caption");
5. mask (optional): `background` person masks (`data.masks`), or the user's mask videos cut the same way.

Outputs in `out_dir`: `videos/`, `poses/`, `mask_video/` (the published layout: the mask path is the video path
with "videos" → "mask_video"), `prompts.txt` (`name#####caption`), `video.txt`, `manifest.jsonl` (`ClipRecord`s),
`report.json` (what was prepared, resumed and skipped, and why). Each file is written atomically; a clip is finished
when its state file `.prepare/<name>.json` exists, holding a key of the source's content and every setting that
changes the clip. A second run with the same key reuses the clip without decoding it again (resume).

With a `LatentEncoder` (`--cache-latents`) the VAE posterior moments of every clip, pose and reference and the T5
embedding of every prompt go into a `LatentCache` under exactly the keys `data.dataset.ClipDataset` computes, so
training with `cache_dir` pointing there (and `buckets: manifest`) loads neither encoder's work again; the frame
buckets must then be 8k+5, the counts training takes whole (`check_cacheable`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from ..errors import DynamiCtrlError, InputError
from ..pose.segmentation import PersonSegmenter, binarise
from .captions import Captioner, given_caption, read_caption_mapping
from .manifest import ClipRecord, write_manifest
from .masks import MASK_MODES, find_user_mask

logger = logging.getLogger(__name__)

PREPARE_FORMAT = 1
VIDEO_EXTENSIONS = (".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v")
STATE_DIR = ".prepare"
# A clip is "several people" when more than this share of its frames show more than one person.
MAX_CROWDED_SHARE = 0.1
# A clip needs a person in at least this share of its frames.
MIN_PERSON_SHARE = 0.5


class Skip(Exception):
    """This video cannot become a clip; the reason goes into report.json."""


# ---------------------------------------------------------------------------------------------------- options
def parse_frame_buckets(text: str | int | Iterable[int]) -> tuple[int, ...]:
    """ "49" or "25,49" (or ints) → sorted unique frame counts, each checked to be 4k+1."""
    from ..models.geometry import validate_num_frames

    values = [int(v) for v in str(text).split(",") if v.strip()] if isinstance(text, (str, int)) else list(text)
    if not values:
        raise InputError("--frames is empty; give a frame count such as 49 or a list such as 25,49")
    for value in values:
        validate_num_frames(value, flag="--frames")
    return tuple(sorted(set(values)))


def parse_size_buckets(text: str) -> tuple[tuple[int, int], ...]:
    """ "1360x768" or "1360x768,768x1360" (height x width) → sizes, each a multiple of 16."""
    from ..models.geometry import validate_size

    sizes = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        try:
            height, width = (int(v) for v in item.lower().split("x"))
        except ValueError:
            raise InputError(f"--sizes item {item!r} is not HEIGHTxWIDTH (e.g. 1360x768)") from None
        validate_size(height, width, flags=("--sizes height", "--sizes width"))
        sizes.append((height, width))
    if not sizes:
        raise InputError("--sizes is empty; give HEIGHTxWIDTH such as 1360x768")
    return tuple(dict.fromkeys(sizes))


@dataclass(frozen=True)
class PrepareOptions:
    """Settings of one prepare-data run (saved in report.json). Defaults: the published 49 frames at 1360×768."""

    frame_buckets: tuple[int, ...] = (49,)
    size_buckets: tuple[tuple[int, int], ...] = ((1360, 768),)
    start: int = 0
    fps: float | None = None
    pose_backend: str = "auto"
    pose_model_dir: Path | None = None
    device: str = "cpu"
    mask: str = "none"
    mask_dir: Path | None = None
    id_token: str = ""
    crf: int = 18
    quiet: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "frame_buckets", parse_frame_buckets(self.frame_buckets))
        if self.start < 0:
            raise InputError(f"--start must be >= 0, got {self.start}")
        if self.fps is not None and not (math.isfinite(self.fps) and self.fps > 0):
            raise InputError(f"--fps must be a positive number, got {self.fps}")
        if self.mask not in MASK_MODES:
            raise InputError(f"--mask must be one of {', '.join(MASK_MODES)}, got {self.mask!r}")
        if self.mask != "none" and self.mask_dir is not None:
            raise InputError("--mask background and --mask-dir exclude each other; give one of them")
        if self.mask_dir is not None and not Path(self.mask_dir).is_dir():
            raise InputError(f"--mask-dir {self.mask_dir} is not a folder")
        if not 0 <= self.crf <= 51:
            raise InputError(f"--crf must be in 0..51, got {self.crf}")

    def clip_settings(self) -> dict[str, Any]:
        """Everything that changes a clip's files (part of the resume key)."""
        out = asdict(self)
        for name in ("quiet", "device", "id_token", "mask_dir"):
            out.pop(name)
        return out


# ----------------------------------------------------------------------------------------------- choosing
def choose_frames(num_frames: int, buckets: tuple[int, ...]) -> int | None:
    """The largest bucket that `num_frames` frames can fill (None when even the smallest cannot)."""
    fitting = [b for b in buckets if b <= num_frames]
    return max(fitting) if fitting else None


def choose_size(height: int, width: int, buckets: tuple[tuple[int, int], ...]) -> tuple[int, int]:
    """The bucket whose aspect ratio is nearest (in log ratio) the video's: the cover-crop loses the least."""
    aspect = math.log(width / height)
    return min(buckets, key=lambda hw: abs(math.log(hw[1] / hw[0]) - aspect))


def crop_size(height: int, width: int, bucket: tuple[int, int]) -> tuple[int, int]:
    """The largest size with the bucket's aspect ratio inside `height`×`width` (cover-crop at source scale)."""
    scale = min(height / bucket[0], width / bucket[1])
    return max(1, min(height, round(bucket[0] * scale))), max(1, min(width, round(bucket[1] * scale)))


def downscale(frames: npt.NDArray[np.uint8], height: int, width: int) -> npt.NDArray[np.uint8]:
    """Frames `[F, h, w, 3]` of the bucket's aspect → `[F, height, width, 3]`, area-averaged (no aliasing when the
    source is many times the bucket, as 1080p to a small bucket is)."""
    import cv2

    if frames.shape[1:3] == (height, width):
        return frames
    shrink = frames.shape[1] >= height and frames.shape[2] >= width
    interpolation = cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
    return np.stack([cv2.resize(f, (width, height), interpolation=interpolation) for f in frames])


def list_videos(raw_dir: Path, exclude: Path | None = None) -> list[Path]:
    """Video files under `raw_dir` (recursively, sorted), leaving out `exclude` (the output, if inside)."""
    found = []
    for path in sorted(raw_dir.rglob("*")):
        if path.suffix.lower() not in VIDEO_EXTENSIONS or not path.is_file():
            continue
        if exclude is not None and path.resolve().is_relative_to(exclude.resolve()):
            continue
        if any(part.startswith(".") for part in path.relative_to(raw_dir).parts):
            continue
        found.append(path)
    return found


def clip_name(video: Path, raw_dir: Path) -> str:
    """Output file name of a source video: its path below `raw_dir`, folders joined by "__", as .mp4."""
    relative = video.relative_to(raw_dir).with_suffix("")
    return "__".join(relative.parts).replace("#", "_") + ".mp4"


# ------------------------------------------------------------------------------------------------ latents
class LatentEncoder(Protocol):
    """Frozen VAE and T5 for `--cache-latents` (built by the CLI from a model folder).

    `vae_id` / `text_id` are the encoders' fingerprints as the trainer computes them (`LatentCache` keys);
    `max_text_length` the transformer's `max_text_seq_length`.
    """

    vae_id: str
    text_id: str | None
    max_text_length: int

    def encode_video(self, pixels: Any) -> Any:
        """`[F, 3, H, W]` in [-1, 1] → moments `[f, 32, h, w]` (float32, CPU)."""

    def encode_prompt(self, prompt: str) -> Any:
        """One prompt → T5 embedding `[L, D]` (float32, CPU)."""


def cache_latents(
    records: list[ClipRecord],
    cache_dir: Path,
    encoder: LatentEncoder,
    *,
    id_token: str = "",
    progress: bool = True,
) -> int:
    """Put every record's video, pose, reference moments and prompt embedding into the cache; returns how many
    tensors were encoded (entries already in the cache are skipped)."""
    from tqdm.auto import tqdm

    from .dataset import ClipDataset, LatentCache

    cache = LatentCache(cache_dir, encoder.vae_id, encoder.text_id)
    encoded = 0
    for record in tqdm(records, desc="latents", unit="clip", disable=not progress):
        # The trainer's own sample (start 0, no flip: a prepared clip has exactly `frames` frames) gives the keys.
        dataset = ClipDataset(
            [record], frames=record.frames, height=record.height, width=record.width, id_token=id_token, cache=cache
        )
        sample = dataset[(0, 0)]
        for name, pixels in (("video", sample["video"]), ("control", sample["control_video"])):
            if pixels is not None:
                cache.put(sample[f"{name}_key"], encoder.encode_video(pixels))
                encoded += 1
        if sample.get("image_moments") is None:
            cache.put(sample["image_key"], encoder.encode_video(sample["image"][None]))
            encoded += 1
        prompt_key = cache.prompt_key(sample["prompt"], encoder.max_text_length)
        if cache.get(prompt_key) is None:
            cache.put(prompt_key, encoder.encode_prompt(sample["prompt"]))
            encoded += 1
    return encoded


# ----------------------------------------------------------------------------------------------- the run
@dataclass
class PrepareReport:
    prepared: list[str] = field(default_factory=list)  # made in this run
    resumed: list[str] = field(default_factory=list)  # finished by an earlier run
    skipped: list[dict[str, str]] = field(default_factory=list)  # {"video", "reason"}
    records: list[ClipRecord] = field(default_factory=list)
    encoded_latents: int = 0

    def summary(self) -> str:
        total = len(self.prepared) + len(self.resumed)
        line = f"{total} clip(s) ready ({len(self.prepared)} new, {len(self.resumed)} already done), "
        line += f"{len(self.skipped)} skipped"
        if self.encoded_latents:
            line += f", {self.encoded_latents} latent tensors cached"
        return line


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class DataPreparer:
    """Turns raw videos into clips (see the module docstring). `poses_extracted` counts extractor runs."""

    def __init__(
        self,
        raw_dir: str | Path,
        out_dir: str | Path,
        options: PrepareOptions,
        captioner: Captioner | None = None,
        extractor_factory: Callable[[], Any] | None = None,
    ) -> None:
        self.raw_dir, self.out_dir = Path(raw_dir).resolve(), Path(out_dir).resolve()
        if not self.raw_dir.is_dir():
            raise InputError(f"{self.raw_dir} is not a folder; give the folder holding the raw videos")
        if self.out_dir.exists() and not self.out_dir.is_dir():
            raise InputError(f"{self.out_dir} exists and is not a folder")
        self.options, self.captioner = options, captioner
        self._extractor_factory = extractor_factory
        self._extractor = None
        self._segmenter: PersonSegmenter | None = None
        self.captions = read_caption_mapping(self.raw_dir)
        self.poses_extracted = 0

    # ------------------------------------------------------------------------------------------ stages
    def extractor(self):
        if self._extractor is None:
            if self._extractor_factory is not None:
                self._extractor = self._extractor_factory()
            else:
                from ..pose.extract import get_extractor

                o = self.options
                self._extractor = get_extractor(o.pose_backend, o.device, o.pose_model_dir)
        return self._extractor

    def segmenter(self) -> PersonSegmenter:
        if self._segmenter is None:
            self._segmenter = PersonSegmenter()
        return self._segmenter

    def close(self) -> None:
        if self._extractor is not None:
            self._extractor.close()
        if self._segmenter is not None:
            self._segmenter.close()
        if self.captioner is not None and hasattr(self.captioner, "close"):
            self.captioner.close()

    def _key(self, video: Path, caption: str | None, mask: Path | None) -> str:
        parts = {
            "format": PREPARE_FORMAT,
            "source": _sha256_file(video),
            "settings": self.options.clip_settings(),
            "pose": self.extractor().identity(),
            "caption": caption if caption is not None else f"captioner:{self.captioner.identity()}",
            "mask": _sha256_file(mask) if mask is not None else None,
        }
        return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()

    def _finished(self, name: str, key: str) -> ClipRecord | None:
        state = self.out_dir / STATE_DIR / f"{name}.json"
        if not state.is_file():
            return None
        try:
            saved = json.loads(state.read_text())
        except json.JSONDecodeError:
            return None
        if saved.get("key") != key:
            return None
        raw = saved["record"]
        paths = {k: (self.out_dir / raw[k] if raw.get(k) else None) for k in ("video", "pose", "mask")}
        if any(p is not None and not p.is_file() for p in paths.values()):
            return None
        return ClipRecord(
            video=paths["video"],
            pose=paths["pose"],
            caption=raw["caption"],
            frames=int(raw["frames"]),
            height=int(raw["height"]),
            width=int(raw["width"]),
            fps=float(raw["fps"]),
            mask=paths["mask"],
        )

    def _read_cut(self, path: Path, frames: int, crop: tuple[int, int]) -> tuple[npt.NDArray[np.uint8], float]:
        from ..io.images import cover_crop_frames
        from ..io.media import read_video

        o = self.options
        clip, fps = read_video(path, start=o.start, max_frames=frames, target_fps=o.fps)
        if len(clip) < frames:
            raise Skip(f"too short: {len(clip)} frames from --start {o.start}, the bucket needs {frames}")
        return cover_crop_frames(clip, *crop), fps

    def _check_people(self, poses: list) -> None:
        from ..pose.align import is_person

        counts = [sum(is_person(p) for p in pose.people) for pose in poses]
        with_person = sum(c > 0 for c in counts)
        if with_person == 0:
            raise Skip("no person: the pose check finds nobody in any frame")
        if with_person < MIN_PERSON_SHARE * len(counts):
            raise Skip(f"no person in {len(counts) - with_person} of {len(counts)} frames")
        crowded = sum(c > 1 for c in counts)
        if crowded > MAX_CROWDED_SHARE * len(counts):
            raise Skip(f"several people in {crowded} of {len(counts)} frames")

    def prepare_video(self, video: Path) -> tuple[ClipRecord, bool]:
        """One source video → its finished clip and whether it was made now (False: resumed). Raises `Skip`."""
        from ..io.atomic import write_json_atomic
        from ..io.media import probe_video, write_video
        from ..pose.render import draw_pose

        o = self.options
        name = clip_name(video, self.raw_dir)
        info = probe_video(video)
        available = info.num_frames - o.start
        if o.fps is not None:
            available = math.floor(available * o.fps / info.fps)
        frames = choose_frames(available, o.frame_buckets)
        if frames is None:
            raise Skip(f"too short: {info.num_frames} frames, the smallest bucket needs {o.frame_buckets[0]}")
        caption = given_caption(video, self.raw_dir, self.captions)
        if caption is None and self.captioner is None:
            raise Skip("missing caption")
        user_mask = None
        if o.mask_dir is not None:
            user_mask = find_user_mask(Path(o.mask_dir), video, self.raw_dir)
            if user_mask is None:
                raise Skip(f"missing mask: no mask video for it in {o.mask_dir}")
        key = self._key(video, caption, user_mask)
        if (done := self._finished(name, key)) is not None:
            return done, False

        height, width = choose_size(info.height, info.width, o.size_buckets)
        crop = crop_size(info.height, info.width, (height, width))
        source, fps = self._read_cut(video, frames, crop)
        poses = list(self.extractor().extract_sequence(source))
        self.poses_extracted += 1
        self._check_people(poses)
        clip = downscale(source, height, width)
        pose_video = np.stack([draw_pose(pose, height, width) for pose in poses])
        mask_frames = None
        if o.mask == "background":
            mask_frames = binarise(downscale(self.segmenter()(source), height, width))
        elif user_mask is not None:
            cut, _ = self._read_cut(user_mask, frames, crop)
            mask_frames = binarise(downscale(cut, height, width))
        if caption is None:
            caption = " ".join(self.captioner.caption(source).replace("#####", " ").split())
            if not caption:
                raise Skip("missing caption: the captioner returned an empty caption")

        record = ClipRecord(
            video=self.out_dir / "videos" / name,
            pose=self.out_dir / "poses" / name,
            caption=caption,
            frames=frames,
            height=height,
            width=width,
            fps=float(fps),
            mask=self.out_dir / "mask_video" / name if mask_frames is not None else None,
        )
        write_video(record.video, clip, fps, crf=o.crf)
        write_video(record.pose, pose_video, fps, crf=o.crf)
        if mask_frames is not None:
            write_video(record.mask, mask_frames, fps, crf=o.crf)
        state = {"key": key, "source": str(video), "record": record.to_json(self.out_dir)}
        write_json_atomic(self.out_dir / STATE_DIR / f"{name}.json", state)  # last: the clip is finished
        return record, True

    def run(self, videos: list[Path] | None = None) -> PrepareReport:
        import av
        from tqdm.auto import tqdm

        videos = list_videos(self.raw_dir, exclude=self.out_dir) if videos is None else videos
        if not videos:
            raise InputError(f"{self.raw_dir} holds no videos ({', '.join(VIDEO_EXTENSIONS)})")
        self.out_dir.mkdir(parents=True, exist_ok=True)
        report = PrepareReport()
        names: dict[str, Path] = {}
        try:
            for video in tqdm(videos, desc="prepare-data", unit="video", disable=self.options.quiet):
                relative = video.relative_to(self.raw_dir).as_posix()
                name = clip_name(video, self.raw_dir)
                if name in names:
                    report.skipped.append({"video": relative, "reason": f"same output name as {names[name]}"})
                    continue
                names[name] = video
                try:
                    record, made = self.prepare_video(video)
                except Skip as exc:
                    reason = str(exc)
                except (DynamiCtrlError, av.error.FFmpegError, OSError) as exc:
                    reason = f"unreadable: {exc}"
                else:
                    report.records.append(record)
                    (report.prepared if made else report.resumed).append(relative)
                    continue
                logger.info("Skipped %s: %s", relative, reason)
                report.skipped.append({"video": relative, "reason": reason})
        finally:
            self.close()
        self.write_outputs(report)
        return report

    # ---------------------------------------------------------------------------------------- outputs
    def write_outputs(self, report: PrepareReport) -> None:
        """manifest.jsonl, prompts.txt, video.txt (same order) and report.json, each atomically."""
        from ..io.atomic import write_json_atomic, write_text_atomic

        records = sorted(report.records, key=lambda r: r.video.name)
        report.records = records
        if records:
            write_manifest(self.out_dir / "manifest.jsonl", records)
            prompts = "".join(f"{r.video.name}#####{r.caption}\n" for r in records)
            write_text_atomic(self.out_dir / "prompts.txt", prompts)
            lines = "".join(f"{r.video.relative_to(self.out_dir).as_posix()}\n" for r in records)
            write_text_atomic(self.out_dir / "video.txt", lines)
        settings = asdict(self.options)
        settings["captioner"] = captioner_settings(self.captioner)
        document = {
            "raw_dir": str(self.raw_dir),
            "settings": settings,
            "prepared": report.prepared,
            "resumed": report.resumed,
            "skipped": report.skipped,
            "summary": report.summary(),
        }
        write_json_atomic(self.out_dir / "report.json", document)


def captioner_settings(captioner: Captioner | None) -> dict[str, Any] | str | None:
    """What report.json records of the captioner: its `settings()` when it has them, else its identity."""
    if captioner is None:
        return None
    return captioner.settings() if hasattr(captioner, "settings") else captioner.identity()


def check_cacheable(frame_buckets: tuple[int, ...]) -> None:
    """`--cache-latents` caches whole clips (start 0), which training reads only when it trains on all their
    frames: training takes 8k+5 frames, so every frame bucket must be 8k+5 (a 49-frame clip trains on 45 frames
    from a random start and would never read its cached latents)."""
    from .buckets import training_frames

    wasted = [f for f in frame_buckets if training_frames(f) != f]
    if wasted:
        suggest = ",".join(str(training_frames(f) or 5) for f in frame_buckets)
        raise InputError(
            f"--cache-latents needs frame buckets training takes whole (8k+5: 13, 21, ..., 45, 53); "
            f"--frames {','.join(map(str, frame_buckets))} has {wasted[0]}: use --frames {suggest}"
        )


def prepare_data(
    raw_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    options: PrepareOptions,
    *,
    captioner: Captioner | None = None,
    latent_encoder: LatentEncoder | None = None,
    cache_dir: str | os.PathLike | None = None,
) -> PrepareReport:
    """Prepare every video in `raw_dir` into `out_dir`; with `latent_encoder`, also fill the latent cache
    (`cache_dir`, default `out_dir/latents`; frame buckets must be 8k+5, `check_cacheable`). Returns the report
    (also written as `out_dir/report.json`)."""
    if latent_encoder is not None:
        check_cacheable(options.frame_buckets)
    preparer = DataPreparer(raw_dir, out_dir, options, captioner)
    report = preparer.run()
    if latent_encoder is not None and report.records:
        cache = Path(cache_dir) if cache_dir is not None else Path(out_dir) / "latents"
        report.encoded_latents = cache_latents(
            report.records, cache, latent_encoder, id_token=options.id_token, progress=not options.quiet
        )
        preparer.write_outputs(report)
    return report
