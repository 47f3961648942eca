"""The text side of a model trained here: a T5 tokenizer trained on its captions, and a small random, frozen T5.

The released model reads prompts with T5-XXL (32k pieces, 4096-d, 226 tokens). A model trained on a few hundred
templated captions needs a vocabulary of those captions and an encoder the transformer can learn to read, nothing
more: `train_t5_tokenizer` trains one in milliseconds, `build_t5_encoder` makes a seeded random T5 encoder. Both
load through the classes inference uses (`AutoTokenizer`, `T5EncoderModel`), from a folder in the layout of the
CogVideoX base (`tokenizer/spiece.model` + `tokenizer_config.json`, and `tokenizer.json` for the fast path).

SentencePiece's unigram trainer seeds its pieces from substrings shared between *different* words, so on a closed
vocabulary (a few dozen words, each seen hundreds of times) it ends with little more than the characters: a
20-word caption became 40 to 46 tokens. Every caption word is therefore added as a whole-word piece ("▁dancing"),
scored with its log-frequency, most frequent first, up to `vocab_size`; the trained sub-word and character pieces
stay, so an unseen word still splits into known pieces instead of becoming `<unk>`. A caption is then about one
token per word, plus `</s>`.
"""

from __future__ import annotations

import io
import json
import math
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import InputError
from ..io.atomic import atomic_dir
from .configs import SMALL_TEXT_ENCODER_CONFIG, SMALL_TEXT_LENGTH, SMALL_TEXT_PREVIOUS_TOKEN_BIAS, SMALL_VOCAB_SIZE

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase, T5EncoderModel

# T5's conventions (the pipeline pads with id 0 and T5 ends every prompt with id 1).
PAD, EOS, UNK = "<pad>", "</s>", "<unk>"
SPIECE_FILE = "spiece.model"
WORD_BOUNDARY = "\u2581"  # "▁", SentencePiece's marker of a word start
MIN_VOCAB_SIZE = 16
MAX_VOCAB_SIZE = 32000


def _clean_texts(texts: Iterable[str]) -> list[str]:
    """Stripped, non-empty texts, sorted: the trained model depends on the set of captions, not their order."""
    return sorted(t.strip() for t in texts if isinstance(t, str) and t.strip())


def _spm_model(texts: list[str], vocab_size: int) -> bytes:
    """A SentencePiece unigram model (serialised ModelProto) of `texts` with T5's special ids, trained in memory."""
    import sentencepiece as spm

    buffer = io.BytesIO()
    try:
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(texts),
            model_writer=buffer,
            model_type="unigram",
            vocab_size=vocab_size,
            hard_vocab_limit=False,  # a small closed vocabulary has fewer pieces than asked for
            character_coverage=1.0,
            pad_id=0,
            eos_id=1,
            unk_id=2,
            bos_id=-1,
            pad_piece=PAD,
            eos_piece=EOS,
            unk_piece=UNK,
            num_threads=1,  # deterministic
            input_sentence_size=0,
            shuffle_input_sentence=False,
            minloglevel=2,
        )
    except RuntimeError as exc:
        raise InputError(f"cannot train a tokenizer on these captions ({str(exc).splitlines()[0]})") from exc
    return buffer.getvalue()


def _add_word_pieces(model: bytes, texts: list[str], vocab_size: int) -> bytes:
    """Append a whole-word piece for each caption word (most frequent first, ties by spelling) up to `vocab_size`."""
    from sentencepiece import sentencepiece_model_pb2

    proto = sentencepiece_model_pb2.ModelProto()
    proto.ParseFromString(model)
    have = {piece.piece for piece in proto.pieces}
    normal = sentencepiece_model_pb2.ModelProto.SentencePiece.NORMAL
    counts = Counter(word for text in texts for word in unicodedata.normalize("NFKC", text).split())
    total = sum(counts.values())
    for word, count in sorted(counts.items(), key=lambda item: (-item[1], item[0])):
        if len(proto.pieces) >= vocab_size:
            break
        piece = WORD_BOUNDARY + word
        if piece in have:
            continue
        new = proto.pieces.add()
        new.piece, new.score, new.type = piece, math.log(count / total), normal
        have.add(piece)
    return proto.SerializeToString()


def train_t5_tokenizer(
    texts: Iterable[str],
    folder: str | Path,
    *,
    vocab_size: int = SMALL_VOCAB_SIZE,
    max_length: int = SMALL_TEXT_LENGTH,
) -> PreTrainedTokenizerBase:
    """Train a T5 tokenizer on `texts` and write it to `folder` (atomically); returns it as loaded from there.

    Pieces: `<pad>` 0, `</s>` 1, `<unk>` 2 (T5's ids), SentencePiece unigram pieces, then whole-word pieces of the
    captions (module docstring), at most `vocab_size` in all; no sentinel `<extra_id_N>` tokens (`extra_ids: 0`),
    so `len(tokenizer)` is the number of pieces and the text encoder's vocabulary. `max_length` is written as
    `model_max_length`. The same texts (in any order) give byte-identical files.
    """
    from transformers import T5Tokenizer

    if isinstance(vocab_size, bool) or not isinstance(vocab_size, int):
        raise InputError(f"vocab_size must be an integer, got {vocab_size!r}")
    if not MIN_VOCAB_SIZE <= vocab_size <= MAX_VOCAB_SIZE:
        raise InputError(f"vocab_size must be from {MIN_VOCAB_SIZE} to {MAX_VOCAB_SIZE}, got {vocab_size}")
    if isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 2:
        raise InputError(f"max_length must be an integer of 2 or more, got {max_length!r}")
    cleaned = _clean_texts(texts)
    if not cleaned:
        raise InputError("no captions to train the tokenizer on; give a manifest or texts with captions")
    model = _add_word_pieces(_spm_model(cleaned, vocab_size), cleaned, vocab_size)
    config = {
        "tokenizer_class": "T5Tokenizer",
        "model_max_length": max_length,
        "extra_ids": 0,
        "pad_token": PAD,
        "eos_token": EOS,
        "unk_token": UNK,
    }
    folder = Path(folder)
    with atomic_dir(folder) as tmp:
        (tmp / SPIECE_FILE).write_bytes(model)
        (tmp / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n")
        # tokenizer.json too: the fast path loads it directly; spiece.model stays for the SentencePiece path.
        T5Tokenizer.from_pretrained(tmp).save_pretrained(tmp)
        (tmp / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n")
    return T5Tokenizer.from_pretrained(folder)


def token_lengths(tokenizer: Any, texts: Iterable[str]) -> list[int]:
    """Tokens of each text as the pipeline encodes it (with `</s>`, without padding)."""
    return [len(ids) for ids in tokenizer(list(texts), add_special_tokens=True).input_ids]


def build_t5_encoder(
    vocab_size: int,
    config: Mapping[str, Any] | None = None,
    seed: int = 0,
    previous_token_bias: float = SMALL_TEXT_PREVIOUS_TOKEN_BIAS,
) -> T5EncoderModel:
    """A randomly initialised (from `seed`), frozen `T5EncoderModel` of `vocab_size` tokens, in eval mode.

    `config`: `transformers.T5Config` keywords over `SMALL_TEXT_ENCODER_CONFIG` (d_model 64, 2 layers). Its output
    `[B, L, d_model]` is what the transformer's `text_embed_dim` must equal. The global torch RNG is left as it was.

    `previous_token_bias`: the last head's relative-position bias for distance -1 (the bucket T5 gives it), so that
    head attends to the previous token and each output carries the word before it; 0 keeps the random bias. The
    transformer reads text tokens without positions, so without it a caption is a bag of words: which noun a colour
    names cannot be read from the encoder's output (docs/small_model.md, "Tokenizer and text encoder").
    """
    import torch
    from transformers import T5Config, T5EncoderModel

    if isinstance(vocab_size, bool) or not isinstance(vocab_size, int) or vocab_size < 3:
        raise InputError(f"vocab_size must be an integer of 3 or more (pad, eos, unk), got {vocab_size!r}")
    settings = {**SMALL_TEXT_ENCODER_CONFIG, **dict(config or {})}
    t5_config = T5Config(
        vocab_size=vocab_size, pad_token_id=0, eos_token_id=1, decoder_start_token_id=0, use_cache=False, **settings
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = T5EncoderModel(t5_config)
    if previous_token_bias:
        bias = model.encoder.block[0].layer[0].SelfAttention.relative_attention_bias.weight
        with torch.no_grad():
            bias[relative_position_bucket(t5_config, -1), t5_config.num_heads - 1] = previous_token_bias
    return model.requires_grad_(False).eval()


def relative_position_bucket(config: Any, distance: int) -> int:
    """The row of a T5 encoder's `relative_attention_bias` for key position − query position = `distance`."""
    import torch
    from transformers.models.t5.modeling_t5 import T5Attention

    bucket = T5Attention._relative_position_bucket(
        torch.tensor(distance),
        bidirectional=True,
        num_buckets=config.relative_attention_num_buckets,
        max_distance=config.relative_attention_max_distance,
    )
    return int(bucket)


def save_t5_encoder(model: Any, folder: str | Path) -> Path:
    """`config.json` + `model.safetensors` in `folder`, written atomically."""
    folder = Path(folder)
    with atomic_dir(folder) as tmp:
        model.save_pretrained(tmp)
    return folder


__all__ = [
    "EOS",
    "PAD",
    "UNK",
    "build_t5_encoder",
    "relative_position_bucket",
    "save_t5_encoder",
    "token_lengths",
    "train_t5_tokenizer",
]
