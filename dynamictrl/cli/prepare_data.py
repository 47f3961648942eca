"""`dynamictrl prepare-data RAW_DIR OUT_DIR`: raw videos → training clips, pose videos, captions, manifest."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..data.captions import CAPTIONERS, DEFAULT_VLM_PROMPT
from ..errors import InputError
from ..io.devices import DTYPES as TORCH_DTYPES

DESCRIPTION = """Cut every video in RAW_DIR to a training clip (a 4k+1 frame bucket, cover-cropped to the size bucket
nearest its aspect ratio), extract and draw its poses as inference draws them, and write OUT_DIR/manifest.jsonl
plus the published layout (videos/, poses/, prompts.txt, video.txt) so both trainers read it. Captions come from
a <name>.txt beside each video or RAW_DIR/captions.csv|captions.jsonl, else from --captioner. Bad videos (corrupt,
too short, nobody or several people, no caption) are skipped and listed in OUT_DIR/report.json. Re-running skips
clips already finished with the same source and settings."""

EPILOG = """examples:
  dynamictrl prepare-data raw/ data/                                  49 frames at 1360x768 (the published recipe)
  dynamictrl prepare-data raw/ data/ --frames 25,49 --sizes 1360x768,768x1360
  dynamictrl prepare-data raw/ data/ --captioner template --caption-template "a woman dancing"
  dynamictrl prepare-data raw/ data/ --captioner qwen2-vl --captioner-model Qwen/Qwen2-VL-7B-Instruct --device cuda
  dynamictrl prepare-data raw/ data/ --mask background                 + mask_video/ for Mask_B01
  dynamictrl prepare-data raw/ data/ --frames 45 --cache-latents --model models/DynamiCtrl --dtype bf16
"""

DTYPES = ("fp32", "bf16", "fp16")
DEFAULT_QWEN_VL = "Qwen/Qwen2-VL-7B-Instruct"


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    from ..pose.extract import BACKENDS

    p = subparsers.add_parser(
        "prepare-data",
        help="raw videos -> training clips, pose videos, captions and a manifest",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("raw_dir", metavar="RAW_DIR", help="folder of source videos (searched recursively)")
    p.add_argument("out_dir", metavar="OUT_DIR", help="output data root")
    g = p.add_argument_group("clips")
    g.add_argument("--frames", default="49", help="frame bucket(s), each 4k+1, comma-separated (default 49)")
    g.add_argument("--height", type=int, default=None, help="clip height (one size bucket, with --width)")
    g.add_argument("--width", type=int, default=None, help="clip width (one size bucket, with --height)")
    g.add_argument("--sizes", default=None, help="size buckets HEIGHTxWIDTH, comma-separated (default 1360x768)")
    g.add_argument("--start", type=int, default=0, help="first source frame of each clip (default 0)")
    g.add_argument("--fps", type=float, default=None, help="resample sources to this frame rate first")
    g.add_argument("--crf", type=int, default=18, help="H.264 quality of the written videos (default 18)")
    g = p.add_argument_group("poses")
    g.add_argument("--pose-backend", choices=list(BACKENDS), default="auto", help="pose extractor (default auto)")
    g.add_argument("--pose-model-dir", default=None, help="folder with the DWPose ONNX files")
    g.add_argument(
        "--device", default="cpu", help="device of the pose extractor, captioner and encoders (default cpu)"
    )
    g = p.add_argument_group("captions and masks")
    g.add_argument(
        "--captioner",
        choices=["none", *CAPTIONERS],
        default="none",
        help="caption videos that have none (default none: they are skipped); qwen2-vl: a vision-language model",
    )
    g.add_argument("--caption-template", default="a person dancing", help="the template captioner's caption")
    g.add_argument(
        "--captioner-model",
        default=None,
        metavar="PATH_OR_ID",
        help=f"Qwen2-VL folder or hub id for --captioner qwen2-vl (default {DEFAULT_QWEN_VL})",
    )
    g.add_argument("--captioner-prompt", default=DEFAULT_VLM_PROMPT, help="what the model is asked about each clip")
    g.add_argument("--captioner-frames", type=int, default=3, help="frames shown per clip, spread over it (default 3)")
    g.add_argument("--captioner-max-new-tokens", type=int, default=128, help="longest caption in tokens (default 128)")
    g.add_argument(
        "--captioner-max-pixels", type=int, default=448 * 448, help="frames are shrunk to this many pixels at most"
    )
    g.add_argument(
        "--captioner-dtype", choices=list(TORCH_DTYPES), default="auto", help="auto: bfloat16 on GPU, float32 on CPU"
    )
    g.add_argument("--id-token", default="", help="token put before each caption in training (cached prompts)")
    g.add_argument("--mask", choices=["none", "background"], default="none", help="write person masks (Mask_B01)")
    g.add_argument("--mask-dir", default=None, help="user mask videos of the same names (e.g. Mask_C01 clothes)")
    g = p.add_argument_group("latent cache")
    g.add_argument("--cache-latents", action="store_true", help="pre-compute VAE moments and T5 embeddings")
    g.add_argument("--model", default=None, help="pipeline folder (vae/, text_encoder/, tokenizer/, transformer/)")
    g.add_argument("--cache-dir", default=None, help="latent cache folder (default OUT_DIR/latents)")
    g.add_argument(
        "--dtype", choices=DTYPES, default="fp32", help="encoder dtype: as the trainer's mixed_precision (fp32=no)"
    )
    g.add_argument("--vae-tiling", action="store_true", help="encode with VAE tiling, as the trainer's vae_tiling")
    return p


def _sizes(args: argparse.Namespace) -> tuple[tuple[int, int], ...]:
    from ..data.prepare import parse_size_buckets

    if (args.height is None) != (args.width is None):
        raise InputError("--height and --width go together; give both, or --sizes")
    if args.height is not None:
        if args.sizes is not None:
            raise InputError("--sizes and --height/--width exclude each other; give one")
        return parse_size_buckets(f"{args.height}x{args.width}")
    return parse_size_buckets(args.sizes or "1360x768")


def _encoders(model: Path, device: str, dtype_name: str, vae_tiling: bool = False):
    """The VAE + T5 of a pipeline folder as the trainer loads them (`data.encoders.load_encoders`): same dtype, same
    tiling, same fingerprints, so the cache keys written here are the ones training reads."""
    import torch

    from ..data.encoders import load_encoders

    for folder in ("vae", "transformer"):
        if not (model / folder).is_dir():
            raise InputError(f"--model {model} has no {folder}/ folder; give a pipeline folder")
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[dtype_name]
    encoders = load_encoders(model, dtype).to(device)
    if vae_tiling:
        encoders.vae.enable_tiling()
    return encoders


def _captioner(args: argparse.Namespace):
    """The captioner the flags ask for (None: clips without a caption are skipped)."""
    from ..data.captions import QwenVLCaptioner, TemplateCaptioner

    if args.captioner != "qwen2-vl":
        if args.captioner_model is not None:
            raise InputError("--captioner-model is used with --captioner qwen2-vl only; add --captioner qwen2-vl")
        return TemplateCaptioner(args.caption_template) if args.captioner == "template" else None
    return QwenVLCaptioner(
        args.captioner_model or DEFAULT_QWEN_VL,
        device=args.device,
        dtype=args.captioner_dtype,
        prompt=args.captioner_prompt,
        frames=args.captioner_frames,
        max_new_tokens=args.captioner_max_new_tokens,
        max_pixels=args.captioner_max_pixels,
    )


def run(args: argparse.Namespace) -> int:
    from ..data.prepare import PrepareOptions, check_cacheable, prepare_data

    quiet = bool(getattr(args, "quiet", False))
    options = PrepareOptions(
        frame_buckets=args.frames,
        size_buckets=_sizes(args),
        start=args.start,
        fps=args.fps,
        pose_backend=args.pose_backend,
        pose_model_dir=Path(args.pose_model_dir) if args.pose_model_dir else None,
        device=args.device,
        mask=args.mask,
        mask_dir=Path(args.mask_dir) if args.mask_dir else None,
        id_token=args.id_token,
        crf=args.crf,
        quiet=quiet,
    )
    encoder = None
    if args.cache_latents:
        if not args.model:
            raise InputError("--cache-latents needs --model, the pipeline folder whose VAE and T5 training uses")
        if not Path(args.model).is_dir():
            raise InputError(f"--model {args.model} is not a folder")
        check_cacheable(options.frame_buckets)
    elif args.model or args.cache_dir or args.vae_tiling:
        raise InputError("--model, --cache-dir and --vae-tiling are used with --cache-latents only; add it")
    captioner = _captioner(args)
    if args.cache_latents:
        encoder = _encoders(Path(args.model), args.device, args.dtype, args.vae_tiling)
    report = prepare_data(
        args.raw_dir, args.out_dir, options, captioner=captioner, latent_encoder=encoder, cache_dir=args.cache_dir
    )
    print(report.summary() + f"; see {Path(args.out_dir) / 'report.json'}")
    return 0 if report.records else 1
