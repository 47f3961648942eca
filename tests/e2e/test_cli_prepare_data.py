"""`python -m dynamictrl prepare-data` on the dance fixture and a corrupt file: exit code, outputs, report."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

MOTION = Path(__file__).resolve().parents[2] / ".." / "shared" / "fixtures" / "media" / "motion1.mp4"
FLAGS = ["--frames", "9", "--height", "96", "--width", "64"]


def _run(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.run(
        [sys.executable, "-m", "dynamictrl", "-q", "prepare-data", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


def test_prepare_data_command(tmp_path):
    raw, out = tmp_path / "raw", tmp_path / "out"
    raw.mkdir()
    shutil.copy(MOTION, raw / "motion1.mp4")
    (raw / "broken.mp4").write_bytes(b"not a video")
    (raw / "captions.csv").write_text("file,caption\nmotion1.mp4,a woman dancing\nbroken.mp4,x\n")
    result = _run(str(raw), str(out), *FLAGS)
    assert result.returncode == 0, result.stderr
    assert "1 clip(s) ready (1 new, 0 already done), 1 skipped" in result.stdout
    assert json.loads((out / "manifest.jsonl").read_text())["caption"] == "a woman dancing"
    assert (out / "poses" / "motion1.mp4").is_file() and (out / "videos" / "motion1.mp4").is_file()
    assert [s["video"] for s in json.loads((out / "report.json").read_text())["skipped"]] == ["broken.mp4"]

    again = _run(str(raw), str(out), *FLAGS)
    assert again.returncode == 0 and "(0 new, 1 already done)" in again.stdout


def test_user_errors_are_one_line(tmp_path, capsys):
    from dynamictrl.cli import main  # in-process: the subprocess path is covered above

    assert main(["prepare-data", str(tmp_path), str(tmp_path / "out"), "--frames", "48"]) == 1
    assert capsys.readouterr().err.strip().splitlines() == [
        "error: --frames must be 4k+1 (e.g. 13, 25, 37, 49), got 48; try 49"
    ]
    assert main(["prepare-data", str(tmp_path), str(tmp_path / "out"), "--height", "96"]) == 1
    assert "--height and --width go together" in capsys.readouterr().err


def test_qwen2_vl_captions_go_into_the_manifest_and_the_resume_key(tmp_path, capsys):
    """`--captioner qwen2-vl --captioner-model DIR` with a tiny random Qwen2-VL: the caption lands in manifest.jsonl
    and prompts.txt, report.json records the captioner's settings, a second run resumes (another prompt changes the
    resume key: tests/unit/data/test_captions.py). In-process (a subprocess would import transformers again)."""
    from dynamictrl.cli import main
    from dynamictrl.testing import write_tiny_qwen2_vl

    model = write_tiny_qwen2_vl(tmp_path / "qwen")
    raw, out = tmp_path / "raw", tmp_path / "out"
    raw.mkdir()
    shutil.copy(MOTION, raw / "motion1.mp4")  # no caption given
    flags = [str(raw), str(out), *FLAGS, "--captioner", "qwen2-vl", "--captioner-model", str(model)]
    flags += ["--captioner-max-new-tokens", "8", "--captioner-max-pixels", str(112 * 112)]
    assert main(["-q", "prepare-data", *flags]) == 0, capsys.readouterr().err
    record = json.loads((out / "manifest.jsonl").read_text())
    assert isinstance(record["caption"], str) and record["caption"].strip()
    assert (out / "prompts.txt").read_text() == f"motion1.mp4#####{record['caption']}\n"
    captioner = json.loads((out / "report.json").read_text())["settings"]["captioner"]
    assert captioner["backend"] == "qwen2-vl" and captioner["model"] == str(model)
    assert captioner["max_new_tokens"] == 8 and captioner["frames"] == 3 and captioner["decoding"] == "greedy"

    capsys.readouterr()
    assert main(["-q", "prepare-data", *flags]) == 0  # same settings: resumed, nothing decoded or captioned
    assert "(0 new, 1 already done)" in capsys.readouterr().out


def test_captioner_and_cache_flags_fail_before_the_work(tmp_path, capsys):
    from dynamictrl.cli import main

    raw = tmp_path / "raw"
    raw.mkdir()
    args = [str(raw), str(tmp_path / "out")]
    assert main(["prepare-data", *args, "--captioner-model", "x"]) == 1
    assert "--captioner-model is used with --captioner qwen2-vl only" in capsys.readouterr().err
    assert main(["prepare-data", *args, "--captioner", "qwen2-vl", "--captioner-model", str(tmp_path / "no")]) == 1
    assert "is neither a folder nor a hub id" in capsys.readouterr().err
    assert main(["prepare-data", *args, "--cache-latents", "--model", str(tmp_path), "--frames", "25,49"]) == 1
    err = capsys.readouterr().err.strip()
    assert err == (
        "error: --cache-latents needs frame buckets training takes whole (8k+5: 13, 21, ..., 45, 53); "
        "--frames 25,49 has 25: use --frames 21,45"
    )
