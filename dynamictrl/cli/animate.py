"""`dynamictrl animate`: one photo + a pose (or driving) video + a prompt → an MP4 of that person moving."""

from __future__ import annotations

import argparse
import sys

from ..options import AnimateOptions, JobsOptions, add_arguments, from_args, options_of

DESCRIPTION = """Animate the person in --image along a pose sequence (--image, --prompt and a pose source are
required, on the command line or in every line of --jobs).

Give either --pose-video (a rendered DWPose skeleton video whose frame 0 is the reference's own pose, as written
by `dynamictrl pose`) or --driving-video (any video of a person; poses are extracted, aligned to the reference and
cached). The reference image is cover-cropped to --width x --height, and the same crop conditions generation.
Writes OUT (H.264, exactly --frames frames), OUT.json (every setting, seed, versions, timings) and, with
--side-by-side, OUT_side_by_side.mp4 (reference | pose | result); with --driving-video also OUT_pose.mp4 and
OUT_pose.json (the aligned pose sequence that was used and its keypoints); with --mask or --mask-image also
OUT_masked_reference.png (what the model was given). Every value and output location is
checked before any model is loaded.

Many jobs: --jobs jobs.jsonl runs one job a line (a JSON object of these options, e.g. {"image": "a.jpg",
"pose_video": "p.mp4", "prompt": "...", "seed": 1, "out": "out/a.mp4"}; the flags given beside --jobs are every
line's defaults), under `accelerate launch` shared out over its processes (job i to process i % N), skipping jobs
whose outputs and sidecar are there, and writes one summary (--jobs-summary).

One video over several GPUs: `accelerate launch --num_processes 2 -m dynamictrl animate ... --context-parallel
ulysses` splits the transformer's tokens over the processes (diffusers' context parallelism); every process runs the
same job and the main one writes the outputs."""


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "animate",
        help="animate a photo along a pose or driving video",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(p, AnimateOptions, enforce_required=False)  # --jobs can give them; the options object checks
    add_arguments(p, JobsOptions, enforce_required=False)
    return p


def report(result) -> None:
    if not result.written:  # a --context-parallel process other than the main one: the main one reports
        return
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


def run_many(args: argparse.Namespace) -> int:
    """`--jobs FILE`: every process runs its share; the main one prints the counts (and the failed lines)."""
    batch = from_args(JobsOptions, args)
    defaults = {name: getattr(args, name) for name, _ in options_of(AnimateOptions) if hasattr(args, name)}
    from ..jobs.batch import run_jobs

    result = run_jobs(batch.jobs, defaults, batch.jobs_summary, quiet=args.quiet)
    if result.is_main:
        done, skipped, failed = (result.count(s) for s in ("done", "skipped", "failed"))
        processes = f"{result.num_processes} process" + ("es" if result.num_processes != 1 else "")
        print(f"jobs: {done} done, {skipped} skipped, {failed} failed ({processes})")
        print(f"summary: {result.summary}")
        for record in result.failed:
            print(f"line {record['line']} failed: {record['error']}", file=sys.stderr)
        if failed:
            lines = ", ".join(str(record["line"]) for record in result.failed)
            which = "line" if failed == 1 else "lines"
            print(f"error: {failed} of {len(result.records)} jobs failed ({which} {lines})", file=sys.stderr)
    return 1 if result.failed else 0


def run(args: argparse.Namespace) -> int:
    if getattr(args, "jobs", None) is not None or getattr(args, "jobs_summary", None) is not None:
        return run_many(args)
    options = from_args(AnimateOptions, args, quiet=args.quiet)  # checked here, before anything heavy is imported
    from ..jobs.animate import animate

    report(animate(options))
    return 0
