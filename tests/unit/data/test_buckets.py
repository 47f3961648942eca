"""Training buckets: which clip trains at which shape, and the bucketed batch sampler (deterministic, one bucket per
batch, every clip once per epoch, resumable, the same global batches on any number of ranks)."""

from __future__ import annotations

import pytest

from dynamictrl.data.buckets import (
    Bucket,
    BucketBatchSampler,
    bucket_batches,
    clip_buckets,
    parse_buckets,
    starved_buckets,
    training_frames,
)
from dynamictrl.data.dataset import ResumableSampler
from dynamictrl.errors import InputError

A, B, C = Bucket(13, 32, 32), Bucket(21, 48, 32), Bucket(13, 32, 48)
# 12 clips: 6 of A, 4 of B, 2 of C, interleaved
SHAPES = [A, B, A, C, A, B, A, B, A, C, A, B]


def _keys(sampler: BucketBatchSampler) -> list[list[int]]:
    return [[index for _, index in batch] for batch in sampler]


def test_each_batch_is_one_bucket_and_every_clip_trains_once_per_epoch():
    for epoch in range(3):
        batches = bucket_batches(SHAPES, 2, seed=5, epoch=epoch)
        assert all(len({SHAPES[i] for i in batch}) == 1 for batch in batches)
        assert sorted(i for batch in batches for i in batch) == list(range(12))  # counts are multiples of 2
    # deterministic from the seed; another epoch or seed is another order
    assert bucket_batches(SHAPES, 2, 5, 0) == bucket_batches(SHAPES, 2, 5, 0)
    assert bucket_batches(SHAPES, 2, 5, 0) != bucket_batches(SHAPES, 2, 5, 1)
    assert bucket_batches(SHAPES, 2, 5, 0) != bucket_batches(SHAPES, 2, 6, 0)
    # several buckets in one epoch, not one bucket after the other
    assert len({SHAPES[b[0]] for b in bucket_batches(SHAPES, 2, 5, 0)[:4]}) > 1


def test_incomplete_batches_are_dropped_per_bucket_and_others_fill_them_later():
    batches = bucket_batches(SHAPES, 4, seed=0, epoch=0)  # A: 6 clips -> 1 batch, B: 4 -> 1, C: 2 -> none
    assert sorted(SHAPES[b[0]] for b in batches) == sorted([A, B])
    assert starved_buckets(SHAPES, 4) == {C: 2}
    seen = {i for epoch in range(10) for b in bucket_batches(SHAPES, 4, 0, epoch) for i in b}
    assert seen == {i for i, s in enumerate(SHAPES) if s != C}


@pytest.mark.parametrize("world, batch_size", [(2, 1), (2, 2), (3, 2)])
def test_ranks_share_each_global_batch_and_take_the_same_bucket(world, batch_size):
    shapes = SHAPES * 2
    one = _keys(BucketBatchSampler(shapes, world * batch_size, seed=1, epoch=2))
    ranks = [BucketBatchSampler(shapes, batch_size, seed=1, epoch=2, rank=r, world=world) for r in range(world)]
    assert len({len(r) for r in ranks}) == 1 and len(ranks[0]) == len(one)
    for step, global_batch in enumerate(one):
        parts = [_keys(r)[step] for r in ranks]
        assert all(len(p) == batch_size for p in parts)
        assert sorted(i for p in parts for i in p) == sorted(global_batch)
        assert len({r.shapes[step] for r in ranks}) == 1


def test_one_bucket_is_the_old_single_shape_order_and_resume_skips_what_was_seen():
    shapes = [A] * 7
    for rank, world, batch_size in [(0, 1, 2), (1, 2, 1), (0, 2, 3)]:
        old = ResumableSampler(7, seed=3, epoch=1, rank=rank, world=world).keys
        old_batches = [old[i : i + batch_size] for i in range(0, len(old) - batch_size + 1, batch_size)]
        new = BucketBatchSampler(shapes, batch_size, seed=3, epoch=1, rank=rank, world=world)
        assert list(new) == old_batches
    full = list(BucketBatchSampler(SHAPES, 2, seed=3, epoch=1))
    assert list(BucketBatchSampler(SHAPES, 2, seed=3, epoch=1, start=4)) == full[2:]  # 4 samples consumed


def test_clip_buckets_default_manifest_and_list():
    clips = [("a.mp4", 49, 1360, 768), ("b.mp4", 25, 768, 1360), ("c.mp4", 13, 480, 480)]
    default = Bucket(13, 480, 320)
    assert clip_buckets(clips, (), default) == [default] * 3
    # manifest: each clip's own size, frames cut to 8k+5
    assert clip_buckets(clips, ("manifest",), default) == [
        Bucket(45, 1360, 768),
        Bucket(21, 768, 1360),
        Bucket(13, 480, 480),
    ]
    assert training_frames(49) == 45 and training_frames(13) == 13 and training_frames(4) is None
    # a list: the nearest aspect among the buckets a clip's frames fill, the longest of those
    listed = ("45x1360x768", "21x1360x768", "21x768x1360")
    assert clip_buckets(clips[:2], listed, default) == [Bucket(45, 1360, 768), Bucket(21, 768, 1360)]
    assert clip_buckets(clips[2:], ("21x480x480", "13x320x480"), default) == [Bucket(13, 320, 480)]

    with pytest.raises(InputError, match="fewer than frames=21"):
        clip_buckets(clips, (), Bucket(21, 480, 320))
    with pytest.raises(InputError, match=r"manifest: odd.mp4 .*height must be a positive multiple of 16, got 1080"):
        clip_buckets([("odd.mp4", 13, 1080, 1920)], ("manifest",), default)
    with pytest.raises(InputError, match="exceeds the model's maximum of 512 px"):
        clip_buckets(clips[:1], ("manifest",), default, max_side=512)
    with pytest.raises(InputError, match="c.mp4 has 13 frames, fewer than the shortest bucket"):
        clip_buckets(clips, ("21x480x480",), default)


def test_bucket_parsing_errors_are_one_line():
    assert parse_buckets(["manifest"]) is None
    assert parse_buckets(["13x32x32", " 13x32x32", "21X48x32"]) == (A, B)
    for bad, message in [
        (["13x32"], "is not FRAMESxHEIGHTxWIDTH"),
        (["17x32x32"], "frames must be 8k\\+5 .* got 17; try 13 or 21"),
        (["13x40x32"], "height must be a positive multiple of 16, got 40"),
        (["manifest", "13x32x32"], "'manifest' alone"),
    ]:
        with pytest.raises(InputError, match=message):
            parse_buckets(bad)
