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

from ..options import DemoOptions, add_arguments, from_args

# Lower case: the tiny model's tokenizer was trained on a small lower-case corpus (a real T5 takes any text).
DEMO_PROMPT = "a smiling woman with short blonde hair in an orange suit raising her arms"
LABEL = "TINY RANDOM MODEL (untrained weights): the output shows the pipeline working, not DynamiCtrl quality"
DEMO_SIZE = (320, 240)  # (height, width): the bundled pose video's size


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "demo",
        help="animate the bundled example with a tiny random model (no download)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(p, DemoOptions)
    return p


def reference_image() -> Path:
    """The public-domain NASA astronaut portrait that scikit-image ships."""
    from skimage import data

    return Path(data.__file__).parent / "astronaut.png"


def run(args: argparse.Namespace) -> int:
    demo = from_args(DemoOptions, args, quiet=args.quiet)
    from ..io.cache import cache_root
    from ..jobs.animate import animate
    from ..options import AnimateOptions
    from ..testing import ensure_tiny_model

    with resources.as_file(resources.files("dynamictrl") / "assets" / "demo_pose.mp4") as pose_video:
        options = AnimateOptions(
            image=reference_image(),
            pose_video=pose_video,
            prompt=DEMO_PROMPT,
            out=demo.out_dir / "demo.mp4",
            model=str(ensure_tiny_model(cache_root())),
            num_frames=demo.num_frames,
            height=DEMO_SIZE[0],
            width=DEMO_SIZE[1],
            steps=demo.steps,
            seed=demo.seed,
            fps=8.0,
            side_by_side=True,
            device="cpu",
            note=LABEL,
            quiet=demo.quiet,
        )
        result = animate(options)
    print(LABEL)
    print(f"reference: {options.image} (NASA portrait, public domain, from scikit-image)")
    from .animate import report

    report(result)
    return 0
