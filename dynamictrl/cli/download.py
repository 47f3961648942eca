"""`dynamictrl download`: fetch weights into the standard Hugging Face cache, where `animate` finds them."""

from __future__ import annotations

import argparse

from ..models.loading import BASE_MODEL, DEFAULT_MODEL, KNOWN_MODELS

DESCRIPTION = """Download weights into the Hugging Face cache (HF_HUB_CACHE, default ~/.cache/huggingface/hub).

MODEL is a name below, a hub id or several of them. A transformer-only repo (the Mask variants) is completed
with the VAE, T5 text encoder, tokenizer and scheduler of --base; nothing is copied or renamed by hand.

names:
""" + "\n".join(f"  {name:22s} {m.repo_id:36s} {m.description}" for name, m in KNOWN_MODELS.items())


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "download",
        help="fetch DynamiCtrl / CogVideoX / DWPose weights into the hub cache",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("models", nargs="*", default=[DEFAULT_MODEL], metavar="MODEL", help="default: dynamictrl")
    p.add_argument("--base", default=BASE_MODEL, help=f"base for transformer-only models (default {BASE_MODEL})")
    p.add_argument("--cache-dir", help="hub cache folder (default: the standard one)")
    return p


def run(args: argparse.Namespace) -> int:
    from ..errors import ModelNotFoundError
    from ..models.loading import fetch, hub_offline, resolve_model

    if hub_offline():
        raise ModelNotFoundError("HF_HUB_OFFLINE is set, so nothing can be downloaded; unset it and run again")
    for model in args.models:
        if model.lower() == "dwpose":
            print(f"{model}: {fetch(model, cache_dir=args.cache_dir, local_files_only=False)}")
            continue
        resolved = resolve_model(model, args.base, cache_dir=args.cache_dir, local_files_only=False)
        for component, folder in resolved.describe().items():
            print(f"{model} {component}: {folder}")
    return 0
