"""`dynamictrl train CONFIG.yaml [--key value ...]`: fine-tune DynamiCtrl (full or LoRA) with accelerate.

Every config key is also a flag (`--max-steps 10`, `--lr 1e-4`, `--no-gradient-checkpointing`); flags override the
YAML. The config is checked before any model loads. Several GPUs: `accelerate launch -m dynamictrl train ...`
with a file from configs/accelerate/.
"""

from __future__ import annotations

import argparse
import dataclasses
import typing

DESCRIPTION = """Fine-tune DynamiCtrl on pose-annotated clips (docs/training.md lists every key).

CONFIG is a YAML file of TrainConfig keys (see configs/train/); every key can also be given, or overridden, as a
flag. Writes OUTPUT_DIR/checkpoint-N/ (resumable with --resume latest), metrics.jsonl, train_config.json and the
final weights: OUTPUT_DIR/transformer/ (full) or OUTPUT_DIR/lora/pytorch_lora_weights.safetensors (LoRA)."""


# Keys the top-level parser already has (`dynamictrl -q train ...`).
GLOBAL_FLAGS = ("quiet",)


def _flag_type(tp: typing.Any):
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    base = args[0] if args and typing.get_origin(tp) is not tuple else tp
    if typing.get_origin(tp) is tuple:
        return str  # comma-separated list
    return base if base in (int, float) else str


def add_config_flags(parser: argparse.ArgumentParser, config_cls: type, types: dict[str, typing.Any]) -> None:
    """One flag per field of the config dataclass `config_cls` (help from its metadata; booleans as --x/--no-x);
    every default is None, so only the flags given override the YAML."""
    from ..training.config import flag_name

    group = parser.add_argument_group("config keys (override the YAML)")
    for f in dataclasses.fields(config_cls):
        if f.name in GLOBAL_FLAGS:
            continue
        names = [flag_name(f.name), *f.metadata.get("flags", ())]
        tp = types[f.name]
        if tp is bool:
            group.add_argument(
                *names, dest=f.name, action=argparse.BooleanOptionalAction, default=None, help=f.metadata["help"]
            )
        else:
            group.add_argument(
                *names, dest=f.name, type=_flag_type(tp), default=None, metavar=f.name.upper(), help=f.metadata["help"]
            )


def config_overrides(args: argparse.Namespace, config_cls: type) -> dict[str, typing.Any]:
    """The flag values of `config_cls`'s fields (None: not given), with the global `--quiet`."""
    overrides = {f.name: getattr(args, f.name, None) for f in dataclasses.fields(config_cls)}
    overrides["quiet"] = True if getattr(args, "quiet", False) else None
    return overrides


def add_parser(subparsers) -> argparse.ArgumentParser:
    from ..training.config import TrainConfig, field_types

    p = subparsers.add_parser(
        "train",
        help="fine-tune DynamiCtrl (full or LoRA) from a YAML config",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("config", nargs="?", help="YAML config file (keys of TrainConfig)")
    add_config_flags(p, TrainConfig, field_types())
    return p


def config_from_args(args: argparse.Namespace):
    from ..training.config import TrainConfig, load_config

    return load_config(args.config, config_overrides(args, TrainConfig))


def run(args: argparse.Namespace) -> int:
    config = config_from_args(args)  # InputError on a bad config, before anything heavy is imported

    from ..training import run as train

    result = train(config)
    if result.losses:
        print(f"trained to step {result.global_step}; last loss {result.losses[-1]:.4f}; weights in {result.output}")
    else:
        print(f"nothing to do: already at step {result.global_step}; weights in {result.output}")
    return 0
