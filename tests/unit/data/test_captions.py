"""Given captions (sidecar, captions.csv, captions.jsonl) and the template captioner."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dynamictrl.data.captions import Captioner, TemplateCaptioner, given_caption, read_caption_mapping
from dynamictrl.errors import InputError


def test_sidecar_wins_over_the_mapping_file(tmp_path):
    video = tmp_path / "a.mp4"
    video.write_bytes(b"")
    (tmp_path / "a.txt").write_text("  a man\n jumping ##### high \n")
    (tmp_path / "captions.csv").write_text("file,caption\na.mp4,from csv\n")
    mapping = read_caption_mapping(tmp_path)
    # whitespace collapsed; "#####" would split prompts.txt lines, so it is removed
    assert given_caption(video, tmp_path, mapping) == "a man jumping high"


def test_csv_with_and_without_header_and_by_stem_or_relative_path(tmp_path):
    (tmp_path / "captions.csv").write_text('file,caption\nsub/b.mp4,"a woman, waving"\nc,a child\n')
    mapping = read_caption_mapping(tmp_path)
    assert given_caption(tmp_path / "sub" / "b.mp4", tmp_path, mapping) == "a woman, waving"
    assert given_caption(tmp_path / "c.mov", tmp_path, mapping) == "a child"
    assert given_caption(tmp_path / "d.mp4", tmp_path, mapping) is None
    (tmp_path / "captions.csv").write_text("x.mp4,no header\n")
    assert read_caption_mapping(tmp_path) == {"x.mp4": "no header"}


def test_jsonl_and_its_errors(tmp_path):
    (tmp_path / "captions.jsonl").write_text(json.dumps({"file": "e.mp4", "caption": "a dancer"}) + "\n\n")
    assert given_caption(tmp_path / "e.mp4", tmp_path, read_caption_mapping(tmp_path)) == "a dancer"
    (tmp_path / "captions.jsonl").write_text('{"file": "e.mp4"}\n')
    with pytest.raises(InputError, match="captions.jsonl:1"):
        read_caption_mapping(tmp_path)
    (tmp_path / "captions.csv").write_text("e.mp4,x\n")
    with pytest.raises(InputError, match="keep one"):
        read_caption_mapping(tmp_path)


def test_no_mapping_file_is_empty(tmp_path):
    assert read_caption_mapping(tmp_path) == {}


def test_template_captioner():
    captioner = TemplateCaptioner("a person in a park")
    assert isinstance(captioner, Captioner)
    assert captioner.caption(np.zeros((1, 4, 4, 3), np.uint8)) == "a person in a park"
    assert TemplateCaptioner().caption(np.zeros((1, 4, 4, 3), np.uint8)) == "a person dancing"
    assert captioner.identity() != TemplateCaptioner().identity()  # part of the resume key
    with pytest.raises(InputError, match="caption-template"):
        TemplateCaptioner("  ")


@pytest.fixture(scope="module")
def tiny_qwen(tmp_path_factory):
    from dynamictrl.testing import write_tiny_qwen2_vl

    return write_tiny_qwen2_vl(tmp_path_factory.mktemp("qwen") / "Qwen2-VL-tiny")


def test_qwen2_vl_captioner_describes_a_clip_from_a_few_frames(tiny_qwen):
    """A tiny random Qwen2VLForConditionalGeneration (a locally trained BPE tokenizer, the released chat template):
    a caption comes back, greedy (the same twice, despite the sampling settings in generation_config.json), from
    3 frames of the clip, each expanded to its merged patches; the model loads once."""
    from dynamictrl.data.captions import QwenVLCaptioner

    captioner = QwenVLCaptioner(str(tiny_qwen), max_new_tokens=12, max_pixels=112 * 112)
    assert isinstance(captioner, Captioner) and captioner._model is None  # nothing loaded yet
    clip = np.random.default_rng(0).integers(0, 256, (9, 192, 128, 3), dtype=np.uint8)
    caption = captioner.caption(clip)
    assert isinstance(caption, str) and caption.strip() and "\n" not in caption
    model = captioner._model
    assert captioner.caption(clip) == caption and captioner._model is model
    inputs = captioner.inputs(clip)
    grid = inputs["image_grid_thw"]
    assert grid.shape == (3, 3)  # 3 frames, each its own (t, h, w) patch grid
    assert int(inputs["mm_token_type_ids"].sum()) == int(grid.prod(-1).sum()) // 4  # one token per 2x2 merge
    import torch

    with torch.no_grad():  # the frames reach the language model (a random model's argmax text may not show it)
        logits = [captioner._model(**captioner.inputs(c)).logits[0, -1] for c in (clip, 255 - clip)]
    assert (logits[0] - logits[1]).abs().max() > 1e-4

    settings = captioner.settings()
    assert settings["backend"] == "qwen2-vl" and settings["frames"] == 3 and settings["decoding"] == "greedy"
    other = QwenVLCaptioner(str(tiny_qwen), prompt="Describe the background.", max_new_tokens=12)
    assert other.identity() != captioner.identity()  # the prompt is part of the resume key
    with pytest.raises(InputError, match="--captioner-frames must be at least 1"):
        QwenVLCaptioner(str(tiny_qwen), frames=0)


def test_frame_sampling():
    from dynamictrl.data.captions import fit_pixels, sample_frame_indices

    assert sample_frame_indices(49, 3) == [0, 24, 48] and sample_frame_indices(2, 3) == [0, 1]
    assert sample_frame_indices(9, 1) == [0]
    assert fit_pixels(np.zeros((1920, 1080, 3), np.uint8), 448 * 448).shape == (597, 336, 3)
