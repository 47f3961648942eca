"""`dynamictrl demo`: the README's first command, end to end on a fresh cache."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from dynamictrl.io.media import probe_video


def test_demo_animates_the_bundled_example_and_labels_the_random_model(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "DYNAMICTRL_CACHE_DIR": str(tmp_path / "cache")}
    out = tmp_path / "demo"
    proc = subprocess.run(
        [sys.executable, "-m", "dynamictrl", "demo", "--out-dir", str(out), "--frames", "9", "--steps", "2"],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    assert "TINY RANDOM MODEL" in proc.stdout
    info = probe_video(out / "demo.mp4")
    assert (info.num_frames, info.width, info.height) == (9, 240, 320)
    assert probe_video(out / "demo_side_by_side.mp4").width == 3 * 240
    sidecar = json.loads((out / "demo.json").read_text())
    assert "TINY RANDOM MODEL" in sidecar["note"]
    assert sidecar["model"]["components"]["transformer"].startswith(str(tmp_path / "cache"))
