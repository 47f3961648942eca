"""`python -m dynamictrl train` on a tiny model and generated clips: trains, checkpoints, fails cleanly.

Resume and the other errors are covered in-process by tests/unit/training (each CLI process costs ~10 s here).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Until `train` is in dynamictrl.cli.COMMANDS this adds it; afterwards it is plain `python -m dynamictrl`.
LAUNCH = (
    "import sys, dynamictrl.cli as c\n"
    "'train' in c.COMMANDS or c.COMMANDS.append('train')\n"
    "sys.exit(c.main(sys.argv[1:]))"
)


def _cli(*args, cwd: Path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "TQDM_DISABLE": "1"}
    return subprocess.run(
        [sys.executable, "-c", LAUNCH, *map(str, args)], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
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
