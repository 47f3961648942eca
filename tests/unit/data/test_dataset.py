"""Manifest parsing and the clip dataset: crops, synchronised flips, deterministic selections, cache keys."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dynamictrl.data.dataset import ClipDataset, LatentCache, epoch_order
from dynamictrl.data.manifest import read_manifest
from dynamictrl.errors import InputError


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    from dynamictrl.training.toy_data import write_toy_dataset

    return write_toy_dataset(tmp_path_factory.mktemp("toy"), clips=3, frames=9, height=32, width=48)


def test_manifest_records_and_errors(toy, tmp_path):
    records = read_manifest(toy)
    assert len(records) == 3 and records[0].video.is_file() and records[0].frames == 9
    assert (records[0].height, records[0].width) == (32, 48) and records[0].caption == "a red square moving"
    bad = tmp_path / "m.jsonl"
    bad.write_text(json.dumps({"video": "a.mp4", "caption": "x"}) + "\n")
    with pytest.raises(InputError, match=r"m.jsonl:1 lacks pose"):
        read_manifest(bad)
    bad.write_text(json.dumps({"video": "a.mp4", "pose": "b.mp4", "caption": "x"}) + "\n")
    with pytest.raises(InputError, match="video file .*a.mp4 does not exist"):
        read_manifest(bad)
    bad.write_text("{not json\n")
    with pytest.raises(InputError, match="is not JSON"):
        read_manifest(bad)


def test_samples_are_cropped_flipped_together_and_deterministic(toy):
    records = read_manifest(toy)
    plain = ClipDataset(records, frames=5, height=32, width=32, seed=3)
    flipped = ClipDataset(records, frames=5, height=32, width=32, seed=3, flip=1.0)
    a, b = plain[(0, 1)], flipped[(0, 1)]
    assert a["video"].shape == (5, 3, 32, 32) and a["control_video"].shape == (5, 3, 32, 32)
    assert a["image"].shape == (3, 32, 32) and float(a["video"].min()) >= -1 and float(a["video"].max()) <= 1
    assert a["start"] == b["start"] and b["flip"] and not a["flip"]
    for key in ("video", "control_video", "image"):
        np.testing.assert_array_equal(b[key].numpy(), a[key].flip(-1).numpy())
    np.testing.assert_array_equal(a["image"].numpy(), a["video"][0].numpy())  # reference = first clip frame
    again = plain[(0, 1)]
    np.testing.assert_array_equal(again["video"].numpy(), a["video"].numpy())
    starts = {plain.selection(epoch, 1)[0] for epoch in range(20)}
    assert starts <= set(range(5)) and len(starts) > 1
    with pytest.raises(InputError, match="fewer than frames=13"):
        ClipDataset(records, frames=13, height=32, width=32)


def test_epoch_order_shards_and_cache_keys(toy, tmp_path):
    assert sorted(epoch_order(6, 0, 0)) == list(range(6))
    assert epoch_order(6, 0, 0) != epoch_order(6, 0, 1)
    shards = [epoch_order(7, 0, 2, rank, 2) for rank in range(2)]
    assert len(shards[0]) == len(shards[1]) == 3 and not set(shards[0]) & set(shards[1])
    records = read_manifest(toy)
    cache = LatentCache(tmp_path, vae_id="v1")
    key = cache.video_key(records[0].video, 0, 5, 32, 32, False)
    assert key != cache.video_key(records[0].video, 1, 5, 32, 32, False)
    assert key != cache.video_key(records[0].video, 0, 5, 32, 32, True)
    assert key != LatentCache(tmp_path, vae_id="v2").video_key(records[0].video, 0, 5, 32, 32, False)
    assert key != cache.video_key(records[1].video, 0, 5, 32, 32, False)


def test_each_record_at_its_own_bucket_with_the_shape_in_its_cache_keys(toy, tmp_path):
    from dynamictrl.data.buckets import Bucket

    records = read_manifest(toy)
    buckets = [Bucket(5, 32, 32), Bucket(9, 32, 48), Bucket(5, 16, 48)]
    dataset = ClipDataset(records, buckets=buckets, cache=LatentCache(tmp_path, vae_id="v1"))
    for index, (frames, height, width) in enumerate(buckets):
        sample = dataset[(0, index)]
        assert sample["bucket"] == buckets[index] and sample["video"].shape == (frames, 3, height, width)
        assert sample["image"].shape == (3, height, width)
    cache, video = dataset.cache, records[0].video
    assert cache.video_key(video, 0, 5, 32, 32, False) != cache.video_key(video, 0, 9, 32, 32, False)
    assert cache.video_key(video, 0, 5, 32, 32, False) != cache.video_key(video, 0, 5, 16, 32, False)
    assert cache.image_key(video, None, 0, 32, 32, False) != cache.image_key(video, None, 0, 32, 48, False)
