"""`data.synth`: the synthetic world in the training layout, reproducible, resumable, readable by the trainer."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dynamictrl.errors import InputError
from dynamictrl.pose.synthetic import standing_person
from dynamictrl.pose.types import FramePose, load_keypoints_json
from dynamictrl.synthetic.world import make_sample, recaption

SMALL = {"frames": 5, "height": 32, "width": 48}


def _write(out, n=2, seed=0, **kwargs):
    from dynamictrl.data.synth import write_synthetic_dataset

    return write_synthetic_dataset(out, n, seed, quiet=True, **{**SMALL, **kwargs})


def _files(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_layout_is_read_by_the_manifest_reader_and_the_trainer_dataset(tmp_path):
    from dynamictrl.data.dataset import ClipDataset
    from dynamictrl.data.manifest import read_manifest
    from dynamictrl.io.media import read_video

    report = _write(tmp_path / "out")
    out = tmp_path / "out"
    assert report.summary() == "2 synthetic clip(s) ready (2 new, 0 already done)"
    records = read_manifest(out / "manifest.jsonl")
    assert [r.video.name for r in records] == ["000000.mp4", "000001.mp4"]
    assert all((r.frames, r.height, r.width, r.fps, r.mask) == (5, 32, 48, 8.0, None) for r in records)
    masked = read_manifest(out / "manifest_masked.jsonl")
    assert masked[0].mask == out / "mask_video" / "000000.mp4"
    mixed = read_manifest(out / "manifest_mixed.jsonl")
    assert [(r.video.name, r.mask is None) for r in mixed] == [
        ("000000.mp4", True), ("000000.mp4", False), ("000001.mp4", True), ("000001.mp4", False)
    ]  # fmt: skip
    assert (out / "prompts.txt").read_text().splitlines()[0] == f"000000.mp4#####{records[0].caption}"
    assert (out / "video.txt").read_text().splitlines() == ["videos/000000.mp4", "videos/000001.mp4"]

    dataset = ClipDataset(masked, frames=5, height=32, width=48)
    sample = dataset[(0, 1)]
    assert tuple(sample["video"].shape) == (5, 3, 32, 48) and tuple(sample["control_video"].shape) == (5, 3, 32, 48)
    assert sample["prompt"] == records[1].caption

    frames, _ = read_video(out / "videos" / "000001.mp4")
    truth = make_sample(0, 1, **SMALL).frames
    assert np.abs(frames.astype(int) - truth).mean() < 1.5  # 4:4:4 at crf 10: compression stays small at 32 px
    mask, _ = read_video(out / "mask_video" / "000001.mp4")
    clothes, _ = read_video(out / "clothes_mask" / "000001.mp4")
    assert set(np.unique(mask)) == {0, 255} and not (clothes > mask).any()  # lossless masks
    keypoints, meta = load_keypoints_json(out / "keypoints" / "000001.json")
    assert len(keypoints) == 5 and meta == {"seed": 0, "index": 1, "fps": 8.0}
    document = json.loads((out / "attributes" / "000001.json").read_text())
    assert document["caption"] == records[1].caption
    assert recaption(document["attributes"], "white").endswith("on a plain white background")


def test_same_seed_same_bytes_other_seed_other_clips(tmp_path):
    _write(tmp_path / "a")
    _write(tmp_path / "b")
    _write(tmp_path / "c", seed=1)
    a, b, c = (_files(tmp_path / name) for name in "abc")
    assert a == b
    assert a["videos/000000.mp4"] != c["videos/000000.mp4"]


def test_rerun_skips_finished_clips_extends_and_refuses_other_settings(tmp_path):
    out = tmp_path / "out"
    _write(out, n=1)
    before = (out / "videos" / "000000.mp4").stat().st_mtime_ns
    report = _write(out, n=2)
    assert report.resumed == ["000000.mp4"] and report.written == ["000001.mp4"]
    assert (out / "videos" / "000000.mp4").stat().st_mtime_ns == before
    (out / "clothes_mask" / "000001.mp4").unlink()  # an unfinished clip is made again
    assert _write(out, n=2).written == ["000001.mp4"]
    with pytest.raises(InputError, match=r"other settings \(frames: 5 -> 9\)") as info:
        _write(out, frames=9)
    assert "\n" not in str(info.value)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "manifest.jsonl").write_text("{}\n")
    with pytest.raises(InputError, match="not made by"):
        _write(tmp_path / "other")


def test_background_colours_are_a_setting_and_old_sets_keep_theirs(tmp_path):
    plain = _write(tmp_path / "plain", n=2, backgrounds="black,white")
    settings = json.loads((tmp_path / "plain" / "synth.json").read_text())["settings"]
    assert settings["backgrounds"] == ["black", "white"]
    assert all(r.caption.endswith(("plain black background", "plain white background")) for r in plain.records)
    _write(tmp_path / "any", n=1)
    assert "backgrounds" not in json.loads((tmp_path / "any" / "synth.json").read_text())["settings"]
    with pytest.raises(InputError, match="other settings"):
        _write(tmp_path / "any", n=1, backgrounds="black")


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"n": 0}, "--n must be"),
        ({"frames": 8}, "--frames must be 4k\\+1"),
        ({"frames": 1}, "at least 5"),
        ({"height": 40}, "--height must be a positive multiple of 16"),
        ({"motions": "walk,fly"}, "Unknown motion 'fly'"),
        ({"backgrounds": "white,grey"}, "Unknown background colour 'grey'"),
        ({"fps": 0.0}, "--fps"),
        ({"motion_video": "missing.mp4"}, "is not a file"),
    ],
)
def test_bad_settings_are_one_line_errors_before_any_work(tmp_path, kwargs, message):
    with pytest.raises(InputError, match=message):
        _write(tmp_path / "out", **kwargs)
    assert not (tmp_path / "out").exists()


class _FakeExtractor:
    """Stands in for the pose stage: a person crossing the driving video."""

    calls = 0

    def extract_sequence(self, frames):
        _FakeExtractor.calls += 1
        h, w = frames.shape[1:3]
        for i in range(len(frames)):
            yield FramePose([standing_person(w * (0.3 + 0.04 * i), h * 0.2, h * 0.6, h, w)], h, w)

    def close(self):
        pass


def test_motion_video_drives_every_clip_and_its_keypoints_are_cached(tmp_path):
    from dynamictrl.io.media import write_video

    video = write_video(tmp_path / "dance.mp4", np.zeros((12, 64, 48, 3), np.uint8), 8.0)
    _FakeExtractor.calls = 0
    report = _write(tmp_path / "out", motion_video=video, extractor_factory=_FakeExtractor)
    assert _FakeExtractor.calls == 1 and (tmp_path / "out" / "motion" / "dance.json").is_file()
    assert all("moving" in r.caption for r in report.records)
    document = json.loads((tmp_path / "out" / "attributes" / "000000.json").read_text())
    assert document["attributes"]["motion"] == "driven"
    _write(tmp_path / "out", n=3, motion_video=video, extractor_factory=_FakeExtractor)
    assert _FakeExtractor.calls == 1  # cached
    with pytest.raises(InputError, match="gives 12 frames"):
        _write(tmp_path / "short", frames=13, motion_video=video, extractor_factory=_FakeExtractor)
