"""Clips for training: video, frame-aligned pose and reference, cover-cropped to each clip's bucket (one shape, or
one per clip: `data.buckets`); and the latent cache.

A sample is addressed by `(epoch, index)`: its clip start and flip come from a generator seeded with
`(seed, epoch, index)`, so the same sample is the same clip in any worker, on any rank and after a resume.
Clip, pose and reference are flipped together (the published `random_flip` flipped each frame and the pose
independently) and cover-cropped (the published code stretched them).

`LatentCache` keeps the VAE posterior moments of each (clip, pose) selection and the T5 embedding of each prompt,
keyed by file content and every setting that changes them (clip start, frames, size, flip); a run with the cache
gives the same losses as without, because `training.spec` samples from the moments with the step generator in
both cases.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from ..errors import InputError
from .buckets import ORDER_STREAM, Bucket
from .manifest import ClipRecord

CACHE_FORMAT = 1


def to_tensor(frames: npt.NDArray[np.uint8]) -> torch.Tensor:
    """uint8 `[F, H, W, 3]` → float32 `[F, 3, H, W]` in [-1, 1] (the published `(x/255 − 0.5)/0.5`)."""
    return torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float() / 127.5 - 1.0


_HASHES: dict[tuple[str, int, int], str] = {}


def file_digest(path: Path) -> str:
    """sha256 of a file's bytes (memoised by path, size and mtime)."""
    stat = path.stat()
    memo = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if memo not in _HASHES:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        _HASHES[memo] = h.hexdigest()
    return _HASHES[memo]


def _key(*parts: Any) -> str:
    return hashlib.sha256(json.dumps([CACHE_FORMAT, *parts], default=str).encode()).hexdigest()


class LatentCache:
    """`root/<kind>/<key[:2]>/<key>.safetensors`, one tensor each; written atomically, never overwritten.

    `vae_id` / `text_id` (encoder fingerprints) are part of every key, so another VAE or T5 never reads stale
    entries.
    """

    def __init__(self, root: str | Path, vae_id: str, text_id: str | None = None) -> None:
        self.root = Path(root)
        self.vae_id, self.text_id = vae_id, text_id

    def video_key(self, path: Path, start: int, frames: int, height: int, width: int, flip: bool) -> str:
        return _key("video", file_digest(path), start, frames, height, width, flip, self.vae_id)

    def image_key(self, source: Path, mask: Path | None, start: int, height: int, width: int, flip: bool) -> str:
        mask_digest = file_digest(mask) if mask is not None else None
        return _key("image", file_digest(source), mask_digest, start, height, width, flip, self.vae_id)

    def prompt_key(self, prompt: str, max_length: int) -> str:
        return _key("prompt", prompt, max_length, self.text_id)

    def _file(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.safetensors"

    def get(self, key: str) -> torch.Tensor | None:
        from safetensors.torch import load_file

        path = self._file(key)
        return load_file(path)["value"] if path.is_file() else None

    def put(self, key: str, value: torch.Tensor) -> None:
        from safetensors.torch import save_file

        from ..io.atomic import atomic_path

        path = self._file(key)
        if path.is_file():
            return
        with atomic_path(path) as tmp:
            save_file({"value": value.contiguous()}, str(tmp))


class ClipDataset(torch.utils.data.Dataset):
    """Records → samples, each at its record's bucket: `frames` frames at `height`×`width` (cover-cropped).

    One shape for all (`frames`, `height`, `width`), or one `data.buckets.Bucket` per record (`buckets`).
    A sample: `image [3, H, W]` (reference, [-1, 1]; None when `cached_reference` and its moments are cached),
    `video` / `control_video` `[F, 3, H, W]` (None when their moments come from the cache, then `video_moments` /
    `control_moments` `[f, 32, h, w]`), `prompt`,
    `video_key` / `control_key` / `image_key` (cache keys, None without a cache; they hold the shape), `image_moments`
    (cached reference moments, used only when training without image noise), `epoch`, `index`, `start`, `flip`,
    `bucket` (the sample's `Bucket`).
    """

    def __init__(
        self,
        records: list[ClipRecord],
        *,
        frames: int | None = None,
        height: int | None = None,
        width: int | None = None,
        buckets: Sequence[Bucket] | None = None,
        seed: int = 0,
        flip: float = 0.0,
        id_token: str = "",
        cache: LatentCache | None = None,
        cached_reference: bool = False,
    ) -> None:
        if buckets is None:
            if frames is None or height is None or width is None:
                raise ValueError("ClipDataset needs frames, height and width, or one bucket per record")
            buckets = [Bucket(frames, height, width)] * len(records)
        if len(buckets) != len(records):
            raise ValueError(f"ClipDataset got {len(buckets)} buckets for {len(records)} records")
        short = [(r, b) for r, b in zip(records, buckets, strict=True) if r.frames < b.frames]
        if short:
            record, bucket = short[0]
            raise InputError(
                f"{len(short)} clip(s) have fewer than frames={bucket.frames} frames (e.g. {record.video}: "
                f"{record.frames}); lower frames or drop them from the manifest"
            )
        self.records, self.buckets = records, list(buckets)
        self.seed, self.flip, self.id_token, self.cache = seed, flip, id_token, cache
        self.cached_reference = cached_reference  # trained without image noise: cached moments replace pixels

    def __len__(self) -> int:
        return len(self.records)

    def selection(self, epoch: int, index: int) -> tuple[int, bool]:
        """(clip start, flip) of sample `index` in `epoch`."""
        rng = np.random.default_rng((self.seed, epoch, index))
        start = int(rng.integers(0, self.records[index].frames - self.buckets[index].frames + 1))
        return start, bool(rng.random() < self.flip)

    def prompt(self, index: int) -> str:
        caption = self.records[index].caption
        return f"{self.id_token} {caption}" if self.id_token else caption

    def _read(self, path: Path, start: int, count: int, flip: bool, size: tuple[int, int]) -> npt.NDArray[np.uint8]:
        from ..io.images import cover_crop_frames
        from ..io.media import read_video

        frames, _ = read_video(path, start=start, max_frames=count)
        if len(frames) < count:
            raise InputError(f"{path} has {start + len(frames)} frames, fewer than the manifest says")
        frames = cover_crop_frames(frames, *size)
        return np.ascontiguousarray(frames[:, :, ::-1]) if flip else frames

    def _reference(
        self,
        record: ClipRecord,
        start: int,
        flip: bool,
        first_frame: npt.NDArray[np.uint8] | None,
        size: tuple[int, int],
    ) -> npt.NDArray[np.uint8]:
        from ..io.images import cover_crop
        from ..io.media import load_image

        if record.reference is not None:
            image = cover_crop(load_image(record.reference), *size)
            image = np.ascontiguousarray(image[:, ::-1]) if flip else image
        elif first_frame is not None:
            image = first_frame
        else:
            image = self._read(record.video, start, 1, flip, size)[0]
        if record.mask is not None:  # Mask_B01 / C01: only the reference is masked; white = keep
            keep = self._read(record.mask, start, 1, flip, size)[0][..., 0] > 127
            image = image * keep[..., None].astype(np.uint8)
        return image

    def clip_frames(self, index: int, start: int = 0, flip: bool = False) -> dict[str, Any]:
        """Record `index` as uint8 frames at its bucket (for validation and previews, not training):
        `reference [H, W, 3]` (masked as in training), `video` and `pose` `[F, H, W, 3]`, `prompt`, `fps`."""
        record, bucket = self.records[index], self.buckets[index]
        frames, size = bucket.frames, (bucket.height, bucket.width)
        video = self._read(record.video, start, frames, flip, size)
        return {
            "reference": self._reference(record, start, flip, video[0], size),
            "video": video,
            "pose": self._read(record.pose, start, frames, flip, size),
            "prompt": self.prompt(index),
            "fps": record.fps,
        }

    def __getitem__(self, key: tuple[int, int]) -> dict[str, Any]:
        epoch, index = key
        record, bucket = self.records[index], self.buckets[index]
        frames, size = bucket.frames, (bucket.height, bucket.width)
        start, flip = self.selection(epoch, index)
        sample: dict[str, Any] = {"epoch": epoch, "index": index, "start": start, "flip": flip, "bucket": bucket}
        sample["prompt"] = self.prompt(index)
        sample["video_key"] = sample["control_key"] = sample["image_key"] = None
        moments = {}
        if self.cache is not None:
            args = (start, frames, *size, flip)
            sample["video_key"] = self.cache.video_key(record.video, *args)
            sample["control_key"] = self.cache.video_key(record.pose, *args)
            source = record.reference if record.reference is not None else record.video
            sample["image_key"] = self.cache.image_key(source, record.mask, start, *size, flip)
            moments = {"video": self.cache.get(sample["video_key"]), "control": self.cache.get(sample["control_key"])}
            sample["image_moments"] = self.cache.get(sample["image_key"])
        video = None
        if moments.get("video") is None:
            video = self._read(record.video, start, frames, flip, size)
            sample["video"] = to_tensor(video)
        else:
            sample["video"], sample["video_moments"] = None, moments["video"]
        if moments.get("control") is None:
            sample["control_video"] = to_tensor(self._read(record.pose, start, frames, flip, size))
        else:
            sample["control_video"], sample["control_moments"] = None, moments["control"]
        if self.cached_reference and sample.get("image_moments") is not None:
            sample["image"] = None
        else:
            reference = self._reference(record, start, flip, None if video is None else video[0], size)
            sample["image"] = to_tensor(reference[None])[0]
        return sample


def collate_samples(samples: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Samples stay a list: `training.spec.prepare_batch` encodes them one by one (cached or not, same numbers)."""
    return samples


def epoch_order(length: int, seed: int, epoch: int, rank: int = 0, world: int = 1) -> list[int]:
    """This rank's share of a seeded permutation of the dataset for `epoch` (equal shares: the tail is dropped).

    Interleaved (rank r takes positions r, r + world, ...), so the j-th batches of B clips of all ranks together
    are the j-th batch of world·B clips of one process: N processes train on the same global batches as one.
    """
    order = np.random.default_rng((seed, ORDER_STREAM, epoch)).permutation(length)
    share = length // world
    if share == 0:
        raise InputError(f"the dataset has {length} clips, fewer than the {world} processes; add clips")
    return [int(i) for i in order[rank : share * world : world]]


class ResumableSampler(torch.utils.data.Sampler):
    """Yields `(epoch, index)` keys of one epoch from position `start` on (a resumed epoch skips what was seen)."""

    def __init__(self, length: int, seed: int, epoch: int, start: int = 0, rank: int = 0, world: int = 1) -> None:
        self.keys = [(epoch, i) for i in epoch_order(length, seed, epoch, rank, world)][start:]

    def __iter__(self) -> Iterator[tuple[int, int]]:
        return iter(self.keys)

    def __len__(self) -> int:
        return len(self.keys)
