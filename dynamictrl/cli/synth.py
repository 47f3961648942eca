"""`dynamictrl synth OUT_DIR --n N --seed S`: the synthetic world with ground truth, in the training layout."""

from __future__ import annotations

import argparse

from ..errors import InputError

DESCRIPTION = """Write N clips of the procedural world (animated 2-D characters: varied bodies, skin, hair, clothes and
backgrounds; walking across, dancing, waving, jumping, turning, or by name gesturing in place) into OUT_DIR in the
layout prepare-data writes (videos/, poses/, manifest.jsonl, prompts.txt, video.txt), with every frame's ground
truth: keypoints/, person masks (mask_video/), clothes masks (clothes_mask/) and the attributes each caption was made
from (attributes/). The same --seed gives byte-identical clips. Re-running skips finished clips; a larger --n adds
clips. With --motion-video, real motion extracted from the video by the pose stage drives the characters instead."""

EPILOG = """examples:
  dynamictrl synth data/synth --n 400 --seed 0                      17 frames at 64x64, 8 fps
  dynamictrl synth data/synth --n 100 --motions walk,jump --frames 25 --size 96x64
  dynamictrl synth data/real --n 50 --motion-video dance.mp4          characters driven by real motion
  dynamictrl synth data/plain --n 200 --backgrounds white,black       plain white or black backgrounds only
  dynamictrl synth data/still --n 100 --motions gesture               standing in place, arms and head moving
"""


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    from ..pose.extract import BACKENDS
    from ..synthetic.motion import DEFAULT_MOTIONS, MOTION_NAMES
    from ..synthetic.palette import COLOUR_NAMES

    p = subparsers.add_parser(
        "synth",
        help="synthetic training clips with ground truth (keypoints, masks, captions)",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("out_dir", metavar="OUT_DIR", help="output data root")
    p.add_argument("--n", type=int, required=True, help="number of clips (clip i is sample i of the seed's world)")
    p.add_argument("--seed", type=int, default=0, help="world seed (default 0)")
    p.add_argument("--frames", type=int, default=17, help="frames per clip, 4k+1 and at least 5 (default 17)")
    p.add_argument("--size", default=None, help="HEIGHTxWIDTH, multiples of 16 (default 64x64)")
    p.add_argument("--height", type=int, default=None, help="clip height (with --width, instead of --size)")
    p.add_argument("--width", type=int, default=None, help="clip width (with --height, instead of --size)")
    p.add_argument("--fps", type=float, default=8.0, help="frame rate (default 8)")
    p.add_argument(
        "--motions",
        default=None,
        help=f"comma-separated motions to draw from, of {','.join(MOTION_NAMES)} "
        f"(default {','.join(DEFAULT_MOTIONS)})",
    )
    p.add_argument(
        "--backgrounds",
        default=None,
        metavar="COLOURS",
        help="comma-separated colours: plain backgrounds of these only (default any background; "
        f"colours: {','.join(COLOUR_NAMES)})",
    )
    p.add_argument(
        "--motion-video",
        action="append",
        default=None,
        metavar="PATH",
        help="drive the characters with the motion of this video (repeatable)",
    )
    p.add_argument(
        "--pose-backend",
        choices=list(BACKENDS),
        default="auto",
        help="pose extractor for --motion-video (default auto)",
    )
    p.add_argument("--crf", type=int, default=10, help="H.264 quality of frames and pose videos (default 10)")
    return p


def _size(args: argparse.Namespace) -> tuple[int, int]:
    if (args.height is None) != (args.width is None):
        raise InputError("--height and --width go together; give both, or --size")
    if args.height is not None:
        if args.size is not None:
            raise InputError("--size and --height/--width exclude each other; give one")
        return args.height, args.width
    if args.size is None:
        return 64, 64
    try:
        height, width = (int(v) for v in args.size.lower().split("x"))
    except ValueError:
        raise InputError(f"--size {args.size!r} is not HEIGHTxWIDTH (e.g. 64x64)") from None
    return height, width


def run(args: argparse.Namespace) -> int:
    from ..data.synth import SynthOptions, run_synth

    height, width = _size(args)
    options = SynthOptions(
        n=args.n,
        seed=args.seed,
        frames=args.frames,
        height=height,
        width=width,
        fps=args.fps,
        motions=tuple(args.motions.split(",")) if args.motions else None,
        backgrounds=args.backgrounds,
        motion_videos=tuple(args.motion_video or ()),
        pose_backend=args.pose_backend,
        crf=args.crf,
        quiet=bool(getattr(args, "quiet", False)),
    )
    report = run_synth(args.out_dir, options)
    print(f"{report.summary()}; manifest: {report.out_dir / 'manifest.jsonl'}")
    return 0
