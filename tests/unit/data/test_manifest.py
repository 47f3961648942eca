"""The clip manifest: records written by one folder's manifest read back from another's, whatever the cwd."""

from __future__ import annotations

import json

import pytest

from dynamictrl.data.manifest import read_manifest, write_manifest
from dynamictrl.errors import InputError


def _clip_folder(root, name, caption):
    folder = root / name
    (folder / "videos").mkdir(parents=True)
    (folder / "poses").mkdir()
    for sub in ("videos", "poses"):
        (folder / sub / "000000.mp4").write_bytes(b"")
    line = {"video": "videos/000000.mp4", "pose": "poses/000000.mp4", "caption": caption}
    line.update(frames=21, height=64, width=64, fps=8.0)
    (folder / "manifest.jsonl").write_text(json.dumps(line) + "\n")
    return folder / "manifest.jsonl"


def test_manifests_read_through_relative_paths_merge_into_a_parent_folder(tmp_path, monkeypatch):
    _clip_folder(tmp_path, "a", "first")
    _clip_folder(tmp_path, "b", "second")
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path)
    merged = read_manifest("a/manifest.jsonl") + read_manifest("b/manifest.jsonl")
    write_manifest("manifest_merged.jsonl", merged)
    lines = [json.loads(line) for line in (tmp_path / "manifest_merged.jsonl").read_text().splitlines()]
    assert [line["video"] for line in lines] == ["a/videos/000000.mp4", "b/videos/000000.mp4"]
    write_manifest("elsewhere/manifest.jsonl", merged)  # outside the records' folders: absolute paths
    assert json.loads((tmp_path / "elsewhere" / "manifest.jsonl").read_text().splitlines()[1])["pose"] == str(
        tmp_path / "b" / "poses" / "000000.mp4"
    )
    monkeypatch.chdir(tmp_path / "elsewhere")
    for path in (tmp_path / "manifest_merged.jsonl", tmp_path / "elsewhere" / "manifest.jsonl"):
        records = read_manifest(path)
        assert [r.caption for r in records] == ["first", "second"]
        assert [r.video.resolve() for r in records] == [tmp_path / d / "videos" / "000000.mp4" for d in "ab"]


def test_a_record_naming_a_missing_file_is_a_one_line_error(tmp_path):
    manifest = _clip_folder(tmp_path, "a", "first")
    (tmp_path / "a" / "poses" / "000000.mp4").unlink()
    with pytest.raises(InputError, match=r"manifest.jsonl:1: pose file .* does not exist"):
        read_manifest(manifest)
