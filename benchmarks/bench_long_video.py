"""Long videos with ground truth: seams and drift of `--long-video windows|chain` against naive chaining.

Held-out samples of the synthetic world (seed 1000, never trained on) of `--frames` frames (default 81: four
times the 21-frame clips the small model trained on, plus the reference frame) give a ground-truth frame for every
generated one. The reference is frame 0 of the ground truth, the pose its pose render, the prompt its caption. Three
strategies, same model, seed and steps:

- `windows`: overlapping windows of `--window` frames fused at every step (`pipelines/windowing.py`);
- `chain`: segments one after another, each holding its overlap to the previous one;
- `naive`: independent `--window`-frame clips, each conditioned on the reference only (its pose frame 0 is the
  reference's own pose), concatenated: no overlap, nothing shared but the reference. The baseline.

Per strategy, over all samples:
- **seam ratio**: the mean absolute frame-to-frame difference (pixels in [0, 1]) at the strategy's borders (the
  edges of every window overlap; the first new frame of every chained segment; the first frame of every naive
  segment) divided by the same inside (every other transition of frames 1..F-1). The ground truth's own ratio at
  the same borders is given beside it (the motion itself may be faster there). Issue 11: ≤ 1.5.
- **drift**: PSNR to the ground truth per frame quarter of frames 1..F-1; last quarter minus first. Issue 11: within
  1 dB.

Beside them, two baselines that generate nothing (`baselines`): the reference copied to every frame, and the ground
truth through the VAE. Their drift is what the sequences themselves do: the further the motion takes the character
from the reference, the lower any output's PSNR, before a generation strategy adds its own.

    python benchmarks/bench_long_video.py                 # the bundled small model, 8 samples, about 4 minutes
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from dynamictrl.defaults import PUBLISHED
from dynamictrl.jobs.demo import EXAMPLES
from dynamictrl.models.geometry import default_overlap_frames

RESULTS = Path(__file__).resolve().parent / "results" / "long_video.json"
HELD_OUT_SEED = EXAMPLES["synthetic"][0]  # the held-out world of the demo and the other benchmarks
SEAM_LIMIT, DRIFT_LIMIT_DB = 1.5, 1.0


def _pixel_start(latent: int) -> int:
    """The first pixel frame of long-latent frame `latent` (≥ 1): latent j covers pixel frames 4(j−1)+1 .. 4j."""
    return 4 * (latent - 1) + 1


def borders(strategy: str, frames: int, window: int, overlap: int) -> list[int]:
    """Pixel frames p whose transition from p − 1 crosses a border of `strategy`."""
    from dynamictrl.pipelines.windowing import plan_for_frames

    if strategy == "naive":
        return list(range(window, frames, window - 1))
    plan = plan_for_frames(frames, window, overlap)
    out: set[int] = set()
    for k in range(1, plan.num_windows):
        end_of_overlap = _pixel_start(plan.starts[k - 1] + plan.video_latents)  # the first frame after the overlap
        out.add(end_of_overlap)
        if strategy == "windows":
            out.add(_pixel_start(plan.starts[k]))  # where the overlap begins
    return sorted(p for p in out if 1 < p < frames)


def frame_differences(video: np.ndarray) -> np.ndarray:
    """`[F − 1]`: mean |frame_p − frame_{p−1}| (pixels in [0, 1]) at index p − 1."""
    return np.abs(np.diff(video.astype(np.float64) / 255.0, axis=0)).mean(axis=(1, 2, 3))


def seam_ratio(video: np.ndarray, border_frames: list[int]) -> float:
    """Mean |frame_p − frame_{p−1}| at the borders over the mean of the other transitions (frames 1..F-1)."""
    diffs = frame_differences(video)  # diffs[p-1]: p-1 → p
    at = np.array([diffs[p - 1] for p in border_frames])
    inside = np.array([diffs[p - 1] for p in range(2, len(video)) if p not in border_frames])
    return float(at.mean() / inside.mean())


def latent_matched_seam_ratio(video: np.ndarray, border_frames: list[int]) -> float:
    """Mean |frame_p − frame_{p−1}| at the borders over the mean at every other latent-frame start p = 4j + 1
    (j ≥ 1; p ≥ 5): the borders against transitions of the same phase inside windows. Every border is a
    latent-frame start, and the small model's VAE decodes each latent frame as a burst (its first frame jumps, the
    next three barely move), so the plain ratio also counts that rhythm, seam or no seam."""
    diffs = frame_differences(video)
    at = np.array([diffs[p - 1] for p in border_frames])
    inside = np.array([diffs[p - 1] for p in range(5, len(video), 4) if p not in border_frames])
    return float(at.mean() / inside.mean())


def vae_reconstruction(pipe: Any, frames: np.ndarray) -> np.ndarray:
    """uint8 `[F, H, W, 3]`: the ground truth through the model's VAE (posterior mode → `decode_latents`)."""
    import torch

    x = torch.from_numpy(np.ascontiguousarray(frames)).float().permute(3, 0, 1, 2)[None] / 127.5 - 1.0
    with torch.no_grad():
        latents = pipe.vae.encode(x).latent_dist.mode().permute(0, 2, 1, 3, 4) * pipe.vae.config.scaling_factor
        decoded = pipe.decode_latents(latents)[:, :, : len(frames)]
    video = pipe.video_processor.postprocess_video(video=decoded, output_type="np")[0]
    return (np.clip(video, 0.0, 1.0) * 255.0).round().astype(np.uint8)


def psnr_quarters(video: np.ndarray, truth: np.ndarray) -> list[float]:
    """PSNR (dB) to the ground truth over each quarter of frames 1..F-1."""
    err = ((video.astype(np.float64) - truth.astype(np.float64)) / 255.0) ** 2
    per_frame = err.mean(axis=(1, 2, 3))[1:]
    return [float(10 * np.log10(1.0 / q.mean())) for q in np.array_split(per_frame, 4)]


def _quarters_summary(per_sample: list[list[float]]) -> dict[str, Any]:
    """Mean PSNR per quarter over samples, the drift (last quarter minus first) and each sample's drift."""
    quarters = np.mean(per_sample, axis=0)
    return {
        "psnr_quarters_db": [float(q) for q in quarters],
        "drift_db": float(quarters[-1] - quarters[0]),
        "drift_per_sample_db": [float(q[-1] - q[0]) for q in per_sample],
    }


def generate(pipe: Any, info: Any, sample: Any, strategy: str, args: argparse.Namespace) -> np.ndarray:
    """uint8 `[F, H, W, 3]` of `strategy` for one sample (seed `args.seed`)."""
    import torch

    common = dict(
        image=sample.frames[0],
        prompt=sample.caption,
        height=sample.frames.shape[1],
        width=sample.frames.shape[2],
        num_inference_steps=args.steps,
        guidance_scale=args.guidance,
        output_type="np",
        image_latent_scale=pipe.image_latent_scale(info.settings.image_latent_scale),
    )
    if strategy != "naive":
        video = pipe(
            control_video=sample.pose,
            num_frames=len(sample.pose),
            window_frames=args.window,
            overlap_frames=args.overlap,
            long_video=strategy,
            generator=torch.Generator().manual_seed(args.seed),
            **common,
        ).frames[0]
    else:
        clips: list[np.ndarray] = []
        step = args.window - 1
        for start in range(1, len(sample.pose), step):
            pose = np.concatenate([sample.pose[:1], sample.pose[start : start + step]])
            clip = pipe(
                control_video=pose,
                num_frames=len(pose),
                generator=torch.Generator().manual_seed(args.seed),
                **common,
            ).frames[0]
            clips.append(clip if not clips else clip[1:])  # later segments drop their copy of the reference frame
        video = np.concatenate(clips)
    return (np.clip(video, 0.0, 1.0) * 255.0).round().astype(np.uint8)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=None, help="pipeline folder (default: the bundled small model)")
    parser.add_argument("--samples", type=int, default=8, help="held-out sequences (the first N of the world)")
    parser.add_argument("--frames", type=int, default=81, help="4k+1 and 1 + a multiple of window − 1 (81)")
    parser.add_argument("--window", type=int, default=21, help="window frames, 4k+1 (the small model's clip: 21)")
    parser.add_argument(
        "--overlap", type=int, default=None, help="overlap frames, a multiple of 4 (default: animate's for --window)"
    )
    parser.add_argument("--steps", type=int, default=PUBLISHED.steps)
    parser.add_argument("--guidance", type=float, default=PUBLISHED.guidance)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--strategies", default="windows,chain,naive", help="comma-separated subset")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    if (args.frames - 1) % (args.window - 1):
        parser.error("--frames must be 1 + a multiple of --window − 1 (whole naive segments)")
    if args.overlap is None:
        args.overlap = default_overlap_frames(args.window)

    import torch

    from dynamictrl.io.atomic import write_json_atomic
    from dynamictrl.jobs.demo import bundled_model
    from dynamictrl.pipelines.loading import load_pipeline
    from dynamictrl.synthetic.world import make_sample

    torch.set_num_threads(args.threads)
    model = args.model or str(bundled_model())
    pipe, info = load_pipeline(model)
    pipe.set_progress_bar_config(disable=True)
    samples = [make_sample(HELD_OUT_SEED, i, frames=args.frames) for i in range(args.samples)]
    strategies = [s.strip() for s in args.strategies.split(",") if s.strip()]
    if not strategies or set(strategies) - {"windows", "chain", "naive"}:
        parser.error(f"--strategies: a subset of windows, chain, naive, got {args.strategies!r}")
    results: dict[str, Any] = {}
    started = time.perf_counter()
    reconstructions = {id(sample): vae_reconstruction(pipe, sample.frames) for sample in samples}
    baselines = {
        name: _quarters_summary([psnr_quarters(make(sample), sample.frames) for sample in samples])
        for name, make in (
            ("copy_reference", lambda sample: np.repeat(sample.frames[:1], len(sample.frames), axis=0)),
            ("vae_reconstruction", lambda sample: reconstructions[id(sample)]),
        )
    }
    for name, summary in baselines.items():
        quarters = ", ".join(f"{q:.2f}" for q in summary["psnr_quarters_db"])
        print(f"baseline {name}: PSNR by quarter {quarters} dB (drift {summary['drift_db']:+.2f})", flush=True)
    for strategy in strategies:
        where = borders(strategy, args.frames, args.window, args.overlap)
        rows = []
        for sample in samples:
            t0 = time.perf_counter()
            video = generate(pipe, info, sample, strategy, args)
            rows.append(
                {
                    "seam_ratio": seam_ratio(video, where),
                    "truth_seam_ratio": seam_ratio(sample.frames, where),
                    "vae_seam_ratio": seam_ratio(reconstructions[id(sample)], where),
                    "latent_matched_seam_ratio": latent_matched_seam_ratio(video, where),
                    "vae_latent_matched_seam_ratio": latent_matched_seam_ratio(reconstructions[id(sample)], where),
                    "psnr_quarters": psnr_quarters(video, sample.frames),
                    "frame_differences": frame_differences(video).tolist(),
                    "seconds": time.perf_counter() - t0,
                }
            )
        quarters = np.mean([r["psnr_quarters"] for r in rows], axis=0)
        seam = float(np.mean([r["seam_ratio"] for r in rows]))
        drift = _quarters_summary([r["psnr_quarters"] for r in rows])
        results[strategy] = {
            "border_frames": where,
            "seam_ratio": seam,
            "truth_seam_ratio": float(np.mean([r["truth_seam_ratio"] for r in rows])),
            **{
                key: float(np.mean([r[key] for r in rows]))
                for key in ("vae_seam_ratio", "latent_matched_seam_ratio", "vae_latent_matched_seam_ratio")
            },
            "mean_frame_differences": np.mean([r["frame_differences"] for r in rows], axis=0).tolist(),
            **drift,
            "no_seams": seam <= SEAM_LIMIT,
            "no_drift": abs(drift["drift_db"]) <= DRIFT_LIMIT_DB,
            "per_sample": rows,
        }
        row = results[strategy]
        print(
            f"{strategy}: seam ratio {seam:.2f} (ground truth {row['truth_seam_ratio']:.2f}, VAE "
            f"{row['vae_seam_ratio']:.2f}; latent-matched {row['latent_matched_seam_ratio']:.2f}, VAE "
            f"{row['vae_latent_matched_seam_ratio']:.2f}), PSNR by "
            f"quarter {', '.join(f'{q:.2f}' for q in quarters)} dB (drift {quarters[-1] - quarters[0]:+.2f}; samples "
            f"{min(row['drift_per_sample_db']):+.2f} to {max(row['drift_per_sample_db']):+.2f})",
            flush=True,
        )
    write_json_atomic(
        args.out,
        {
            "benchmark": "long videos against ground truth: seams and drift (issue 11)",
            "model": model,
            "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
            "held_out_seed": HELD_OUT_SEED,
            "limits": {"seam_ratio": SEAM_LIMIT, "drift_db": DRIFT_LIMIT_DB},
            "machine": {"platform": platform.platform(), "torch": torch.__version__, "threads": args.threads},
            "seconds": time.perf_counter() - started,
            "strategies": results,
            "baselines": baselines,
            "method": __doc__.split("\n\n", 1)[1],
        },
    )
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
