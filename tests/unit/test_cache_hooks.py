"""diffusers' cache hooks apply to the DynamiCtrl transformer and run whole generations."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dynamictrl.models.loading import load_pipeline
from dynamictrl.pipelines.acceleration import CACHE_METHODS, enable_cache

H = W = 64


@pytest.fixture(scope="module")
def pipe(tiny_models):
    return load_pipeline(str(tiny_models.dynamictrl))


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
