"""DynamiCtrlPipeline: parity with the published pipeline, frame counts, batches, validation, callbacks."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from dynamictrl.errors import InputError

H, W = 48, 80


@pytest.fixture(scope="module")
def reference_inputs(reference_tiny):
    return load_file(reference_tiny / "pipeline_inputs.safetensors")


def _call(pipe, image, pose, embeds, num_frames, steps=2, seed=0, **kwargs):
    pos, neg = embeds
    return pipe(
        image,
        pose,
        prompt_embeds=pos,
        negative_prompt_embeds=neg,
        height=H,
        width=W,
        num_frames=num_frames,
        num_inference_steps=steps,
        generator=torch.Generator().manual_seed(seed),
        output_type="np",
        **kwargs,
    ).frames


@pytest.fixture(scope="module")
def embeds():
    g = torch.Generator().manual_seed(1)
    return torch.randn(1, 7, 20, generator=g), torch.randn(1, 7, 20, generator=g)


def _pose(frames: int, batch: int = 1, seed: int = 0) -> torch.Tensor:
    return torch.rand(batch, frames, 3, H, W, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def test_frames_match_published_pipeline(pipe, reference_tiny, reference_inputs):
    call = json.loads((reference_tiny / "pipeline_call.json").read_text())
    expected = load_file(reference_tiny / "pipeline_expected.safetensors")["frames"].numpy()
    frames = pipe(
        Image.open(reference_tiny / "reference.png").convert("RGB"),
        reference_inputs["control_video"],
        prompt_embeds=reference_inputs["prompt_embeds"],
        negative_prompt_embeds=reference_inputs["negative_prompt_embeds"],
        height=call["height"],
        width=call["width"],
        num_frames=call["num_frames"],
        num_inference_steps=call["num_inference_steps"],
        guidance_scale=call["guidance_scale"],
        use_dynamic_cfg=call["use_dynamic_cfg"],
        generator=torch.Generator().manual_seed(call["seed"]),
        output_type=call["output_type"],
        decode_alignment="published",
    ).frames
    assert frames.shape == (1, call["num_frames"], call["height"], call["width"], 3)
    assert np.abs(frames[0] - expected[: call["num_frames"]]).max() < 2e-3


def test_aligned_decode_gives_frame_t_of_the_video_where_the_published_decode_lags():
    """A ground-truth clip through the bundled small model's VAE: 13 frames → 4 latents (an even count, as the
    published code's 8k+5 frames). Aligned, frame t is closest to ground-truth frame t; the published decode gives
    the reference's latent four frames, so its frame t + 3 is ground-truth frame t and its last poses are cut."""
    from dynamictrl.jobs.demo import bundled_model, demo_sample
    from dynamictrl.pipelines.loading import load_pipeline

    pipe, _ = load_pipeline(str(bundled_model()))
    truth = demo_sample("synthetic", 13).frames  # the held-out walking example: the character crosses the frame
    pixels = torch.from_numpy(truth).float().permute(3, 0, 1, 2)[None] / 127.5 - 1
    with torch.no_grad():
        latents = pipe.vae.encode(pixels).latent_dist.mode().permute(0, 2, 1, 3, 4) * pipe.vae_scaling_factor_image
        aligned = pipe.decode_latents(latents)
        published = pipe.decode_latents(latents, "published")
    assert latents.shape[1] == 4 and aligned.shape[2] == 13 and published.shape[2] == 16

    def error(video: torch.Tensor, shift: int) -> np.ndarray:  # mean |decoded t + shift − truth t| per frame t ≥ 1
        decoded = ((video[0].clamp(-1, 1) + 1) * 127.5).permute(1, 2, 3, 0).numpy()
        return np.array([np.abs(decoded[t + shift] - truth[t]).mean() for t in range(1, 13 - shift)])

    # (measured: aligned 10.6 at shift 0, 15.7 at shift 3; published 15.6 at shift 0, 10.7 at shift 3)
    assert error(aligned, 0).mean() < 0.8 * min(error(published, 0).mean(), error(aligned, 3).mean())
    assert error(published, 3).mean() < 0.8 * error(published, 0).mean()
    with pytest.raises(InputError, match="decode alignment"):
        pipe.decode_latents(latents, "late")


def test_output_follows_the_pose(pipe, reference_tiny, reference_inputs):
    image = Image.open(reference_tiny / "reference.png").convert("RGB")
    embeds = (reference_inputs["prompt_embeds"], reference_inputs["negative_prompt_embeds"])
    pose = reference_inputs["control_video"]
    forward = _call(pipe, image, pose, embeds, 13, steps=3, seed=42, guidance_scale=3.0)
    reverse = _call(pipe, image, pose.flip(1), embeds, 13, steps=3, seed=42, guidance_scale=3.0)
    assert np.abs(forward - reverse).max() > 0.1


@pytest.mark.parametrize("num_frames", [5, 9, 13, 17, 21, 33, 37])
def test_every_4k_plus_1_frame_count_returns_exactly_that_many_frames(pipe, embeds, num_frames):
    image = Image.new("RGB", (W, H), (120, 80, 40))
    frames = _call(pipe, image, _pose(num_frames), embeds, num_frames)
    assert frames.shape == (1, num_frames, H, W, 3)
    assert np.isfinite(frames).all()


def test_odd_latent_counts_pad_the_pose_like_the_noise(pipe, embeds):
    """9 frames → 3 latents, padded to 4: the pose gets a leading copy of its first latent, dropped after."""
    image = pipe.video_processor.preprocess(Image.new("RGB", (W, H)), height=H, width=W)
    latents, image_latents, control, padding = pipe.prepare_latents(
        image, _pose(9), 1, 16, 9, H, W, torch.float32, torch.device("cpu"), torch.Generator().manual_seed(0)
    )
    assert padding == 1
    assert latents.shape[1] == image_latents.shape[1] == control.shape[1] == 4
    assert torch.equal(control[:, 0], control[:, 1])


def test_batches_and_videos_per_prompt(pipe, embeds):
    pos, neg = embeds
    images = [Image.new("RGB", (W, H), (200, 0, 0)), Image.new("RGB", (W, H), (0, 0, 200))]
    frames = _call(
        pipe, images, _pose(9, batch=2), (pos.repeat(2, 1, 1), neg.repeat(2, 1, 1)), 9, num_videos_per_prompt=2
    )
    assert frames.shape == (4, 9, H, W, 3)
    # Two videos of the same prompt differ (own noise); different references give different videos.
    assert np.abs(frames[0] - frames[1]).max() > 1e-3
    assert np.abs(frames[0] - frames[2]).max() > 1e-3
    single = _call(pipe, images[0], _pose(9, batch=2)[:1], embeds, 9, num_videos_per_prompt=2)
    assert single.shape == (2, 9, H, W, 3)


def test_pose_inputs_in_user_formats_give_the_same_video(pipe, embeds):
    image = Image.new("RGB", (W, H), (90, 90, 90))
    uint8 = np.random.default_rng(0).integers(0, 256, (9, H, W, 3), dtype=np.uint8)
    as_tensor = torch.from_numpy(uint8).permute(0, 3, 1, 2).float() / 127.5 - 1
    as_pil = [Image.fromarray(f) for f in uint8]
    a = _call(pipe, image, uint8, embeds, 9)
    b = _call(pipe, image, as_tensor, embeds, 9)
    c = _call(pipe, image, as_pil, embeds, 9)
    assert np.abs(a - b).max() < 1e-5 and np.abs(a - c).max() < 1e-5


@pytest.mark.parametrize(
    "kwargs, pose_frames, message",
    [
        (dict(num_frames=12), 13, "4k\\+1"),
        (dict(num_frames=13, height=40), 13, "multiple of 16"),
        (dict(num_frames=13, num_inference_steps=0), 13, "num_inference_steps"),
        (dict(num_frames=13), 9, "pose video has 9 frames"),
    ],
)
def test_bad_inputs_raise_clear_errors(pipe, embeds, kwargs, pose_frames, message):
    pos, neg = embeds
    call = {"height": H, "width": W, "num_inference_steps": 2, **kwargs}
    pose = torch.rand(1, pose_frames, 3, call["height"], W) * 2 - 1
    with pytest.raises(InputError, match=message):
        pipe(Image.new("RGB", (W, H)), pose, prompt_embeds=pos, negative_prompt_embeds=neg, **call)


def test_pose_of_the_wrong_size_is_refused(pipe, embeds):
    pos, neg = embeds
    with pytest.raises(InputError, match="pose video is 64x48"):
        pipe(
            Image.new("RGB", (W, H)),
            torch.zeros(1, 9, 3, 48, 64),
            prompt_embeds=pos,
            negative_prompt_embeds=neg,
            height=H,
            width=W,
            num_frames=9,
            num_inference_steps=1,
        )


def test_prompt_without_text_encoder_is_refused(pipe):
    with pytest.raises(InputError, match="prompt_embeds"):
        pipe(Image.new("RGB", (W, H)), _pose(9), prompt="a dancer", height=H, width=W, num_frames=9)


def test_step_callback_sees_and_can_replace_latents(pipe, embeds):
    seen = []

    def callback(p, step, timestep, tensors):
        seen.append((step, int(timestep), tuple(tensors["latents"].shape)))
        return {"latents": torch.zeros_like(tensors["latents"])}

    frames = _call(pipe, Image.new("RGB", (W, H)), _pose(9), embeds, 9, steps=3, callback_on_step_end=callback)
    assert [s[0] for s in seen] == [0, 1, 2]
    assert seen[0][2] == (1, 4, 16, H // 8, W // 8)
    # Latents zeroed after the last step decode to the same frames whatever the pose.
    other = _call(pipe, Image.new("RGB", (W, H)), _pose(9, seed=5), embeds, 9, steps=3, callback_on_step_end=callback)
    assert np.abs(frames - other).max() < 1e-5


def test_image_latent_scale_defaults_to_the_published_convention(pipe, embeds):
    assert pipe.vae.config.invert_scale_latents is True
    assert pipe.image_latent_scale() == 1.0
    assert pipe.image_latent_scale(0.7) == 0.7
    image = Image.new("RGB", (W, H), (200, 150, 100))
    default = _call(pipe, image, _pose(9), embeds, 9)
    training = _call(pipe, image, _pose(9), embeds, 9, image_latent_scale=0.7)
    assert np.abs(default - training).max() > 1e-4
