"""Model resolution: the released layouts, the CogVideoX base, the hub cache, offline errors."""

from __future__ import annotations

import json

import pytest
import torch
from diffusers import CogVideoXDPMScheduler

from dynamictrl.errors import CheckpointError, ModelNotFoundError
from dynamictrl.pipelines.loading import load_pipeline, model_settings, resolve_model
from dynamictrl.pose.render import PUBLISHED_STYLE, PoseStyle
from dynamictrl.testing import populate_hub_cache


def test_pipeline_folder_provides_every_component(tiny_models):
    resolved = resolve_model(str(tiny_models.dynamictrl), str(tiny_models.base))
    assert resolved.transformer == tiny_models.dynamictrl / "transformer"
    assert set(resolved.sources.values()) == {str(tiny_models.dynamictrl)}


def test_transformer_only_folder_is_completed_from_the_base(tiny_models):
    """What the original README asks users to do by hand (copy Mask_B01 over DynamiCtrl/transformer)."""
    resolved = resolve_model(str(tiny_models.transformer_only), str(tiny_models.base))
    assert resolved.transformer == tiny_models.transformer_only
    assert {k: v for k, v in resolved.sources.items() if k != "transformer"} == dict.fromkeys(
        ("vae", "text_encoder", "tokenizer", "scheduler"), str(tiny_models.base)
    )


def test_loaded_pipeline_uses_dpm_trailing_even_if_the_base_ships_ddim(tiny_models):
    assert json.loads((tiny_models.base / "scheduler" / "scheduler_config.json").read_text())["_class_name"] == (
        "CogVideoXDDIMScheduler"
    )
    pipe, _ = load_pipeline(str(tiny_models.transformer_only), str(tiny_models.base))
    assert isinstance(pipe.scheduler, CogVideoXDPMScheduler)
    assert pipe.scheduler.config.timestep_spacing == "trailing"
    # The base tokenizer is a bare spiece.model, converted on load as with the real CogVideoX repo.
    assert not (tiny_models.base / "tokenizer" / "tokenizer.json").exists()
    ids = pipe.tokenizer("a woman dancing in a studio").input_ids
    assert ids[-1] == 1 and 2 not in ids  # ends with </s>, no unknown pieces


def test_transformer_only_and_full_folders_differ_only_in_the_transformer(tiny_models):
    full, _ = load_pipeline(str(tiny_models.dynamictrl), str(tiny_models.base))
    mask, _ = load_pipeline(str(tiny_models.transformer_only), str(tiny_models.base))
    assert torch.equal(full.vae.encoder.conv_in.conv.weight, mask.vae.encoder.conv_in.conv.weight)
    assert not torch.equal(full.transformer.proj_out.weight, mask.transformer.proj_out.weight)


def test_hub_ids_resolve_offline_from_the_standard_cache(tiny_models, tmp_path):
    cache = tmp_path / "hub"
    populate_hub_cache(cache, "gulucaptain/Dynamictrl-Mask_B01", tiny_models.transformer_only)
    populate_hub_cache(cache, "THUDM/CogVideoX1.5-5B-I2V", tiny_models.base)
    resolved = resolve_model("dynamictrl-mask-b01", cache_dir=cache)
    assert "models--gulucaptain--Dynamictrl-Mask_B01" in str(resolved.transformer)
    assert "models--THUDM--CogVideoX1.5-5B-I2V" in str(resolved.components["vae"])
    same = resolve_model("gulucaptain/Dynamictrl-Mask_B01", cache_dir=cache)
    assert same.transformer == resolved.transformer


def test_missing_weights_offline_name_the_download_command(tmp_path):
    with pytest.raises(ModelNotFoundError, match="dynamictrl download dynamictrl"):
        resolve_model("dynamictrl", cache_dir=tmp_path)


def test_known_name_wins_over_a_folder_of_that_name(tmp_path, monkeypatch):
    (tmp_path / "dynamictrl").mkdir()
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ModelNotFoundError, match="gulucaptain/DynamiCtrl"):
        resolve_model("dynamictrl", cache_dir=tmp_path / "hub")


def test_nonsense_model_and_folder_without_transformer(tmp_path):
    with pytest.raises(ModelNotFoundError, match="neither a folder nor a hub id"):
        resolve_model("not a model")
    with pytest.raises(CheckpointError, match="no transformer found"):
        resolve_model(str(tmp_path))


def test_plain_cogvideox_as_model_is_refused_at_load(tiny_models):
    with pytest.raises(CheckpointError, match="plain CogVideoX"):
        load_pipeline(str(tiny_models.base), str(tiny_models.base))


def test_model_settings_file_gives_the_trained_image_latent_scale(tiny_models, tmp_path):
    import shutil

    from dynamictrl.jobs.animate import LoadedModel, image_latent_scale
    from dynamictrl.options import AnimateOptions

    folder = tmp_path / "trained"
    shutil.copytree(tiny_models.dynamictrl, folder)
    assert resolve_model(str(folder)).settings.image_latent_scale is None
    assert model_settings(str(folder)).pose_style == PUBLISHED_STYLE
    style = {"canvas_short_side": 256, "stick_width": 6}
    settings = {"image_latent_scale": 0.7, "pose_render": style}
    (folder / "transformer" / "dynamictrl.json").write_text(json.dumps(settings))
    assert model_settings(str(folder)).pose_style == PoseStyle(**style)  # read without loading any weights
    assert model_settings("no/such-model").pose_style == PUBLISHED_STYLE  # neither local nor cached: published
    pipe, info = load_pipeline(str(folder))
    assert info.settings.image_latent_scale == 0.7
    options = AnimateOptions(image="a.png", pose_video="p.mp4", prompt="x")
    assert image_latent_scale(options, LoadedModel(pipe, info)) == 0.7  # the trained scale is the default
    assert (
        image_latent_scale(AnimateOptions(**{**options.to_json(), "image_latent_scale": 1.0}), LoadedModel(pipe, info))
        == 1.0
    )


def test_model_settings_file_says_how_the_pose_enters(tiny_models, tmp_path):
    """A folder trained with `pose_control_function: direct` (the ablation) is run that way by every generation;
    an unknown value is a one-line error naming the file."""
    import shutil

    from dynamictrl.jobs.animate import LoadedModel, generation_kwargs
    from dynamictrl.options import AnimateOptions

    folder = tmp_path / "direct"
    shutil.copytree(tiny_models.dynamictrl, folder)
    options = AnimateOptions(image="a.png", pose_video="p.mp4", prompt="x")
    assert resolve_model(str(folder)).settings.pose_control_function == "padaln"
    settings_file = folder / "transformer" / "dynamictrl.json"
    settings_file.write_text(json.dumps({"pose_control_function": "direct"}))
    pipe, info = load_pipeline(str(folder))
    assert generation_kwargs(options, LoadedModel(pipe, info))["pose_control_function"] == "direct"
    settings_file.write_text(json.dumps({"pose_control_function": "cross_attention"}))
    with pytest.raises(CheckpointError, match="pose_control_function 'cross_attention' is not one of padaln, direct"):
        _ = resolve_model(str(folder)).settings


def test_truncated_vae_weights_are_named_before_anything_loads(tiny_models, tmp_path):
    import shutil

    folder = tmp_path / "model"
    shutil.copytree(tiny_models.dynamictrl, folder)
    weights = folder / "vae" / "diffusion_pytorch_model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="vae/diffusion_pytorch_model.safetensors is corrupt or incomplete"):
        load_pipeline(str(folder))
