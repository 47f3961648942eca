"""`dynamictrl pose`: driving video + reference photo -> aligned pose video, keypoints JSON, cropped reference."""

from __future__ import annotations

import argparse
from pathlib import Path

DESCRIPTION = """Extract poses from a driving video, align them to the person in a reference photo and draw them
exactly as DynamiCtrl was trained. Frame 0 is the reference's own pose. Writes the pose video, the keypoints (JSON)
and the cropped reference that generation must use."""

EPILOG = """examples:
  dynamictrl pose --driving-video dance.mp4 --reference-image me.jpg --out pose.mp4
  dynamictrl pose --driving-video dance.mp4 --reference-image me.jpg --out pose.mp4 --num-frames 37 --fps 16
  dynamictrl pose ... --backend mediapipe --people main --smooth 1.5 --retarget --strict
"""


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    from ..pose.align import ALIGN_MODES, PEOPLE_MODES
    from ..pose.extract import BACKENDS

    p = subparsers.add_parser(
        "pose",
        help="driving video + reference photo -> aligned pose video",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    io = p.add_argument_group("inputs and outputs")
    io.add_argument("--driving-video", required=True, type=Path, help="video whose motion is transferred")
    io.add_argument("--reference-image", required=True, type=Path, help="photo of the person to animate")
    io.add_argument("--out", required=True, type=Path, help="pose video to write (.mp4)")
    io.add_argument("--keypoints", type=Path, help="keypoints JSON to write (default: --out with .json)")
    io.add_argument(
        "--reference-out", type=Path, help="also save the cropped reference image that generation uses (.png)"
    )
    io.add_argument("--height", type=int, default=1360, help="target height in pixels (default: 1360)")
    io.add_argument("--width", type=int, default=768, help="target width in pixels (default: 768)")

    sel = p.add_argument_group("driving frames")
    sel.add_argument(
        "--num-frames",
        type=int,
        help="frames of the pose video, reference pose included (default: every selected driving frame + 1)",
    )
    sel.add_argument("--fps", type=float, help="resample the driving video to this rate first (default: its own)")
    sel.add_argument("--start", type=int, default=0, help="first driving frame, after resampling (default: 0)")
    sel.add_argument("--stride", type=int, default=1, help="take every N-th frame, after resampling (default: 1)")
    short = sel.add_mutually_exclusive_group()
    short.add_argument("--loop", action="store_true", help="too few driving frames: repeat them from the start")
    short.add_argument("--hold-last", action="store_true", help="too few driving frames: repeat the last one")

    ext = p.add_argument_group("extraction")
    # No argparse `choices`: its error is a multi-line usage dump; the library raises a one-line InputError instead.
    ext.add_argument(
        "--backend", default="auto", help="; ".join(f"{k}: {v}" for k, v in BACKENDS.items()) + " (default: auto)"
    )
    ext.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (dwpose only; default: cpu)")
    ext.add_argument("--pose-model-dir", type=Path, help="folder with the DWPose ONNX files (default: hub cache)")
    ext.add_argument("--cache-dir", type=Path, help="pose cache folder (default: ~/.cache/dynamictrl/pose)")
    ext.add_argument("--no-cache", action="store_true", help="extract again and do not store the result")

    al = p.add_argument_group("alignment and checks")
    al.add_argument(
        "--align",
        default="linear",
        help=f"{' or '.join(ALIGN_MODES)}; linear is the reference's global rescale (default), none draws as is",
    )
    al.add_argument(
        "--people", default="all", help=f"{' or '.join(PEOPLE_MODES)}: draw every person (default) or the main one"
    )
    al.add_argument("--smooth", type=float, default=0.0, help="temporal smoothing sigma in frames (default: 0, off)")
    al.add_argument("--retarget", action="store_true", help="rescale each limb to the reference person's proportions")
    al.add_argument("--strict", action="store_true", help="refuse (exit 1) when the pose check warns")
    return p


def run(args: argparse.Namespace) -> int:
    from ..io.media import save_image, write_video
    from ..pose.align import AlignOptions
    from ..pose.prepare import prepare_pose_video
    from ..pose.types import save_keypoints_json

    align = AlignOptions(mode=args.align, people=args.people, smooth=args.smooth, retarget=args.retarget)
    prepared = prepare_pose_video(
        args.reference_image,
        args.driving_video,
        args.height,
        args.width,
        args.num_frames,
        backend=args.backend,
        device=args.device,
        model_dir=args.pose_model_dir,
        fps=args.fps,
        start=args.start,
        stride=args.stride,
        on_short="loop" if args.loop else "hold-last" if args.hold_last else "error",
        strict=args.strict,
        align=align,
        cache_dir=args.cache_dir,
        use_cache=not args.no_cache,
        progress=not args.quiet,
    )
    keypoints_path = args.keypoints or args.out.with_suffix(".json")
    write_video(args.out, prepared.frames, fps=prepared.fps)
    meta = prepared.metadata()
    meta.update(reference_image=str(args.reference_image), driving_video=str(args.driving_video))
    save_keypoints_json(keypoints_path, prepared.keypoints, meta)
    outputs = [str(args.out), str(keypoints_path)]
    if args.reference_out:
        save_image(args.reference_out, prepared.reference_image)
        outputs.append(str(args.reference_out))
    h, w = prepared.reference_image.shape[:2]
    status = "ok" if not prepared.warnings else f"{len(prepared.warnings)} warning(s)"
    print(
        f"{len(prepared.frames)} pose frames, {w}x{h} at {prepared.fps:g} fps, backend {prepared.backend}, "
        f"pose check: {status}{', from cache' if prepared.cache_hit else ''}"
    )
    for path in outputs:
        print(f"wrote {path}")
    return 0
