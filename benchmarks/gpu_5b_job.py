"""Whole jobs at the released size on one GPU: the peak memory of `--memory` presets against the memory model.

`benchmarks/gpu_5b.py` times the transformer alone; this runs the whole pipeline as `dynamictrl animate` does, with
every component at the released size and random weights in bf16: T5-XXL encoder (4.8 B), the 5B DynamiCtrl
transformer, the CogVideoX VAE (`models/configs.py: RELEASED_*_CONFIG`), at the published job (37 frames of
1360x768, guidance 3; `--steps` denoising steps, 2 by default: the denoising peak does not grow with the step count).
The tokenizer is a SentencePiece model trained here (`dynamictrl.testing.build_tiny_tokenizer`: the prompt's ids are
what differs from the real one, not its 226 padded tokens).

Per preset, the components are built on the GPU (fast random init), then set up exactly as animate sets them up
(`memory.plan_memory` on the memory model's estimates, `memory.apply_memory`, `acceleration.place` with
`memory.kept_on_cpu`, `acceleration.configure_vae` with the preset's tiling; T5 kept on the CPU where the preset
frees it, as a model loaded from disk would be), and the job runs through the same calls as `jobs.animate.generate`
(`memory.encode_prompts` where T5 visits, then the pipeline). Measured: `torch.cuda.max_memory_allocated()` over the
job (after `reset_peak_memory_stats`), against `memory.estimate_peak` for the same job and preset; wall time of the
job. JSON rewritten atomically after every preset; `--budget-s` starts no preset after it, a watchdog writes the JSON
and exits at `--hard-limit-s`.

Run on a GPU machine with diffusers carried as a wheel (as gpu_5b.py's docstring says), from the repository root:

    HF_HUB_OFFLINE=1 PYTHONPATH=/tmp/site python3 benchmarks/gpu_5b_job.py --out $OUT/gpu_5b_job.json

Smoke test on a CPU (tiny components, float32, 64x64x13; GPU-only parts of the presets skip with their line):
`python benchmarks/gpu_5b_job.py --tiny --out /tmp/gpu_5b_job_tiny.json`.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import os
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from gpu_5b import GIB, GUIDANCE, _default_dtype, _elapsed, _machine, result_header, write_result  # noqa: E402

PRESETS = ("none", "12gb", "80gb", "24gb", "16gb", "40gb")  # the most telling first: the budget may cut the tail
JOB_5B = dict(height=768, width=1360, frames=37)
JOB_TINY = dict(height=64, width=64, frames=13)


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "gpu_5b_job.json", help="JSON path")
    p.add_argument("--tiny", action="store_true", help="tiny components on the CPU in float32 (smoke test)")
    p.add_argument("--presets", default=",".join(PRESETS), help="comma list, run in this order")
    p.add_argument("--steps", type=int, default=2, help="denoising steps per job")
    p.add_argument("--budget-s", type=float, default=150.0, help="start no preset after this many seconds")
    p.add_argument("--hard-limit-s", type=float, default=210.0, help="watchdog: write the JSON and exit")
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


class Job:
    """The components' configs, the job's inputs and the JSON being written."""

    def __init__(self, args: argparse.Namespace, tokenizer_dir: Path) -> None:
        import numpy as np
        import torch

        from dynamictrl.models import configs
        from dynamictrl.testing import TINY_TRANSFORMER_CONFIG, TINY_VAE_CONFIG, build_tiny_tokenizer

        self.args = args
        self.torch = torch
        self.device = torch.device("cpu" if args.tiny else "cuda")
        self.cuda = self.device.type == "cuda"
        self.dtype = torch.float32 if args.tiny else torch.bfloat16
        self.job = JOB_TINY if args.tiny else JOB_5B
        self.tokenizer = build_tiny_tokenizer(tokenizer_dir)
        self.transformer_config = TINY_TRANSFORMER_CONFIG if args.tiny else configs.RELEASED_TRANSFORMER_CONFIG
        self.vae_config = TINY_VAE_CONFIG if args.tiny else configs.RELEASED_VAE_CONFIG
        text = dict(configs.RELEASED_TEXT_ENCODER_CONFIG)
        if args.tiny:
            text.update(d_model=TINY_TRANSFORMER_CONFIG["text_embed_dim"], d_kv=8, d_ff=37, num_layers=2, num_heads=4)
        self.text_config = text
        rng = np.random.default_rng(args.seed)
        h, w, f = self.job["height"], self.job["width"], self.job["frames"]
        self.reference = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        self.pose = rng.integers(0, 256, (f, h, w, 3), dtype=np.uint8)
        self.lock = threading.Lock()
        self.result: dict[str, Any] = {
            **result_header(
                "whole jobs at the released size: peak memory per --memory preset vs the memory model", args
            ),
            "job": {**self.job, "guidance": GUIDANCE, "steps": args.steps, "dtype": str(self.dtype)},
            "presets": {},
            "notes": [
                "random weights; peak = torch.cuda.max_memory_allocated over the job (everything on the GPU); "
                "predicted = memory.estimate_peak (weights resident + the largest stage)"
            ],
        }

    def write(self, lock_timeout_s: float = -1) -> None:
        write_result(self.args.out, self.result, self.lock, lock_timeout_s)

    def build(self):
        """A `DynamiCtrlPipeline` with random components built on the device (T5 included)."""
        from diffusers import AutoencoderKLCogVideoX, CogVideoXDPMScheduler
        from transformers import T5Config, T5EncoderModel

        from dynamictrl.models.transformer_dynamictrl import DynamiCtrlTransformer
        from dynamictrl.pipelines.folder import SCHEDULER_CONFIG
        from dynamictrl.pipelines.pipeline_dynamictrl import DynamiCtrlPipeline

        torch = self.torch
        torch.manual_seed(self.args.seed)
        with torch.device(self.device), _default_dtype(self.dtype):
            transformer = DynamiCtrlTransformer(**self.transformer_config).eval().requires_grad_(False)
            vae = AutoencoderKLCogVideoX(**self.vae_config).eval().requires_grad_(False)
            text_encoder = T5EncoderModel(T5Config(**self.text_config)).eval().requires_grad_(False)
        scheduler = CogVideoXDPMScheduler(**SCHEDULER_CONFIG)
        return DynamiCtrlPipeline(self.tokenizer, text_encoder, vae, transformer, scheduler)

    def run_preset(self, name: str) -> dict[str, Any]:
        """Set `name` up as animate does and run the job once; peak and prediction."""
        import numpy as np

        from dynamictrl.pipelines import acceleration, memory

        torch = self.torch
        pipe = self.build()
        sizes = memory.ModelSizes.from_modules(pipe.transformer, pipe.vae, pipe.text_encoder)
        job = dict(**self.job, dtype_bytes=2 if self.dtype == torch.bfloat16 else 4, device_type=self.device.type)
        estimates = memory.estimates_for(sizes, **job)
        plan = memory.plan_memory(name, estimates, self.device)
        if plan.free_text_encoder:  # loaded from disk it would be on the CPU
            pipe.text_encoder.to("cpu")
        start = time.perf_counter()
        memory.apply_memory(pipe, plan, self.device, self.dtype)
        acceleration.place(pipe, self.device, "none", keep_on_cpu=memory.kept_on_cpu(plan))
        tiling = True if plan.vae_tiling is None else plan.vae_tiling  # animate's default: tiled
        acceleration.configure_vae(pipe, tiling, True)
        pipe.set_progress_bar_config(disable=True)
        setup_s = time.perf_counter() - start
        self.sync()
        gc.collect()
        if self.cuda:
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
        allocated_at_start = torch.cuda.memory_allocated() if self.cuda else None
        start = time.perf_counter()
        prompt = "a person with dark hair wearing a red shirt, dancing, on a plain blue background"
        text: dict[str, Any] = {"prompt": prompt}
        if plan.free_text_encoder:  # jobs.animate.generate's path
            embeds, negative = memory.encode_prompts(pipe, self.device, prompt, None, GUIDANCE)
            text = {"prompt_embeds": embeds, "negative_prompt_embeds": negative}
        with torch.no_grad():
            frames = pipe(
                image=self.reference,
                control_video=self.pose,
                height=self.job["height"],
                width=self.job["width"],
                num_frames=self.job["frames"],
                num_inference_steps=self.args.steps,
                guidance_scale=GUIDANCE,
                generator=torch.Generator().manual_seed(self.args.seed),
                output_type="np",
                image_latent_scale=pipe.image_latent_scale(None),
                **text,
            ).frames
        self.sync()
        job_s = time.perf_counter() - start
        estimate = estimates[plan.preset]
        out: dict[str, Any] = {
            "plan": plan.to_json() | {"estimate": None},
            "predicted": estimate.to_json(),
            "setup_s": setup_s,
            "job_s": job_s,
            "frames_shape": list(frames.shape),
            "output_finite": bool(np.isfinite(frames).all()),
        }
        if self.cuda:
            peak = torch.cuda.max_memory_allocated()
            out.update(
                allocated_at_start_gib=allocated_at_start / GIB,
                peak_gib=peak / GIB,
                peak_reserved_gib=torch.cuda.max_memory_reserved() / GIB,
                predicted_vs_measured=estimate.peak / peak - 1.0,
            )
        del pipe, frames
        return out

    def sync(self) -> None:
        if self.cuda:
            self.torch.cuda.synchronize()

    def free(self) -> None:
        gc.collect()
        if self.cuda:
            self.torch.cuda.synchronize()
            self.torch.cuda.empty_cache()


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    import torch

    if not args.tiny and not torch.cuda.is_available():
        print("no CUDA device: run with --tiny for the CPU smoke test", file=sys.stderr)
        return 2
    if args.tiny:
        torch.set_num_threads(min(2, torch.get_num_threads()))
    wanted = [p.strip() for p in args.presets.split(",") if p.strip()]
    from dynamictrl.pipelines.memory import MEMORY_PRESETS

    unknown = [p for p in wanted if p not in MEMORY_PRESETS]
    if unknown:
        print(f"unknown presets {unknown}; choose from {list(MEMORY_PRESETS)}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        job = Job(args, Path(tmp) / "tokenizer")
        job.result["machine"] = _machine(job)  # reads .cuda only

        def abort() -> None:
            with contextlib.suppress(Exception):
                job.result["status"] = f"aborted by watchdog at {args.hard_limit_s:.0f} s"
                job.write(lock_timeout_s=5)
            os._exit(3)

        watchdog = threading.Timer(max(1.0, args.hard_limit_s - _elapsed()), abort)
        watchdog.daemon = True
        watchdog.start()
        job.write()
        for name in wanted:
            record: dict[str, Any]
            if _elapsed() > args.budget_s:
                record = {"status": "skipped", "reason": f"time budget of {args.budget_s:.0f} s spent"}
            else:
                start = time.perf_counter()
                try:
                    record = job.run_preset(name) | {"status": "ok"}
                except Exception as exc:  # a failing preset is a result; the others still run
                    record = {"status": "error", "error": f"{type(exc).__name__}: {exc}"[:2000]}
                    record["traceback"] = traceback.format_exc().splitlines()[-12:]
                record["wall_s"] = round(time.perf_counter() - start, 2)
                job.free()
            with job.lock:
                job.result["presets"][name] = record
            job.write()
            line = f"[{_elapsed():6.1f} s] --memory {name}: {record['status']}"
            if record.get("peak_gib") is not None:
                predicted, off = record["predicted"]["predicted_peak_gib"], record["predicted_vs_measured"]
                line += f", peak {record['peak_gib']:.2f} GiB (predicted {predicted:.2f}, {off:+.1%})"
            if record.get("job_s") is not None:
                line += f", job {record['job_s']:.1f} s"
            if record["status"] != "ok":
                line += f" ({record.get('reason') or record.get('error')})"[:300]
            print(line, flush=True)
        watchdog.cancel()
        job.result["status"] = "complete"
        job.write()
    print(f"wrote {args.out} in {_elapsed():.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
