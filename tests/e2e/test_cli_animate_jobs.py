"""`dynamictrl animate --jobs` with the tiny model: two CPU processes under `accelerate launch` share 3 jobs, each
written once by its process; a rerun (one plain process, in this one: faster) skips them all and writes nothing new.

The in-process logic (parsing, checks, resume rule, failures) is in tests/unit/jobs/test_batch.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from dynamictrl.cli import main
from dynamictrl.io.media import probe_video
from dynamictrl.testing import free_port, write_animate_inputs

ROOT = Path(__file__).resolve().parents[2]
ENV = {"HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "TQDM_DISABLE": "1"}
H, W = 64, 96


def _run(command: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(command, cwd=cwd, env={**os.environ, **ENV}, capture_output=True, text=True, timeout=300)


def test_two_processes_write_every_output_once_and_a_rerun_skips_them(tiny_models, tmp_path, monkeypatch, capsys):
    write_animate_inputs(tmp_path, H, W)
    lines = [
        {"image": "person.png", "pose_video": "pose.mp4", "prompt": "a dancer in red", "seed": seed,
         "out": f"out/job{i}.mp4"}
        for i, seed in enumerate((1, 2, 3))
    ]  # fmt: skip
    (tmp_path / "jobs.jsonl").write_text("# three jobs\n" + "\n".join(json.dumps(line) for line in lines) + "\n")
    common = [
        "-m", "dynamictrl", "-q", "animate", "--jobs", "jobs.jsonl", "--model", str(tiny_models.dynamictrl),
        "--frames", "9", "--height", str(H), "--width", str(W), "--steps", "2", "--fps", "8", "--cpu-threads", "1",
    ]  # fmt: skip
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--config_file"]
    launch += [str(ROOT / "configs" / "accelerate" / "cpu_2proc.yaml"), "--main_process_port", str(free_port())]

    first = _run([*launch, *common], tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    assert first.stdout.count("jobs: 3 done, 0 skipped, 0 failed (2 processes)") == 1, first.stdout  # main only
    summary = json.loads((tmp_path / "jobs.summary.json").read_text())
    assert summary["counts"] == {"done": 3, "skipped": 0, "failed": 0} and summary["num_processes"] == 2
    assert [(r["line"], r["status"], r["process_index"]) for r in summary["jobs"]] == [
        (2, "done", 0), (3, "done", 1), (4, "done", 0)
    ]  # fmt: skip
    for i, record in enumerate(summary["jobs"]):
        out = tmp_path / "out" / f"job{i}.mp4"
        assert record["outputs"] == [f"out/job{i}.mp4", f"out/job{i}.json"]
        assert probe_video(out).num_frames == 9
        sidecar = json.loads(out.with_suffix(".json").read_text())
        assert sidecar["runtime"]["process_index"] == i % 2 and sidecar["runtime"]["num_processes"] == 2
        assert sidecar["seed"] == i + 1 and sidecar["settings"]["device"] == "cpu"
    written = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "out").iterdir()}
    assert sorted(written) == sorted(f"job{i}{suffix}" for i in range(3) for suffix in (".mp4", ".json"))

    monkeypatch.chdir(tmp_path)  # the rerun in this process: one process is enough, and it starts in no time
    assert main(common[2:]) == 0
    assert "jobs: 0 done, 3 skipped, 0 failed (1 process)" in capsys.readouterr().out
    assert {p.name: p.stat().st_mtime_ns for p in (tmp_path / "out").iterdir()} == written
    assert json.loads((tmp_path / "jobs.summary.json").read_text())["counts"]["skipped"] == 3
