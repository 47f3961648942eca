"""Training buckets: the (frames, height, width) shapes clips train at, and a batch sampler that keeps each batch
inside one bucket.

A batch must have one shape (its latents are stacked; RoPE and the patch grid follow the shape), so clips of
several shapes train in batches of one bucket each. Which clip trains at which bucket (`clip_buckets`):

- no `buckets` (old configs): every clip at `frames`×`height`×`width`, cover-cropped, from a random start;
- `buckets: manifest`: each clip at its own manifest size (prepare-data's size buckets) and the largest training
  frame count (8k+5) it has: a 49-frame clip trains on 45 frames;
- a list `FRAMESxHEIGHTxWIDTH, ...`: each clip at the bucket nearest its aspect ratio (the cover-crop loses the
  least) among those its frames can fill, the longest of them.

`bucket_batches` cuts an epoch into global batches of `world × batch_size` clips of one bucket each, and
`BucketBatchSampler` hands each rank its share of every global batch. The epoch's order comes from the seed alone
(no rank, no batch size in it), so N ranks × batch B see exactly the batches of 1 rank × batch N·B, every rank in
a step takes the same bucket, and a resumed epoch continues at its position. Torch-free: configs are checked
before torch loads.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator, Sequence
from typing import NamedTuple

import numpy as np

from ..errors import InputError

logger = logging.getLogger(__name__)

MANIFEST = "manifest"
# The seed stream of the epoch order (the same as data.dataset.epoch_order: one bucket reproduces its order).
ORDER_STREAM = 1_000_003


class Bucket(NamedTuple):
    """One training shape: `frames` (8k+5) × `height` × `width` pixels."""

    frames: int
    height: int
    width: int

    def __str__(self) -> str:
        return f"{self.frames}x{self.height}x{self.width}"


def training_frames(frames: int) -> int | None:
    """The largest frame count training takes (8k+5: 4k+1 for the VAE, an even latent count for the temporal
    patch of 2) that `frames` frames can fill; None below 5."""
    return None if frames < 5 else 8 * ((frames - 5) // 8) + 5


def check_bucket(bucket: Bucket, where: str, multiple: int = 16, max_side: int | None = None) -> None:
    """One-line `InputError` (naming `where`) unless frames are 8k+5 and both sides are multiples of `multiple`
    (at most `max_side`, the transformer's RoPE grid)."""
    frames, height, width = bucket
    if frames < 5 or (frames - 5) % 8:
        near = training_frames(max(frames, 5))
        raise InputError(
            f"{where}: frames must be 8k+5 for training (4k+1 for the VAE, an even number of latent frames for the "
            f"temporal patch), got {frames}; try {near} or {near + 8}"
        )
    for name, value in (("height", height), ("width", width)):
        if value < multiple or value % multiple:
            near = max(multiple, round(value / multiple) * multiple)
            raise InputError(f"{where}: {name} must be a positive multiple of {multiple}, got {value}; try {near}")
        if max_side is not None and value > max_side:
            raise InputError(f"{where}: {name} {value} exceeds the model's maximum of {max_side} px")


def parse_buckets(values: Sequence[str]) -> tuple[Bucket, ...] | None:
    """`["13x32x32", "21x48x32"]` → buckets (checked); `["manifest"]` → None (each clip's own); `[]` is an error."""
    items = [str(v).strip().lower() for v in values if str(v).strip()]
    if items == [MANIFEST]:
        return None
    if not items or MANIFEST in items:
        raise InputError("buckets: give 'manifest' alone or a list of FRAMESxHEIGHTxWIDTH such as 13x480x320")
    buckets = []
    for item in items:
        try:
            frames, height, width = (int(v) for v in item.split("x"))
        except ValueError:
            raise InputError(f"buckets: {item!r} is not FRAMESxHEIGHTxWIDTH (e.g. 37x1360x768)") from None
        bucket = Bucket(frames, height, width)
        check_bucket(bucket, f"buckets: {item}")
        buckets.append(bucket)
    return tuple(dict.fromkeys(buckets))


def _nearest(frames: int, height: int, width: int, buckets: Sequence[Bucket]) -> Bucket | None:
    fitting = [b for b in buckets if b.frames <= frames]
    if not fitting:
        return None
    aspect = math.log(width / height)
    return min(fitting, key=lambda b: (abs(math.log(b.width / b.height) - aspect), -b.frames, -b.height * b.width))


def clip_buckets(
    clips: Sequence[tuple[str, int, int, int]],
    buckets: Sequence[str],
    default: Bucket,
    *,
    multiple: int = 16,
    max_side: int | None = None,
) -> list[Bucket]:
    """The bucket of each clip (see the module docstring). `clips`: (name, frames, height, width) of each manifest
    record; `buckets`: the config's value; `default`: `frames`×`height`×`width`. Errors name the clip and the fix."""
    chosen: list[Bucket] = []
    if not buckets:
        check_bucket(default, "frames/height/width", multiple, max_side)
        short = [c for c in clips if c[1] < default.frames]
        if short:
            raise InputError(
                f"{len(short)} clip(s) have fewer than frames={default.frames} frames (e.g. {short[0][0]}: "
                f"{short[0][1]}); lower frames or drop them from the manifest"
            )
        return [default] * len(clips)
    parsed = parse_buckets(buckets)
    for name, frames, height, width in clips:
        if parsed is None:
            bucket = Bucket(training_frames(frames) or frames, height, width)
            check_bucket(bucket, f"buckets: manifest: {name} ({frames} frames, {height}x{width})", multiple, max_side)
        else:
            bucket = _nearest(frames, height, width, parsed)
            if bucket is None:
                shortest = min(b.frames for b in parsed)
                raise InputError(
                    f"{name} has {frames} frames, fewer than the shortest bucket ({shortest}); add a shorter bucket "
                    "or drop it from the manifest"
                )
            check_bucket(bucket, f"buckets: {bucket}", multiple, max_side)
        chosen.append(bucket)
    return chosen


def bucket_batches(buckets: Sequence[Bucket], global_batch: int, seed: int, epoch: int) -> list[list[int]]:
    """The epoch's global batches: lists of `global_batch` clip indices of one bucket each, in training order.

    Clips are taken in a seeded permutation of the dataset (the one `data.dataset.epoch_order` uses); each joins
    its bucket's open batch, and a batch trains as soon as it is full. A bucket's last, incomplete batch of the
    epoch is dropped (other clips fill it in other epochs, the permutation changes); with one bucket this is
    exactly the consecutive batches of the permutation.
    """
    order = np.random.default_rng((seed, ORDER_STREAM, epoch)).permutation(len(buckets))
    open_batches: dict[Bucket, list[int]] = {}
    batches = []
    for index in order:
        batch = open_batches.setdefault(buckets[index], [])
        batch.append(int(index))
        if len(batch) == global_batch:
            batches.append(batch)
            open_batches[buckets[index]] = []
    return batches


def starved_buckets(buckets: Sequence[Bucket], global_batch: int) -> dict[Bucket, int]:
    """Buckets with fewer clips than one global batch (they never train) → their clip counts."""
    counts: dict[Bucket, int] = {}
    for bucket in buckets:
        counts[bucket] = counts.get(bucket, 0) + 1
    return {b: n for b, n in counts.items() if n < global_batch}


class BucketBatchSampler:
    """This rank's micro-batches of one epoch: lists of `(epoch, index)` keys (a `DataLoader` `batch_sampler`).

    Rank r of `world` takes positions r, r + world, ... of each global batch (`bucket_batches` with
    `world × batch_size` clips), so all ranks step through the same buckets and together train exactly the batches
    one process with `world × batch_size` would. `start`: samples of the epoch this rank has already consumed
    (`TrainState.position`, a multiple of `batch_size`); a resumed epoch skips them.
    """

    def __init__(
        self,
        buckets: Sequence[Bucket],
        batch_size: int,
        seed: int,
        epoch: int,
        start: int = 0,
        rank: int = 0,
        world: int = 1,
    ) -> None:
        batches = bucket_batches(buckets, batch_size * world, seed, epoch)
        self.batches = [[(epoch, i) for i in batch[rank::world]] for batch in batches][start // batch_size :]
        self.shapes = [buckets[batch[0][1]] for batch in self.batches]

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)
