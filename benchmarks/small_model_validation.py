"""Which small-model candidate to keep: x0 error and the background-prompt test on the validation set.

The recipe's cycles (docs/small_model.md) are adopted or not on a set none of the benchmarks score: `dynamictrl synth
--seed 3000` (12 clips; `--data DIR` holds it as `validation/`). For each `--model` folder, with the code of
`small_model_quality.py` (same generation, same metrics):

- `x0_error`: the latent check's x0 error of the one-step prediction with the correct pose at `--timesteps`,
  with each clip's whole reference (`whole`) and with its background masked out (`masked`, as the
  background-prompt test and Mask_B01 feed it);
- `background_prompt`: the background-prompt test on every validation clip (cases moved toward the named colour,
  mean shift, per colour).

The rule (fixed before a candidate is trained): a candidate replaces the incumbent when its x0 error is at most 1%
above the incumbent's at every timestep, whole and masked, and its background test moves at least as many cases
toward the named colour with at least the same mean shift. `adopt` in the JSON applies it to each `--model` against
the one before it (the recipe's cycles in order: each candidate against the model it was trained from).

    dynamictrl assemble-model runs/small/candidate --from dynamictrl/assets/small_model \
        --transformer runs/small/dit8/transformer            # a finished cycle's weights as a folder
    python benchmarks/small_model_validation.py --model dynamictrl/assets/small_model --model runs/small/candidate
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import small_model_quality as quality  # noqa: E402  (the benchmark's generation and metrics, one home)

RESULTS = Path(__file__).resolve().parent / "results" / "small_model_validation.json"
X0_TOLERANCE = 0.01  # a candidate's x0 error may be at most 1% above the incumbent's


@dataclass
class MaskedClip(quality.Clip):
    """A validation clip whose reference has its background masked out (black outside frame 0's person mask)."""

    @property
    def reference(self) -> np.ndarray:
        from dynamictrl.pose.segmentation import apply_mask

        return apply_mask(self.frames[0], self.mask[0].astype(np.uint8) * 255)


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model",
        action="append",
        required=True,
        help="a pipeline folder (repeat, in order; each is judged against the one before)",
    )
    parser.add_argument("--data", type=Path, default=Path("runs/small/data"), help="holds validation/")
    parser.add_argument("--out", type=Path, default=RESULTS, help="the JSON to write")
    parser.add_argument("--clips", type=int, default=12, help="validation clips (the first N)")
    parser.add_argument("--timesteps", default="200,500,800", help="timesteps of the x0 check")
    parser.add_argument("--bg-colours", type=int, default=3, help="colours named per clip in the background test")
    parser.add_argument("--seed", type=int, default=0, help="sampling seed of the background test")
    parser.add_argument("--batch", type=int, default=3, help="videos per pipeline call")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    args.timesteps = quality._int_list(args.timesteps, "--timesteps")
    for folder in args.model:
        if not (Path(folder) / "model_index.json").is_file():
            raise SystemExit(f"--model {folder} is not a pipeline folder (no model_index.json)")
    if not (args.data / "validation" / "attributes").is_dir():
        raise SystemExit(f"--data {args.data} has no validation/: dynamictrl synth {args.data}/validation --seed 3000")
    if args.clips < 2 or args.batch < 1 or args.threads < 1 or args.bg_colours < 1:
        raise SystemExit("--clips needs at least 2, --batch, --threads and --bg-colours at least 1")
    # what small_model_quality's helpers read
    args.seeds, args.steps, args.guidance = [args.seed], None, None
    return args


def score_model(folder: str, clips: list[quality.Clip], args: argparse.Namespace, progress: Any) -> dict[str, Any]:
    """x0 error (whole and masked references) and the background test of one candidate."""
    import torch

    model, options = quality.load_model(argparse.Namespace(**{**vars(args), "model": folder}), clips[0])
    torch.set_num_threads(args.threads)
    model.pipeline.vae.disable_slicing()  # batches decode at once (small_model_quality.main)
    masked = [MaskedClip(**vars(c)) for c in clips]
    x0 = {}
    for name, group in (("whole", clips), ("masked", masked)):
        check = quality.latent_check(model, group, options, args.timesteps, args.batch)
        x0[name] = {str(t): check["timesteps"][str(t)]["correct_pose"]["x0_mse"] for t in args.timesteps}
    timings: dict[str, Any] = {"generation_s": []}
    background, _ = quality.background_test(clips, model, options, args, progress, timings)
    moved = sum(c["moved_toward"] for c in background["cases"])
    return {
        "model": folder,
        "x0_error": x0,
        "background_prompt": {
            "cases": len(background["cases"]),
            "moved_toward": moved,
            "mean_shift_toward": background["mean_shift_toward"],
            "per_colour": background["per_colour"],
        },
    }


def adopt(incumbent: dict[str, Any], candidate: dict[str, Any]) -> dict[str, Any]:
    """The rule of the module docstring, with the ratios it compared."""
    ratios = {
        name: {t: candidate["x0_error"][name][t] / incumbent["x0_error"][name][t] for t in incumbent["x0_error"][name]}
        for name in incumbent["x0_error"]
    }
    x0_ok = all(r <= 1 + X0_TOLERANCE for per_t in ratios.values() for r in per_t.values())
    a, b = incumbent["background_prompt"], candidate["background_prompt"]
    background_ok = b["moved_toward"] >= a["moved_toward"] and b["mean_shift_toward"] >= a["mean_shift_toward"]
    return {"x0_ratio": ratios, "x0_ok": x0_ok, "background_ok": background_ok, "adopt": x0_ok and background_ok}


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from tqdm.auto import tqdm

    from dynamictrl.io.atomic import write_json_atomic

    torch.set_num_threads(args.threads)
    clips = quality.load_clips(args.data / "validation", args.clips)
    planned = len(args.model) * sum(1 + len(quality.background_colours(c, args.bg_colours)) for c in clips)
    progress = tqdm(total=planned, unit="video", desc="validation", disable=args.quiet)
    start = time.perf_counter()
    results = [score_model(folder, clips, args, progress) for folder in args.model]
    progress.close()
    report = {
        "what": "x0 error (correct pose) and background-prompt test of each candidate on the validation set",
        "data": str(args.data / "validation"),
        "clips": [c.name for c in clips],
        "timesteps": args.timesteps,
        "seed": args.seed,
        "models": results,
        "adopt": {new["model"]: adopt(old, new) for old, new in zip(results, results[1:], strict=False)},
        "wall_s": time.perf_counter() - start,
    }
    write_json_atomic(args.out, report)
    for r in results:
        x0 = " ".join(f"{n} " + "/".join(f"{v:.4f}" for v in r["x0_error"][n].values()) for n in r["x0_error"])
        bg = r["background_prompt"]
        print(
            f"{r['model']}: x0 {x0}; background {bg['moved_toward']}/{bg['cases']} moved, "
            f"shift {bg['mean_shift_toward']:.1f}"
        )
    for name, verdict in report["adopt"].items():
        print(f"{name}: {'adopt' if verdict['adopt'] else 'keep the incumbent'} {json.dumps(verdict['x0_ratio'])}")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
