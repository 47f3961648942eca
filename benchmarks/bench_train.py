"""Training speed and memory: full vs LoRA, with/without gradient checkpointing, on-the-fly encoding vs cached latents.

A "small" CPU configuration: the transformer of benchmarks/bench_pipeline.py (hidden 256 = 4 heads x 64, 4 layers,
32 text tokens) with the tiny VAE and T5 of `dynamictrl.testing`, on toy clips of 13 frames at 128x128 (4 latent
frames of 16x16 → 128 video tokens), batch 2, `image_noise: false` everywhere (so the cached variant encodes
nothing at all once warm; the others encode clip, pose and reference every step).

Each variant is `dynamictrl.training.run` in its own process (spawned), so its peak memory is that process's peak
RSS (`resource.getrusage(RUSAGE_SELF).ru_maxrss`: model, optimizer, activations and the import overhead, which is
the same for all). Steps/s is over the last `--steps` − `--warmup` steps, from the per-step times of a callback
on the metrics log. The cached variant runs twice on one cache; the second (warm) run is measured. Ratios are
against the baseline (full, no checkpointing, on the fly), measured in the same run.

Run: `python benchmarks/bench_train.py [--steps 6 --warmup 1]` (about 4 minutes on 2 shared cores)
→ benchmarks/results/train.json.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results" / "train.json"
FRAMES, HEIGHT, WIDTH, BATCH, TEXT_LEN = 13, 128, 128, 2, 32
SMALL = dict(
    num_attention_heads=4,
    attention_head_dim=64,
    time_embed_dim=128,
    ofs_embed_dim=128,
    num_layers=4,
    max_text_seq_length=TEXT_LEN,
)
VARIANTS = {
    "full": {},
    "full_checkpointing": {"gradient_checkpointing": True},
    "full_cached": {"cached": True},
    "lora": {"mode": "lora"},
    "lora_checkpointing": {"mode": "lora", "gradient_checkpointing": True},
    "lora_checkpointing_cached": {"mode": "lora", "gradient_checkpointing": True, "cached": True},
}


def _setup(root: Path) -> tuple[Path, Path]:
    import shutil

    from dynamictrl.testing import TINY_TEXT_DIM, _save_transformer, build_tiny_transformer, write_tiny_model_folders
    from dynamictrl.training.toy_data import write_toy_dataset

    model = write_tiny_model_folders(root / "models").dynamictrl
    shutil.rmtree(model / "transformer")
    _save_transformer(build_tiny_transformer(0, text_embed_dim=TINY_TEXT_DIM, **SMALL), model / "transformer")
    data = write_toy_dataset(root / "data", clips=4, frames=FRAMES, height=HEIGHT, width=WIDTH).parent
    return model, data


def _measure(variant: str, model: str, data: str, work: str, steps: int, warmup: int, queue) -> None:
    import torch
    from safetensors.torch import load_file

    torch.set_num_threads(2)
    from dynamictrl.training import load_config, run
    from dynamictrl.training import trainer as trainer_module

    knobs = dict(VARIANTS[variant])
    cached = knobs.pop("cached", False)
    settings = dict(
        model=model,
        data_root=data,
        frames=FRAMES,
        height=HEIGHT,
        width=WIDTH,
        batch_size=BATCH,
        learning_rate=1e-4,
        lr_warmup_steps=0,
        lr_scheduler="constant",
        checkpoint_every=0,
        image_noise=False,
        image_dropout=0.0,
        lora_rank=16,
        lora_alpha=16,
        quiet=True,
        **knobs,
    )
    if cached:
        settings["cache_dir"] = str(Path(work) / "cache")
        run(load_config(None, {**settings, "output_dir": str(Path(work) / "warm-up"), "max_steps": 1}))
    times: list[float] = []
    log = trainer_module.MetricsLog.log

    def timed(self, step, values):  # called once per optimizer step, right after it
        times.append(time.perf_counter())
        return log(self, step, values)

    trainer_module.MetricsLog.log = timed
    result = run(load_config(None, {**settings, "output_dir": str(Path(work) / "run"), "max_steps": steps}))
    measured = times[warmup:]
    queue.put(
        {
            "steps_per_s": (len(measured) - 1) / (measured[-1] - measured[0]),
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
            "last_loss": result.losses[-1],
            "saved_params": sum(t.numel() for t in load_file(next(result.output.glob("*.safetensors"))).values()),
        }
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TQDM_DISABLE", "1")
    ctx = mp.get_context("spawn")
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        model, data = _setup(Path(tmp))
        for variant in VARIANTS:
            work = Path(tmp) / variant
            work.mkdir()
            queue = ctx.Queue()
            started = time.perf_counter()
            proc = ctx.Process(
                target=_measure, args=(variant, str(model), str(data), str(work), args.steps, args.warmup, queue)
            )
            proc.start()
            results[variant] = queue.get(timeout=600)
            proc.join()
            results[variant]["wall_s"] = round(time.perf_counter() - started, 1)
            print(variant, results[variant], flush=True)
    base = results["full"]
    for r in results.values():
        r["speed_vs_full"] = r["steps_per_s"] / base["steps_per_s"]
        r["peak_rss_vs_full"] = r["peak_rss_mb"] / base["peak_rss_mb"]
    report = {
        "what": "training steps/s and peak RSS per variant (own process each); baseline: full, no checkpointing, "
        "on-the-fly encoding",
        "memory": "resource.getrusage(RUSAGE_SELF).ru_maxrss of the variant's process (includes ~imports)",
        "config": {"frames": FRAMES, "height": HEIGHT, "width": WIDTH, "batch_size": BATCH, **SMALL},
        "steps": args.steps,
        "warmup": args.warmup,
        "threads": 2,
        "machine": {"python": sys.version.split()[0], "platform": platform.platform(), "cpus": os.cpu_count()},
        "variants": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
