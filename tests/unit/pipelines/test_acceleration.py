"""Memory and speed options: diffusers' cache hooks on the DynamiCtrl transformer, model CPU offload, VAE options."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dynamictrl.errors import InputError
from dynamictrl.pipelines import acceleration
from dynamictrl.pipelines.acceleration import CACHE_METHODS, enable_cache
from dynamictrl.pipelines.loading import load_pipeline

H = W = 64


@pytest.fixture(scope="module")
def pipe(tiny_models):
    return load_pipeline(str(tiny_models.dynamictrl))[0]


def _generate(pipe, steps: int = 6) -> np.ndarray:
    pose = np.random.default_rng(0).integers(0, 256, (9, H, W, 3), dtype=np.uint8)
    return pipe(
        np.full((H, W, 3), 128, np.uint8),
        pose,
        prompt="a man waving",
        height=H,
        width=W,
        num_frames=9,
        num_inference_steps=steps,
        generator=torch.Generator().manual_seed(0),
        output_type="np",
    ).frames


@pytest.fixture(scope="module")
def uncached(pipe):
    return _generate(pipe)


def _count_calls(module) -> list[int]:
    calls = [0]
    module.register_forward_pre_hook(lambda *_: calls.__setitem__(0, calls[0] + 1))
    return calls


def test_first_block_cache_skips_the_tail_blocks(pipe, uncached):
    tail = pipe.transformer.transformer_blocks[-1]
    enable_cache(pipe, "first-block", threshold=1e9)  # every step after the first reuses the cached residual
    try:
        handle_calls = _count_calls(tail.ff)
        cached = _generate(pipe)
    finally:
        pipe.transformer.disable_cache()
        tail.ff._forward_pre_hooks.clear()
    assert handle_calls[0] == 1  # only the first of 6 steps ran the last block
    assert cached.shape == uncached.shape and np.isfinite(cached).all()
    assert np.abs(cached - uncached).max() > 0


@pytest.mark.parametrize("method", [m for m in CACHE_METHODS if m not in ("none", "first-block")])
def test_attention_caches_run_a_generation(pipe, uncached, method):
    enable_cache(pipe, method)
    try:
        cached = _generate(pipe)
    finally:
        pipe.transformer.disable_cache()
    assert cached.shape == uncached.shape and np.isfinite(cached).all()


def test_disabling_a_cache_restores_the_exact_output(pipe, uncached):
    enable_cache(pipe, "first-block", threshold=1e9)
    _generate(pipe)
    pipe.transformer.disable_cache()
    assert np.array_equal(_generate(pipe), uncached)


def _generate_small(pipe) -> np.ndarray:
    pose = np.random.default_rng(1).integers(0, 256, (9, 64, 64, 3), dtype=np.uint8)
    return pipe(
        np.full((64, 64, 3), 90, np.uint8),
        pose,
        prompt="a dancer",
        height=64,
        width=64,
        num_frames=9,
        num_inference_steps=2,
        generator=torch.Generator().manual_seed(0),
        output_type="np",
    ).frames


def test_model_cpu_offload_moves_models_in_turn_and_keeps_the_output(tiny_models):
    """On a CPU the offload device is the execution device, but the hooks (VAE encode → T5 → transformer → VAE
    decode, in the pipeline's order) run exactly as they do on a GPU."""
    plain = _generate_small(load_pipeline(str(tiny_models.dynamictrl))[0])
    pipe, _ = load_pipeline(str(tiny_models.dynamictrl))
    pipe.enable_model_cpu_offload(device="cpu")
    assert all(hasattr(getattr(pipe, name), "_hf_hook") for name in ("text_encoder", "transformer", "vae"))
    np.testing.assert_array_equal(_generate_small(pipe), plain)


def test_vae_options(tiny_models):
    pipe, _ = load_pipeline(str(tiny_models.dynamictrl))
    acceleration.configure_vae(pipe, tiling=True, slicing=False)
    assert pipe.vae.use_tiling and not pipe.vae.use_slicing
    acceleration.configure_vae(pipe, tiling=False, slicing=True)
    assert not pipe.vae.use_tiling and pipe.vae.use_slicing


def test_unknown_offload_mode_is_refused_with_the_choices():
    with pytest.raises(InputError, match="sequential"):
        acceleration.place(None, torch.device("cpu"), "layerwise")
