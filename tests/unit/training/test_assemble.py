"""Assembling one pipeline folder from the pieces trained here: it loads with every weight, generates at 64x64x17
through `load_pipeline`, carries its settings, and is refused (with nothing written) when it should be."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from dynamictrl.errors import InputError
from dynamictrl.models.configs import SMALL_TRANSFORMER_CONFIG
from dynamictrl.models.geometry import size_limits
from dynamictrl.pipelines.folder import MB, SCHEDULER_CONFIG, measure_folder
from dynamictrl.pipelines.loading import load_pipeline
from dynamictrl.synthetic.world import SYNTH_POSE_STYLE
from dynamictrl.testing import (
    TINY_SMALL_TEXT_ENCODER_CONFIG,
    TINY_SMALL_TEXT_LEN,
    TINY_SMALL_TRANSFORMER_CONFIG,
    TINY_SMALL_VAE_CONFIG,
    build_tiny_vae,
    tiny_captions,
    write_tiny_small_model,
)
from dynamictrl.training.assemble import assemble_model, missing_weights, resolve_transformer_config

SMALL = dict(transformer_config=TINY_SMALL_TRANSFORMER_CONFIG, text_encoder_config=TINY_SMALL_TEXT_ENCODER_CONFIG)


@pytest.fixture(scope="module")
def parts(tmp_path_factory):
    root = tmp_path_factory.mktemp("parts")
    build_tiny_vae(0, **TINY_SMALL_VAE_CONFIG).save_pretrained(root / "vae")
    captions = root / "captions.txt"
    captions.write_text("\n".join(tiny_captions(100)))
    return root


@pytest.fixture(scope="module")
def assembled(parts):
    result = assemble_model(
        parts / "model",
        vae=parts / "vae",
        captions=parts / "captions.txt",
        vocab_size=128,
        text_length=TINY_SMALL_TEXT_LEN,
        pose_render="synthetic",
        max_mb=5,
        **SMALL,
    )
    return result


def generate(folder, seed: int = 0) -> np.ndarray:
    pipe, info = load_pipeline(str(folder))
    pipe.set_progress_bar_config(disable=True)
    rng = np.random.default_rng(seed)
    out = pipe(
        image=rng.integers(0, 256, (64, 64, 3), dtype=np.uint8),
        control_video=rng.integers(0, 256, (17, 64, 64, 3), dtype=np.uint8),
        prompt=tiny_captions(1)[0],
        height=64,
        width=64,
        num_frames=17,
        num_inference_steps=2,
        output_type="np",
        image_latent_scale=info.settings.image_latent_scale,
        generator=torch.Generator().manual_seed(seed),
    )
    return out.frames


def test_no_component_config_names_the_path_it_was_built_from(assembled, parts, tmp_path):
    vae = tmp_path / "vae"
    vae.mkdir()
    config = json.loads((parts / "vae" / "config.json").read_text())
    (vae / "config.json").write_text(json.dumps({**config, "_name_or_path": "/home/builder/runs/vae"}))
    (vae / "diffusion_pytorch_model.safetensors").symlink_to(parts / "vae" / "diffusion_pytorch_model.safetensors")
    out = assemble_model(tmp_path / "model", source=assembled.path, vae=vae, max_mb=5).path
    written = json.loads((out / "vae" / "config.json").read_text())
    assert "_name_or_path" not in written and written == config
    for component in ("transformer", "text_encoder"):
        assert "_name_or_path" not in json.loads((out / component / "config.json").read_text())


def test_the_folder_has_the_released_layout_and_its_settings(assembled, parts):
    out = assembled.path
    assert sorted(p.name for p in out.iterdir()) == [
        "model_index.json", "scheduler", "text_encoder", "tokenizer", "transformer", "vae",
    ]  # fmt: skip
    index = json.loads((out / "model_index.json").read_text())
    assert index["_class_name"] == "DynamiCtrlPipeline" and index["transformer"] == [
        "dynamictrl",
        "DynamiCtrlTransformerModel",
    ]
    scheduler = json.loads((out / "scheduler" / "scheduler_config.json").read_text())
    assert scheduler["_class_name"] == "CogVideoXDPMScheduler" and scheduler["timestep_spacing"] == "trailing"
    assert {k: scheduler[k] for k in SCHEDULER_CONFIG} == SCHEDULER_CONFIG
    transformer = json.loads((out / "transformer" / "config.json").read_text())
    assert transformer["_class_name"] == "DynamiCtrlTransformerModel"
    assert transformer["text_embed_dim"] == TINY_SMALL_TEXT_ENCODER_CONFIG["d_model"]
    assert transformer["max_text_seq_length"] == TINY_SMALL_TEXT_LEN
    assert assembled.made == ("tokenizer", "text_encoder", "transformer")
    assert assembled.settings == {
        "image_latent_scale": TINY_SMALL_VAE_CONFIG["scaling_factor"],
        "pose_render": SYNTH_POSE_STYLE.to_json(),
    }
    assert assembled.size.total_bytes == measure_folder(out).total_bytes < 5 * MB
    assert not [p.name for p in parts.iterdir() if p.name.startswith(".")], "work folders left behind"


def test_it_loads_with_every_weight_and_generates_64x64x17(assembled):
    assert missing_weights(assembled.path) == {}
    transformer = json.loads((assembled.path / "transformer" / "config.json").read_text())
    vae = json.loads((assembled.path / "vae" / "config.json").read_text())
    assert size_limits(transformer, vae) == (8, 128)  # 4x VAE x patch 2; RoPE grid of 32 latent px
    pipe, info = load_pipeline(str(assembled.path))
    assert pipe.vae_scale_factor_spatial == 4 and pipe.max_side == 128
    assert info.settings.pose_style == SYNTH_POSE_STYLE
    assert info.settings.image_latent_scale == TINY_SMALL_VAE_CONFIG["scaling_factor"]
    frames = generate(assembled.path)
    assert frames.shape == (1, 17, 64, 64, 3) and np.isfinite(frames).all()


def test_dynamictrl_train_starts_from_it_and_reassembling_keeps_the_rest(assembled, tmp_path):
    """The recipe's second half: `dynamictrl train --model` the assembled folder, then `--from` it with the run's
    transformer: the trained weights and image-latent scale, the source's pose drawing and text/VAE files."""
    from dynamictrl.training import load_config, run
    from dynamictrl.training.toy_data import write_toy_dataset

    data = write_toy_dataset(tmp_path / "data", clips=1, frames=13, height=32, width=32).parent
    settings = dict(frames=13, height=32, width=32, max_steps=1, lr_warmup_steps=0, checkpoint_every=0, quiet=True)
    config = load_config(
        None, dict(model=str(assembled.path), output_dir=str(tmp_path / "run"), data_root=str(data), **settings)
    )
    trained = run(config)
    result = assemble_model(tmp_path / "final", source=assembled.path, transformer=trained.output)
    assert result.made == () and result.settings == assembled.settings
    assert (result.path / "transformer" / "diffusion_pytorch_model.safetensors").read_bytes() == (
        trained.output / "diffusion_pytorch_model.safetensors"
    ).read_bytes()
    for name in ("tokenizer", "text_encoder", "vae"):
        for file in (assembled.path / name).iterdir():
            assert (result.path / name / file.name).read_bytes() == file.read_bytes()
    assert missing_weights(result.path) == {}
    result = assemble_model(
        tmp_path / "final", source=assembled.path, transformer=trained.output, image_latent_scale=0.5, overwrite=True
    )
    assert result.settings["image_latent_scale"] == 0.5


def test_a_new_text_encoder_replaces_the_source_s_and_keeps_the_rest(assembled, tmp_path):
    """`--text-previous-token-bias` with `--from`: the T5 is made anew (same seed and vocabulary, only the
    previous-token bias differs), every other component is the source's; 0 gives T5's random bias back."""
    from transformers import T5EncoderModel

    from dynamictrl.models.text import build_t5_encoder

    result = assemble_model(tmp_path / "plain", source=assembled.path, text_previous_token_bias=0.0)
    assert result.made == ("text_encoder",)
    for name in ("tokenizer", "vae", "transformer"):
        for file in (assembled.path / name).iterdir():
            assert (result.path / name / file.name).read_bytes() == file.read_bytes()
    plain = T5EncoderModel.from_pretrained(result.path / "text_encoder").state_dict()
    vocab = T5EncoderModel.from_pretrained(assembled.path / "text_encoder").config.vocab_size
    expected = build_t5_encoder(vocab, TINY_SMALL_TEXT_ENCODER_CONFIG, seed=0, previous_token_bias=0.0).state_dict()
    assert all(torch.equal(plain[k], v) for k, v in expected.items())
    default = T5EncoderModel.from_pretrained(assembled.path / "text_encoder").state_dict()
    assert [k for k in default if not torch.equal(default[k], plain[k])] == [
        "encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight"
    ]
    with pytest.raises(InputError, match="not both"):
        assemble_model(
            tmp_path / "c",
            source=assembled.path,
            text_encoder=assembled.path / "text_encoder",
            text_previous_token_bias=8.0,
        )
    assert not (tmp_path / "c").exists()


def test_transformer_configs_by_name_or_file(tmp_path):
    assert resolve_transformer_config("small") == SMALL_TRANSFORMER_CONFIG
    (tmp_path / "t.json").write_text(json.dumps({"_class_name": "X", "num_layers": 2}))
    assert resolve_transformer_config(tmp_path / "t.json") == {"num_layers": 2}
    with pytest.raises(InputError, match="does not exist"):
        resolve_transformer_config(tmp_path / "missing.json")


def test_too_large_is_refused_and_nothing_is_written(parts, tmp_path):
    with pytest.raises(InputError, match="above the limit of 0.01 MB"):
        assemble_model(tmp_path / "big", vae=parts / "vae", captions=parts / "captions.txt", max_mb=0.01, **SMALL)
    assert list(tmp_path.iterdir()) == []


def test_bad_arguments_are_refused_before_any_work(assembled, parts, tmp_path):
    vae = parts / "vae"
    cases = [
        (dict(vae=vae, captions=parts / "captions.txt"), "already exists", assembled.path),
        (dict(captions=parts / "captions.txt"), "no VAE", tmp_path / "a"),
        (dict(vae=vae), "no tokenizer", tmp_path / "a"),
        (
            dict(vae=vae, captions=parts / "captions.txt", tokenizer=assembled.path / "tokenizer"),
            "not both",
            tmp_path / "a",
        ),
        (dict(vae=vae, captions=parts / "captions.txt", transformer_config="huge"), "unknown size", tmp_path / "a"),
        (dict(vae=vae, captions=parts / "captions.txt", pose_render={"stick": 3}), "unknown keys", tmp_path / "a"),
        (dict(source=parts), "not a pipeline folder", tmp_path / "a"),
        (dict(vae=vae, captions=parts / "captions.txt", max_mb=0), "positive", tmp_path / "a"),
    ]
    for kwargs, message, out in cases:
        with pytest.raises(InputError, match=message):
            assemble_model(out, **kwargs)
    # A transformer that reads another text encoder's width.
    with pytest.raises(InputError, match="text_embed_dim"):
        assemble_model(
            tmp_path / "b",
            source=assembled.path,
            text_encoder_config={**TINY_SMALL_TEXT_ENCODER_CONFIG, "d_model": 48},
            captions=parts / "captions.txt",
            transformer=assembled.path / "transformer",
        )
    assert not any(p.name in ("a", "b") for p in tmp_path.iterdir())


def test_testing_helper_writes_the_same_layout(tmp_path):
    folder = write_tiny_small_model(tmp_path / "tiny")
    assert missing_weights(folder) == {}
    frames = generate(folder, seed=1)
    assert frames.shape == (1, 17, 64, 64, 3) and np.isfinite(frames).all()
