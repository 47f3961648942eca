"""Per-step time and peak GPU memory of the 5B transformer: stock CogVideoX-1.5 I2V vs DynamiCtrl (issue 11).

The 5B architecture (CogVideoX-1.5-5B-I2V config, reference-spec §1) with random weights in bf16 on one GPU, at
the published job size: 37 frames of 1360x768 → latent 10 x 16 x 170 x 96 → 20,400 video tokens + 226 text tokens,
classifier-free guidance batched (batch 2), SDPA attention. Each variant runs the same denoising step the pipeline
runs (`DynamiCtrlPipeline.denoise_step`: one transformer call at batch 2, guidance, DPM scheduler step; for stock
the same step without the pose). DynamiCtrl gets the pose once (batch 1 control chain), as our pipeline passes it.

Variants, all against `stock` measured in the same run (weights shared: stock is loaded from DynamiCtrl's state
dict minus the PadaLN, `assign=True`, so no copy):

- `stock`: `CogVideoXTransformer3DModel` (its processor calls SDPA directly).
- `dynamictrl`: `DynamiCtrlTransformer`, same weights + PadaLN, attention through `dispatch_attention_fn`.
- `dynamictrl+first_block_cache`, `+pab`, `+faster_cache`: the diffusers caches exactly as
  `dynamictrl.pipelines.acceleration.cache_config` sets them, over a short loop of real DPM timesteps
  (`--cache-steps`, spread over 999→0 like a full run). Reported: effective time per step, and the fraction of
  attention and feed-forward evaluations that ran (batch-weighted: FasterCache's skipped unconditional half counts
  half), counted by hooks on each block's `attn1.to_q` and `ff`.
- `dynamictrl+speed_fast`, `+speed_fastest`: the `--speed` presets as `dynamictrl animate` sets them up
  (`acceleration.resolve_speed` + `apply_speed`: TaylorSeer lite and the guidance schedule) over a whole loop of
  `--preset-steps` (25, the default of `--steps`); block evaluations counted (`acceleration.BlockCounter`), time
  against `dynamictrl`'s per-step time x steps. `+speed_fast+compile` adds `compile_blocks(fullgraph=False)` as
  animate.py does under a cache (one untimed loop compiles, then the timed loop, against `dynamictrl+compile`).
- `dynamictrl+fp8_layerwise_casting`: `enable_layerwise_casting(float8_e4m3fn storage, bf16 compute)` (`--memory
  24gb`'s transformer). `dynamictrl+memory_12gb`: `memory.apply_memory` with `--memory 12gb`'s transformer parts
  (float8 storage, then block-level group offload with streams).
- `dynamictrl+group_offload`: `enable_group_offload(block_level, num_blocks_per_group=1, use_stream=True)`, CPU
  offload: what `--memory 16gb` uses (each block advances the PadaLN chain inside its own forward, so the block's
  hook onloads `control_norm1` too). If it fails all the same, `+group_offload_leaf` (leaf_level, use_stream=True),
  then `+group_offload_leaf_sync` (no stream) are tried, and at the very end `stock+group_offload` (block_level,
  streams) shows what block-level offload costs the stock model.
- `dynamictrl+compile`, `stock+compile`: regional `torch.compile` of each transformer block
  (`compile_repeated_blocks(fullgraph=True)` where the model has `_repeated_blocks`, else `block.compile()` on each
  block); time per step after warm-up, compile time (first step minus an eager step) apart. Last, each started
  only when `--compile-reserve-s` (the second: 1.1x the first's wall time) of the `--budget-s` remain. Two graphs
  per model are expected: block 0 receives a strided slice of the token tensor, the others a contiguous tensor.

Memory: `torch.cuda.reset_peak_memory_stats()` after setup, `max_memory_allocated()` over warm-up and timed steps.
`peak_gib` = that model's weights resident on the GPU at the start + (peak − allocated at the start), so the shared
weights do not inflate stock and offloaded weights count only while on the GPU. Time: median of `--steps` timed
steps after `--warmup`, each bracketed by `torch.cuda.synchronize()`. FLOPs per step: `FlopCounterMode` on the
meta device (matmuls only, which is performance.md's model), giving achieved TFLOP/s.

Robustness for a lent GPU with a hard time limit: the JSON is rewritten (atomically) after every variant; a variant
that raises records its error and the script goes on; after `--budget-s` the remaining variants are recorded as
skipped; a watchdog writes the JSON and exits at `--hard-limit-s` whatever is running.

Needs only torch, diffusers and this repository's `dynamictrl` (imported from the source tree). The GPU machine's
image has torch but no diffusers, so carry the pure-Python wheel: once, here, `echo /.whl/ >> .git/info/exclude`
and `pip download --no-deps --only-binary=:all: -d .whl diffusers==0.42.1`; then run, with `.whl` carried, from the
repository root (about 5 minutes; `--budget-s 420 --hard-limit-s 560` leaves room for the second compile):

    python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/diffusers-*.whl &&
      HF_HUB_OFFLINE=1 PYTHONPATH=/tmp/site PYTHONUNBUFFERED=1 python3 benchmarks/gpu_5b.py --out $OUT/gpu_5b.json

Smoke test on a CPU (tiny config, float32, GPU-only variants skipped with the reason):
`python benchmarks/gpu_5b.py --tiny --out /tmp/gpu_5b_tiny.json`.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import os
import platform
import statistics
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

T0 = time.perf_counter()
REPO = Path(__file__).resolve().parents[1]

sys.path.insert(0, str(REPO))
from dynamictrl.models.configs import RELEASED_TRANSFORMER_CONFIG  # noqa: E402

# CogVideoX1.5-5B-I2V transformer/config.json (reference-spec §1; performance.md §1.1).
CONFIG_5B: dict[str, Any] = RELEASED_TRANSFORMER_CONFIG
# Tiny: the same code in seconds on a CPU. 3 layers so First-Block Cache has a head and a tail of two;
# 13 frames → 4 latent frames (even: no temporal padding), 64x64 px → 8x8 latent → 32 video tokens + 16 text.
CONFIG_TINY: dict[str, Any] = dict(
    CONFIG_5B,
    num_attention_heads=2,
    attention_head_dim=32,
    time_embed_dim=64,
    ofs_embed_dim=64,
    text_embed_dim=64,
    num_layers=3,
    sample_height=64,
    sample_width=64,
    max_text_seq_length=16,
)
GUIDANCE = 3.0  # the published CFG scale


@dataclass(frozen=True)
class Shapes:
    frames: int
    height: int
    width: int
    text_len: int

    @property
    def latent(self) -> tuple[int, int, int, int, int]:
        """Noisy latent `[B=1, F, 16, h, w]` (37 frames → 10 latent frames, even: no padding)."""
        return (1, (self.frames - 1) // 4 + 1, 16, self.height // 8, self.width // 8)

    def tokens(self, patch: int, patch_t: int) -> dict[str, int]:
        _, f, _, h, w = self.latent
        video = ((f + patch_t - 1) // patch_t) * (h // patch) * (w // patch)
        return {
            "video_tokens": video,
            "text_tokens": self.text_len,
            "attention_sequence": video + self.text_len,
            "control_tokens": video,
            "cfg_batch": 2,
            "pose_batch": 1,
        }


SHAPES_5B = Shapes(frames=37, height=1360, width=768, text_len=226)
SHAPES_TINY = Shapes(frames=13, height=64, width=64, text_len=16)

GIB = 1024**3


class Skip(Exception):
    """A variant that cannot run here (e.g. needs CUDA); recorded as skipped with the reason."""


# ------------------------------------------------------------------------------------------------- helpers
def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "gpu_5b.json", help="JSON path")
    p.add_argument("--tiny", action="store_true", help="tiny config on the CPU in float32 (smoke test)")
    p.add_argument("--budget-s", type=float, default=330.0, help="start no variant after this many seconds")
    p.add_argument("--hard-limit-s", type=float, default=540.0, help="watchdog: write the JSON and exit")
    p.add_argument("--compile-reserve-s", type=float, default=120.0, help="seconds left needed to start a compile")
    p.add_argument("--warmup", type=int, default=1, help="untimed steps per variant (compile variants: +1)")
    p.add_argument("--steps", type=int, default=3, help="timed steps per variant (median reported)")
    p.add_argument("--cache-steps", type=int, default=6, help="DPM steps in each cached loop")
    p.add_argument("--preset-steps", type=int, default=25, help="DPM steps of each --speed preset's loop")
    p.add_argument("--variants", default="all", help="comma list of variant names to run (stock always runs)")
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


def _elapsed() -> float:
    return time.perf_counter() - T0


@contextlib.contextmanager
def _default_dtype(dtype):
    import torch

    old = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(old)


def result_header(benchmark: str, args: argparse.Namespace) -> dict[str, Any]:
    """The first keys of a GPU benchmark's JSON (this file's and gpu_5b_job.py's)."""
    return {
        "benchmark": benchmark,
        "issue": 11,
        "status": "running",
        "tiny": args.tiny,
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
    }


def write_result(path: Path, result: dict[str, Any], lock: threading.Lock, lock_timeout_s: float = -1) -> None:
    """Rewrite the JSON (atomically) with the elapsed time. The watchdog passes a timeout: it writes even if the
    lock is stuck."""
    from dynamictrl.io.atomic import write_json_atomic

    locked = lock.acquire(timeout=lock_timeout_s)
    try:
        result["elapsed_s"] = round(_elapsed(), 2)
        write_json_atomic(path, result)
    finally:
        if locked:
            lock.release()


class Bench:
    """Holds the run's settings, the models of the current variant and the JSON being written."""

    def __init__(self, args: argparse.Namespace) -> None:
        import torch

        self.args = args
        self.torch = torch
        self.tiny = args.tiny
        self.device = torch.device("cpu" if args.tiny else "cuda")
        self.dtype = torch.float32 if args.tiny else torch.bfloat16
        self.config = CONFIG_TINY if args.tiny else CONFIG_5B
        self.shapes = SHAPES_TINY if args.tiny else SHAPES_5B
        self.cuda = self.device.type == "cuda"
        self.ours = None
        self.stock = None
        self.inputs = None
        self.flops: dict[str, float] = {}
        self.current: str | None = None
        self._pair_dirty = False
        self.lock = threading.Lock()
        self.result: dict[str, Any] = {
            **result_header(
                "5B transformer per denoising step: stock CogVideoX-1.5 I2V vs DynamiCtrl, presets' parts", args
            ),
            "machine": {},
            "config": {
                "transformer": self.config,
                "dtype": str(self.dtype).replace("torch.", ""),
                "attention": "SDPA",
            },
            "shapes": {},
            "flops": {},
            "variants": {},
            "ratio_table": [],
            "notes": [],
        }

    # ------------------------------------------------------------------------------------------ output
    def write(self, lock_timeout_s: float = -1) -> None:
        """Rewrite the JSON (atomically), with the ratio table as it stands."""
        self.result["ratio_table"] = self.ratio_table()
        write_result(self.args.out, self.result, self.lock, lock_timeout_s)

    def ratio_table(self) -> list[dict[str, Any]]:
        v = self.result["variants"]
        base = v.get("stock", {})
        ours = v.get("dynamictrl", {})
        rows = []
        for name, r in v.items():
            if r.get("status") != "ok":
                rows.append({"variant": name, "status": r.get("status"), "why": r.get("reason") or r.get("error")})
                continue
            step = r.get("effective_per_step_s", r.get("per_step_s"))
            peak = r.get("peak_gib")
            rows.append(
                {
                    "variant": name,
                    "status": "ok",
                    "per_step_s": step,
                    "time_vs_stock": _ratio(step, base.get("per_step_s")),
                    "time_vs_dynamictrl": _ratio(step, ours.get("per_step_s")),
                    "peak_gib": peak,
                    "peak_vs_stock": _ratio(peak, base.get("peak_gib")),
                    "achieved_tflops": r.get("achieved_tflops"),
                    "compile_s": r.get("compile_s"),
                    "evaluated_flop_fraction": r.get("evaluated_flop_fraction"),
                    "fewer_block_evaluations": r.get("fewer_block_evaluations"),
                }
            )
        return rows

    def print_table(self) -> None:
        cols = ("s/step", "x stock", "x ours", "peak GiB", "x stock", "TFLOP/s")
        print(f"{'variant':38s} " + " ".join(f"{c:>8s}" for c in cols))
        for row in self.ratio_table():
            if row["status"] != "ok":
                print(f"{row['variant']:38s} {row['status']}: {str(row['why'])[:90]}")
                continue
            print(
                f"{row['variant']:38s} {_fmt(row['per_step_s'], 3):>8s} {_fmt(row['time_vs_stock'], 3):>8s} "
                f"{_fmt(row['time_vs_dynamictrl'], 3):>8s} {_fmt(row['peak_gib'], 2):>8s} "
                f"{_fmt(row['peak_vs_stock'], 3):>8s} {_fmt(row['achieved_tflops'], 1):>8s}"
            )

    # ------------------------------------------------------------------------------------------ device
    def sync(self) -> None:
        if self.cuda:
            self.torch.cuda.synchronize()

    def free(self) -> None:
        self.ours = self.stock = None
        gc.collect()
        if self.cuda:
            self.torch.cuda.synchronize()
            self.torch.cuda.empty_cache()

    def allocated(self) -> int | None:
        return self.torch.cuda.memory_allocated() if self.cuda else None

    def weights_on_device(self, model) -> int:
        """Bytes of `model`'s parameters and buffers that are on the benchmark device now."""
        total = 0
        for t in list(model.parameters()) + list(model.buffers()):
            if t.device.type == self.device.type and not t.is_meta:
                total += t.numel() * t.element_size()
        return total

    # ------------------------------------------------------------------------------------------ models
    def build_ours(self):
        """DynamiCtrl transformer with PyTorch's default (small, uniform ±1/√fan_in) init, built on the device."""
        from dynamictrl.models.transformer_dynamictrl import DynamiCtrlTransformer

        self.torch.manual_seed(self.args.seed)
        with self.torch.device(self.device), _default_dtype(self.dtype):
            model = DynamiCtrlTransformer(**self.config)
        return model.eval().requires_grad_(False)

    def stock_sharing(self, ours):
        """Stock CogVideoX transformer whose parameters are DynamiCtrl's own tensors (no copy, no PadaLN)."""
        from diffusers import CogVideoXTransformer3DModel

        with self.torch.device("meta"):
            stock = CogVideoXTransformer3DModel(**self.config)
        missing, unexpected = stock.load_state_dict(ours.state_dict(), strict=False, assign=True)
        bad = [k for k in unexpected if ".control_norm1." not in k]
        left_meta = [n for n, t in list(stock.named_parameters()) + list(stock.named_buffers()) if t.is_meta]
        if missing or bad or left_meta:
            raise RuntimeError(
                f"weight sharing failed: missing {missing[:3]}, unexpected {bad[:3]}, meta {left_meta[:3]}"
            )
        return stock.eval().requires_grad_(False)

    def ensure_pair(self) -> None:
        if self.ours is None or getattr(self, "_pair_dirty", False):
            self.free()
            self.ours = self.build_ours()
            self.stock = self.stock_sharing(self.ours)
            self._pair_dirty = False

    def pipeline(self, transformer):
        """A DynamiCtrlPipeline around `transformer` (no VAE or T5: latents and embeddings are given)."""
        from diffusers import CogVideoXDPMScheduler

        from dynamictrl.pipelines.pipeline_dynamictrl import DynamiCtrlPipeline
        from dynamictrl.testing import SCHEDULER_CONFIG

        return DynamiCtrlPipeline(None, None, None, transformer, CogVideoXDPMScheduler(**SCHEDULER_CONFIG))

    def make_inputs(self) -> dict[str, Any]:
        """What `DynamiCtrlPipeline.__call__` hands to `denoise_step`, at the benchmark shapes (random values)."""
        from dynamictrl.pipelines.pipeline_dynamictrl import OFS, DenoiseInputs

        torch = self.torch
        g = torch.Generator(self.device).manual_seed(self.args.seed)
        shape = self.shapes.latent
        rnd = lambda *s: torch.randn(*s, generator=g, device=self.device, dtype=self.dtype)  # noqa: E731
        latents = rnd(*shape)
        image_latents = torch.zeros(shape, device=self.device, dtype=self.dtype)
        image_latents[:, :1] = rnd(1, 1, *shape[2:])  # reference as latent frame 0, zero-padded (prepare_latents)
        control = rnd(*shape)
        prompt_embeds = rnd(2, self.shapes.text_len, self.config["text_embed_dim"])  # [negative; positive]
        probe = self.pipeline(self.ours if self.ours is not None else self.build_ours())
        rope = probe._prepare_rotary_positional_embeddings(
            self.shapes.height, self.shapes.width, shape[1], self.device
        )
        step_inputs = DenoiseInputs(
            prompt_embeds=prompt_embeds,
            image_latents=torch.cat([image_latents] * 2),
            control_latents=control,
            do_classifier_free_guidance=True,
            ofs=latents.new_full((1,), OFS),
            image_rotary_emb=rope,
            extra_step_kwargs={"eta": 0.0, "generator": g},
        )
        return {"latents": latents, "step_inputs": step_inputs}

    # ------------------------------------------------------------------------------------------ steps
    def denoise_loop(self, kind: str, model, n_steps: int, pipe=None, guided_steps: set[int] | None = None):
        """`n_steps` denoising steps over the DPM schedule of `n_steps`; returns (per-step seconds, final latents).

        `pipe` (default: a new one around `model`) is the pipeline whose `current_timestep` the caches read.
        `guided_steps`: the steps that run the unconditional branch (a `--speed` guidance schedule; None: all).
        """
        import dataclasses

        torch = self.torch
        pipe = self.pipeline(model) if pipe is None else pipe
        scheduler = pipe.scheduler
        scheduler.set_timesteps(n_steps, device=self.device)
        latents = self.inputs["latents"].clone()
        step_inputs = self.inputs["step_inputs"]
        if guided_steps is not None:  # the pipeline's own loop does this (keep_guidance_delta)
            step_inputs = dataclasses.replace(step_inputs, keep_guidance_delta=True, guidance_delta=None)
        old = None
        times = []
        for i, t in enumerate(scheduler.timesteps):
            prev = scheduler.timesteps[i - 1] if i > 0 else None
            pipe._current_timestep = t  # what PAB / FasterCache read through current_timestep_callback
            self.sync()
            start = time.perf_counter()
            with torch.no_grad():
                if kind == "stock":
                    latents, old = _stock_denoise_step(model, scheduler, latents, t, prev, step_inputs, old)
                else:
                    both = guided_steps is None or i in guided_steps
                    latents, old = pipe.denoise_step(latents, t, prev, step_inputs, GUIDANCE, old, unconditional=both)
            self.sync()
            times.append(time.perf_counter() - start)
        pipe._current_timestep = None
        return times, latents

    def timed(self, kind: str, model, warmup: int | None = None, steps: int | None = None) -> dict[str, Any]:
        """Warm-up + timed steps of `model`; time and memory as the docstring of this file says."""
        warmup = self.args.warmup if warmup is None else warmup
        steps = self.args.steps if steps is None else steps
        self.sync()
        gc.collect()
        weights = self.weights_on_device(model)
        start_alloc = self.allocated()
        if self.cuda:
            self.torch.cuda.reset_peak_memory_stats()
        times, latents = self.denoise_loop(kind, model, warmup + steps)
        out = {
            "per_step_s": statistics.median(times[warmup:]),
            "step_times_s": [round(x, 4) for x in times],
            "warmup_steps": warmup,
            "timed_steps": steps,
            "output_finite": bool(self.torch.isfinite(latents).all()),
        }
        out.update(self.memory(weights, start_alloc))
        return out

    def memory(self, weights: int, start_alloc: int | None) -> dict[str, Any]:
        if not self.cuda:
            return {"weights_on_device_gib": weights / GIB, "peak_gib": None, "memory_note": "CPU: not measured"}
        torch = self.torch
        peak = torch.cuda.max_memory_allocated()
        return {
            "weights_on_device_gib": weights / GIB,
            "allocated_at_start_gib": start_alloc / GIB,
            "peak_allocated_gib": peak / GIB,
            "peak_reserved_gib": torch.cuda.max_memory_reserved() / GIB,
            "activation_peak_gib": (peak - start_alloc) / GIB,
            "peak_gib": (weights + peak - start_alloc) / GIB,
        }

    def tflops(self, kind: str, seconds: float | None) -> float | None:
        flop = self.flops.get(kind)
        return None if not flop or not seconds else flop / seconds / 1e12


def _ratio(a, b):
    return None if a is None or not b else a / b


def _fmt(x, digits: int) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def _stock_denoise_step(model, scheduler, latents, t, prev, inputs, old):
    """`DynamiCtrlPipeline.denoise_step` for the stock transformer: the same call without the pose."""
    import torch

    dtype = latents.dtype
    model_input = torch.cat([latents] * 2)
    model_input = torch.cat([scheduler.scale_model_input(model_input, t), inputs.image_latents], dim=2)
    with model.cache_context("cond_uncond"):
        noise_pred = model(
            hidden_states=model_input,
            encoder_hidden_states=inputs.prompt_embeds,
            timestep=t.expand(model_input.shape[0]),
            ofs=inputs.ofs,
            image_rotary_emb=inputs.image_rotary_emb,
            return_dict=False,
        )[0].float()
    uncond, cond = noise_pred.chunk(2)
    noise_pred = uncond + GUIDANCE * (cond - uncond)
    latents, old = scheduler.step(noise_pred, old, t, prev, latents, **inputs.extra_step_kwargs, return_dict=False)
    return latents.to(dtype), old


# ------------------------------------------------------------------------------------------------- FLOPs
def count_flops(bench: Bench) -> dict[str, Any]:
    """Transformer FLOPs of one CFG step (batch 2; pose batch 1 for ours), counted on the meta device."""
    import torch
    from diffusers import CogVideoXTransformer3DModel
    from torch.utils.flop_counter import FlopCounterMode

    from dynamictrl.models.transformer_dynamictrl import DynamiCtrlTransformer

    c, s = bench.config, bench.shapes
    _, f, ch, h, w = s.latent
    n_video = s.tokens(c["patch_size"], c["patch_size_t"])["video_tokens"]
    dim = c["num_attention_heads"] * c["attention_head_dim"]
    out: dict[str, Any] = {"method": "torch FlopCounterMode on meta tensors (matmuls: addmm + bmm)"}
    for kind, cls in (("stock", CogVideoXTransformer3DModel), ("dynamictrl", DynamiCtrlTransformer)):
        with torch.device("meta"):
            model = cls(**c)
        model._shared_pose_rows = lambda *_: True  # its bool(...) cannot run on meta tensors; CFG rows do share
        kwargs = dict(
            hidden_states=torch.empty(2, f, 2 * ch, h, w, device="meta"),
            encoder_hidden_states=torch.empty(2, s.text_len, c["text_embed_dim"], device="meta"),
            timestep=torch.full((2,), 500, device="meta", dtype=torch.long),
            ofs=torch.full((1,), 2.0, device="meta"),
            image_rotary_emb=(
                torch.empty(n_video, c["attention_head_dim"], device="meta"),
                torch.empty(n_video, c["attention_head_dim"], device="meta"),
            ),
            return_dict=False,
        )
        if kind == "dynamictrl":
            kwargs["control_hidden_states"] = torch.empty(1, f, ch, h, w, device="meta")
        counter = FlopCounterMode(display=False)
        with torch.no_grad(), counter:
            model(**kwargs)
        out[f"{kind}_tflop_per_step"] = counter.get_total_flops() / 1e12
        out[f"{kind}_by_op_tflop"] = {str(k): v / 1e12 for k, v in counter.get_flop_counts()["Global"].items()}
        bench.flops[kind] = counter.get_total_flops()
    n = n_video + s.text_len
    layers = c["num_layers"]
    out["analytic_per_step_tflop"] = {
        "linear_2x12D2NL": 2 * 2 * 12 * dim**2 * n * layers / 1e12,
        "attention_4N2DL": 2 * 4 * n**2 * dim * layers / 1e12,
        "note": "performance.md §1.3, times CFG batch 2; AdaLN, patch embed and output head not included",
    }
    # Per block and sample, for the evaluated-FLOP fraction of the caches: attention (QKV+out projections + core)
    # vs feed-forward.
    out["_per_block"] = {"attention": 2 * 4 * dim**2 * n + 4 * n**2 * dim, "ff": 2 * 8 * dim**2 * n}
    return out


def _machine(bench: Bench) -> dict[str, Any]:
    import diffusers
    import torch

    info: dict[str, Any] = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "diffusers": diffusers.__version__,
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
    }
    if bench.cuda:
        props = torch.cuda.get_device_properties(0)
        info.update(
            gpu=torch.cuda.get_device_name(0),
            capability=".".join(map(str, torch.cuda.get_device_capability(0))),
            gpu_memory_gib=props.total_memory / GIB,
            multiprocessors=props.multi_processor_count,
            cuda=torch.version.cuda,
            cudnn=torch.backends.cudnn.version(),
            sdpa_enabled={
                "flash": torch.backends.cuda.flash_sdp_enabled(),
                "mem_efficient": torch.backends.cuda.mem_efficient_sdp_enabled(),
                "cudnn": torch.backends.cuda.cudnn_sdp_enabled(),
                "math": torch.backends.cuda.math_sdp_enabled(),
            },
        )
    else:
        info.update(gpu=None, cpu=platform.processor() or platform.machine(), threads=torch.get_num_threads())
    return info


def _sdpa_kernel(bench: Bench) -> dict[str, Any]:
    """Which SDPA kernel the GPU runs at the job's attention shape (kernel names from one profiled call)."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    c = bench.config
    n = bench.shapes.tokens(c["patch_size"], c["patch_size_t"])["attention_sequence"]
    q = torch.randn(2, c["num_attention_heads"], n, c["attention_head_dim"], device="cuda", dtype=bench.dtype)
    torch.nn.functional.scaled_dot_product_attention(q, q, q)
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        torch.nn.functional.scaled_dot_product_attention(q, q, q)
        torch.cuda.synchronize()
    names = sorted({e.key for e in prof.key_averages() if "memcpy" not in e.key.lower()})
    start = time.perf_counter()
    for _ in range(3):
        torch.nn.functional.scaled_dot_product_attention(q, q, q)
    torch.cuda.synchronize()
    seconds = (time.perf_counter() - start) / 3
    flop = 4 * 2 * c["num_attention_heads"] * n * n * c["attention_head_dim"]
    return {"kernels": names[:6], "one_layer_s": seconds, "tflops": flop / seconds / 1e12, "shape": list(q.shape)}


# ------------------------------------------------------------------------------------------------- variants
def v_stock(b: Bench) -> dict[str, Any]:
    b.ensure_pair()
    r = b.timed("stock", b.stock)
    r["achieved_tflops"] = b.tflops("stock", r["per_step_s"])
    return r


def v_dynamictrl(b: Bench) -> dict[str, Any]:
    b.ensure_pair()
    counts = _EvalCounter(b.ours)
    try:
        r = b.timed("dynamictrl", b.ours)
    finally:
        counts.remove()
    r["achieved_tflops"] = b.tflops("dynamictrl", r["per_step_s"])
    r["evaluated_fractions_check"] = counts.fractions(b.args.warmup + b.args.steps, b)  # 1.0 uncached
    return r


class _EvalCounter:
    """Counts attention and feed-forward evaluations per block, weighted by their batch (full CFG batch = 2)."""

    def __init__(self, model) -> None:
        self.attn = 0.0
        self.ff = 0.0
        self.layers = len(model.transformer_blocks)
        self.handles = []
        for block in model.transformer_blocks:
            to_q = block.attn1.to_qkv if getattr(block.attn1, "fused_projections", False) else block.attn1.to_q
            self.handles.append(to_q.register_forward_pre_hook(self._on_attn))
            self.handles.append(block.ff.register_forward_pre_hook(self._on_ff))

    def _on_attn(self, _module, args) -> None:
        self.attn += args[0].shape[0] / 2

    def _on_ff(self, _module, args) -> None:
        self.ff += args[0].shape[0] / 2

    def remove(self) -> None:
        for h in self.handles:
            h.remove()

    def fractions(self, steps: int, b: Bench) -> dict[str, float]:
        total = steps * self.layers
        attn, ff = self.attn / total, self.ff / total
        per_block = b.result["flops"].get("_per_block")
        out = {"attention_evaluated_fraction": attn, "ff_evaluated_fraction": ff}
        if per_block:
            fa, ffl = per_block["attention"], per_block["ff"]
            out["evaluated_flop_fraction"] = (attn * fa + ff * ffl) / (fa + ffl)
        return out


def _cache_variant(method: str) -> Callable[[Bench], dict[str, Any]]:
    def run(b: Bench) -> dict[str, Any]:
        from dynamictrl.pipelines import acceleration

        b.ensure_pair()
        model = b.ours
        pipe = b.pipeline(model)  # PAB and FasterCache read the timestep through pipe.current_timestep
        config = acceleration.cache_config(pipe, method)
        steps = b.args.cache_steps
        model.enable_cache(config)
        counts = _EvalCounter(model)
        try:
            b.sync()
            gc.collect()
            weights, start_alloc = b.weights_on_device(model), b.allocated()
            if b.cuda:
                b.torch.cuda.reset_peak_memory_stats()
            times, latents = b.denoise_loop("dynamictrl", model, steps, pipe=pipe)
        finally:
            counts.remove()
            model.disable_cache()
        r = {
            "cache_config": repr(config).replace("\n", " "),
            "cache_steps": steps,
            "step_times_s": [round(x, 4) for x in times],
            "effective_per_step_s": sum(times) / len(times),
            "output_finite": bool(b.torch.isfinite(latents).all()),
        }
        r.update(counts.fractions(steps, b))
        r.update(b.memory(weights, start_alloc))
        base = b.result["variants"].get("dynamictrl", {}).get("per_step_s")
        r["speedup_vs_dynamictrl"] = _ratio(base, r["effective_per_step_s"])
        r["achieved_tflops"] = b.tflops("dynamictrl", r["effective_per_step_s"])  # uncached-equivalent
        r["note"] = (
            "random weights: hit rates (FBC) and skip quality are not those of trained weights; the skip schedule "
            "of PAB/FasterCache is timestep-based and carries over"
        )
        return r

    return run


def v_fp8(b: Bench) -> dict[str, Any]:
    import torch

    b.free()
    model = b.build_ours()
    b.ours = model
    b._pair_dirty = True
    start = time.perf_counter()
    model.enable_layerwise_casting(storage_dtype=torch.float8_e4m3fn, compute_dtype=b.dtype)
    setup = time.perf_counter() - start
    r = b.timed("dynamictrl", model)
    r["setup_s"] = setup
    r["achieved_tflops"] = b.tflops("dynamictrl", r["per_step_s"])
    r["fp8_parameters_fraction"] = sum(p.numel() for p in model.parameters() if p.dtype == torch.float8_e4m3fn) / sum(
        p.numel() for p in model.parameters()
    )
    return r


def _speed_variant(preset: str, compiled: bool = False) -> Callable[[Bench], dict[str, Any]]:
    """A `--speed` preset as `dynamictrl animate` sets it up (`acceleration.resolve_speed` + `apply_speed`, then
    `compile_blocks(fullgraph=False)` with `compiled`, as animate.py does under a cache), over a whole loop of
    `--preset-steps` DPM steps with the preset's guidance schedule. Compiled: one untimed loop first (it compiles,
    and recompiles for a conditional-only batch), then the timed loop. Against `dynamictrl` (or
    `dynamictrl+compile`) per step x steps, measured in this run."""

    def run(b: Bench) -> dict[str, Any]:
        from dynamictrl.pipelines import acceleration

        torch = b.torch
        if compiled:
            _check_compile_budget(b)
        b.free()
        b.ensure_pair()
        b._pair_dirty = True  # hooks (and graphs) stay on the model: rebuild for the next variant
        model = b.ours
        pipe = b.pipeline(model)
        steps = b.args.preset_steps
        speed = acceleration.resolve_speed(preset, steps)
        schedule = acceleration.apply_speed(pipe, speed, GUIDANCE)
        guided = set(schedule.unconditional_steps(steps)) if schedule is not None else None
        r: dict[str, Any] = {"speed": speed.to_json(), "steps": steps}
        if compiled:
            torch._dynamo.reset()
            acceleration.compile_blocks(pipe, fullgraph=False)
            start = time.perf_counter()
            b.denoise_loop("dynamictrl", model, steps, pipe=pipe, guided_steps=guided)
            r["first_loop_s"] = time.perf_counter() - start
            model._reset_stateful_cache()
        b.sync()
        gc.collect()
        weights, start_alloc = b.weights_on_device(model), b.allocated()
        if b.cuda:
            torch.cuda.reset_peak_memory_stats()
        with acceleration.BlockCounter(model) as counter:
            times, latents = b.denoise_loop("dynamictrl", model, steps, pipe=pipe, guided_steps=guided)
        model.disable_cache()
        exact_rows = steps * 2 * len(model.transformer_blocks)
        evaluations = counter.total
        if compiled and not evaluations:  # the feed-forward hooks do not fire inside compiled blocks
            evaluations = b.result["variants"].get(f"dynamictrl+speed_{preset}", {}).get("block_evaluations")
            r["block_evaluations_from"] = f"dynamictrl+speed_{preset} (same schedule, counted eagerly)"
        baseline = "dynamictrl+compile" if compiled else "dynamictrl"
        per_step = b.result["variants"].get(baseline, {}).get("per_step_s")
        r.update(
            step_times_s=[round(x, 4) for x in times],
            loop_s=sum(times),
            effective_per_step_s=sum(times) / len(times),
            output_finite=bool(torch.isfinite(latents).all()),
            block_evaluations=evaluations,
            fewer_block_evaluations=exact_rows / evaluations if evaluations else None,
            baseline=baseline,
            baseline_loop_s=per_step * steps if per_step else None,
            speedup_vs_baseline=_ratio(per_step * steps if per_step else None, sum(times)),
        )
        if compiled:
            r["compile_s"] = r["first_loop_s"] - sum(times)
        r.update(b.memory(weights, start_alloc))
        r["note"] = "the schedule (which steps run blocks, which run the unconditional branch) is the preset's own"
        return r

    return run


def _memory_variant(preset: str) -> Callable[[Bench], dict[str, Any]]:
    """A `--memory` preset's transformer part as `dynamictrl animate` applies it (`memory.apply_memory`)."""

    def run(b: Bench) -> dict[str, Any]:
        from dynamictrl.pipelines import memory

        if not b.cuda:
            raise Skip(f"--memory {preset} offloads to the CPU: it needs a GPU")
        b.free()
        model = b.ours = b.build_ours()
        b._pair_dirty = True
        chosen = memory.MEMORY_PRESETS[preset]
        applied = [part for part in ("fp8_transformer", "group_offload") if getattr(chosen, part)]
        plan = memory.AppliedMemory(preset, preset, applied=applied)
        start = time.perf_counter()
        memory.apply_memory(b.pipeline(model), plan, b.device, b.dtype)
        b.sync()
        setup = time.perf_counter() - start
        r = b.timed("dynamictrl", model)
        r.update(setup_s=setup, applied=applied)
        r["achieved_tflops"] = b.tflops("dynamictrl", r["per_step_s"])
        return r

    return run


def _offload_variant(
    kind: str, offload_type: str, use_stream: bool, run_unless_ok: tuple[str, ...] = ()
) -> Callable[[Bench], dict[str, Any]]:
    """Group offloading to CPU memory; skipped when any variant in `run_unless_ok` already worked (fallbacks)."""

    def run(b: Bench) -> dict[str, Any]:
        import torch

        if not b.cuda:
            raise Skip("group offloading needs a GPU (onload device cuda, offload device cpu)")
        worked = [n for n in run_unless_ok if b.result["variants"].get(n, {}).get("status") == "ok"]
        if worked:
            raise Skip(f"{worked[0]} worked; this is only its fallback or reference")
        b.free()
        if kind == "dynamictrl":
            model = b.ours = b.build_ours()
        else:  # stock alone: its tensors are DynamiCtrl's, whose PadaLN is dropped with `ours`
            b.ensure_pair()
            model, b.ours = b.stock, None
            gc.collect()
        b._pair_dirty = True
        start = time.perf_counter()
        kwargs = dict(
            onload_device=b.device,
            offload_device=torch.device("cpu"),
            offload_type=offload_type,
            use_stream=use_stream,
        )
        if offload_type == "block_level":
            kwargs["num_blocks_per_group"] = 1
        model.enable_group_offload(**kwargs)
        b.sync()
        setup = time.perf_counter() - start
        r = b.timed(kind, model)
        r.update(setup_s=setup, offload=kwargs | {"onload_device": str(b.device), "offload_device": "cpu"})
        r["achieved_tflops"] = b.tflops(kind, r["per_step_s"])
        return r

    return run


def _check_compile_budget(b: Bench) -> None:
    """Skip unless the reserve, or 1.1x what an earlier compile variant of this run took, is left of the budget."""
    earlier = [r["wall_s"] for n, r in b.result["variants"].items() if n.endswith("+compile") and "wall_s" in r]
    needed = 1.1 * max(earlier) if earlier else b.args.compile_reserve_s
    left = b.args.budget_s - _elapsed()
    if left < needed:
        raise Skip(f"{left:.0f} s of the budget left, {needed:.0f} s needed to compile and time")


def _compile_variant(kind: str) -> Callable[[Bench], dict[str, Any]]:
    def run(b: Bench) -> dict[str, Any]:
        import torch

        _check_compile_budget(b)
        b.free()
        b.ensure_pair()
        model = b.ours if kind == "dynamictrl" else b.stock
        torch._dynamo.reset()
        counters = torch._dynamo.utils.counters
        graphs_before = int(counters["stats"].get("unique_graphs", 0))
        breaks_before = int(sum(counters["graph_break"].values()))
        how = None
        for fullgraph in (True, False):
            try:
                if getattr(model, "_repeated_blocks", None):
                    model.compile_repeated_blocks(fullgraph=fullgraph)
                    how = f"compile_repeated_blocks(fullgraph={fullgraph})"
                else:
                    for block in model.transformer_blocks:
                        block.compile(fullgraph=fullgraph)
                    how = f"block.compile(fullgraph={fullgraph}) on each of the {len(model.transformer_blocks)} blocks"
                first = b.denoise_loop(kind, model, 1)[0][0]  # compiles
                break
            except Exception as exc:  # fullgraph refused (graph break): record and retry without
                if not fullgraph:
                    raise
                b.result.setdefault("notes", []).append(f"{kind}+compile fullgraph=True failed: {exc!r}"[:400])
                torch._dynamo.reset()
                for block in model.transformer_blocks:
                    block._compiled_call_impl = None
        r = b.timed(kind, model, warmup=max(b.args.warmup, 1), steps=b.args.steps)
        eager = b.result["variants"].get(kind, {}).get("per_step_s")
        r.update(
            how=how,
            first_step_s=first,
            compile_s=first - eager if eager else first,
            # 2 expected: block 0 gets a strided slice of the token tensor, the others a contiguous tensor.
            unique_graphs=int(counters["stats"].get("unique_graphs", 0)) - graphs_before,
            graph_breaks=int(sum(counters["graph_break"].values())) - breaks_before,
            speedup_vs_eager=_ratio(eager, r["per_step_s"]),
        )
        r["achieved_tflops"] = b.tflops(kind, r["per_step_s"])
        return r

    return run


VARIANTS: list[tuple[str, Callable[[Bench], dict[str, Any]], str]] = [
    ("stock", v_stock, "stock CogVideoXTransformer3DModel, SDPA in its processor"),
    ("dynamictrl", v_dynamictrl, "DynamiCtrlTransformer, same weights + PadaLN, pose batch 1"),
    ("dynamictrl+first_block_cache", _cache_variant("first-block"), "FirstBlockCacheConfig(threshold=0.1)"),
    ("dynamictrl+pab", _cache_variant("pab"), "PyramidAttentionBroadcastConfig as acceleration.py"),
    ("dynamictrl+faster_cache", _cache_variant("faster"), "FasterCacheConfig as acceleration.py"),
    ("dynamictrl+speed_fast", _speed_variant("fast"), "--speed fast over a whole loop (acceleration.py)"),
    ("dynamictrl+speed_fastest", _speed_variant("fastest"), "--speed fastest over a whole loop (acceleration.py)"),
    ("dynamictrl+fp8_layerwise_casting", v_fp8, "enable_layerwise_casting(float8_e4m3fn, bf16)"),
    (
        "dynamictrl+group_offload",
        _offload_variant("dynamictrl", "block_level", True),
        "group offload block_level, num_blocks_per_group=1, use_stream=True",
    ),
    (
        "dynamictrl+group_offload_leaf",
        _offload_variant("dynamictrl", "leaf_level", True, ("dynamictrl+group_offload",)),
        "group offload leaf_level, use_stream=True (runs only if block_level failed)",
    ),
    (
        "dynamictrl+group_offload_leaf_sync",
        _offload_variant(
            "dynamictrl", "leaf_level", False, ("dynamictrl+group_offload", "dynamictrl+group_offload_leaf")
        ),
        "group offload leaf_level, no stream (runs only if both above failed)",
    ),
    ("dynamictrl+memory_12gb", _memory_variant("12gb"), "--memory 12gb's transformer: float8 storage + group offload"),
    ("dynamictrl+compile", _compile_variant("dynamictrl"), "regional torch.compile of the blocks"),
    (
        "dynamictrl+speed_fast+compile",
        _speed_variant("fast", compiled=True),
        "--speed fast --compile over a whole loop (compile_blocks(fullgraph=False) under the cache)",
    ),
    ("stock+compile", _compile_variant("stock"), "regional torch.compile of the stock blocks"),
    (
        "stock+group_offload",
        _offload_variant("stock", "block_level", True, ("dynamictrl+group_offload",)),
        "stock with block_level/use_stream offload: what block-level offload costs (runs only if ours failed)",
    ),
]


# ------------------------------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    sys.path.insert(0, str(REPO))
    import torch

    if not args.tiny and not torch.cuda.is_available():
        print("no CUDA device: run with --tiny for the CPU smoke test", file=sys.stderr)
        return 2
    if args.tiny:
        torch.set_num_threads(min(2, torch.get_num_threads()))
    bench = Bench(args)
    wanted = None if args.variants == "all" else {v.strip() for v in args.variants.split(",")} | {"stock"}
    unknown = (wanted or set()) - {name for name, _, _ in VARIANTS}
    if unknown:
        print(f"unknown variants {sorted(unknown)}; choose from {[n for n, _, _ in VARIANTS]}", file=sys.stderr)
        return 2

    def abort() -> None:  # watchdog: leave a complete JSON before the machine's limit kills us
        with contextlib.suppress(Exception):
            bench.result["status"] = f"aborted by watchdog at {args.hard_limit_s:.0f} s during {bench.current}"
            if bench.current:
                bench.result["variants"][bench.current] = {"status": "error", "error": "hard time limit reached"}
            bench.write(lock_timeout_s=5)
            bench.print_table()
            sys.stdout.flush()
        os._exit(3)

    watchdog = threading.Timer(max(1.0, args.hard_limit_s - _elapsed()), abort)
    watchdog.daemon = True
    watchdog.start()

    bench.result["machine"] = _machine(bench)
    c = bench.config
    bench.result["shapes"] = {
        "video": {"frames": bench.shapes.frames, "height": bench.shapes.height, "width": bench.shapes.width},
        "latent_BFCHW": list(bench.shapes.latent),
        "transformer_input_BFCHW": [2, bench.shapes.latent[1], 32, *bench.shapes.latent[3:]],
        "control_latent_BFCHW": list(bench.shapes.latent),
        **bench.shapes.tokens(c["patch_size"], c["patch_size_t"]),
    }
    try:
        bench.result["flops"] = count_flops(bench)
    except Exception as exc:
        bench.result["flops"] = {"error": repr(exc)}
    if bench.cuda:
        try:
            bench.result["machine"]["sdpa_at_job_shape"] = _sdpa_kernel(bench)
        except Exception as exc:
            bench.result["machine"]["sdpa_at_job_shape"] = {"error": repr(exc)}
    bench.result["setup_s"] = round(_elapsed(), 2)
    bench.write()

    try:
        start = time.perf_counter()
        bench.ensure_pair()
        bench.result["build_s"] = time.perf_counter() - start
        bench.result["params"] = {
            "dynamictrl": sum(p.numel() for p in bench.ours.parameters()),
            "stock": sum(p.numel() for p in bench.stock.parameters()),
        }
        bench.inputs = bench.make_inputs()
    except Exception as exc:
        bench.result["status"] = f"setup failed: {exc!r}"
        bench.result["traceback"] = traceback.format_exc().splitlines()[-15:]
        bench.write()
        print(bench.result["status"], file=sys.stderr)
        return 1

    for name, fn, what in VARIANTS:
        if wanted is not None and name not in wanted:
            continue
        record: dict[str, Any] = {"what": what}
        if _elapsed() > args.budget_s:
            record.update(status="skipped", reason=f"time budget of {args.budget_s:.0f} s spent")
        else:
            bench.current = name
            start = time.perf_counter()
            try:
                record.update(fn(bench))
                record["status"] = "ok"
            except Skip as why:
                record.update(status="skipped", reason=str(why))
            except Exception as exc:  # a failing variant is a result; the others still run
                record.update(status="error", error=f"{type(exc).__name__}: {exc}"[:2000])
                record["traceback"] = traceback.format_exc().splitlines()[-12:]
                bench._pair_dirty = True  # the model may be half-modified: rebuild for the next variant
            record["wall_s"] = round(time.perf_counter() - start, 2)
            bench.current = None
            if record.get("status") == "error" and "out of memory" in record.get("error", "").lower():
                bench.free()
        with bench.lock:
            bench.result["variants"][name] = record
        bench.write()
        step = record.get("effective_per_step_s", record.get("per_step_s"))
        peak = record.get("peak_gib")
        print(
            f"[{_elapsed():6.1f} s] {name}: {record['status']}"
            + (f", {step:.4f} s/step" if step else "")
            + (f", peak {peak:.2f} GiB" if peak else "")
            + (f" ({record.get('reason') or record.get('error')})"[:300] if record["status"] != "ok" else ""),
            flush=True,
        )

    watchdog.cancel()
    bench.free()
    bench.result["status"] = "complete"
    bench.result["notes"].append(
        "Random weights. Times and memory are those of the 5B architecture at the job's shapes; cache hit rates "
        "and any quality effect need the released weights."
    )
    bench.write()
    bench.print_table()
    print(f"wrote {args.out} in {_elapsed():.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
