"""`python -m dynamictrl train` on a tiny model and generated clips: trains, checkpoints, fails cleanly; and two CPU
processes under `accelerate launch` train exactly as one process with the same global batch.

Resume and the other errors are covered in-process by tests/unit/training (each CLI process costs ~10 s here).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]
ENV = {"HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "TQDM_DISABLE": "1"}


def _cli(*args, cwd: Path):
    return subprocess.run(
        [sys.executable, "-m", "dynamictrl", *map(str, args)],
        cwd=cwd,
        env={**os.environ, **ENV},
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_train_and_a_bad_config(tiny_models, tmp_path):
    from dynamictrl.training.toy_data import write_toy_dataset

    write_toy_dataset(tmp_path / "data", clips=2, frames=13, height=32, width=32)
    config = tmp_path / "run.yaml"
    config.write_text(
        f"model: {tiny_models.dynamictrl}\noutput_dir: out\ndata_root: data\nframes: 13\nheight: 32\nwidth: 32\n"
        "learning_rate: 1.0e-3\nlr_warmup_steps: 0\nlr_scheduler: constant\ncheckpoint_every: 2\n"
    )
    done = _cli("-q", "train", config, "--max-steps", "2", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "trained to step 2" in done.stdout
    out = tmp_path / "out"
    assert (out / "checkpoint-2").is_dir() and (out / "transformer" / "config.json").is_file()
    steps = [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2]

    bad = _cli("train", config, "--frames", "12", cwd=tmp_path)
    assert bad.returncode == 1 and bad.stderr.strip().startswith("error: frames must be 4k+1")
    assert len(bad.stderr.strip().splitlines()) == 1


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return {k: v for f in sorted(folder.glob("*.safetensors")) for k, v in load_file(f).items()}


def test_two_cpu_processes_train_as_one_with_the_same_global_batch(tiny_models, tmp_path):
    """`accelerate launch --config_file configs/accelerate/cpu_2proc.yaml` starts 2 ranks (gloo); 3 steps of batch
    1 per rank (every random knob on, an epoch boundary at step 3) end with the same weights on both ranks, and
    equal to 1 process with batch 2 within 1e-5. About 35 s on 2 shared cores."""
    from dynamictrl.training import load_config, run
    from dynamictrl.training.toy_data import write_toy_dataset

    write_toy_dataset(tmp_path / "data", clips=4, frames=17, height=32, width=32)
    settings = {
        "model": str(tiny_models.dynamictrl),
        "data_root": str(tmp_path / "data"),
        "frames": 13,
        "height": 32,
        "width": 32,
        "learning_rate": 1e-3,
        "lr_warmup_steps": 0,
        "lr_scheduler": "constant",
        "checkpoint_every": 0,
        "max_steps": 3,
        "flip": 0.5,
        "image_dropout": 0.3,
        "pose_dropout": 0.3,
        "quiet": True,
    }
    config = tmp_path / "run.yaml"
    config.write_text(json.dumps({**settings, "output_dir": str(tmp_path / "two"), "batch_size": 1}))
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--config_file"]
    launch += [str(ROOT / "configs" / "accelerate" / "cpu_2proc.yaml"), "--main_process_port", str(_free_port())]
    done = subprocess.run(
        [*launch, "-m", "dynamictrl", "-q", "train", str(config)],
        cwd=tmp_path,
        env={**os.environ, **ENV},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    two = json.loads((tmp_path / "two" / "train_result.json").read_text())
    assert two["processes"] == 2 and two["global_step"] == 3
    assert len(two["weights_digest"]) == 2 and two["weights_digest"][0] == two["weights_digest"][1]

    torch.set_num_threads(1)
    one = run(load_config(None, {**settings, "output_dir": str(tmp_path / "one"), "batch_size": 2}))
    a, b = _weights(tmp_path / "two" / "transformer"), _weights(one.output)
    assert a.keys() == b.keys()
    worst = max(float((a[k] - b[k]).abs().max()) for k in a)
    assert worst <= 1e-5, worst
    two_losses = [json.loads(line)["loss"] for line in (tmp_path / "two" / "metrics.jsonl").read_text().splitlines()]
    assert len(two_losses) == 3
    for x, y in zip(two_losses, one.losses, strict=True):
        assert abs(x - y) <= 1e-5 * max(1.0, abs(y)), (two_losses, one.losses)
