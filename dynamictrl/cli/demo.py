"""`dynamictrl demo`: the bundled small model animates a character it has never seen, beside the ground truth.

The small model (about 30 MB, docs/small_model.md) was trained on this project's 2-core CPU, with this project's
trainer, on procedurally drawn 64-px characters (`dynamictrl synth`). It shows pose-guided animation working end to
end on any machine; it is not the released 5B DynamiCtrl, which needs `dynamictrl download` and a GPU.

--example synthetic: a held-out character doing a held-out motion; --example real: a held-out character driven
by the motion of a real dance video. Outputs in --out-dir: demo.mp4 (the animation), demo_comparison.mp4
(reference | pose | result | ground truth, enlarged 4x), reference.png, pose.mp4, ground_truth.mp4, demo.json.
"""

from __future__ import annotations

import argparse

from ..options import DemoOptions, add_arguments, from_args


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "demo",
        help="animate a held-out synthetic character with the bundled small model (no download)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(p, DemoOptions)
    return p


def run(args: argparse.Namespace) -> int:
    demo = from_args(DemoOptions, args, quiet=args.quiet)
    from ..jobs.demo import TINY_MODEL_LABEL, bundled_model, run_demo

    model, label = demo.model, None
    if model is None:
        found = bundled_model()
        if found is None:  # a checkout without the bundled small model: the tiny random one, labelled
            from ..io.cache import cache_root
            from ..testing import ensure_tiny_model

            found, label = ensure_tiny_model(cache_root()), TINY_MODEL_LABEL
        model = str(found)
    result = run_demo(demo, model, label)
    print(result.label)
    print(f"prompt: {result.caption}")
    for name, path in result.written.items():
        print(f"{name.replace('_', ' ')}: {path}")
    return 0
