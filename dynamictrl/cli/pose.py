"""`dynamictrl pose`: driving video + reference image -> aligned pose video, keypoints JSON, cropped reference."""

from __future__ import annotations

import argparse

from ..options import PoseOptions, add_arguments, from_args

DESCRIPTION = """Extract poses from a driving video, align them to the person in a reference image and draw them
exactly as DynamiCtrl was trained. Frame 0 is the reference's own pose. Writes the pose video, the keypoints (JSON)
and the cropped reference that generation must use. Flags are those of `dynamictrl animate --driving-video`
(older spellings --reference-image, --num-frames, --backend, --fps, --cache-dir, --no-cache still work)."""

EPILOG = """examples:
  dynamictrl pose --driving-video dance.mp4 --image me.jpg --out pose.mp4
  dynamictrl pose --driving-video dance.mp4 --image me.jpg --out pose.mp4 --frames 37 --driving-fps 16
  dynamictrl pose ... --pose-backend mediapipe --people main --smooth 1.5 --retarget --strict
"""


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "pose",
        help="driving video + reference image -> aligned pose video",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    # `--fps` meant the driving rate here before the flags were shared with animate (where it is the output rate).
    add_arguments(p, PoseOptions, extra_aliases={"driving_fps": ["--fps"]})
    return p


def run(args: argparse.Namespace) -> int:
    options = from_args(PoseOptions, args, quiet=args.quiet)
    from ..jobs.pose import extract_pose

    result = extract_pose(options)
    prepared = result.prepared
    h, w = prepared.reference_image.shape[:2]
    status = "ok" if not prepared.warnings else f"{len(prepared.warnings)} warning(s)"
    print(
        f"{len(prepared.frames)} pose frames, {w}x{h} at {prepared.fps:g} fps, backend {prepared.backend}, "
        f"pose check: {status}{', from cache' if prepared.cache_hit else ''}"
    )
    for path in result.written:
        print(f"wrote {path}")
    return 0
