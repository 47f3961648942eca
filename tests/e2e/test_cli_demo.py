"""`dynamictrl demo`: the README's first command, end to end in a real process."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np

from dynamictrl.io.media import probe_video, read_video


def _demo(tmp_path, *args):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "DYNAMICTRL_CACHE_DIR": str(tmp_path / "cache"), "TQDM_DISABLE": "1"}
    return subprocess.run(
        [sys.executable, "-m", "dynamictrl", "demo", *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )


def test_demo_writes_the_animation_and_the_comparison_with_ground_truth(tmp_path):
    """The README's main job on the held-out synthetic example: 21 frames of 64x64, the 4-panel comparison
    enlarged 4x (reference | pose | result | ground truth), the ground truth equal to the synthetic world's sample,
    and the model named for what it is (the bundled small model, or the tiny random one while none is bundled)."""
    from dynamictrl.jobs.demo import SMALL_MODEL_LABEL, TINY_MODEL_LABEL, bundled_model, demo_sample

    label = SMALL_MODEL_LABEL if bundled_model() is not None else TINY_MODEL_LABEL
    out = tmp_path / "demo"
    proc = _demo(tmp_path, "--out-dir", out, "--steps", 4)
    assert proc.returncode == 0, proc.stderr
    assert label in proc.stdout and "Traceback" not in proc.stderr
    info = probe_video(out / "demo.mp4")
    assert (info.num_frames, info.width, info.height) == (21, 64, 64)
    comparison = probe_video(out / "demo_comparison.mp4")
    assert (comparison.num_frames, comparison.width, comparison.height) == (21, 4 * 256, 256)
    truth, _ = read_video(out / "ground_truth.mp4")
    expected = demo_sample("synthetic", 21).frames
    assert np.abs(truth.astype(int) - expected).mean() < 3  # H.264 of the world's own frames
    sidecar = json.loads((out / "demo.json").read_text())
    assert sidecar["note"] == label and sidecar["settings"]["prompt"] == demo_sample("synthetic", 21).caption
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["demo.mp4", "demo.json", "demo_comparison.mp4", "reference.png", "pose.mp4", "ground_truth.mp4"]
    )


def test_demo_real_motion_example_with_another_model_folder(tmp_path):
    """--example real drives a held-out character with the bundled real dance motion; --model takes any pipeline
    folder (here a tiny one of the small model's layout), and the label then names it."""
    from dynamictrl.testing import write_tiny_small_model

    model = write_tiny_small_model(tmp_path / "model")
    out = tmp_path / "real"
    proc = _demo(tmp_path, "--out-dir", out, "--example", "real", "--model", model, "--steps", 2, "--frames", 9)
    assert proc.returncode == 0, proc.stderr
    assert f"model {model}" in proc.stdout and "moving" in proc.stdout  # the caption of a real-motion sample
    assert probe_video(out / "demo.mp4").num_frames == 9
    assert probe_video(out / "demo_comparison.mp4").width == 4 * 256


def test_bad_demo_flags_are_one_line_errors(tmp_path):
    proc = _demo(tmp_path, "--example", "moon")
    assert proc.returncode != 0 and "--example" in proc.stderr and "Traceback" not in proc.stderr
