"""`python -m dynamictrl train` on a tiny model and generated clips: trains, checkpoints, fails cleanly; and two CPU
processes under `accelerate launch` (DDP, FSDP2, DeepSpeed ZeRO-2) train exactly as one process with the same
global batch.

Resume and the other errors are covered in-process by tests/unit/training (each CLI process costs ~10 s here).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from dynamictrl.testing import free_port

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


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return {k: v for f in sorted(folder.glob("*.safetensors")) for k, v in load_file(f).items()}


# launch config → (the runs, each an `accelerate launch`, later ones resuming; accelerate's distributed type; how
# many weight digests train_result.json holds: one per rank, or one for FSDP, whose ranks hold shards).
BACKENDS = {
    "ddp": ("cpu_2proc.yaml", [{}], "MULTI_CPU", 2),
    "fsdp": ("cpu_fsdp.yaml", [{"max_steps": 2, "checkpoint_every": 2}, {"resume": "latest"}], "FSDP", 1),
    "deepspeed": ("cpu_deepspeed_zero2.yaml", [{"checkpoint_every": 2}], "DEEPSPEED", 2),
}


@pytest.fixture(scope="module")
def one_process(tiny_models, tmp_path_factory):
    """The toy set, the run settings (3 steps, every random knob on, grouped encoding, an epoch boundary at step 3)
    and their one-process run with batch 2, which every two-process backend must reproduce."""
    from dynamictrl.training import load_config, run
    from dynamictrl.training.toy_data import write_toy_dataset

    root = tmp_path_factory.mktemp("two-processes")
    write_toy_dataset(root / "data", clips=4, frames=17, height=32, width=32)
    settings = {
        "model": str(tiny_models.dynamictrl),
        "data_root": str(root / "data"),
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
        "encode_group": 2,  # a clip's latents must not depend on its batch companions: [a, b] here, [a, a] per rank
        "quiet": True,
    }
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        one = run(load_config(None, {**settings, "output_dir": str(root / "one"), "batch_size": 2}))
    finally:
        torch.set_num_threads(threads)
    return root, settings, one


@pytest.mark.parametrize("backend", list(BACKENDS))
def test_two_cpu_processes_train_as_one_with_the_same_global_batch(backend, one_process):
    """`accelerate launch --config_file configs/accelerate/<config>` starts 2 ranks (gloo): DDP, FSDP2 (sharded
    parameters; its run stops at a checkpoint at step 2 and a second launch resumes it) or DeepSpeed ZeRO-2 (a
    checkpoint at step 2). 3 steps of batch 1 per rank end with the weights of 1 process with batch 2 within 1e-5
    (measured: 1.6e-6 at most), the same losses, and (DDP, DeepSpeed) the same weights on both ranks. About 20 s
    per launch on 2 shared cores; DeepSpeed's first CPU run on a machine also JIT-builds its shared-memory op."""
    root, settings, one = one_process
    config_file, runs, distributed_type, digests = BACKENDS[backend]
    out = root / backend
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--config_file"]
    launch += [str(ROOT / "configs" / "accelerate" / config_file)]
    for overrides in runs:
        config = root / f"{backend}.yaml"
        config.write_text(json.dumps({**settings, "output_dir": str(out), "batch_size": 1, **overrides}))
        done = subprocess.run(
            [*launch, "--main_process_port", str(free_port()), "-m", "dynamictrl", "-q", "train", str(config)],
            cwd=root,
            env={**os.environ, **ENV},
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr[-3000:]
    two = json.loads((out / "train_result.json").read_text())
    assert two["processes"] == 2 and two["global_step"] == 3 and two["distributed_type"] == distributed_type
    assert len(two["weights_digest"]) == digests and len(set(two["weights_digest"])) == 1
    if backend == "fsdp":  # accelerate's sharded (DCP) model and optimizer: what the second launch resumed from
        assert (out / "checkpoint-2" / "pytorch_model_fsdp_0").is_dir() and (
            out / "checkpoint-2" / "optimizer_0"
        ).is_dir()
    if backend == "deepspeed":
        assert (out / "checkpoint-2" / "pytorch_model").is_dir()

    a, b = _weights(out / "transformer"), _weights(one.output)
    assert a.keys() == b.keys()
    worst = max(float((a[k] - b[k]).abs().max()) for k in a)
    assert worst <= 1e-5, worst
    two_losses = [json.loads(line)["loss"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert len(two_losses) == 3
    for x, y in zip(two_losses, one.losses, strict=True):
        assert abs(x - y) <= 1e-5 * max(1.0, abs(y)), (two_losses, one.losses)
