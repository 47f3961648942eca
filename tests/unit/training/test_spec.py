"""The training loss reproduces one step of the published training loop (fixtures/training-step)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

FIXTURE: Path


@pytest.fixture(scope="module")
def step(fixtures_dir):
    from safetensors.torch import load_file

    global FIXTURE
    FIXTURE = fixtures_dir / "training-step"
    return load_file(FIXTURE / "train_step.safetensors"), json.loads((FIXTURE / "train_step.json").read_text())


def _models():
    from diffusers import CogVideoXDPMScheduler

    from dynamictrl.models.transformer_dynamictrl import DynamiCtrlTransformer

    transformer = DynamiCtrlTransformer.from_pretrained(FIXTURE / "transformer", torch_dtype=torch.float32)
    scheduler = CogVideoXDPMScheduler.from_pretrained(FIXTURE / "scheduler")
    return transformer, scheduler


def _inputs(tensors):
    return {
        "video_latents": tensors["step.video_latents"],
        "image_latents": tensors["step.image_latents"],
        "control_latents": tensors["step.control_video_latents"],
        "prompt_embeds": tensors["step.prompt_embeds"],
        "timesteps": tensors["step.timesteps"],
        "noise": tensors["step.noise"],
    }


def test_loss_and_gradients_match_the_published_step(step):
    from dynamictrl.training import diffusion_loss

    tensors, meta = step
    transformer, scheduler = _models()
    transformer.train()
    loss = diffusion_loss(transformer, scheduler, **_inputs(tensors))
    assert loss.dtype == torch.float32
    expected = tensors["step.loss"][0]
    assert abs(loss.item() - expected.item()) <= 1e-5 * abs(expected.item())
    assert abs(loss.item() - meta["loss"]) <= 1e-5 * abs(meta["loss"])
    loss.backward()
    params = dict(transformer.named_parameters())
    grads = {k[len("grad.") :]: v for k, v in tensors.items() if k.startswith("grad.")}
    assert set(grads) == set(params)
    for name, ref in grads.items():
        got = params[name].grad
        assert got is not None, name
        scale = ref.abs().max().clamp_min(1e-12)
        assert ((got - ref).abs().max() / scale).item() <= 1e-4, name
    norm = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in params.values()])).item()
    assert norm == pytest.approx(meta["gradient_norm"], rel=1e-4)


def test_rope_tables_are_the_pipelines(step):
    from types import SimpleNamespace

    from dynamictrl.pipelines.pipeline_dynamictrl import DynamiCtrlPipeline
    from dynamictrl.training import rotary_embeddings

    tensors, meta = step
    transformer, _ = _models()
    frames, _, h, w = tensors["step.video_latents"].shape[1:]
    cos, sin = rotary_embeddings(transformer.config, frames, h, w, None)
    torch.testing.assert_close(cos, tensors["step.rotary_cos"], rtol=0, atol=1e-6)
    torch.testing.assert_close(sin, tensors["step.rotary_sin"], rtol=0, atol=1e-6)
    # The very method the pipeline calls, with the pipeline's pixel sizes.
    fake = SimpleNamespace(vae_scale_factor_spatial=8, transformer=transformer)
    p_cos, p_sin = DynamiCtrlPipeline._prepare_rotary_positional_embeddings(
        fake, meta["height"], meta["width"], frames, None
    )
    torch.testing.assert_close(cos, p_cos, rtol=0, atol=0)
    torch.testing.assert_close(sin, p_sin, rtol=0, atol=0)


def test_loss_is_the_published_x0_space_loss(step):
    """mean(w·(x̂0 − x0)²), w = 1/(1−ᾱ), equals the v-MSE (computed here in float64 to avoid the amplification)."""
    from dynamictrl.training.spec import v_target

    tensors, _ = step
    _, scheduler = _models()
    x0, noise, t = tensors["step.video_latents"], tensors["step.noise"], tensors["step.timesteps"]
    out = tensors["step.model_output"]
    a = scheduler.alphas_cumprod[t].double().view(-1, 1, 1, 1, 1)
    x_t = a.sqrt() * x0.double() + (1 - a).sqrt() * noise.double()
    x0_hat = a.sqrt() * x_t - (1 - a).sqrt() * out.double()
    published = ((x0_hat - x0.double()) ** 2 / (1 - a)).mean()
    ours = ((out.double() - v_target(scheduler, x0, noise, t).double()) ** 2).mean()
    assert ours.item() == pytest.approx(published.item(), rel=1e-6)
    assert ours.item() == pytest.approx(tensors["step.loss"].item(), rel=1e-5)


def test_direct_adding_trains_the_patch_embedding_and_no_padaln(step):
    """`pose_control_function: direct` (the ablation): the pose still reaches the loss, through the patch embedding,
    and the unused PadaLN weights get no gradient."""
    from dynamictrl.training.spec import diffusion_loss

    tensors, _ = step
    transformer, scheduler = _models()
    loss = diffusion_loss(transformer, scheduler, **_inputs(tensors), pose_control_function="direct")
    loss.backward()
    grads = {n: p.grad for n, p in transformer.named_parameters()}
    assert all(g is None for n, g in grads.items() if ".control_norm1." in n)
    assert grads["patch_embed.proj.weight"] is not None and grads["patch_embed.proj.weight"].abs().sum() > 0
    assert loss.item() != pytest.approx(diffusion_loss(transformer, scheduler, **_inputs(tensors)).item(), rel=1e-4)


def test_zero_init_pose_starts_from_the_base_model(tiny_models):
    """init cogvideox + zero_init_pose: with a pose the model predicts exactly what the stock CogVideoX predicts."""
    from diffusers import CogVideoXTransformer3DModel

    from dynamictrl.training.spec import load_components

    comp = load_components(tiny_models.base, init="cogvideox", zero_init_pose=True)
    stock = CogVideoXTransformer3DModel.from_pretrained(tiny_models.base / "transformer").eval()
    g = torch.Generator().manual_seed(0)
    hidden = torch.randn(1, 2, 32, 4, 4, generator=g)
    text = torch.randn(1, 32, 32, generator=g)
    kwargs = dict(timestep=torch.tensor([500]), ofs=torch.tensor([2.0]), return_dict=False)
    with torch.no_grad():
        ours = comp.transformer.eval()(hidden, text, control_hidden_states=torch.randn(1, 2, 16, 4, 4), **kwargs)[0]
        base = stock(hidden, text, **kwargs)[0]
    torch.testing.assert_close(ours, base, rtol=0, atol=1e-6)
