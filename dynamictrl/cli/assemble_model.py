"""`dynamictrl assemble-model OUT --vae DIR ...`: one pipeline folder from the pieces of a model trained here."""

from __future__ import annotations

import argparse

DESCRIPTION = """Write OUT, a pipeline folder in the released layout (model_index.json, scheduler/, tokenizer/,
text_encoder/, vae/, transformer/ with dynamictrl.json) that `dynamictrl animate --model OUT` and `dynamictrl train
--model OUT` load like the 5B model. Components come from the folders given, else from --from (an earlier
assembled folder), else are made here: the tokenizer trained on --captions, a seeded random frozen T5 of its
vocabulary, a seeded random transformer of --transformer-config. The folder is checked (it must load with every
weight in place, within --max-mb) before it is published."""

EPILOG = """recipe:
  dynamictrl train-vae vae.yaml                                   # runs/vae/vae/
  dynamictrl assemble-model runs/init --vae runs/vae/vae --captions data/manifest.jsonl --pose-render style.json
  dynamictrl train dit.yaml --model runs/init                     # runs/dit/transformer/
  dynamictrl assemble-model runs/model --from runs/init --transformer runs/dit/transformer
"""


def add_parser(subparsers) -> argparse.ArgumentParser:
    from ..models.configs import SMALL_TEXT_PREVIOUS_TOKEN_BIAS, SMALL_VOCAB_SIZE, TRANSFORMER_SIZES
    from ..training.assemble import DEFAULT_MAX_MB

    p = subparsers.add_parser(
        "assemble-model",
        help="assemble a pipeline folder from a trained VAE, tokenizer, text encoder and transformer",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("out", help="the pipeline folder to write")
    p.add_argument("--from", dest="source", metavar="DIR", help="an assembled folder to take missing components from")
    p.add_argument("--vae", metavar="DIR", help="VAE folder (`dynamictrl train-vae` writes OUTPUT_DIR/vae)")
    p.add_argument("--transformer", metavar="DIR", help="trained transformer folder (`dynamictrl train` output)")
    p.add_argument(
        "--transformer-config",
        metavar="SIZE|JSON",
        help=f"a new random transformer: a size ({', '.join(sorted(TRANSFORMER_SIZES))}) or a JSON file of its "
        "config keys (default: small, when no transformer is given)",
    )
    p.add_argument("--tokenizer", metavar="DIR", help="tokenizer folder (spiece.model or tokenizer.json)")
    p.add_argument("--captions", metavar="FILE", help="train the tokenizer on these captions (manifest.jsonl or text)")
    p.add_argument(
        "--vocab-size",
        type=int,
        default=SMALL_VOCAB_SIZE,
        help="most pieces of a trained tokenizer (default: %(default)s)",
    )
    p.add_argument(
        "--text-length",
        type=int,
        metavar="N",
        help="tokens a prompt is padded to (a new transformer's max_text_seq_length; default 48)",
    )
    p.add_argument("--text-encoder", metavar="DIR", help="T5 encoder folder (default: a random one for the tokenizer)")
    p.add_argument(
        "--text-previous-token-bias",
        type=float,
        metavar="B",
        help="make a new random T5 whose last head attends to the previous token with this relative-position bias "
        f"(a new T5's default: {SMALL_TEXT_PREVIOUS_TOKEN_BIAS}; 0: T5's random bias, as the bundled model's first "
        "18,000 steps had); with --from, replaces its T5",
    )
    p.add_argument(
        "--pose-render",
        metavar="STYLE|JSON",
        help="pose drawing of the model: synthetic (as `dynamictrl synth` draws), published, or a PoseStyle JSON file",
    )
    p.add_argument("--image-latent-scale", type=float, help="default: the transformer's, else the VAE scaling factor")
    p.add_argument("--seed", type=int, default=0, help="seed of the random components (default: %(default)s)")
    p.add_argument(
        "--max-mb",
        type=float,
        default=DEFAULT_MAX_MB,
        help="refuse a folder above this size (default: %(default)s MB)",
    )
    p.add_argument("--overwrite", action="store_true", help="replace OUT if it exists")
    p.add_argument("--no-check", dest="check", action="store_false", help="do not load the folder before publishing")
    return p


def run(args: argparse.Namespace) -> int:
    from ..training.assemble import assemble_model

    result = assemble_model(
        args.out,
        vae=args.vae,
        transformer=args.transformer,
        tokenizer=args.tokenizer,
        text_encoder=args.text_encoder,
        text_previous_token_bias=args.text_previous_token_bias,
        source=args.source,
        captions=args.captions,
        transformer_config=args.transformer_config,
        vocab_size=args.vocab_size,
        text_length=args.text_length,
        pose_render=args.pose_render,
        image_latent_scale=args.image_latent_scale,
        seed=args.seed,
        max_mb=args.max_mb,
        overwrite=args.overwrite,
        check=args.check,
    )
    if result.tokenizer is not None:
        t = result.tokenizer
        print(f"tokenizer: {t.vocab_size} pieces; {t.captions} captions, the longest {t.longest} tokens")
    if result.made:
        print(f"made here: {', '.join(result.made)}")
    print(f"model: {result.path} ({result.size.describe()})")
    return 0
