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
