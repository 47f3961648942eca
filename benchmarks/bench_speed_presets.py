"""The `--speed` presets (exact, fast, fastest) on the same inputs, in one process, against `exact` as the baseline.

Per preset: transformer block evaluations (`acceleration.BlockCounter`: batch rows through each block that really
ran, so a step without the unconditional branch counts half), wall time of the generations, peak memory, and the
deviation of the output frames from `exact`: mean absolute difference in [0, 1] pixel units and PSNR (dB), over all
frames of all samples. Inputs: held-out samples of the synthetic world (`synthetic.world.make_sample`, seed 1000,
never trained on): the reference is frame 0 of the ground truth, the pose its pose frames, the prompt its caption.
The presets run in rounds (exact, fast, fastest per sample), so machine noise is spread over all of them.
With `--compile`, `exact+compile` runs last: the transformer blocks compiled (`acceleration.compile_blocks`,
`animate --compile`), one untimed generation first (its extra time over an eager one is `compile_s`), then every
sample again; its deviation is against the eager `exact`.

Peak memory: on CUDA `torch.cuda.max_memory_allocated` (reset per preset); on the CPU the peak resident set size
(RSS: the kernel's high-water mark, reset for the run, benchmarks/peak_rss.py) above the RSS before the preset's
first run, since torch's CPU allocations are invisible to tracemalloc.

Default model: the tiny *random* test model (`dynamictrl.testing.ensure_tiny_model`); its block counts and ratios
are the real ones, its deviations mean nothing (random weights). Re-run with the trained small model:
`python benchmarks/bench_speed_presets.py --model dynamictrl/assets/small_model`.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from peak_rss import PeakRSS  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "speed_presets.json"
HELD_OUT_SEED = 1000  # the world seed of the held-out set (benchmarks/small_model_quality.py)


def _samples(count: int, frames: int, height: int, width: int) -> list[Any]:
    from dynamictrl.synthetic.world import make_sample

    return [make_sample(HELD_OUT_SEED, i, frames=frames, height=height, width=width) for i in range(count)]


def main() -> int:
    from dynamictrl.defaults import PUBLISHED

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="pipeline folder (default: the tiny random test model)")
    parser.add_argument("--samples", type=int, default=3, help="held-out synthetic samples (default 3)")
    parser.add_argument("--frames", type=int, default=9, help="frames, 4k+1 (default 9)")
    parser.add_argument("--height", type=int, default=64, help="height, multiple of 16 (default 64)")
    parser.add_argument("--width", type=int, default=64, help="width, multiple of 16 (default 64)")
    parser.add_argument("--steps", type=int, default=PUBLISHED.steps, help=f"steps (default {PUBLISHED.steps})")
    parser.add_argument("--guidance", type=float, default=PUBLISHED.guidance, help="guidance scale (default 3.0)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda (default auto)")
    parser.add_argument("--dtype", default="auto", help="auto: bfloat16 on GPU, float32 on CPU")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    parser.add_argument("--out", type=Path, default=RESULTS, help=f"JSON to write (default {RESULTS})")
    parser.add_argument("--compile", action="store_true", help="also exact with the blocks compiled (inductor)")
    args = parser.parse_args()

    import numpy as np
    import torch

    from dynamictrl.io.atomic import write_json_atomic
    from dynamictrl.io.cache import cache_root
    from dynamictrl.io.devices import resolve_device, resolve_dtype
    from dynamictrl.pipelines import acceleration
    from dynamictrl.pipelines.loading import load_pipeline
    from dynamictrl.testing import ensure_tiny_model

    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    dtype = resolve_dtype(args.dtype, device)
    tiny = args.model is None
    model = str(ensure_tiny_model(cache_root())) if tiny else args.model
    pipe = load_pipeline(model, torch_dtype=dtype)[0]
    acceleration.place(pipe, device)
    pipe.set_progress_bar_config(disable=True)
    samples = _samples(args.samples, args.frames, args.height, args.width)

    def run(sample: Any, seed: int, schedule: Any) -> np.ndarray:
        return pipe(
            sample.frames[0],
            sample.pose,
            prompt=sample.caption,
            height=args.height,
            width=args.width,
            num_frames=args.frames,
            num_inference_steps=args.steps,
            guidance_scale=args.guidance,
            generator=torch.Generator().manual_seed(seed),
            output_type="np",
            guidance_schedule=schedule,
        ).frames[0]

    names = acceleration.SPEED_NAMES
    outputs: dict[str, list[np.ndarray]] = {n: [] for n in names}
    blocks = dict.fromkeys(names, 0)
    seconds = dict.fromkeys(names, 0.0)
    peak: dict[str, float] = dict.fromkeys(names, 0.0)
    resolved = {n: acceleration.resolve_speed(n, args.steps) for n in names}
    for i, sample in enumerate(samples):
        for name in names:
            schedule = acceleration.apply_speed(pipe, resolved[name], args.guidance)
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            with acceleration.BlockCounter(pipe.transformer) as counter, PeakRSS() as rss:
                start = time.perf_counter()
                outputs[name].append(run(sample, i, schedule))
                seconds[name] += time.perf_counter() - start
            pipe.transformer.disable_cache() if resolved[name].cache != "none" else None
            blocks[name] += counter.total
            used = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else rss.peak
            peak[name] = max(peak[name], used / 2**20)

    compile_s = None
    if args.compile:
        name = "exact+compile"
        outputs[name], blocks[name], seconds[name], peak[name] = [], 0, 0.0, 0.0
        resolved[name] = resolved["exact"]
        acceleration.compile_blocks(pipe)
        start = time.perf_counter()
        run(samples[0], 0, None)  # the compile, paid once
        compile_s = time.perf_counter() - start - seconds["exact"] / len(samples)
        # Counted at the transformer's input, outside the compiled blocks (a counting hook in every block would make
        # each block's graph its own): with no step cache every block runs on every row of every call.
        rows: list[int] = []
        handle = pipe.transformer.register_forward_pre_hook(
            lambda _m, args, kwargs: rows.append(kwargs["hidden_states"].shape[0]), with_kwargs=True
        )
        for i, sample in enumerate(samples):
            with PeakRSS() as rss:
                start = time.perf_counter()
                outputs[name].append(run(sample, i, None))
                seconds[name] += time.perf_counter() - start
            used = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else rss.peak
            peak[name] = max(peak[name], used / 2**20)
        handle.remove()
        blocks[name] = sum(rows) * len(pipe.transformer.transformer_blocks)
        names = (*names, name)

    exact = np.stack(outputs["exact"]).astype(np.float64)
    presets: dict[str, Any] = {}
    for name in names:
        diff = np.stack(outputs[name]).astype(np.float64) - exact
        mse = float((diff**2).mean())
        presets[name] = {
            "resolved": resolved[name].to_json(),
            "description": acceleration.SPEED_PRESETS[name].description
            if name in acceleration.SPEED_PRESETS
            else "exact, the transformer blocks compiled (animate --compile; inductor)",
            "block_evaluations": blocks[name],
            "block_evaluation_ratio_to_exact": blocks["exact"] / blocks[name],
            "wall_s": round(seconds[name], 4),
            "wall_ratio_to_exact": seconds["exact"] / seconds[name],
            "peak_memory_mb": round(peak[name], 2),
            "mean_abs_deviation": float(np.abs(diff).mean()),
            "psnr_db": None if mse == 0 else 10 * np.log10(1.0 / mse),  # None: identical
        }
    result = {
        "benchmark": "--speed presets against exact, same inputs, one process",
        "model": "tiny random test model (dynamictrl.testing.ensure_tiny_model)" if tiny else model,
        "note": (
            "random weights: block counts and ratios are the presets' real ones, deviations and PSNR are meaningless; "
            "re-run with --model dynamictrl/assets/small_model"
            if tiny
            else None
        ),
        "config": {
            "samples": args.samples,
            "held_out_seed": HELD_OUT_SEED,
            "frames": args.frames,
            "height": args.height,
            "width": args.width,
            "steps": args.steps,
            "guidance": args.guidance,
            "device": str(device),
            "dtype": str(dtype).replace("torch.", ""),
            "threads": args.threads,
            "peak_memory": "torch.cuda.max_memory_allocated"
            if device.type == "cuda"
            else (
                "peak RSS above the RSS before each run (the kernel's reset high-water mark; max over samples); "
                "exact runs first in each round, so its first run also holds one-time allocations"
            ),
            "deviation": "over all frames of all samples, pixels in [0, 1], against exact",
        },
        "machine": {"cpu": platform.machine(), "python": platform.python_version()},
        "presets": presets,
        "compile_s": None if compile_s is None else round(compile_s, 2),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(args.out, result)
    print(json.dumps({n: {k: p[k] for k in list(p)[2:]} for n, p in presets.items()}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
