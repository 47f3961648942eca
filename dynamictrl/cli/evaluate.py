"""`dynamictrl evaluate`: metrics of generated videos against ground truth under a named protocol, with a report."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..evaluation.protocols import DEFAULT_PROTOCOL, METRIC_GROUPS, PROTOCOLS

DESCRIPTION = """\
Compare each generated video with the ground-truth video of the same name (video files, or folders of frame
images) and write metrics.json plus report.html into --out.

Protocols (docs/evaluation.md):
  dynamictrl  DynamiCtrl's published defaults: drop generated frame 0 (the reference photo's pose), pair the rest with
              the leading ground-truth frames, compare at the generated size; MAE, PSNR, RGB SSIM, LPIPS on
              [-1, 1], FID, FID-VID, StyleGAN-V FVD on 16-frame clips.
  disco       the DisCo TikTok protocol most tables use: frames 1:1, generated resized to the ground truth; DisCo
              L1, PSNR and its legacy overflow PSNR, gray SSIM, VGG-LPIPS on [0, 1], FID, FID-VID, DisCo FVD.

Metric groups: frame (L1/MAE, PSNR, legacy PSNR, SSIM), lpips, fid, fid_vid, fvd, pose (pose fidelity with
the pose stage), temporal (flicker). Weights that are missing make only their metric unavailable. FID on fewer
than 2048 frames per set is marked unreliable (fid_reliable: false in metrics.json).
"""


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "evaluate",
        help="metrics and a report for generated videos against ground truth",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--generated", required=True, type=Path, metavar="DIR", help="folder of generated videos")
    parser.add_argument(
        "--ground-truth",
        "--reference",
        dest="ground_truth",
        required=True,
        type=Path,
        metavar="DIR",
        help="folder of ground-truth videos, named like the generated ones (--reference is the old name)",
    )
    parser.add_argument(
        "--out",
        required=True,
        type=Path,
        metavar="REPORT_DIR",
        help="where metrics.json and report.html go: a new or existing folder outside --generated and --ground-truth",
    )
    parser.add_argument(
        "--protocol",
        default=DEFAULT_PROTOCOL,
        choices=list(PROTOCOLS),
        help=f"evaluation protocol (default: {DEFAULT_PROTOCOL})",
    )
    parser.add_argument(
        "--metrics",
        default=",".join(METRIC_GROUPS),
        metavar="LIST",
        help=f"comma-separated metric groups (default: all of {','.join(METRIC_GROUPS)})",
    )
    parser.add_argument(
        "--poses",
        type=Path,
        metavar="DIR",
        help="keypoint JSON of the pose videos that drove generation (<name>_pose.json as `animate` writes it, or "
        "<name>.json as `pose` does); default: poses are re-extracted from the ground-truth videos",
    )
    parser.add_argument(
        "--weights-dir",
        type=Path,
        metavar="DIR",
        help="folder with metric weight files (also $DYNAMICTRL_METRIC_WEIGHTS and the torch hub cache are searched)",
    )
    parser.add_argument("--pose-backend", default="auto", help="pose extractor of the pose stage (default: auto)")
    parser.add_argument(
        "--device", default="cpu", help="torch device for the metric networks: auto, cpu, cuda, cuda:N (default: cpu)"
    )
    parser.add_argument(
        "--worst", type=int, default=3, metavar="K", help="worst frames shown in the report (default: 3)"
    )
    return parser


def run(args: argparse.Namespace) -> int:
    import os
    import sys

    from ..errors import InputError
    from ..evaluation.evaluator import EvaluationConfig, evaluate
    from ..evaluation.protocols import get_protocol
    from ..evaluation.report import check_report_dir, write_report
    from ..io.devices import parse_device

    groups = tuple(g.strip() for g in args.metrics.split(",") if g.strip())
    if not groups:
        raise InputError("--metrics is empty; give at least one metric group")
    if args.worst < 0:
        raise InputError(f"--worst must be >= 0, got {args.worst}")
    parse_device(args.device)  # the spelling, before torch is imported to find the device
    # Before any network is loaded or video decoded: a report folder that cannot be written fails now.
    inputs = {"--generated": Path(args.generated).expanduser(), "--ground-truth": Path(args.ground_truth).expanduser()}
    check_report_dir(args.out, inputs)
    config = EvaluationConfig(
        generated_dir=args.generated,
        ground_truth_dir=args.ground_truth,
        protocol=get_protocol(args.protocol),
        poses_dir=args.poses,
        weights_dir=args.weights_dir,
        device=args.device,
        metrics=groups,
        pose_backend=args.pose_backend,
        progress=os.environ.get("TQDM_DISABLE") != "1",
    )
    result = evaluate(config)
    written = write_report(result, args.out, worst=args.worst)
    data = result.data
    aggregate = data["aggregate"]
    print(
        f"protocol {data['protocol']['name']}: {aggregate['videos_evaluated']} video(s), "
        f"{aggregate['frames_evaluated']} frame(s)"
    )
    for key, value in aggregate.items():
        if isinstance(value, float):
            mark = f" (unreliable: {aggregate['fid_note']})" if key == "fid" and "fid_note" in aggregate else ""
            print(f"  {key:<20} {value:.6g}{mark}")
    pose = aggregate.get("pose")
    if pose:
        print(f"  {'pose pck@0.1':<20} {pose.get('pck@0.1')}")
    for metric, message in data["unavailable"].items():
        print(f"  {metric:<20} not computed: {message}")
    errors = [p for p in data["problems"] if p["severity"] == "error"]
    if errors:
        print(f"{len(errors)} file problem(s); see {written['report']}")
    print(f"wrote {written['metrics']} and {written['report']}")
    if aggregate["videos_evaluated"] == 0:
        print("error: no video pair could be evaluated; see the problems in the report", file=sys.stderr)
        return 1
    return 0
