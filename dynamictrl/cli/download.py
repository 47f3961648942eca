"""`dynamictrl download`: fetch weights into the standard Hugging Face cache, where `animate` finds them."""

from __future__ import annotations

import argparse

from ..io.hub import BASE_MODEL, DEFAULT_MODEL, KNOWN_MODELS

DESCRIPTION = """Download weights into the Hugging Face cache (HF_HUB_CACHE, default ~/.cache/huggingface/hub).

MODEL is a name below, a hub id (org/name) or several of them. A transformer-only repo (the Mask variants) is
completed with the VAE, T5 text encoder, tokenizer and scheduler of --base; nothing is copied or renamed by hand.

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


def check_names(models: list[str]) -> None:
    """Every MODEL is a known name or an org/name hub id (checked before anything else, offline or not)."""
    from ..errors import InputError
    from ..io.hub import looks_like_repo_id

    for model in models:
        if model.lower() not in KNOWN_MODELS and not looks_like_repo_id(model):
            raise InputError(
                f"unknown model {model!r}: give a name ({', '.join(KNOWN_MODELS)}) or a hub id such as org/name"
            )


def run(args: argparse.Namespace) -> int:
    from ..errors import ModelNotFoundError
    from ..io.hub import fetch_files, hub_offline, known_name
    from ..pipelines.loading import resolve_model

    check_names(args.models)
    if hub_offline():
        names = " ".join(known_name(m) if m.lower() not in KNOWN_MODELS else m for m in args.models)
        raise ModelNotFoundError(
            f"HF_HUB_OFFLINE is set, so nothing can be downloaded; run `HF_HUB_OFFLINE=0 dynamictrl download {names}` "
            "on a machine with internet and copy its hub cache (~/.cache/huggingface/hub) here"
        )
    for model in args.models:
        if KNOWN_MODELS.get(model.lower()) and KNOWN_MODELS[model.lower()].kind == "pose":
            for path in fetch_files(model, cache_dir=args.cache_dir, local_files_only=False):
                print(f"{model}: {path}")
            continue
        resolved = resolve_model(model, args.base, cache_dir=args.cache_dir, local_files_only=False)
        for component, folder in resolved.describe().items():
            print(f"{model} {component}: {folder}")
    return 0
