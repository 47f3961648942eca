"""The memory presets and the memory model (`dynamictrl.pipelines.memory`)."""

from __future__ import annotations

import logging

import pytest
import torch

from dynamictrl.errors import InputError
from dynamictrl.pipelines import memory

# The released model's sizes (parameter counts of CogVideoX1.5-5B-I2V + PadaLN, T5-XXL encoder, CogVideoX VAE:
# what `ModelSizes.from_configs(RELEASED_*_CONFIG...)` counts on the meta device, which takes ~10 s).
RELEASED = memory.ModelSizes(
    transformer_params=5_770_420_864,
    transformer_block_params=136_931_584,
    num_layers=42,
    text_encoder_params=4_762_310_656,
    vae_params=215_583_907,
    hidden_dim=3072,
    patch_size=2,
    patch_size_t=2,
    text_tokens=226,
    vae_top_channels=128,
    spatial_compression=8,
    temporal_compression=4,
    tile_height=240,
    tile_width=360,
    transformer_float8_params=4_759_863_296,
    transformer_block_float8_params=113_273_856,
)
PUBLISHED_JOB = dict(height=768, width=1360, frames=37, dtype_bytes=2, device_type="cuda")


def test_sizes_are_counted_from_configs_as_from_the_built_models():
    from diffusers import AutoencoderKLCogVideoX
    from transformers import T5Config, T5EncoderModel

    from dynamictrl.models.configs import SMALL_TEXT_ENCODER_CONFIG, SMALL_TRANSFORMER_CONFIG, SMALL_VAE_CONFIG
    from dynamictrl.models.transformer_dynamictrl import DynamiCtrlTransformer

    text_config = {**SMALL_TEXT_ENCODER_CONFIG, "vocab_size": 128}
    sizes = memory.ModelSizes.from_configs(SMALL_TRANSFORMER_CONFIG, SMALL_VAE_CONFIG, text_config)
    built = memory.ModelSizes.from_modules(
        DynamiCtrlTransformer(**SMALL_TRANSFORMER_CONFIG),
        AutoencoderKLCogVideoX(**SMALL_VAE_CONFIG),
        T5EncoderModel(T5Config(**text_config)),
    )
    assert sizes == built
    assert sizes.hidden_dim == 192 and sizes.spatial_compression == 4 and sizes.num_layers == 6


def test_the_released_transformer_float8_counts_are_diffusers_own():
    from dynamictrl.models.configs import RELEASED_TRANSFORMER_CONFIG
    from dynamictrl.models.transformer_dynamictrl import DynamiCtrlTransformer

    with torch.device("meta"):
        transformer = DynamiCtrlTransformer(**RELEASED_TRANSFORMER_CONFIG)
    counted = memory._float8_counts(transformer)
    assert counted == (RELEASED.transformer_float8_params, RELEASED.transformer_block_float8_params)
    assert 0.8 < counted[0] / RELEASED.transformer_params < 0.85  # norms, embeddings, proj_out stay bf16


# Measured on an NVIDIA H200 (`benchmarks/gpu_5b.py`, `benchmarks/results/gpu_5b.json`): the 5B transformer's weights
# on the GPU plus the peak of one guided denoising step at the published job, bf16, per memory preset's transformer
# part (`none`: resident; `24gb`: float8 storage; `16gb`: group offload; `12gb`: both), GiB.
H200_DENOISING_PEAK_GIB = {"none": 14.42, "24gb": 9.99, "16gb": 4.22, "12gb": 4.01}


@pytest.mark.parametrize("preset", sorted(H200_DENOISING_PEAK_GIB))
def test_the_denoising_peak_is_predicted_near_the_h200_measurement(preset):
    estimate = memory.estimate_peak(RELEASED, **PUBLISHED_JOB, preset=preset)
    predicted = (estimate.weights["transformer"] + estimate.denoise_stage) / memory.GIB
    assert abs(predicted / H200_DENOISING_PEAK_GIB[preset] - 1) < 0.05, predicted


# Measured on an NVIDIA H200 (`benchmarks/gpu_5b_job.py`, `benchmarks/results/gpu_5b_job.json`): whole jobs at the
# published size (T5-XXL, the 5B transformer and the CogVideoX VAE with random weights in bf16, set up as animate
# sets them up), torch.cuda.max_memory_allocated over the job, GiB.
H200_JOB_PEAK_GIB = {"none": 24.28, "80gb": 56.02, "24gb": 15.69, "12gb": 9.37}


@pytest.mark.parametrize("preset", sorted(H200_JOB_PEAK_GIB))
def test_a_whole_job_is_predicted_near_its_h200_peak_and_not_below_it_by_much(preset):
    predicted = memory.estimate_peak(RELEASED, **PUBLISHED_JOB, preset=preset).peak / memory.GIB
    assert -0.02 < predicted / H200_JOB_PEAK_GIB[preset] - 1 < 0.10, predicted


def test_the_released_job_is_predicted_near_its_published_peak():
    """DynamiCtrl's README: 28.4 GB on an H20 for 37 frames at 1360x768 with VAE tiling, everything on the GPU
    (preset `none`); 24.7 GB at 1024x576. Totals as nvidia-smi shows them: at 1360x768 the H200 run above allocated
    at most 24.3 GiB and reserved 27.2 GiB (29.2 GB)."""
    for (height, width), published in (((768, 1360), 28.4e9), ((576, 1024), 24.7e9)):
        job = {**PUBLISHED_JOB, "height": height, "width": width}
        predicted = memory.estimate_peak(RELEASED, **job).peak
        assert abs(predicted / published - 1) < 0.15, (height, width, predicted / 1e9)


def test_each_preset_predicts_less_than_the_one_above_on_a_gpu():
    estimates = memory.estimates_for(RELEASED, **PUBLISHED_JOB)
    peaks = [estimates[name].peak for name in memory.AUTO_ORDER]
    assert peaks == sorted(peaks, reverse=True) and len(set(peaks)) == len(peaks)
    assert estimates["40gb"].peak < estimates["none"].peak  # T5 off the GPU once the prompt is encoded
    assert estimates["12gb"].peak / memory.GIB < 12
    untiled = memory.estimate_peak(RELEASED, **PUBLISHED_JOB, preset="80gb")
    assert untiled.peak_stage == "decode" and untiled.decode_stage > estimates["40gb"].decode_stage


def test_window_and_guidance_set_the_denoising_working_set():
    long = memory.estimate_peak(RELEASED, **{**PUBLISHED_JOB, "frames": 161})
    windowed = memory.estimate_peak(RELEASED, **{**PUBLISHED_JOB, "frames": 161}, window=37)
    clip = memory.estimate_peak(RELEASED, **PUBLISHED_JOB)
    assert windowed.denoise_stage == clip.denoise_stage < long.denoise_stage
    unguided = memory.estimate_peak(RELEASED, **PUBLISHED_JOB, guidance=False)
    assert unguided.denoise_stage * 2 == pytest.approx(clip.denoise_stage, rel=1e-6)


def test_auto_takes_the_first_preset_that_fits_and_the_last_when_none_does(caplog):
    estimates = memory.estimates_for(RELEASED, **PUBLISHED_JOB)
    assert memory.choose_preset(estimates, 200 * memory.GIB) == "80gb"
    fits_40 = estimates["40gb"].peak / memory.AUTO_HEADROOM + 1
    assert memory.choose_preset(estimates, int(fits_40)) == "40gb"
    with caplog.at_level(logging.WARNING, logger="dynamictrl.pipelines.memory"):
        assert memory.choose_preset(estimates, 2 * memory.GIB) == "12gb"
    assert len(caplog.records) == 1 and "trying it anyway" in caplog.records[0].getMessage()


def test_gpu_only_parts_of_a_preset_say_so_in_one_line_on_the_cpu(caplog):
    estimates = memory.estimates_for(RELEASED, **{**PUBLISHED_JOB, "device_type": "cpu"})
    with caplog.at_level(logging.INFO, logger="dynamictrl.pipelines.memory"):
        plan = memory.plan_memory("12gb", estimates, torch.device("cpu"))
    assert plan.applied == ["fp8_transformer", "vae_tiling"]
    assert plan.skipped == ["free_text_encoder", "group_offload"] and not plan.free_text_encoder
    assert [r.getMessage() for r in caplog.records] == [
        "--memory 12gb: free_text_encoder and group_offload need a CUDA GPU and do not apply on cpu"
    ]
    assert memory.kept_on_cpu(plan) == ()
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="dynamictrl.pipelines.memory"):
        plain = memory.plan_memory("none", estimates, torch.device("cpu"))
    assert plain.applied == plain.skipped == [] and plain.vae_tiling is None and not caplog.records
    assert plan.to_json()["estimate"]["preset"] == "12gb"
    with pytest.raises(InputError, match="--memory must be one of"):
        memory.plan_memory("8gb", estimates, torch.device("cpu"))


def test_a_gpu_plan_keeps_the_offloaded_components_on_the_cpu():
    plan = memory.AppliedMemory("16gb", "16gb", applied=["free_text_encoder", "group_offload"], free_text_encoder=True)
    assert memory.kept_on_cpu(plan) == ("transformer", "text_encoder")


def test_encode_prompts_gives_the_pipelines_own_embeddings(tiny_models):
    from dynamictrl.pipelines.loading import load_pipeline

    pipe = load_pipeline(str(tiny_models.dynamictrl))[0]
    embeds, negative = memory.encode_prompts(pipe, torch.device("cpu"), "a person dancing", "", 3.0)
    with torch.no_grad():
        own, own_negative = pipe.encode_prompt(
            "a person dancing", "", True, max_sequence_length=pipe.transformer.config.max_text_seq_length
        )
    assert torch.equal(embeds, own) and torch.equal(negative, own_negative)
    assert next(pipe.text_encoder.parameters()).device.type == "cpu"
