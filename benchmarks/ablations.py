"""Ablations of the small DynamiCtrl at equal compute: PadaLN vs direct adding, with vs without text.

The three models come from `recipes/ablations.sh`: the same initial folder, data, steps, schedule and seed; one
change each:
- `padaln`: the published method (the small model's recipe, shortened to the ablation's steps);
- `direct`: the pose latent's control tokens added once to the video tokens at the input (the paper's "direct
  adding"; `pose_control_function: direct`, recorded in the folder's `dynamictrl.json`);
- `no_text`: every caption dropped in training (`caption_dropout: 1.0`), and every prompt empty here.

Each model is scored by `small_model_quality.py` itself (same metrics, baselines, seeds and latent check; the JSON
of each lies in `--work`), on fewer clips than the bundled model's benchmark, then the numbers that compare the
variants are gathered into one JSON and one figure: over the last three quarters of each held-out and real-motion
clip, silhouette IoU and character-region PSNR (mean and min-max over seeds) with their margins over baselines (a)
copied reference and (b) other motion; the latent check's x0 error with the correct vs a shuffled pose; the
background-prompt test for the two text models.

Run (after recipes/ablations.sh runs/small): `python benchmarks/ablations.py --runs runs/small/ablation --data
runs/small/data` → `benchmarks/results/ablations.json`, `docs/benchmark/ablations.png`. About 8 minutes per
variant on one thread at the defaults.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import small_model_quality as quality  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "ablations.json"
FIGURE = Path(__file__).resolve().parents[1] / "docs" / "benchmark" / "ablations.png"
VARIANTS = {
    "padaln": "PadaLN in every block (the published method)",
    "direct": "direct adding: the pose tokens added once at the input",
    "no_text": "PadaLN, trained and run without text (every caption dropped)",
}
PERIOD = "last3"


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=Path, default=Path("runs/small/ablation"), help="holds model_<variant>/")
    parser.add_argument("--data", type=Path, default=Path("runs/small/data"), help="holds heldout/, real_motion/")
    parser.add_argument("--work", type=Path, default=None, help="per-variant JSON (default: RUNS/benchmark)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--figure", type=Path, default=FIGURE)
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated subset of the variants")
    parser.add_argument("--clips", type=int, default=8, help="held-out clips")
    parser.add_argument("--real-clips", type=int, default=4, help="real-motion clips")
    parser.add_argument("--bg-clips", type=int, default=3, help="clips of the background-prompt test")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rescore", action="store_true", help="score every variant again, even if scored before")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    args.variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = sorted(set(args.variants) - set(VARIANTS))
    if unknown:
        raise SystemExit(f"--variants: unknown {', '.join(unknown)}; choose from {', '.join(VARIANTS)}")
    for variant in args.variants:
        if not (args.runs / f"model_{variant}" / "model_index.json").is_file():
            raise SystemExit(f"{args.runs / f'model_{variant}'} is not a model folder: run recipes/ablations.sh first")
    args.work = args.work or args.runs / "benchmark"
    return args


def score_variant(variant: str, args: argparse.Namespace) -> dict[str, Any]:
    """Run small_model_quality.py on one variant's model; returns its JSON. A JSON already in `--work` that is
    newer than the model's weights is reused (`--rescore` runs it again)."""
    out = args.work / f"{variant}.json"
    weights = args.runs / f"model_{variant}" / "transformer" / "diffusion_pytorch_model.safetensors"
    if not args.rescore and out.is_file() and weights.is_file() and out.stat().st_mtime > weights.stat().st_mtime:
        return json.loads(out.read_text(encoding="utf-8"))
    argv = [
        "--model", str(args.runs / f"model_{variant}"),
        "--data", str(args.data),
        "--out", str(out),
        "--figures", str(args.work / f"figures_{variant}"),
        "--clips", str(args.clips),
        "--real-clips", str(args.real_clips),
        "--latent-clips", str(min(args.clips, 8)),
        "--bg-clips", str(args.bg_clips),
        "--seeds", args.seeds,
        "--threads", str(args.threads),
    ]  # fmt: skip
    if variant == "no_text":
        argv.append("--empty-prompt")
    if args.quiet:
        argv.append("--quiet")
    quality.main(argv)
    return json.loads(out.read_text(encoding="utf-8"))


def gather(report: dict[str, Any]) -> dict[str, Any]:
    """The numbers that compare variants, from one small_model_quality JSON."""
    out: dict[str, Any] = {"pose_control_function": report["settings"]["pose_control_function"]}
    for name, block in report["sets"].items():
        entry: dict[str, Any] = {}
        for metric in quality.ACCEPTANCE_METRICS:
            summary = block["methods"]["model"]["summary"][metric][PERIOD]
            entry[metric] = {k: summary[k] for k in ("mean", "min", "max")}
            for baseline in quality.BASELINES:
                margin = block["margins"][baseline][metric][PERIOD]
                entry[metric][f"margin_vs_{baseline}"] = margin["margin"]
                entry[metric][f"beats_{baseline}_beyond_spread"] = margin["exceeds_spread"]
        entry["gap_closed"] = block["gap_closed"]
        out[name] = entry
    out["latent_x0_mse"] = {
        name: {
            t: {v: check["timesteps"][t][v]["x0_mse"] for v in ("correct_pose", "shuffled_pose", "zero_pose")}
            for t in check.get("timesteps", {})
        }
        for name, check in report["latent_check"].items()
    }
    background = report["background_prompt"]
    out["background_prompt"] = (
        {"fraction_moved_toward": background["fraction_moved_toward"], "pass": report["verdict"]["background_prompt"]}
        if background
        else None
    )
    return out


def figure(table: dict[str, Any], path: Path) -> None:
    import matplotlib.pyplot as plt
    import numpy as np

    sets = [s for s in quality.SETS if all(s in table[v] for v in table)]
    fig, axes = plt.subplots(1, 2 * len(sets), figsize=(4.2 * 2 * len(sets), 3.6), squeeze=False)
    for i, (name, metric) in enumerate((s, m) for s in sets for m in quality.ACCEPTANCE_METRICS):
        ax = axes[0][i]
        variants = list(table)
        mean = np.array([table[v][name][metric]["mean"] for v in variants])
        low = mean - np.array([table[v][name][metric]["min"] for v in variants])
        high = np.array([table[v][name][metric]["max"] for v in variants]) - mean
        ax.bar(variants, mean, yerr=[low, high], capsize=4, color=["C0", "C1", "C2"][: len(variants)])
        ax.set_title(f"{name}: {'silhouette IoU' if metric == 'silhouette_iou' else 'character PSNR (dB)'}")
        if metric == "psnr_char":
            ax.set_ylim(min(mean - low) - 1.0, max(mean + high) + 0.5)
        ax.grid(alpha=0.3, axis="y")
    fig.suptitle("Ablations at equal compute, last three quarters (error bars: min-max over sampling seeds)")
    fig.tight_layout()
    quality._save(fig, path)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    from dynamictrl.io.atomic import write_json_atomic

    started = time.perf_counter()
    reports = {v: score_variant(v, args) for v in args.variants}
    table = {v: gather(r) for v, r in reports.items()}
    train = {}
    for variant in args.variants:
        result = args.runs / variant / "train_result.json"
        config = args.runs / variant / "train_config.json"
        if result.is_file() and config.is_file():
            done, settings = json.loads(result.read_text()), json.loads(config.read_text())
            train[variant] = {
                "steps": done.get("global_step"),
                "batch_size": settings.get("batch_size"),
                "seed": settings.get("seed"),
                "caption_dropout": settings.get("caption_dropout"),
                "pose_control_function": settings.get("pose_control_function", "padaln"),
                "last_loss": done.get("last_loss"),
                "seconds": done.get("seconds"),
            }
    figure(table, args.figure)
    report = {
        "what": "small DynamiCtrl ablations at equal compute (same data, initial folder, steps, schedule, seed): "
        "PadaLN vs direct adding, with vs without text; each variant scored by small_model_quality.py",
        "variants": {v: VARIANTS[v] for v in args.variants},
        "period": PERIOD,
        "training": train,
        "settings": {k: reports[args.variants[0]]["settings"][k] for k in ("clips", "seeds", "steps", "guidance")},
        "results": table,
        "per_variant_json": {v: str(args.work / f"{v}.json") for v in args.variants},
        "figure": str(args.figure),
        "total_s": time.perf_counter() - started,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(args.out, quality._finite(report))
    for variant, row in table.items():
        cells = [
            f"{name} IoU {row[name]['silhouette_iou']['mean']:.3f} PSNRc {row[name]['psnr_char']['mean']:.2f}"
            for name in quality.SETS
            if name in row
        ]
        print(f"{variant:8s} " + " | ".join(cells))
    print(f"wrote {args.out} and {args.figure} in {report['total_s']:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
