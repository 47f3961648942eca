"""The text side of a model trained here, from its data: a tokenizer of the manifest's captions and a random T5.

`train_tokenizer(manifest, "tokenizer/")` trains a T5 SentencePiece tokenizer on the captions (in milliseconds;
`models.text.train_t5_tokenizer` says how) and reports how long the captions are in tokens, so the transformer's
`max_text_seq_length` can be chosen to fit them; `write_text_encoder("tokenizer/", "text_encoder/")` writes a
seeded random frozen T5 encoder of that vocabulary. `dynamictrl assemble-model --captions MANIFEST` calls both.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..models.configs import SMALL_TEXT_LENGTH, SMALL_VOCAB_SIZE

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TokenizerReport:
    """What `train_tokenizer` made: where, how many pieces, and the captions' lengths in tokens (with `</s>`)."""

    folder: Path
    vocab_size: int
    captions: int
    longest: int  # tokens of the longest caption
    truncated: int  # captions longer than max_length (the pipeline cuts them)
    max_length: int


def read_captions(source: str | Path | Sequence[str], id_token: str = "") -> list[str]:
    """Captions from a manifest (`*.jsonl`, data/manifest.py format), a text file (one per line) or a list.

    `id_token` is prepended as the transformer trainer prepends it (`TrainConfig.id_token`), so the tokenizer
    sees the prompts the trainer encodes.
    """
    if isinstance(source, (str, Path)) and not (isinstance(source, str) and "\n" in source):
        path = Path(source)
        if not path.is_file():
            raise InputError(f"captions: {path} does not exist; give a manifest.jsonl or a text file of captions")
        if path.suffix == ".jsonl":  # only the captions: no video is opened or probed
            from ..data.manifest import json_lines

            captions = [raw.get("caption") for _, raw in json_lines(path) if isinstance(raw, dict)]
        else:
            captions = path.read_text(encoding="utf-8").splitlines()
    else:
        captions = [source] if isinstance(source, str) else list(source)
    captions = [c.strip() for c in captions if isinstance(c, str) and c.strip()]
    if not captions:
        raise InputError(f"no captions in {source if isinstance(source, (str, Path)) else 'the given list'}")
    return [f"{id_token} {c}" if id_token else c for c in captions]


def train_tokenizer(
    source: str | Path | Sequence[str],
    folder: str | Path,
    *,
    vocab_size: int = SMALL_VOCAB_SIZE,
    max_length: int = SMALL_TEXT_LENGTH,
    id_token: str = "",
) -> TokenizerReport:
    """Train a T5 tokenizer on the captions of `source` (see `read_captions`) into `folder` (atomically).

    Deterministic: the same captions give byte-identical files. Logs a warning when captions are longer than
    `max_length` tokens (the pipeline and the trainer would cut them).
    """
    from ..models.text import token_lengths, train_t5_tokenizer

    captions = read_captions(source, id_token)
    tokenizer = train_t5_tokenizer(captions, folder, vocab_size=vocab_size, max_length=max_length)
    lengths = token_lengths(tokenizer, sorted(set(captions)))
    report = TokenizerReport(
        Path(folder), len(tokenizer), len(captions), max(lengths), sum(n > max_length for n in lengths), max_length
    )
    if report.truncated:
        logger.warning(
            "%d caption(s) are longer than %d tokens (the longest: %d) and will be cut; raise max_length",
            report.truncated,
            max_length,
            report.longest,
        )
    return report


def write_text_encoder(
    tokenizer: str | Path,
    folder: str | Path,
    *,
    config: Mapping[str, Any] | None = None,
    seed: int = 0,
    previous_token_bias: float | None = None,
) -> Path:
    """A seeded random frozen T5 encoder (`models.text.build_t5_encoder`) with the vocabulary of the tokenizer in
    `tokenizer`, saved to `folder` (config.json + model.safetensors, atomically). `previous_token_bias`: None, the
    builder's default (`SMALL_TEXT_PREVIOUS_TOKEN_BIAS`); 0, T5's random bias."""
    from transformers import AutoTokenizer

    from ..models.text import build_t5_encoder, save_t5_encoder

    vocab = len(AutoTokenizer.from_pretrained(tokenizer))
    bias = {} if previous_token_bias is None else {"previous_token_bias": previous_token_bias}
    return save_t5_encoder(build_t5_encoder(vocab, config, seed, **bias), folder)


__all__ = ["TokenizerReport", "read_captions", "train_tokenizer", "write_text_encoder"]
