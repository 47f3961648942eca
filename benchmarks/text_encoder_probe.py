"""What the small model's frozen random T5 tells the transformer about a caption's background colour.

The transformer reads text tokens without positions, so a word's role in the caption must be in the T5's output at
that word. For each T5 variant, built from the model folder's tokenizer and T5 sizes with seed 0
(`models.text.build_t5_encoder`):

- `same_word_cosine`: the output at "green" in "a person wearing a green shirt, on a plain red background" against
  the output at "green" in "a person wearing a red shirt, on a plain green background" (1: the word's role is lost);
- `probe_accuracy`: a least-squares linear probe, fitted on the training captions with a plain background, that
  reads the background colour from the output at the word "background", scored on the held-out captions
  (`heldout`, `validation`, `real_motion`; chance is about 1 / colours);
- `cosine_to_random_bias`: mean cosine, over the tokens of the first 200 training captions, between the variant's
  outputs and those of the T5 with its random bias (how far the transformer's input moves).

Variants: `random_bias` (T5's own initialisation, the bundled T5 before the 21,000-step model), `previous_token`
(the default: the last head's bias for distance -1 set to `SMALL_TEXT_PREVIOUS_TOKEN_BIAS`), `both_neighbours`
(head 0 on the previous token, head 1 on the next), `attention_out_x4` (the random T5 with its attention output
projections ×4). `folder_is` names the variant equal to the folder's T5.

    python benchmarks/text_encoder_probe.py --model dynamictrl/assets/small_model --data runs/small/data
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import re
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "text_encoder_probe.json"
PAIR = (
    "a person wearing a green shirt, on a plain red background",
    "a person wearing a red shirt, on a plain green background",
)
HELD_OUT = ("heldout", "validation", "real_motion")


def plain_background_captions(manifest: Path) -> list[tuple[str, str]]:
    """(caption, colour) of every clip in `manifest` whose background is plain."""
    rows = []
    for line in manifest.read_text().splitlines():
        caption = json.loads(line)["caption"]
        if match := re.search(r"a plain (\w+) background", caption):
            rows.append((caption, match.group(1)))
    return rows


def variants(vocab: int, config: dict[str, Any]) -> dict[str, Any]:
    import torch

    from dynamictrl.models.configs import SMALL_TEXT_PREVIOUS_TOKEN_BIAS
    from dynamictrl.models.text import build_t5_encoder, relative_position_bucket

    random_bias = build_t5_encoder(vocab, config, seed=0, previous_token_bias=0.0)
    both = copy.deepcopy(random_bias)
    bias = both.encoder.block[0].layer[0].SelfAttention.relative_attention_bias.weight
    scaled = copy.deepcopy(random_bias)
    with torch.no_grad():
        for head, distance in ((0, -1), (1, 1)):
            bias[relative_position_bucket(both.config, distance), head] = SMALL_TEXT_PREVIOUS_TOKEN_BIAS
        for block in scaled.encoder.block:
            block.layer[0].SelfAttention.o.weight *= 4
    return {
        "random_bias": random_bias,
        "previous_token": build_t5_encoder(vocab, config, seed=0),
        "both_neighbours": both,
        "attention_out_x4": scaled,
    }


def encode(encoder: Any, tokenizer: Any, captions: list[str], length: int) -> tuple[Any, Any]:
    """(ids `[N, L]`, outputs `[N, L, D]`) as the pipeline pads prompts."""
    import torch

    ids = tokenizer(captions, padding="max_length", max_length=length, truncation=True, return_tensors="pt")
    with torch.no_grad():
        return ids, encoder(input_ids=ids.input_ids, attention_mask=ids.attention_mask).last_hidden_state


def at_word(tokenizer: Any, input_ids: Any, outputs: Any, word: str) -> np.ndarray:
    """`[N, D]`: each caption's output at its last piece `▁word`."""
    rows = []
    for i, row in enumerate(input_ids):
        pieces = tokenizer.convert_ids_to_tokens(row)
        where = [j for j, p in enumerate(pieces) if p == "▁" + word]
        rows.append(outputs[i, where[-1]].numpy())
    return np.stack(rows)


def probe(train: np.ndarray, train_y: np.ndarray, test: np.ndarray, test_y: np.ndarray, classes: int) -> float:
    design = np.c_[train, np.ones(len(train))]
    weights = np.linalg.lstsq(design, np.eye(classes)[train_y], rcond=None)[0]
    return float((np.argmax(np.c_[test, np.ones(len(test))] @ weights, axis=1) == test_y).mean())


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(ROOT / "dynamictrl" / "assets" / "small_model"))
    parser.add_argument("--data", type=Path, default=Path("runs/small/data"), help="holds train/ and held-out sets")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from transformers import AutoTokenizer, T5EncoderModel

    from dynamictrl.io.atomic import write_json_atomic
    from dynamictrl.models.configs import SMALL_TEXT_ENCODER_CONFIG

    for name in ("train", *HELD_OUT):
        if not (args.data / name / "manifest.jsonl").is_file():
            raise SystemExit(f"--data {args.data} has no {name}/manifest.jsonl: write it with recipes/small_model.sh")
    torch.set_num_threads(1)
    model = Path(args.model)
    tokenizer = AutoTokenizer.from_pretrained(model / "tokenizer")
    folder_t5 = T5EncoderModel.from_pretrained(model / "text_encoder").eval()
    config = {k: getattr(folder_t5.config, k) for k in SMALL_TEXT_ENCODER_CONFIG}
    length = json.loads((model / "transformer" / "config.json").read_text())["max_text_seq_length"]
    train = plain_background_captions(args.data / "train" / "manifest.jsonl")
    test = [row for name in HELD_OUT for row in plain_background_captions(args.data / name / "manifest.jsonl")]
    colours = sorted({c for _, c in train})
    test = [row for row in test if row[1] in colours]
    train_y = np.array([colours.index(c) for _, c in train])
    test_y = np.array([colours.index(c) for _, c in test])
    sample = [json.loads(line)["caption"] for line in (args.data / "train" / "manifest.jsonl").open()][:200]

    built = variants(len(tokenizer), config)
    state = folder_t5.state_dict()
    folder_is = [n for n, e in built.items() if all(torch.equal(state[k], v) for k, v in e.state_dict().items())]
    sample_ids, reference = encode(built["random_bias"], tokenizer, sample, length)
    mask = sample_ids.attention_mask.bool()
    results = {}
    for name, encoder in built.items():
        ids, out = encode(encoder, tokenizer, list(PAIR), length)
        shirt, ground = at_word(tokenizer, ids.input_ids, out, "green")  # the only "green" of each
        train_ids, train_out = encode(encoder, tokenizer, [c for c, _ in train], length)
        test_ids, test_out = encode(encoder, tokenizer, [c for c, _ in test], length)
        _, sample_out = encode(encoder, tokenizer, sample, length)
        results[name] = {
            "same_word_cosine": cosine(shirt, ground),
            "probe_accuracy": probe(
                at_word(tokenizer, train_ids.input_ids, train_out, "background"),
                train_y,
                at_word(tokenizer, test_ids.input_ids, test_out, "background"),
                test_y,
                len(colours),
            ),
            "cosine_to_random_bias": float(torch.cosine_similarity(sample_out[mask], reference[mask], dim=-1).mean()),
        }
        print(name, json.dumps({k: round(v, 3) for k, v in results[name].items()}))
    majority = float(np.mean(test_y == np.bincount(train_y).argmax()))
    write_json_atomic(
        args.out,
        {
            "model": str(args.model),
            "folder_is": folder_is[0] if folder_is else None,
            "probe": {"train_captions": len(train), "test_captions": len(test), "colours": colours},
            "majority_class_accuracy": majority,
            "pair": list(PAIR),
            "variants": results,
        },
    )
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
