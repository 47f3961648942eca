"""`dynamictrl demo`: animate the bundled example with a tiny random model, end to end, on any machine.

The model has the DynamiCtrl architecture and the released folder layout but random weights (nothing trained
runs on a CPU in seconds), so the generated video is noise: the demo shows that the whole path works (model
resolution and loading, pose video, pipeline, video writing), not what DynamiCtrl can do. For real
results: `dynamictrl download` on a GPU machine, then `dynamictrl animate`.
"""

from __future__ import annotations

import argparse
from importlib import resources
from pathlib import Path

# Lower case: the tiny model's tokenizer was trained on a small lower-case corpus (a real T5 takes any text).
DEMO_PROMPT = "a smiling woman with short blonde hair in an orange suit raising her arms"
LABEL = "TINY RANDOM MODEL (untrained weights): the output shows the pipeline working, not DynamiCtrl quality"


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "demo",
        help="animate the bundled example with a tiny random model (no download)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--out-dir", type=Path, default=Path("outputs") / "demo", help="default: outputs/demo")
    p.add_argument("--frames", type=int, default=25, help="frames, 4k+1, at most 25 (default 25)")
    p.add_argument("--steps", type=int, default=10, help="denoising steps (default 10)")
    p.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
    return p


def run(args: argparse.Namespace) -> int:
    from skimage import data

    from ..inference import AnimateOptions, animate
    from ..io.cache import cache_root
    from ..io.media import save_image
    from ..testing import ensure_tiny_model

    out_dir = args.out_dir
    reference = save_image(out_dir / "reference.png", data.astronaut())
    model = ensure_tiny_model(cache_root())
    with resources.as_file(resources.files("dynamictrl") / "assets" / "demo_pose.mp4") as pose_video:
        options = AnimateOptions(
            image=reference,
            pose_video=pose_video,
            prompt=DEMO_PROMPT,
            out=out_dir / "demo.mp4",
            model=str(model),
            num_frames=args.frames,
            height=320,
            width=240,
            steps=args.steps,
            seed=args.seed,
            fps=8,
            side_by_side=True,
            device="cpu",
            note=LABEL,
            quiet=args.quiet,
        )
        result = animate(options)
    print(LABEL)
    print(f"reference: {reference} (NASA portrait, public domain, from scikit-image)")
    from .animate import report

    report(result)
    return 0
