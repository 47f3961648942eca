"""A small model made here, end to end through the CLI: `train-vae` → `assemble-model` → `animate` at 64x64x17."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dynamictrl.cli import main
from dynamictrl.io.media import probe_video, save_image, write_video
from dynamictrl.testing import TINY_SMALL_TRANSFORMER_CONFIG
from dynamictrl.training.toy_data import write_toy_dataset


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """A VAE trained for 2 steps on toy clips with masks, assembled with a tokenizer of their captions."""
    import torch

    root = tmp_path_factory.mktemp("small")
    data = write_toy_dataset(root / "data", clips=3, frames=9, height=16, width=16, masks=True).parent
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        code = main(
            [
                "-q", "train-vae",
                "--data-root", str(data), "--output-dir", str(root / "vae"),
                "--frames", "9", "--height", "16", "--width", "16", "--block-out-channels", "8,8,8",
                "--norm-num-groups", "2", "--max-steps", "2", "--batch-size", "1", "--held-out", "1",
                "--scale-clips", "1", "--checkpoint-every", "0",
            ]
        )  # fmt: skip
    finally:
        torch.set_num_threads(threads)
    assert code == 0
    config = root / "transformer.json"
    config.write_text(json.dumps(TINY_SMALL_TRANSFORMER_CONFIG))
    code = main(
        [
            "assemble-model", str(root / "model"),
            "--vae", str(root / "vae" / "vae"), "--captions", str(data / "manifest.jsonl"),
            "--transformer-config", str(config), "--text-length", "16", "--pose-render", "synthetic",
        ]
    )  # fmt: skip
    assert code == 0
    return root


def test_train_vae_and_assemble_write_their_outputs(model, capsys):
    report = json.loads((model / "vae" / "vae_report.json").read_text())
    assert report["global_step"] == 2 and report["scaling_factor"] > 0
    index = json.loads((model / "model" / "model_index.json").read_text())
    assert index["_class_name"] == "DynamiCtrlPipeline"
    settings = json.loads((model / "model" / "transformer" / "dynamictrl.json").read_text())
    assert settings["image_latent_scale"] == pytest.approx(report["scaling_factor"])
    assert settings["pose_render"]["canvas_short_side"] == 256


def test_animate_loads_the_small_model_at_64x64x17(model, tmp_path):
    """In-process (`dynamictrl.cli.main`, the console script's entry): the CLI's exit code without a second
    interpreter's import time; tests/e2e/test_cli_animate.py runs the subprocess path."""
    rng = np.random.default_rng(0)
    image, pose, out = tmp_path / "person.png", tmp_path / "pose.mp4", tmp_path / "out.mp4"
    save_image(image, rng.integers(0, 256, (64, 64, 3), dtype=np.uint8))
    write_video(pose, rng.integers(0, 256, (17, 64, 64, 3), dtype=np.uint8), fps=8)
    code = main(
        [
            "-q", "animate", "--model", str(model / "model"), "--image", str(image), "--pose-video", str(pose),
            "--prompt", "a red square moving", "--height", "64", "--width", "64", "--frames", "17", "--steps", "2",
            "--out", str(out),
        ]
    )  # fmt: skip
    assert code == 0
    info = probe_video(out)
    assert (info.num_frames, info.height, info.width) == (17, 64, 64)
    sidecar = json.loads(out.with_suffix(".json").read_text())
    assert sidecar["model"]["image_latent_scale"] == pytest.approx(
        json.loads((model / "vae" / "vae_report.json").read_text())["scaling_factor"]
    )


def test_bad_input_is_one_line_and_exit_1(model, tmp_path, capsys):
    assert (
        main(["train-vae", "--data-root", str(tmp_path), "--output-dir", str(tmp_path / "o"), "--frames", "13"]) == 1
    )
    assert main(["assemble-model", str(model / "model"), "--vae", str(model / "vae" / "vae")]) == 1
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 2 and "8k+1" in errors[0] and "already exists" in errors[1]
