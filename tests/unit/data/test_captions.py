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
