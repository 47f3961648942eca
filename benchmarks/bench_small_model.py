"""Step times of the small model's two training stages on this CPU, to budget the recipe (docs/small_model.md).

- VAE (`training.vae`): one optimizer step of `VaeTrainer.step`'s computation (the VAE's chunked encode →
  posterior sample → chunked decode of whole clips of 17 frames at 64×64, the mask-weighted L1 + KL loss,
  backward, AdamW), per VAE config × batch size × torch threads.
- transformer (`training.spec.diffusion_loss` on cached latents: what a step costs once `prepare-data
  --cache-latents` has encoded everything): 17 frames → 5 latent frames padded to 6 (as the pipeline pads odd
  counts) of 16×16 (the 4× VAE), 48 text tokens, per transformer config × batch × threads × `--precisions`
  (`fp32`; `bf16`: the step under `torch.autocast("cpu", torch.bfloat16)`, as the trainer's `mixed_precision:
  bf16` runs it, float32 weights and optimizer). A bf16 row gives `speed_vs_fp32` (fp32 median / bf16 median, same
  variant, batch and threads, same run) and its cost on one fixed batch from the same weights: the loss's relative
  difference and the cosine between the two gradients.

Each variant: `--warmup` steps, then the median and minimum of `--steps` timed steps. The machine's load average is
recorded: other processes on the 2 cores inflate the times. Batch 1 is slow for the VAE at 64 px: PyTorch's CPU
convolution heuristic (ATen `ConvParams::use_mkldnn`: batch 1, 3×3 kernels and N·C·D·H ≤ 20480) sends most of its
3-D convolutions to the im2col `slow_conv3d` path instead of oneDNN, so batch 2 costs about what batch 1 does.

Run: `python benchmarks/bench_small_model.py [--steps 3 --warmup 1]` → benchmarks/results/small_model.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import torch

RESULTS = Path(__file__).resolve().parent / "results" / "small_model.json"
FRAMES, SIDE, TEXT_LEN, TEXT_DIM = 17, 64, 48, 64
VAES = {
    "vae_16_32_32": dict(block_out_channels=(16, 32, 32)),
    "vae_24_48_48": dict(block_out_channels=(24, 48, 48)),
    "vae_32_64_64": dict(block_out_channels=(32, 64, 64)),
}
TRANSFORMERS = {
    "dit_128x4": dict(num_attention_heads=2, attention_head_dim=64, num_layers=4),
    "dit_192x6": dict(num_attention_heads=3, attention_head_dim=64, num_layers=6),
    "dit_256x8": dict(num_attention_heads=4, attention_head_dim=64, num_layers=8),
}


def _time(step, steps: int, warmup: int) -> dict[str, float]:
    for _ in range(warmup):
        step()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return {"median_s": statistics.median(times), "min_s": min(times)}


def bench_vae(name: str, batch: int, steps: int, warmup: int) -> dict:
    from diffusers import AutoencoderKLCogVideoX

    from dynamictrl.training.vae import VaeReconstruction, latent_shape, loss_weights, reconstruction_loss
    from dynamictrl.training.vae_config import VaeTrainConfig

    config = VaeTrainConfig(output_dir=Path("."), data_root=Path("."), batch_size=batch, **VAES[name])
    torch.manual_seed(0)
    vae = AutoencoderKLCogVideoX(**config.vae_config)
    model = VaeReconstruction(vae)
    optimizer = torch.optim.AdamW(vae.parameters(), lr=1e-4)
    video = torch.rand(batch, 3, FRAMES, SIDE, SIDE) * 2 - 1
    mask = (torch.rand(FRAMES, 1, SIDE, SIDE) > 0.7).float()
    weights = loss_weights([mask] * batch, (FRAMES, SIDE, SIDE), 10.0, 3)
    shape = latent_shape(vae.config, FRAMES, SIDE, SIDE)

    def step() -> None:
        reconstruction, mean, logvar = model(video, torch.randn(batch, *shape))
        loss, _ = reconstruction_loss(reconstruction, video, weights, mean, logvar, config)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    result = _time(step, steps, warmup)
    params = sum(p.numel() for p in vae.parameters())
    return {**result, "parameters": params, "fp32_mb": params * 4 / 1e6}


def bench_transformer(name: str, batch: int, steps: int, warmup: int, precision: str = "fp32") -> dict:
    from diffusers import CogVideoXDPMScheduler

    from dynamictrl.models.configs import SMALL_TRANSFORMER_CONFIG
    from dynamictrl.models.transformer_dynamictrl import DynamiCtrlTransformer
    from dynamictrl.pipelines.folder import SCHEDULER_CONFIG
    from dynamictrl.training.spec import diffusion_loss

    torch.manual_seed(0)
    model = DynamiCtrlTransformer(
        **{**SMALL_TRANSFORMER_CONFIG, **TRANSFORMERS[name], "max_text_seq_length": TEXT_LEN}
    )
    model.train()
    scheduler = CogVideoXDPMScheduler(**SCHEDULER_CONFIG)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    latent = (batch, 6, 16, SIDE // 4, SIDE // 4)

    def batch_of(generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        return {
            "video_latents": torch.randn(latent, generator=generator),
            "image_latents": torch.randn(latent, generator=generator),
            "control_latents": torch.randn(latent, generator=generator),
            "prompt_embeds": torch.randn(batch, TEXT_LEN, TEXT_DIM, generator=generator),
            "timesteps": torch.randint(0, 1000, (batch,), generator=generator),
            "noise": torch.randn(latent, generator=generator),
        }

    def loss_of(inputs: dict[str, torch.Tensor], bf16: bool) -> torch.Tensor:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            return diffusion_loss(model, scheduler, **inputs)

    extra: dict[str, float] = {}
    if precision == "bf16":  # the cost, before any step changes the weights: one fixed batch, both precisions
        fixed = batch_of(torch.Generator().manual_seed(1))
        losses, grads = [], []
        for bf16 in (False, True):
            loss = loss_of(fixed, bf16)
            loss.backward()
            losses.append(float(loss.detach()))
            grads.append(torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None]))
            optimizer.zero_grad(set_to_none=True)
        extra = {
            "loss_relative_difference": abs(losses[1] - losses[0]) / abs(losses[0]),
            "gradient_cosine": float(
                torch.nn.functional.cosine_similarity(grads[0].double(), grads[1].double(), dim=0)
            ),
        }

    def step() -> None:
        loss = loss_of(batch_of(), precision == "bf16")
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    result = _time(step, steps, warmup)
    params = sum(p.numel() for p in model.parameters())
    return {**result, **extra, "parameters": params, "fp32_mb": params * 4 / 1e6}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--only", choices=("vae", "transformer"), default=None)
    parser.add_argument("--variants", default=None, help="comma-separated variant names (default: all)")
    parser.add_argument("--vae-batches", default="1,2,4")
    parser.add_argument("--transformer-batches", default="4,8")
    parser.add_argument("--precisions", default="fp32,bf16", help="transformer step precisions: fp32, bf16")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    asked = {p for p in args.precisions.split(",") if p}
    if not asked or asked - {"fp32", "bf16"}:
        raise SystemExit(f"--precisions takes fp32 and/or bf16, got {args.precisions!r}")
    precisions = [p for p in ("fp32", "bf16") if p in asked]  # fp32 first: a bf16 row's ratio needs it
    rows = []
    for threads in (int(t) for t in args.threads.split(",")):
        torch.set_num_threads(threads)
        if args.only in (None, "vae"):
            for name in VAES:
                if args.variants and name not in args.variants.split(","):
                    continue
                for batch in (int(b) for b in args.vae_batches.split(",")):
                    load = os.getloadavg()[0]
                    row = {"stage": "vae", "variant": name, "batch": batch, "threads": threads, "load_before": load}
                    rows.append({**row, **bench_vae(name, batch, args.steps, args.warmup)})
                    print(json.dumps(rows[-1]), flush=True)
        if args.only in (None, "transformer"):
            for name in TRANSFORMERS:
                if args.variants and name not in args.variants.split(","):
                    continue
                for batch in (int(b) for b in args.transformer_batches.split(",")):
                    for precision in precisions:
                        load = os.getloadavg()[0]
                        row = {"stage": "transformer", "variant": name, "batch": batch, "threads": threads}
                        row.update(precision=precision, load_before=load)
                        rows.append({**row, **bench_transformer(name, batch, args.steps, args.warmup, precision)})
                        if precision == "fp32":
                            fp32_median = rows[-1]["median_s"]
                        elif "fp32" in precisions:  # measured just before, same variant, batch and threads
                            rows[-1]["speed_vs_fp32"] = fp32_median / rows[-1]["median_s"]
                        print(json.dumps(rows[-1]), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    setup = {"frames": FRAMES, "side": SIDE, "text_tokens": TEXT_LEN, "steps": args.steps, "warmup": args.warmup}
    machine = {"cpu_count": os.cpu_count(), "processor": platform.processor(), "torch": torch.__version__}
    args.out.write_text(json.dumps({"setup": setup, "machine": machine, "results": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
