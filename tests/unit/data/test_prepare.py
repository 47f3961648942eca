"""prepare-data on a real dance video plus bad items: clips, poses, layout, report, resume, latent cache."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from dynamictrl.data import prepare
from dynamictrl.data.captions import TemplateCaptioner
from dynamictrl.data.dataset import ClipDataset, LatentCache
from dynamictrl.data.manifest import read_manifest
from dynamictrl.data.prepare import DataPreparer, PrepareOptions
from dynamictrl.errors import InputError
from dynamictrl.io.media import probe_video, read_video, write_video
from dynamictrl.pose.types import FramePose, PersonPose

MOTION = Path(__file__).resolve().parents[3] / ".." / "shared" / "fixtures" / "media" / "motion1.mp4"
OPTIONS = dict(frame_buckets=(9,), size_buckets=((96, 64),), quiet=True)


@pytest.fixture(scope="module")
def raw(tmp_path_factory):
    root = tmp_path_factory.mktemp("raw")
    shutil.copy(MOTION, root / "motion1.mp4")
    (root / "motion1.txt").write_text("a woman dancing in a studio\n")
    write_video(root / "flat.mp4", np.full((12, 96, 64, 3), 90, np.uint8), 30)  # nobody in it
    (root / "flat.txt").write_text("an empty wall")
    write_video(root / "short.mp4", np.full((3, 96, 64, 3), 40, np.uint8), 30)
    (root / "short.txt").write_text("too short")
    (root / "corrupt.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8)
    (root / "corrupt.txt").write_text("broken")
    write_video(root / "nocaption.mp4", np.full((12, 96, 64, 3), 200, np.uint8), 30)
    return root


@pytest.fixture(scope="module")
def prepared(raw, tmp_path_factory):
    out = tmp_path_factory.mktemp("out")
    preparer = DataPreparer(raw, out, PrepareOptions(**OPTIONS))
    return out, preparer, preparer.run()


def test_the_good_clip_is_written_in_both_layouts(prepared):
    out, preparer, report = prepared
    assert report.prepared == ["motion1.mp4"] and preparer.poses_extracted == 2  # motion1 and flat
    (record,) = read_manifest(out / "manifest.jsonl")
    assert (record.frames, record.height, record.width, record.caption) == (9, 96, 64, "a woman dancing in a studio")
    assert record.video == out / "videos" / "motion1.mp4" and record.pose == out / "poses" / "motion1.mp4"
    assert (out / "prompts.txt").read_text() == "motion1.mp4#####a woman dancing in a studio\n"
    assert (out / "video.txt").read_text() == "videos/motion1.mp4\n"
    for path in (record.video, record.pose):
        info = probe_video(path)
        assert (info.num_frames, info.height, info.width) == (9, 96, 64)
    # cover-cropped, not stretched: the clip is the centre of the source, same frames
    clip, _ = read_video(record.video)
    source, _ = read_video(MOTION, max_frames=9)
    crop = source[:, 150:1770]  # 1920x1080 -> 1620x1080 (aspect 96:64)
    expected = np.stack([prepare.downscale(crop[i : i + 1], 96, 64)[0] for i in range(9)])
    assert np.abs(clip.astype(int) - expected.astype(int)).mean() < 6
    # poses: a skeleton on black, in every frame
    poses, _ = read_video(record.pose)
    lit = (poses.max(axis=-1) > 60).reshape(9, -1).mean(axis=1)
    assert (lit > 0.001).all() and (lit < 0.2).all()


def test_bad_items_are_skipped_with_reasons(prepared):
    out, _, report = prepared
    reasons = {item["video"]: item["reason"] for item in report.skipped}
    assert set(reasons) == {"flat.mp4", "short.mp4", "corrupt.mp4", "nocaption.mp4"}
    assert reasons["flat.mp4"].startswith("no person")
    assert reasons["short.mp4"].startswith("too short: 3 frames")
    assert reasons["nocaption.mp4"] == "missing caption"
    assert "corrupt" in reasons["corrupt.mp4"] or "unreadable" in reasons["corrupt.mp4"]
    written = json.loads((out / "report.json").read_text())
    assert written["skipped"] == report.skipped and written["prepared"] == ["motion1.mp4"]
    assert not (out / "videos" / "flat.mp4").exists()


def test_a_second_run_resumes_without_extracting(raw, prepared):
    out, _, first = prepared
    before = (out / "videos" / "motion1.mp4").stat().st_mtime_ns
    again = DataPreparer(raw, out, PrepareOptions(**OPTIONS))
    report = again.run()
    assert report.resumed == ["motion1.mp4"] and report.prepared == []
    # flat.mp4 is decoded again (skips are not remembered), motion1 is not
    assert again.poses_extracted == 1
    assert (out / "videos" / "motion1.mp4").stat().st_mtime_ns == before
    assert read_manifest(out / "manifest.jsonl")[0].caption == first.records[0].caption


def test_a_changed_caption_or_setting_redoes_the_clip(raw, prepared, tmp_path):
    out, _, _ = prepared
    work = tmp_path / "out"
    shutil.copytree(out, work)
    options = PrepareOptions(**{**OPTIONS, "crf": 30})
    preparer = DataPreparer(raw, work, options)
    assert preparer.run().prepared == ["motion1.mp4"]


def test_template_captioner_fills_in_missing_captions(raw, tmp_path):
    only = tmp_path / "raw"
    only.mkdir()
    shutil.copy(raw / "motion1.mp4", only / "motion1.mp4")
    preparer = DataPreparer(only, tmp_path / "out", PrepareOptions(**OPTIONS), captioner=TemplateCaptioner("x y"))
    report = preparer.run()
    assert [r.caption for r in report.records] == ["x y"]


def test_several_people_are_skipped():
    def person(x: float) -> PersonPose:
        p = PersonPose.empty()
        p.body[:] = [x, 0.5]
        p.body_scores[:] = 0.9
        return p

    preparer = DataPreparer.__new__(DataPreparer)
    with pytest.raises(prepare.Skip, match="several people in 3 of 4"):
        preparer._check_people([FramePose([person(0.3), person(0.7)])] * 3 + [FramePose([person(0.3)])])
    with pytest.raises(prepare.Skip, match="no person in 3 of 4"):
        preparer._check_people([FramePose([])] * 3 + [FramePose([person(0.3)])])
    preparer._check_people([FramePose([person(0.3)])] * 4)


def test_buckets():
    assert prepare.choose_frames(83, (9, 49, 81)) == 81
    assert prepare.choose_frames(48, (9, 49)) == 9
    assert prepare.choose_frames(3, (9,)) is None
    portrait, landscape = (1360, 768), (768, 1360)
    assert prepare.choose_size(1920, 1080, (landscape, portrait)) == portrait
    assert prepare.choose_size(720, 1280, (landscape, portrait)) == landscape
    assert prepare.crop_size(1920, 1080, (96, 64)) == (1620, 1080)
    assert prepare.parse_frame_buckets("49,25, 49") == (25, 49)
    assert prepare.parse_size_buckets("96x64,64x96") == ((96, 64), (64, 96))
    with pytest.raises(InputError, match="4k\\+1"):
        prepare.parse_frame_buckets("48")
    with pytest.raises(InputError, match="multiple of 16"):
        prepare.parse_size_buckets("100x64")
    with pytest.raises(InputError, match="HEIGHTxWIDTH"):
        prepare.parse_size_buckets("96-64")
    with pytest.raises(InputError, match="exclude each other"):
        PrepareOptions(mask="background", mask_dir=Path("."))


class FakeEncoder:
    """`LatentEncoder` with deterministic fake moments; counts its calls."""

    vae_id, text_id, max_text_length = "vae-test", "t5-test", 8

    def __init__(self) -> None:
        self.calls = 0

    def encode_video(self, pixels):
        self.calls += 1
        f = (pixels.shape[0] - 1) // 4 + 1
        return pixels.mean() + torch.zeros(f, 32, pixels.shape[2] // 8, pixels.shape[3] // 8)

    def encode_prompt(self, prompt):
        self.calls += 1
        return torch.full((8, 4), float(len(prompt)))


def test_cached_latents_have_the_keys_the_dataset_reads(prepared, tmp_path):
    out, _, report = prepared
    encoder = FakeEncoder()
    assert prepare.cache_latents(report.records, tmp_path, encoder, id_token="TOK", progress=False) == 4
    cache = LatentCache(tmp_path, "vae-test", "t5-test")
    (record,) = report.records
    sample = ClipDataset([record], frames=9, height=96, width=64, id_token="TOK", cache=cache)[(0, 0)]
    assert sample["video"] is None and sample["control_video"] is None  # both read from the cache
    assert sample["video_moments"].shape == (3, 32, 12, 8) and sample["image_moments"] is not None
    assert cache.get(cache.prompt_key("TOK a woman dancing in a studio", 8)) is not None
    assert prepare.cache_latents(report.records, tmp_path, encoder, id_token="TOK", progress=False) == 0
    assert encoder.calls == 4


def test_user_masks_are_cut_like_their_clips(raw, tmp_path):
    only, masks = tmp_path / "raw", tmp_path / "masks"
    only.mkdir()
    masks.mkdir()
    shutil.copy(raw / "motion1.mp4", only / "motion1.mp4")
    (only / "motion1.txt").write_text("a dancer")
    left_white = np.zeros((12, 192, 108, 3), np.uint8)
    left_white[:, :, :54] = 230
    write_video(masks / "motion1.mp4", left_white, 30)
    report = DataPreparer(only, tmp_path / "out", PrepareOptions(**OPTIONS, mask_dir=masks)).run()
    (record,) = report.records
    mask, _ = read_video(record.mask)
    assert record.mask == tmp_path / "out" / "mask_video" / "motion1.mp4" and mask.shape == (9, 96, 64, 3)
    assert mask[:, :, :28].mean() > 240 and mask[:, :, 36:].mean() < 15
