"""The VAE trainer: config checks before anything loads, loss going down, exact resume, the outputs."""

from __future__ import annotations

import json
import math

import pytest
import torch
from safetensors.torch import load_file

from dynamictrl.errors import InputError
from dynamictrl.training.toy_data import write_toy_dataset
from dynamictrl.training.vae import (
    dilate,
    held_out_split,
    latent_start_ratio,
    latent_statistics,
    loss_weights,
    psnr,
    temporal_mse,
    train_vae,
)
from dynamictrl.training.vae_config import VaeTrainConfig, load_vae_config

# 16x16 px, 9 frames (the first frame + one chunk of 8), an 8-channel 3-level VAE: a step takes a few tens of ms.
TINY = dict(
    frames=9,
    height=16,
    width=16,
    block_out_channels="8,8,8",
    norm_num_groups=2,
    batch_size=2,
    held_out=1,
    lr_warmup_steps=2,
    learning_rate=3e-3,
    log_every=1,
    scale_clips=2,
    quiet=True,
)


@pytest.fixture(scope="module")
def toy_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("vae-data")
    return write_toy_dataset(root, clips=5, frames=12, height=16, width=16, masks=True).parent


def config(data, out, **overrides) -> VaeTrainConfig:
    return load_vae_config(None, {"data_root": str(data), "output_dir": str(out), **TINY, **overrides})


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("frames", 13, r"8k\+1"),
        ("frames", 16, r"8k\+1"),
        ("height", 40, "multiple of 16"),
        ("block_out_channels", "8,8", "3 or more"),
        ("block_out_channels", "8,x,8", "list of integers"),
        ("norm_num_groups", 3, "must divide"),
        ("flip", 1.5, "probability"),
        ("foreground_weight", 0.5, ">= 1"),
        ("kl_weight", float("nan"), "finite"),
        ("learning_rate", 0.0, "> 0"),
        ("lr_scheduler", "warp", "choose one of"),
        ("mixed_precision", "fp8", "choose one of"),
        ("max_steps", 0, "1 or more"),
        ("mask_dilation", -1, "0 or more"),
        ("temporal_weight", -1.0, "finite"),
        ("train_encoder", False, "give init"),
        ("max_stepz", 3, "unknown config key"),
    ],
)
def test_bad_values_are_refused_before_anything_loads(tmp_path, key, value, message):
    with pytest.raises(InputError, match=message):
        load_vae_config(None, {"data_root": str(tmp_path), "output_dir": str(tmp_path / "out"), key: value})


def test_missing_files_are_refused_before_anything_loads(tmp_path, toy_data):
    with pytest.raises(InputError, match="does not exist"):
        train_vae(config(tmp_path / "nowhere", tmp_path / "out"))
    with pytest.raises(InputError, match="no checkpoint"):
        train_vae(config(toy_data, tmp_path / "out", resume="latest"))
    with pytest.raises(InputError, match="not a VAE folder"):
        train_vae(config(toy_data, tmp_path / "out", init=str(tmp_path)))
    with pytest.raises(InputError, match="leaves none"):
        train_vae(config(toy_data, tmp_path / "out", held_out=5))
    with pytest.raises(InputError, match="cannot fill a batch"):
        train_vae(config(toy_data, tmp_path / "out", batch_size=5))
    assert not (tmp_path / "out").exists()


def test_yaml_paths_are_relative_to_the_file(tmp_path, toy_data):
    (tmp_path / "vae.yaml").write_text(
        f"data_root: {toy_data}\noutput_dir: runs/vae\nblock_out_channels: [8, 16, 16]\n"
    )
    c = load_vae_config(tmp_path / "vae.yaml", {"max_steps": 7})
    assert c.output_dir == tmp_path / "runs" / "vae" and c.max_steps == 7
    assert c.block_out_channels == (8, 16, 16) and c.vae_config["down_block_types"] == ("CogVideoXDownBlock3D",) * 3


def test_the_shipped_config_loads():
    from pathlib import Path

    shipped = Path(__file__).resolve().parents[3] / "configs" / "train" / "small_vae.yaml"
    c = load_vae_config(shipped, {"data_root": "data/synth", "output_dir": "runs/vae"})
    assert (c.frames, c.height, c.width, c.block_out_channels) == (9, 64, 64, (16, 32, 32))
    assert (c.learning_rate, c.mse_weight, c.max_steps) == (2e-3, 1.0, 2000)
    assert c.manifest == "manifest_masked.jsonl" and c.batch_size == 2


def test_the_shipped_decoder_config_loads_and_needs_init():
    from pathlib import Path

    shipped = Path(__file__).resolve().parents[3] / "configs" / "train" / "small_decoder_vae.yaml"
    bundled_vae = Path(__file__).resolve().parents[3] / "dynamictrl" / "assets" / "small_model" / "vae"
    paths = {"data_root": "data/synth", "output_dir": "runs/vae_decoder"}
    c = load_vae_config(shipped, {**paths, "init": str(bundled_vae)})
    assert not c.train_encoder and c.temporal_weight == 10.0 and c.frames == 9
    with pytest.raises(InputError, match="give init"):
        load_vae_config(shipped, paths)


def test_helpers():
    mask = torch.zeros(2, 1, 9, 9)
    mask[:, :, 4, 4] = 1
    assert dilate(mask, 1).sum() == 2 * 9 and dilate(mask, 0) is mask
    weights = loss_weights([mask, None], (2, 9, 9), 10.0, 1)
    assert weights.shape == (2, 1, 2, 9, 9) and weights[0].max() == 10 and (weights[1] == 1).all()
    train, held = held_out_split(10, 3, seed=0)
    assert len(held) == 3 and sorted(train + held) == list(range(10)) and held_out_split(10, 3, 0) == (train, held)
    video = torch.zeros(1, 3, 2, 4, 4)
    assert psnr(video, video) == math.inf and psnr(video + 0.2, video) == pytest.approx(20.0)
    assert psnr(video, video, torch.zeros(1, 1, 2, 4, 4)) is None


def test_trains_resumes_exactly_and_writes_the_vae(tmp_path, toy_data):
    """16 steps straight vs 8 + resume + 8 (flips on, an epoch boundary mid-run; the first half within the warm-up,
    where the schedule does not depend on max_steps): identical losses and weights."""
    steps = 16
    knobs = dict(lr_scheduler="cosine", lr_warmup_steps=steps // 2)
    straight = train_vae(config(toy_data, tmp_path / "straight", max_steps=steps, checkpoint_every=0, **knobs))
    first, last = sum(straight.losses[:4]) / 4, sum(straight.losses[-4:]) / 4
    assert last < 0.8 * first, straight.losses

    halves = dict(checkpoint_every=steps // 2, **knobs)
    first = train_vae(config(toy_data, tmp_path / "halves", max_steps=steps // 2, **halves))
    resumed = train_vae(config(toy_data, tmp_path / "halves", max_steps=steps, resume="latest", **halves))
    assert first.losses + resumed.losses == straight.losses
    a = load_file(tmp_path / "straight" / "vae" / "diffusion_pytorch_model.safetensors")
    b = load_file(tmp_path / "halves" / "vae" / "diffusion_pytorch_model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)

    # The outputs: a VAE with its measured scaling factor, the report, previews, the kept checkpoints.
    from diffusers import AutoencoderKLCogVideoX

    out = tmp_path / "straight"
    report = json.loads((out / "vae_report.json").read_text())
    vae = AutoencoderKLCogVideoX.from_pretrained(out / "vae")
    assert vae.config.scaling_factor == pytest.approx(report["scaling_factor"]) and not vae.config.invert_scale_latents
    assert report["global_step"] == steps and len(report["held_out"]) == 1
    assert math.isfinite(report["psnr"]) and math.isfinite(report["psnr_character"])
    assert (out / "vae_preview" / "00.mp4").is_file()
    assert [p.name for p in sorted((tmp_path / "halves").glob("checkpoint-*"))] == ["checkpoint-16", "checkpoint-8"]

    # The scaling factor makes the latents of the data unit-variance.
    clips = [torch.rand(9, 3, 16, 16) * 2 - 1]
    mean, std = latent_statistics(vae, clips)
    assert std > 0 and math.isfinite(mean)


def test_temporal_loss_and_latent_start_ratio_see_bursts():
    """Motion spread evenly over 9 frames vs the same motion as bursts (each latent frame's first frame jumps, the
    next three repeat it): the temporal term is 0 against the even motion itself or a constant offset of it, and
    positive for the bursts; the latent-start ratio is 1 for even motion and large for bursts."""
    ramp = torch.linspace(-1, 1, 9).view(1, 1, 9, 1, 1).expand(1, 3, 9, 4, 4)
    bursts = ramp[:, :, [0, 1, 1, 1, 1, 5, 5, 5, 5]]
    weights = torch.ones(1, 1, 9, 4, 4)
    assert temporal_mse(ramp - ramp, weights) == 0 and temporal_mse((ramp + 0.3) - ramp, weights) < 1e-6
    assert temporal_mse(bursts - ramp, weights) > 0.1
    assert temporal_mse(torch.zeros(1, 3, 1, 4, 4), weights[:, :, :1]) == 0
    assert latent_start_ratio(ramp) == pytest.approx(1.0) and latent_start_ratio(bursts) > 100


def test_decoder_only_fine_tuning_keeps_the_encoder_and_the_scale(tmp_path, toy_data):
    """train_encoder false from a trained VAE: the encoder (so the latents) and the scaling factor are init's, the
    decoder moved, the temporal term is logged, and the report says what was trained."""
    from diffusers import AutoencoderKLCogVideoX

    init = train_vae(config(toy_data, tmp_path / "init", max_steps=4, checkpoint_every=0)).output
    tuned = train_vae(
        config(
            toy_data,
            tmp_path / "tuned",
            max_steps=4,
            checkpoint_every=0,
            init=str(init),
            train_encoder=False,
            temporal_weight=1.0,
        )
    )
    a = load_file(init / "diffusion_pytorch_model.safetensors")
    b = load_file(tuned.output / "diffusion_pytorch_model.safetensors")
    encoder = [k for k in a if k.startswith("encoder.")]
    decoder = [k for k in a if k.startswith("decoder.")]
    assert encoder and all(torch.equal(a[k], b[k]) for k in encoder)
    assert any(not torch.equal(a[k], b[k]) for k in decoder)
    before, after = AutoencoderKLCogVideoX.from_pretrained(init), AutoencoderKLCogVideoX.from_pretrained(tuned.output)
    assert after.config.scaling_factor == before.config.scaling_factor
    report = json.loads((tmp_path / "tuned" / "vae_report.json").read_text())
    assert report["trained"] == "decoder" and report["scaling_factor"] == before.config.scaling_factor
    assert math.isfinite(report["latent_start_ratio"]) and math.isfinite(report["ground_truth_latent_start_ratio"])
    metrics = [json.loads(line) for line in (tmp_path / "tuned" / "metrics.jsonl").read_text().splitlines()]
    assert any("temporal" in row for row in metrics)
