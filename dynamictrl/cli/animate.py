"""`dynamictrl animate`: one photo + a pose (or driving) video + a prompt → an MP4 of that person moving."""

from __future__ import annotations

import argparse

from ..options import AnimateOptions, add_arguments, from_args

DESCRIPTION = """Animate the person in --image along a pose sequence.

Give either --pose-video (a rendered DWPose skeleton video whose frame 0 is the reference's own pose, as written
by `dynamictrl pose`) or --driving-video (any video of a person; poses are extracted, aligned to the reference and
cached). The reference image is cover-cropped to --width x --height, and the same crop conditions generation.
Writes OUT (H.264, exactly --frames frames), OUT.json (every setting, seed, versions, timings) and, with
--side-by-side, OUT_side_by_side.mp4 (reference | pose | result); with --driving-video also OUT_pose.mp4 and
OUT_pose.json (the aligned pose sequence that was used and its keypoints); with --mask or --mask-image also
OUT_masked_reference.png (what the model was given). Every value and output location is
checked before any model is loaded."""


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "animate",
        help="animate a photo along a pose or driving video",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(p, AnimateOptions)
    return p


def report(result) -> None:
    for path in result.videos:
        print(f"video: {path}")
    for path in result.side_by_side:
        print(f"side by side: {path}")
    if result.masked_reference:
        print(f"masked reference: {result.masked_reference}")
    if result.pose_video:
        print(f"pose video: {result.pose_video}")
        print(f"pose keypoints: {result.pose_keypoints}")
    print(f"settings: {result.sidecar}")


def run(args: argparse.Namespace) -> int:
    options = from_args(AnimateOptions, args, quiet=args.quiet)  # checked here, before anything heavy is imported
    from ..jobs.animate import animate

    report(animate(options))
    return 0
