"""Memory and speed options: diffusers' cache hooks on the DynamiCtrl transformer, model CPU offload, VAE options."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dynamictrl.defaults import PUBLISHED
from dynamictrl.errors import InputError
from dynamictrl.pipelines import acceleration
from dynamictrl.pipelines.acceleration import CACHE_METHODS, enable_cache
from dynamictrl.pipelines.loading import load_pipeline

H = W = 64


@pytest.fixture(scope="module")
def pipe(tiny_models):
    return load_pipeline(str(tiny_models.dynamictrl))[0]


def _generate(pipe, steps: int = 6, schedule=None) -> np.ndarray:
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
        guidance_schedule=schedule,
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


def test_compile_compiles_every_block_and_keeps_the_output(tiny_models, monkeypatch):
    """`--compile` (`compile_blocks`), with dynamo's `aot_eager` backend: the whole tracing (fullgraph: a graph
    break would fail) without inductor's C++ build (about a minute on this CPU; `--compile` uses inductor)."""
    monkeypatch.setattr(acceleration, "COMPILE_BACKEND", "aot_eager")
    plain = _generate_small(load_pipeline(str(tiny_models.dynamictrl))[0])
    pipe, _ = load_pipeline(str(tiny_models.dynamictrl))
    try:
        acceleration.compile_blocks(pipe)
        blocks = pipe.transformer.transformer_blocks
        assert all(getattr(block, "_compiled_call_impl", None) is not None for block in blocks)
        assert pipe.transformer.patch_embed._compiled_call_impl is None  # regional: the blocks only
        np.testing.assert_allclose(_generate_small(pipe), plain, atol=1e-5)
    finally:
        torch._dynamo.reset()


def test_vae_options(tiny_models):
    pipe, _ = load_pipeline(str(tiny_models.dynamictrl))
    acceleration.configure_vae(pipe, tiling=True, slicing=False)
    assert pipe.vae.use_tiling and not pipe.vae.use_slicing
    acceleration.configure_vae(pipe, tiling=False, slicing=True)
    assert not pipe.vae.use_tiling and pipe.vae.use_slicing


def test_unknown_offload_mode_is_refused_with_the_choices():
    with pytest.raises(InputError, match="sequential"):
        acceleration.place(None, torch.device("cpu"), "layerwise")


# ------------------------------------------------------------------------------------------------ speed presets
def _generate_with(pipe, speed: acceleration.ResolvedSpeed, guidance: float = 6.0) -> tuple[np.ndarray, list]:
    """A generation under `speed` (cache hooked, then removed) and the counted block rows per block."""
    schedule = acceleration.apply_speed(pipe, speed, guidance)
    try:
        with acceleration.BlockCounter(pipe.transformer) as counter:
            frames = _generate(pipe, speed.steps, schedule)
    finally:
        pipe.transformer.disable_cache() if speed.cache != "none" else None
    return frames, counter.rows


def test_exact_preset_is_bit_identical_to_no_preset(pipe, uncached):
    frames, rows = _generate_with(pipe, acceleration.resolve_speed("exact", 6))
    assert np.array_equal(frames, uncached)
    assert rows == [[2] * 6] * len(pipe.transformer.transformer_blocks)  # both branches, every step, every block


@pytest.mark.parametrize(("preset", "full_passes"), [("fast", 14), ("fastest", 12)])
def test_presets_cut_block_evaluations_by_their_design(pipe, preset, full_passes):
    """At the default 25 steps. fast: TaylorSeer every 2nd step after 3 warm-up steps = 14 passes of 2 rows
    (1.79x). fastest: guided steps 0-12 (TaylorSeer every 3rd after warm-up: 0,1,2,4,7,10) at 2 rows, then
    cond-only steps 13-24 in their own cache context (again 0,1,2,4,7,10 of it) at 1 row: 18 rows (2.78x)."""
    steps = PUBLISHED.steps
    with acceleration.BlockCounter(pipe.transformer) as plain:
        _generate(pipe, steps)
    frames, rows = _generate_with(pipe, acceleration.resolve_speed(preset, steps))
    assert len(rows[0]) == full_passes and np.isfinite(frames).all()
    ratio = sum(map(sum, plain.rows)) / sum(map(sum, rows))
    assert ratio == pytest.approx({"fast": 100 / 56, "fastest": 100 / 36}[preset])
    assert ratio >= {"fast": 1.6, "fastest": 2.5}[preset]


def test_guidance_schedule_skips_exactly_the_steps_it_lists(pipe, uncached):
    schedule = acceleration.GuidanceSchedule(full_fraction=0.5, every=2)
    assert schedule.unconditional_steps(6) == [0, 1, 2, 3, 5]
    with acceleration.BlockCounter(pipe.transformer) as counter:
        frames = _generate(pipe, 6, schedule)
    assert counter.rows[0] == [2, 2, 2, 2, 1, 2]  # step 4 ran the conditional rows only
    assert np.isfinite(frames).all() and not np.array_equal(frames, uncached)


def test_guidance_truncation_without_guidance_says_so(pipe, caplog):
    speed = acceleration.resolve_speed("fastest", 4, cache="none")
    with caplog.at_level("WARNING", logger=acceleration.__name__):
        assert acceleration.apply_speed(pipe, speed, guidance_scale=1.0) is None
    assert [r.message for r in caplog.records] == [
        "--speed fastest: guidance truncation does nothing with --guidance <= 1"
    ]


def test_explicit_cache_and_steps_override_the_preset():
    fastest = acceleration.resolve_speed("fastest", 10, cache="first-block", cache_threshold=0.2)
    assert (fastest.cache, fastest.cache_interval, fastest.cache_threshold) == ("first-block", None, 0.2)
    assert fastest.guidance == acceleration.SPEED_PRESETS["fastest"].guidance and fastest.overridden == ("--cache",)
    assert acceleration.resolve_speed("fast", 7, cache="none").cache == "none"
    assert acceleration.resolve_speed("fast", 7).steps == 7  # presets never change --steps
    assert acceleration.resolve_speed("exact", 25).to_json()["guidance"] == {"full_fraction": 1.0, "every": None}


def test_speed_option_parses_and_refuses_bad_values(tmp_path):
    import argparse

    from dynamictrl.options import AnimateOptions, add_arguments, from_args

    parser = argparse.ArgumentParser()
    add_arguments(parser, AnimateOptions)
    common = ["--image", "a.png", "--pose-video", "p.mp4", "--prompt", "x"]
    options = from_args(AnimateOptions, parser.parse_args([*common, "--speed", "fast"]))
    assert (options.speed, options.cache) == ("fast", None)
    assert from_args(AnimateOptions, parser.parse_args(common)).speed == "exact"
    with pytest.raises(InputError, match="--speed must be one of exact, fast, fastest, got 'turbo'"):
        from_args(AnimateOptions, parser.parse_args([*common, "--speed", "turbo"]))
    with pytest.raises(InputError, match="--speed must be one of"):
        acceleration.resolve_speed("turbo", 25)
