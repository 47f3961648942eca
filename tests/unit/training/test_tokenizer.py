"""The tokenizer trained on captions and the random T5 built for it: round trips, determinism, loading paths."""

from __future__ import annotations

import hashlib
import shutil

import pytest
import sentencepiece as spm
import torch
from transformers import AutoTokenizer, T5EncoderModel, T5Tokenizer

from dynamictrl.errors import InputError
from dynamictrl.models.text import build_t5_encoder, train_t5_tokenizer
from dynamictrl.testing import tiny_captions
from dynamictrl.training.tokenizer import read_captions, train_tokenizer, write_text_encoder
from dynamictrl.training.toy_data import write_toy_dataset

CAPTIONS = tiny_captions(120) + [
    "a person with light skin and yellow hair in a bun wearing a purple t-shirt and orange shorts, jumping",
    "a person with medium skin wearing a pink t-shirt with black stripes, waving, on a plain red background",
]
FILES = ("spiece.model", "tokenizer.json", "tokenizer_config.json")


def digests(folder) -> dict[str, str]:
    return {name: hashlib.sha256((folder / name).read_bytes()).hexdigest() for name in FILES}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tok") / "tokenizer"
    report = train_tokenizer(CAPTIONS, folder, vocab_size=256, max_length=24)
    return folder, report


def test_captions_round_trip_with_t5_ids_and_about_a_token_a_word(trained):
    folder, report = trained
    tokenizer = T5Tokenizer.from_pretrained(folder)
    assert (tokenizer.pad_token_id, tokenizer.eos_token_id, tokenizer.unk_token_id) == (0, 1, 2)
    assert len(tokenizer) == report.vocab_size <= 256 and "<extra_id_0>" not in tokenizer.get_vocab()
    for caption in CAPTIONS:
        ids = tokenizer(caption).input_ids
        assert ids[-1] == 1 and 2 not in ids
        assert tokenizer.decode(ids, skip_special_tokens=True) == caption
        assert len(ids) == len(caption.split()) + 1  # whole-word pieces (module docstring of models.text)
    assert report.longest == max(len(c.split()) for c in CAPTIONS) + 1 and report.truncated == 0
    padded = tokenizer(["", CAPTIONS[0]], padding="max_length", max_length=24, truncation=True).input_ids
    assert padded[0] == [1] + [0] * 23 and len(padded[1]) == 24
    # An unseen word splits into known pieces; only unseen characters are <unk>.
    assert tokenizer.decode(tokenizer("a dancers").input_ids, skip_special_tokens=True) == "a dancers"
    assert 2 in tokenizer("a zebra").input_ids


def test_every_loading_path_gives_the_same_ids(trained, tmp_path):
    folder, _ = trained
    reference = T5Tokenizer.from_pretrained(folder)
    processor = spm.SentencePieceProcessor(model_file=str(folder / "spiece.model"))
    spiece_only, json_only = tmp_path / "spiece", tmp_path / "json"
    shutil.copytree(folder, spiece_only)
    (spiece_only / "tokenizer.json").unlink()
    shutil.copytree(folder, json_only)
    (json_only / "spiece.model").unlink()
    loaded = [AutoTokenizer.from_pretrained(f) for f in (folder, spiece_only, json_only)]
    for text in [*CAPTIONS[:20], "a dancers"]:
        ids = reference(text).input_ids
        assert processor.encode(text) + [1] == ids
        assert all(t(text).input_ids == ids for t in loaded)


def test_deterministic_whatever_the_order(trained, tmp_path):
    folder, _ = trained
    again = tmp_path / "again"
    train_tokenizer(list(reversed(CAPTIONS)), again, vocab_size=256, max_length=24)
    assert digests(again) == digests(folder)
    other = tmp_path / "other"
    train_tokenizer(CAPTIONS[:-1], other, vocab_size=256, max_length=24)
    assert digests(other) != digests(folder)


def test_captions_from_a_manifest_or_a_text_file(tmp_path):
    manifest = write_toy_dataset(tmp_path / "data", clips=3, frames=5, height=16, width=16)
    assert read_captions(manifest) == ["a red square moving", "a green square moving", "a blue square moving"]
    assert read_captions(manifest, id_token="BW")[0] == "BW a red square moving"
    (tmp_path / "captions.txt").write_text("one caption\n\n  two  \n")
    assert read_captions(tmp_path / "captions.txt") == ["one caption", "two"]
    report = train_tokenizer(manifest, tmp_path / "tok", max_length=3)
    assert report.truncated == 3 and report.longest == 5


@pytest.mark.parametrize(
    ("source", "kwargs", "message"),
    [
        ([], {}, "no captions"),
        (["  "], {}, "no captions"),
        (["a b"], {"vocab_size": 4}, "vocab_size must be"),
        (["a b"], {"vocab_size": 10**6}, "vocab_size must be"),
        (["a b"], {"max_length": 1}, "max_length"),
        ("missing.jsonl", {}, "does not exist"),
    ],
)
def test_bad_input_is_one_line_error(tmp_path, source, kwargs, message):
    with pytest.raises(InputError, match=message):
        train_tokenizer(source, tmp_path / "tok", **kwargs)
    assert not (tmp_path / "tok").exists()


def test_text_encoder_is_seeded_frozen_and_sized_by_the_tokenizer(trained, tmp_path):
    folder, report = trained
    write_text_encoder(folder, tmp_path / "te", config=dict(d_model=32, d_kv=16, d_ff=32, num_heads=2), seed=3)
    model = T5EncoderModel.from_pretrained(tmp_path / "te")
    assert model.config.vocab_size == report.vocab_size and model.config.d_model == 32
    assert (tmp_path / "te" / "model.safetensors").is_file()
    same = build_t5_encoder(report.vocab_size, dict(d_model=32, d_kv=16, d_ff=32, num_heads=2), seed=3)
    other = build_t5_encoder(report.vocab_size, dict(d_model=32, d_kv=16, d_ff=32, num_heads=2), seed=4)
    state = model.state_dict()
    assert all(torch.equal(state[k], v) for k, v in same.state_dict().items())
    assert not torch.equal(state["shared.weight"], other.state_dict()["shared.weight"])
    assert not any(p.requires_grad for p in same.parameters()) and not same.training
    rng_before = torch.get_rng_state()
    build_t5_encoder(report.vocab_size, seed=5)
    assert torch.equal(torch.get_rng_state(), rng_before)
    ids = AutoTokenizer.from_pretrained(folder)(
        [CAPTIONS[0]], padding="max_length", max_length=24, return_tensors="pt"
    )
    with torch.no_grad():
        out = model(ids.input_ids)[0]
    assert out.shape == (1, 24, 32) and torch.isfinite(out).all()
    with pytest.raises(InputError, match="vocab_size"):
        build_t5_encoder(2)


def test_text_encoder_outputs_carry_the_previous_word():
    """The small T5's last head attends to the previous token, so one word's output tells which word came before
    it ("plain green background" vs "a green shirt"); with the random bias alone it is the same in any context."""
    ids = torch.tensor([[5, 7, 9, 11, 1], [6, 7, 9, 11, 1]])  # token 7 after token 5, and after token 6
    encoder = build_t5_encoder(32, seed=0)
    encoder.set_attn_implementation("eager")  # the one that returns attention weights
    out = encoder(ids, output_attentions=True)
    last_head = out.attentions[0][:, -1]  # [B, L, L], first layer
    assert (last_head.diagonal(offset=-1, dim1=1, dim2=2) > 0.9).all()  # row i puts > 90% on token i - 1
    same_word = torch.cosine_similarity(out.last_hidden_state[0, 1], out.last_hidden_state[1, 1], dim=0)
    random_bias = build_t5_encoder(32, seed=0, previous_token_bias=0.0)(ids).last_hidden_state
    assert same_word < 0.9 < torch.cosine_similarity(random_bias[0, 1], random_bias[1, 1], dim=0)
    state, plain = encoder.state_dict(), build_t5_encoder(32, seed=0, previous_token_bias=0.0).state_dict()
    changed = [k for k in state if not torch.equal(state[k], plain[k])]
    assert changed == ["encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight"]


def test_train_t5_tokenizer_writes_atomically(tmp_path):
    target = tmp_path / "tok"
    train_t5_tokenizer(["a b c"], target, vocab_size=16)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tok"]
