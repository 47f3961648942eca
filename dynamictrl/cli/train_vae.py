"""`dynamictrl train-vae CONFIG.yaml [--key value ...]`: train the VAE of a small model from scratch.

A command of its own rather than a `kind` of `dynamictrl train`: the two share no model, loss or output, so one
config would leave half its keys meaningless for either. It follows `train`'s conventions: every key of
`VaeTrainConfig` is also a flag, flags override the YAML, the config is checked before anything loads, and
`--resume latest` continues exactly.
"""

from __future__ import annotations

import argparse

DESCRIPTION = """Train a CogVideoX VAE from scratch on the clips of a manifest (docs/small_model.md lists every key).

Whole clips of FRAMES (8k+1) frames go through the VAE's own chunked encode and decode, with the reconstruction
loss weighted on the person masks of the manifest. Writes OUTPUT_DIR/vae/ (with the measured latent scaling factor),
vae_report.json (held-out PSNR, whole frames and person region), vae_preview/, metrics.jsonl, train_config.json and
checkpoint-N/ (resumable with --resume latest)."""


def add_parser(subparsers) -> argparse.ArgumentParser:
    from ..training.vae_config import VaeTrainConfig, field_types
    from .train import add_config_flags

    p = subparsers.add_parser(
        "train-vae",
        help="train the VAE of a small model from scratch",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("config", nargs="?", help="YAML config file (keys of VaeTrainConfig)")
    add_config_flags(p, VaeTrainConfig, field_types())
    return p


def run(args: argparse.Namespace) -> int:
    from ..training.vae_config import VaeTrainConfig, load_vae_config
    from .train import config_overrides

    config = load_vae_config(args.config, config_overrides(args, VaeTrainConfig))  # checked before any import

    from ..training.vae import train_vae

    result = train_vae(config)
    report = result.report
    if not report:  # not the main process: it wrote nothing
        return 0
    psnr, character = report.get("psnr"), report.get("psnr_character")
    scores = "no held-out clips" if psnr is None else f"held-out PSNR {psnr:.2f} dB"
    if character is not None:
        scores += f" ({character:.2f} dB on the person)"
    print(f"trained to step {result.global_step}; {scores}; scaling factor {report['scaling_factor']:.4f}")
    print(f"vae: {result.output}")
    return 0
