"""Memory options: model CPU offload runs the whole pipeline with the same output; VAE and device choices."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dynamictrl.errors import InputError
from dynamictrl.models.loading import load_pipeline
from dynamictrl.pipelines import acceleration


def _generate(pipe) -> np.ndarray:
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
    plain = _generate(load_pipeline(str(tiny_models.dynamictrl)))
    pipe = load_pipeline(str(tiny_models.dynamictrl))
    pipe.enable_model_cpu_offload(device="cpu")
    assert all(hasattr(getattr(pipe, name), "_hf_hook") for name in ("text_encoder", "transformer", "vae"))
    np.testing.assert_array_equal(_generate(pipe), plain)


def test_vae_options(tiny_models):
    pipe = load_pipeline(str(tiny_models.dynamictrl))
    acceleration.configure_vae(pipe, tiling=True, slicing=False)
    assert pipe.vae.use_tiling and not pipe.vae.use_slicing
    acceleration.configure_vae(pipe, tiling=False, slicing=True)
    assert not pipe.vae.use_tiling and pipe.vae.use_slicing


def test_device_and_dtype_choices():
    cpu = acceleration.resolve_device("cpu")
    assert acceleration.resolve_dtype("auto", cpu) == torch.float32
    assert acceleration.resolve_dtype("bfloat16", cpu) == torch.bfloat16
    with pytest.raises(InputError, match="float32"):
        acceleration.resolve_dtype("fp8", cpu)
    with pytest.raises(InputError, match="auto, cpu, cuda"):
        acceleration.resolve_device("gpu please")
    if not torch.cuda.is_available():
        with pytest.raises(InputError, match="no CUDA GPU"):
            acceleration.resolve_device("cuda")
    with pytest.raises(InputError, match="sequential"):
        acceleration.place(None, cpu, "layerwise")
