"""`dynamictrl animate`: one photo + a pose (or driving) video + a prompt → an MP4 of that person moving."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..models.loading import BASE_MODEL, DEFAULT_MODEL, KNOWN_MODELS
from ..pipelines.acceleration import CACHE_METHODS, DTYPES, OFFLOAD_MODES

DESCRIPTION = """Animate the person in --image along a pose sequence.

Give either --pose-video (a rendered DWPose skeleton video whose frame 0 is the reference's own pose, as written
by `dynamictrl pose`) or --driving-video (any video of a person; poses are extracted, aligned to the reference and
cached). The reference image is cover-cropped to --width x --height, and the same crop conditions generation.
Writes OUT (H.264, exactly --frames frames), OUT.json (every setting, seed, versions, timings) and, with
--side-by-side, OUT_side_by_side.mp4 (reference | pose | result); with --driving-video also OUT_pose.mp4 and
OUT_pose.json (the aligned pose sequence that was used and its keypoints)."""


def _models_help() -> str:
    return "; ".join(f"{name}: {m.description}" for name, m in KNOWN_MODELS.items() if name != "dwpose")


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "animate",
        help="animate a photo along a pose or driving video",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    io = p.add_argument_group("inputs and output")
    io.add_argument("--image", type=Path, required=True, help="reference photo of the person")
    src = io.add_mutually_exclusive_group(required=True)
    src.add_argument("--pose-video", type=Path, help="rendered pose video (frame 0 = the reference's pose)")
    src.add_argument("--driving-video", type=Path, help="video of a person whose motion to copy")
    io.add_argument("--prompt", required=True, help="describe the person's appearance AND the background")
    io.add_argument("--negative-prompt", default="", help='negative prompt (default: "", as published)')
    io.add_argument("--out", type=Path, help="output .mp4 (default: outputs/<image>_<pose>_seed<seed>.mp4)")
    io.add_argument("--side-by-side", action="store_true", help="also write OUT_side_by_side.mp4")

    gen = p.add_argument_group("generation")
    gen.add_argument("--model", default=DEFAULT_MODEL, help=f"local folder, hub id or name ({_models_help()})")
    gen.add_argument("--base", default=BASE_MODEL, help="where missing VAE/T5/tokenizer/scheduler come from")
    gen.add_argument("--frames", type=int, default=37, help="frames to generate, 4k+1 (default 37)")
    gen.add_argument("--height", type=int, default=1360, help="output height, multiple of 16 (default 1360)")
    gen.add_argument("--width", type=int, default=768, help="output width, multiple of 16 (default 768)")
    gen.add_argument("--steps", type=int, default=25, help="denoising steps (default 25)")
    gen.add_argument("--guidance", type=float, default=3.0, help="text guidance scale (default 3.0)")
    gen.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
    gen.add_argument(
        "--fps",
        type=float,
        help="frame rate of the written video (default: the pose/driving video's, so the motion plays at real "
        "speed; the published script always wrote 16)",
    )
    gen.add_argument("--num-videos", type=int, default=1, help="videos per run, different noise (default 1)")
    gen.add_argument(
        "--image-latent-scale",
        type=float,
        default=None,
        help="scale of the reference-image latent; default: the published pipeline's (1.0 for the 1.5 VAE). "
        "Training used 0.7, stock diffusers 1/0.7",
    )

    mem = p.add_argument_group("memory and speed")
    mem.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default auto)")
    mem.add_argument("--dtype", default="auto", choices=DTYPES, help="auto: bfloat16 on GPU, float32 on CPU")
    mem.add_argument(
        "--offload",
        default="none",
        choices=OFFLOAD_MODES,
        help="CPU offload: model (one model on the GPU at a time) or sequential (least memory, slowest)",
    )
    mem.add_argument("--no-vae-tiling", dest="vae_tiling", action="store_false", help="decode in one piece")
    mem.add_argument("--no-vae-slicing", dest="vae_slicing", action="store_false", help="decode the batch at once")
    mem.add_argument("--cache", default="none", choices=CACHE_METHODS, help="diffusers step cache (default none)")
    mem.add_argument("--cache-threshold", type=float, help="first-block cache threshold (default 0.1)")
    mem.add_argument("--attention-backend", help="diffusers attention backend, e.g. flash, _flash_3, sage")

    pose = p.add_argument_group("pose extraction (with --driving-video)")
    pose.add_argument("--pose-backend", default="auto", help="dwpose, mediapipe or auto (default auto)")
    pose.add_argument("--driving-fps", type=float, help="resample the driving video to this rate first")
    short = pose.add_mutually_exclusive_group()
    short.add_argument("--loop", dest="on_short", action="store_const", const="loop", help="loop a short video")
    short.add_argument(
        "--hold-last", dest="on_short", action="store_const", const="hold-last", help="hold its last pose"
    )
    pose.add_argument("--strict", action="store_true", help="refuse to generate when the pose check warns")
    pose.set_defaults(on_short="error")
    return p


def default_out(args: argparse.Namespace) -> Path:
    pose = args.pose_video or args.driving_video
    return Path("outputs") / f"{Path(args.image).stem}_{Path(pose).stem}_seed{args.seed}.mp4"


def options_from_args(args: argparse.Namespace):
    from ..inference import AnimateOptions

    return AnimateOptions(
        image=args.image,
        prompt=args.prompt,
        out=args.out or default_out(args),
        pose_video=args.pose_video,
        driving_video=args.driving_video,
        negative_prompt=args.negative_prompt,
        model=args.model,
        base=args.base,
        num_frames=args.frames,
        height=args.height,
        width=args.width,
        steps=args.steps,
        guidance=args.guidance,
        seed=args.seed,
        fps=args.fps,
        num_videos=args.num_videos,
        device=args.device,
        dtype=args.dtype,
        offload=args.offload,
        vae_tiling=args.vae_tiling,
        vae_slicing=args.vae_slicing,
        image_latent_scale=args.image_latent_scale,
        cache=args.cache,
        cache_threshold=args.cache_threshold,
        attention_backend=args.attention_backend,
        side_by_side=args.side_by_side,
        pose_backend=args.pose_backend,
        driving_fps=args.driving_fps,
        on_short=args.on_short,
        strict_pose=args.strict,
        quiet=args.quiet,
    )


def report(result) -> None:
    for path in result.videos:
        print(f"video: {path}")
    for path in result.side_by_side:
        print(f"side by side: {path}")
    if result.pose_video:
        print(f"pose video: {result.pose_video}")
        print(f"pose keypoints: {result.pose_keypoints}")
    print(f"settings: {result.sidecar}")


def run(args: argparse.Namespace) -> int:
    from ..inference import animate

    result = animate(options_from_args(args))
    report(result)
    return 0
