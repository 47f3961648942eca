"""The trainer on a tiny model and a tiny generated dataset: it learns, resumes exactly, caches faithfully, and
its LoRA output loads into the pipeline."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import numpy as np
import pytest
import torch

from dynamictrl.io.atomic import current_umask
from dynamictrl.training import load_config, run


@pytest.fixture(scope="module")
def toy(tiny_models, tmp_path_factory):
    from dynamictrl.training.toy_data import write_toy_dataset, write_toy_model

    root = tmp_path_factory.mktemp("toy")
    model = write_toy_model(tiny_models.dynamictrl, root / "model")
    write_toy_dataset(root / "data", clips=5, frames=17, height=32, width=32)
    return model, root / "data"


def _config(toy, out: Path, **overrides):
    model, data = toy
    settings = dict(
        model=str(model),
        output_dir=str(out),
        data_root=str(data),
        frames=13,
        height=32,
        width=32,
        learning_rate=3e-3,
        lr_scheduler="constant_with_warmup",
        lr_warmup_steps=2,
        weight_decay=0.0,
        checkpoint_every=0,
        quiet=True,
    )
    settings.update(overrides)
    return load_config(None, settings)


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    out = {}
    for file in sorted(folder.glob("*.safetensors")):
        out.update(load_file(file))
    return out


# Midpoints of 8 equal strata of t ∈ [0, 1000): the uniform timestep draw of training, without its sampling noise.
FIXED_TIMESTEPS = (62, 187, 312, 437, 562, 687, 812, 937)


def _fixed_loss(toy, transformer: torch.nn.Module) -> float:
    """The training loss of `transformer` on every toy clip (its first 13 frames), each at the 8 `FIXED_TIMESTEPS`
    with one fixed noise draw: the same inputs before and after training, so the ratio measures learning, not the
    timestep and noise draws (a single step's loss swings by ±50 % with its t)."""
    from dynamictrl.data.encoders import encode_moments
    from dynamictrl.data.manifest import read_manifest
    from dynamictrl.io.media import read_video
    from dynamictrl.training import spec

    model, data = toy
    comp = spec.load_components(model)

    def pixels(path):
        return torch.from_numpy(read_video(path, max_frames=13)[0]).permute(0, 3, 1, 2).float() / 127.5 - 1.0

    samples = []
    for record in read_manifest(data / "manifest.jsonl"):
        video = pixels(record.video)
        samples.append(
            {
                "video_moments": encode_moments(comp.vae, video),
                "control_moments": encode_moments(comp.vae, pixels(record.pose)),
                "image_moments": encode_moments(comp.vae, video[:1]),
                "prompt_embeds": comp.encoders.encode_prompt(record.caption),
            }
        )
    batch = spec.prepare_batch(
        samples,
        vae=comp.vae,
        scheduler=comp.scheduler,
        conditioning=spec.Conditioning(image_noise=False, image_dropout=0.0),
        generators=[torch.Generator().manual_seed(i) for i in range(len(samples))],
    )
    batch = {k: v.repeat_interleave(len(FIXED_TIMESTEPS), 0) for k, v in batch.items()}
    batch["timesteps"] = torch.tensor(FIXED_TIMESTEPS).repeat(len(samples))
    batch["noise"] = torch.randn(batch["video_latents"].shape, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        return float(spec.diffusion_loss(transformer.eval(), comp.scheduler, **batch))


def test_full_training_halves_the_loss_and_saves_the_released_layout(toy, tmp_path):
    """300 steps on 5 clips (about 20 s) halve the training loss, measured on fixed timesteps and noise before and
    after (`_fixed_loss`; measured 0.91 → 0.34, a ratio of 0.38 with seeds 0, 1 and 2 alike; learning_rate 1e-5
    gives 0.92), and write the validation video of the trained model."""
    from dynamictrl.models.transformer_dynamictrl import DynamiCtrlTransformer
    from dynamictrl.training import spec

    config = _config(
        toy,
        tmp_path / "out",
        max_steps=300,
        batch_size=2,
        image_dropout=0.0,
        image_noise=False,
        cache_dir=str(tmp_path / "cache"),
        validation_steps=300,
        validation_count=1,
        validation_inference_steps=2,
    )
    before = _fixed_loss(toy, spec.load_components(toy[0]).transformer)
    result = run(config)
    losses = np.array(result.losses)
    assert len(losses) == 300 and np.isfinite(losses).all()
    model, info = DynamiCtrlTransformer.from_pretrained(result.output, output_loading_info=True)
    after = _fixed_loss(toy, model)
    assert after < 0.5 * before, (before, after)
    assert (tmp_path / "out" / "validation" / "step-300" / "00.mp4").is_file()
    assert (tmp_path / "out" / "validation" / "step-300" / "00_side_by_side.mp4").is_file()

    assert result.output == tmp_path / "out" / "transformer"
    assert json.loads((result.output / "dynamictrl.json").read_text()) == {"image_latent_scale": 0.7}
    config_json = json.loads((result.output / "config.json").read_text())
    assert config_json["_class_name"] == "DynamiCtrlTransformerModel"
    assert not info["missing_keys"] and not info["unexpected_keys"]
    assert any(".control_norm1." in k for k in _weights(result.output))
    metrics = [json.loads(line) for line in (tmp_path / "out" / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in metrics] == list(range(1, 301))
    assert metrics[-1]["loss"] == pytest.approx(losses[-1])
    assert {"loss", "lr", "grad_norm", "epoch"} <= set(metrics[0])


def test_resume_gives_identical_losses_and_weights(toy, tmp_path):
    """6 steps straight vs 3 + resume + 3, with every random knob on (flips, all dropouts, image noise,
    accumulation over 2 micro-batches, an epoch boundary mid-step and a checkpoint mid-epoch)."""
    knobs = dict(
        batch_size=1,
        gradient_accumulation_steps=2,
        flip=0.5,
        image_dropout=0.3,
        caption_dropout=0.3,
        pose_dropout=0.3,
        lr_scheduler="cosine",
        lr_warmup_steps=3,
    )
    straight = run(_config(toy, tmp_path / "a", max_steps=6, **knobs))

    first = run(_config(toy, tmp_path / "b", max_steps=3, checkpoint_every=3, checkpoints_keep=1, **knobs))
    assert (tmp_path / "b" / "checkpoint-3").is_dir() and not (tmp_path / "b" / "checkpoint-3.tmp").exists()
    resumed = run(_config(toy, tmp_path / "b", max_steps=6, resume="latest", **knobs))
    assert resumed.global_step == 6
    assert first.losses + resumed.losses == straight.losses
    a, b = _weights(tmp_path / "a" / "transformer"), _weights(tmp_path / "b" / "transformer")
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_checkpoints_keep_the_last_k(toy, tmp_path):
    run(_config(toy, tmp_path / "out", max_steps=4, checkpoint_every=1, checkpoints_keep=2, batch_size=2))
    names = sorted(p.name for p in (tmp_path / "out").iterdir() if p.name.startswith("checkpoint"))
    assert names == ["checkpoint-3", "checkpoint-4"]
    # checkpoints and final weights are readable as the umask says (safetensors alone writes them 0600)
    expected = 0o666 & ~current_umask()
    written = [p for p in (tmp_path / "out").rglob("*") if p.is_file()]
    assert any(p.name == "trainable.safetensors" for p in written)
    modes = {str(p.relative_to(tmp_path)): stat.S_IMODE(p.stat().st_mode) for p in written}
    assert {name: oct(mode) for name, mode in modes.items() if mode != expected} == {}


def test_cached_latents_give_the_same_losses(toy, tmp_path):
    """No cache vs a cold cache vs a warm one (every latent and embedding read back): identical losses."""
    knobs = dict(max_steps=4, batch_size=2, image_noise=False, image_dropout=0.0)
    plain = run(_config(toy, tmp_path / "plain", **knobs)).losses
    cold = run(_config(toy, tmp_path / "cold", cache_dir=str(tmp_path / "cache"), **knobs)).losses
    entries = len(list((tmp_path / "cache").rglob("*.safetensors")))
    warm = run(_config(toy, tmp_path / "warm", cache_dir=str(tmp_path / "cache"), **knobs)).losses
    assert plain == cold == warm
    assert entries > 0 and len(list((tmp_path / "cache").rglob("*.safetensors"))) == entries

    # prepare-data --cache-latents loads its encoders with `load_encoders`: the same keys the trainer wrote.
    from dynamictrl.data.dataset import LatentCache
    from dynamictrl.data.encoders import load_encoders

    encoders = load_encoders(toy[0])
    cache = LatentCache(tmp_path / "cache", encoders.vae_id, encoders.text_id)
    stored = cache.get(cache.prompt_key("a red square moving", encoders.max_text_length))
    assert stored is not None and torch.equal(stored, encoders.encode_prompt("a red square moving"))


def _pipeline(model: Path):
    from diffusers import AutoencoderKLCogVideoX, CogVideoXDPMScheduler
    from transformers import AutoTokenizer, T5EncoderModel

    from dynamictrl.models.transformer_dynamictrl import DynamiCtrlTransformer
    from dynamictrl.pipelines.pipeline_dynamictrl import DynamiCtrlPipeline

    return DynamiCtrlPipeline(
        tokenizer=AutoTokenizer.from_pretrained(model / "tokenizer"),
        text_encoder=T5EncoderModel.from_pretrained(model / "text_encoder").eval(),
        vae=AutoencoderKLCogVideoX.from_pretrained(model / "vae").eval(),
        transformer=DynamiCtrlTransformer.from_pretrained(model / "transformer").eval(),
        scheduler=CogVideoXDPMScheduler.from_pretrained(model / "scheduler"),
    )


def test_direct_adding_run_leaves_padaln_untouched_and_says_so_in_the_folder(toy, tmp_path):
    """`pose_control_function: direct` (the ablation): the PadaLN weights get no update, the saved folder records
    the setting, so inference runs the model the way it was trained."""
    from dynamictrl.models.transformer_dynamictrl import DynamiCtrlTransformer
    from dynamictrl.training import spec

    config = _config(toy, tmp_path / "out", max_steps=2, batch_size=2, pose_control_function="direct")
    before = {k: v for k, v in spec.load_components(toy[0]).transformer.state_dict().items()}
    result = run(config)
    assert json.loads((result.output / "dynamictrl.json").read_text()) == {
        "image_latent_scale": 0.7,
        "pose_control_function": "direct",
    }
    after = DynamiCtrlTransformer.from_pretrained(result.output).state_dict()
    padaln = [k for k in after if ".control_norm1." in k]
    assert padaln and all(torch.equal(after[k], before[k]) for k in padaln)
    assert not torch.equal(after["patch_embed.proj.weight"], before["patch_embed.proj.weight"])


def test_lora_round_trip_through_the_pipeline(toy, tmp_path):
    """A LoRA run saves only adapters (checkpoint and final file); the pipeline loads the file with
    `load_lora_weights`, its output changes, and adapter weight 0 gives the base output back."""
    from safetensors.torch import load_file

    model, data = toy
    result = run(
        _config(
            toy,
            tmp_path / "out",
            mode="lora",
            lora_rank=4,
            lora_alpha=4,
            max_steps=20,
            batch_size=2,
            learning_rate=1e-2,
            checkpoint_every=20,
            image_dropout=0.0,
            image_noise=False,
            cache_dir=str(tmp_path / "cache"),
        )
    )
    lora_file = result.output / "pytorch_lora_weights.safetensors"
    keys = set(load_file(lora_file))
    assert keys and all(k.startswith("transformer.") and "lora" in k for k in keys)
    assert any(".control_norm1.linear.lora_B" in k for k in keys)
    saved = load_file(tmp_path / "out" / "checkpoint-20" / "trainable.safetensors")
    assert saved and all("lora_" in k for k in saved)
    assert json.loads((result.output / "dynamictrl.json").read_text()) == {"image_latent_scale": 0.7}

    pipe = _pipeline(model)
    pose = torch.rand(1, 13, 3, 32, 32) * 2 - 1
    image = torch.rand(1, 3, 32, 32)

    def generate():
        return pipe(
            image=image,
            control_video=pose,
            prompt="a red square moving",
            height=32,
            width=32,
            num_frames=13,
            num_inference_steps=2,
            guidance_scale=1.0,
            generator=torch.Generator().manual_seed(0),
            output_type="latent",
        ).frames

    base = generate()
    pipe.load_lora_weights(result.output, adapter_name="toy")
    tuned = generate()
    assert (tuned - base).abs().max() > 1e-3
    pipe.set_adapters(["toy"], [0.0])
    torch.testing.assert_close(generate(), base, rtol=0, atol=1e-5)
    pipe.set_adapters(["toy"], [1.0])
    torch.testing.assert_close(generate(), tuned, rtol=0, atol=1e-6)
