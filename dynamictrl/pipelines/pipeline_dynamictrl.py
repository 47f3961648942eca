"""DynamiCtrlPipeline: reference image + pose video + prompt → video, on the diffusers CogVideoX I2V pipeline.

Reproduces the published code's inference (its `dynamictrl/pipelines/dynamictrl_pipeline.py`, see
docs/architecture.md) for the inputs it handles, same seed same video:
text-only guidance (the pose and image latents are shared by both branches), VAE posterior *sampling* of image
and pose latents drawn from the user's generator in the order image → pose → noise, pose latents × VAE scaling
factor, the published image-latent scale, CogVideoX DPM scheduler, ofs 2.0.

Beyond the published code:
- every `num_frames = 4k + 1` works: for odd latent counts the pose latents are padded at the front the way the
  noise is (the published code only runs 8k + 5), and exactly `num_frames` frames come back;
- frame t of the output is frame t of the video (`decode_alignment="aligned"`, `models.geometry.decode_padding`):
  the published code decodes the even latent counts it runs pair by pair, which holds the reference for four
  frames, delays every later frame by three and cuts the last three poses; `"published"` decodes so, for parity;
- batches of prompts/images/poses and `num_videos_per_prompt > 1` work and every video is returned;
- the pose video is validated (type, length, size, range) with errors that say how to fix it;
- the pose is passed to the transformer once for both guidance branches, so its PadaLN chain runs at half batch;
- dynamic CFG follows the step index (the inherited formula mixed raw timesteps with the step count);
- the FreeInit-like `re_init_noise_latent` of the published code is not carried over (it filtered the wrong axes
  and doubled the output).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import PIL.Image
import torch
from diffusers import CogVideoXDDIMScheduler, CogVideoXDPMScheduler, CogVideoXImageToVideoPipeline
from diffusers.callbacks import MultiPipelineCallbacks, PipelineCallback
from diffusers.pipelines.cogvideo.pipeline_cogvideox_image2video import retrieve_latents, retrieve_timesteps
from diffusers.pipelines.cogvideo.pipeline_output import CogVideoXPipelineOutput
from diffusers.utils.torch_utils import randn_tensor

from ..defaults import PUBLISHED
from ..errors import InputError
from ..models.geometry import (
    check_decode_alignment,
    decode_padding,
    default_overlap_frames,
    validate_num_frames,
    validate_size,
)
from ..models.transformer_dynamictrl import DynamiCtrlTransformer
from . import windowing
from .acceleration import GuidanceSchedule

logger = logging.getLogger(__name__)

OFS = 2.0  # the CogVideoX-1.5 I2V "ofs" conditioning the published code always passes


class DynamiCtrlPipelineOutput(CogVideoXPipelineOutput):
    """`frames`: one video per (prompt × num_videos_per_prompt), each exactly `num_frames` long.

    `np`: float array `[B, F, H, W, 3]` in [0, 1]; `pt`: tensor `[B, F, 3, H, W]`; `pil`: list of lists of images.
    """


@dataclass
class DenoiseInputs:
    """What every denoising step of one generation (or one window of it) shares.

    `prompt_embeds [k·B, L, D]` (k = 2 under guidance: negative rows first), `image_latents [k·B, F, 16, h, w]`
    (frame 0 the reference, the rest zero), `control_latents [B, F, 16, h, w]` (the pose, shared by the k
    branches), `image_rotary_emb` for F latent frames of h×w, `ofs` (None for models without it).
    `guidance_delta [B, F, 16, h, w]`: the last guided step's (cond − uncond), kept (float32) only with
    `keep_guidance_delta`, for the steps a `GuidanceSchedule` runs without the unconditional branch.
    """

    prompt_embeds: torch.Tensor
    image_latents: torch.Tensor
    control_latents: torch.Tensor
    do_classifier_free_guidance: bool
    ofs: torch.Tensor | None = None
    image_rotary_emb: tuple[torch.Tensor, torch.Tensor] | None = None
    extra_step_kwargs: dict[str, Any] = field(default_factory=dict)
    attention_kwargs: dict[str, Any] | None = None
    pose_control_function: str = "padaln"
    keep_guidance_delta: bool = False
    guidance_delta: torch.Tensor | None = None


def control_video_to_tensor(control_video: Any, height: int, width: int, min_frames: int) -> torch.Tensor:
    """Pose video(s) → float tensor `[B, F, 3, H, W]` in [-1, 1], validated.

    Accepts what users have: a tensor `[B, F, 3, H, W]` or `[F, 3, H, W]` in [-1, 1] (the published code's form), uint8
    arrays `[F, H, W, 3]` / `[B, F, H, W, 3]`, a list of PIL images, or a list of any of these (one per prompt).
    Extra frames beyond `min_frames` are dropped; fewer is an error.
    """
    if (
        isinstance(control_video, (list, tuple))
        and control_video
        and not isinstance(control_video[0], PIL.Image.Image)
    ):
        videos = [control_video_to_tensor(v, height, width, min_frames) for v in control_video]
        return torch.cat(videos, dim=0)
    if isinstance(control_video, (list, tuple)):
        if not control_video:
            raise InputError("control_video is empty; give the pose frames")
        arr = np.stack([np.asarray(img.convert("RGB")) for img in control_video])
        tensor = torch.from_numpy(arr).permute(0, 3, 1, 2).float() / 127.5 - 1.0
    elif isinstance(control_video, np.ndarray):
        if control_video.ndim not in (4, 5) or control_video.shape[-1] != 3:
            raise InputError(f"control_video array must be [F, H, W, 3] or [B, F, H, W, 3], got {control_video.shape}")
        arr = control_video if control_video.dtype == np.uint8 else np.clip(control_video, 0, 1) * 255.0
        tensor = torch.from_numpy(np.ascontiguousarray(arr)).float() / 127.5 - 1.0
        tensor = tensor.movedim(-1, -3)
    elif torch.is_tensor(control_video):
        tensor = control_video
        if tensor.dtype == torch.uint8:
            tensor = tensor.float() / 127.5 - 1.0
        elif tensor.numel() and (tensor.min() < -1.001 or tensor.max() > 1.001):
            raise InputError("control_video tensor values must be in [-1, 1] (or pass uint8 frames)")
    else:
        raise InputError(
            f"control_video must be a tensor, a uint8 array or a list of PIL images, got {type(control_video)}"
        )
    if tensor.ndim == 4:
        tensor = tensor.unsqueeze(0)
    if tensor.ndim != 5 or tensor.shape[2] != 3:
        raise InputError(f"control_video must be [B, F, 3, H, W], got {tuple(tensor.shape)}")
    frames, h, w = tensor.shape[1], tensor.shape[3], tensor.shape[4]
    if (h, w) != (height, width):
        raise InputError(
            f"pose video is {w}x{h} but the output is {width}x{height}; render the pose at the output size "
            "(`dynamictrl pose` does) or resize it"
        )
    if frames < min_frames:
        raise InputError(
            f"pose video has {frames} frames but {min_frames} are needed; lower num_frames or give a longer pose video"
        )
    if frames > min_frames:
        logger.info("Pose video has %d frames; using the first %d", frames, min_frames)
    return tensor[:, :min_frames]


class DynamiCtrlPipeline(CogVideoXImageToVideoPipeline):
    """Pose-guided image-to-video with DynamiCtrl. Components as stock CogVideoX I2V; transformer is DynamiCtrl.

    `tokenizer` and `text_encoder` are optional: without them pass `prompt_embeds` (and `negative_prompt_embeds`).
    """

    _optional_components = ["tokenizer", "text_encoder"]
    model_cpu_offload_seq = "text_encoder->transformer->vae"

    def __init__(self, tokenizer, text_encoder, vae, transformer: DynamiCtrlTransformer, scheduler) -> None:
        super().__init__(
            tokenizer=tokenizer, text_encoder=text_encoder, vae=vae, transformer=transformer, scheduler=scheduler
        )
        # Where to run when the weights do not say: set by the memory presets that keep weights on the CPU
        # (`pipelines.memory.apply_memory`: group offload, T5 between prompts). None: diffusers' rule.
        self.execution_device: torch.device | None = None

    @property
    def _execution_device(self) -> torch.device:
        if getattr(self, "execution_device", None) is not None:
            return self.execution_device
        return super()._execution_device

    # ---------------------------------------------------------------------------------------------- checks
    @property
    def max_side(self) -> int | None:
        """Largest height/width the 3-D RoPE grid covers (sample_size·8: 2400 px for CogVideoX-1.5)."""
        if self.transformer.config.patch_size_t is None:
            return None
        return self.transformer.config.sample_height * self.vae_scale_factor_spatial

    def check_inputs(  # noqa: D417 - documented in __call__
        self,
        image,
        prompt,
        height,
        width,
        negative_prompt,
        callback_on_step_end_tensor_inputs,
        latents=None,
        prompt_embeds=None,
        negative_prompt_embeds=None,
        num_frames: int | None = None,
        num_inference_steps: int | None = None,
        guidance_scale: float | None = None,
    ):
        multiple = self.vae_scale_factor_spatial * self.transformer.config.patch_size
        validate_size(height, width, multiple, self.max_side)
        if num_frames is not None:
            validate_num_frames(num_frames, self.vae_scale_factor_temporal)
        if num_inference_steps is not None and (not isinstance(num_inference_steps, int) or num_inference_steps < 1):
            raise InputError(f"num_inference_steps must be an integer >= 1, got {num_inference_steps}")
        if guidance_scale is not None and guidance_scale < 0:
            raise InputError(f"guidance_scale must be >= 0, got {guidance_scale}")
        try:
            super().check_inputs(
                image,
                prompt,
                height,
                width,
                negative_prompt,
                callback_on_step_end_tensor_inputs,
                latents,
                prompt_embeds,
                negative_prompt_embeds,
            )
        except ValueError as exc:
            raise InputError(str(exc)) from exc
        if prompt_embeds is None and (self.text_encoder is None or self.tokenizer is None):
            raise InputError("this pipeline has no text encoder/tokenizer; pass prompt_embeds instead of prompt")

    # ------------------------------------------------------------------------------------------- latents
    def image_latent_scale(self, override: float | None = None) -> float:
        """Scale of the reference-image latent: the published pipeline's convention by default (docs/architecture.md).

        Published inference: × scaling_factor if the VAE's `invert_scale_latents` is False, else × 1.0. Training
        used × scaling_factor (0.7) and stock diffusers uses × 1/scaling_factor; pass `image_latent_scale` to try them.
        """
        if override is not None:
            return float(override)
        return 1.0 if self.vae.config.invert_scale_latents else float(self.vae_scaling_factor_image)

    def decode_latents(self, latents: torch.Tensor, alignment: str = "aligned") -> torch.Tensor:
        """Denoised latents `[B, f, 16, h, w]` (× scaling factor) → frames `[B, 3, F, H, W]` in [-1, 1].

        `aligned`: F = 4(f − 1) + 1 and frame t is the video's frame t; an even f gets a copy of its last latent
        appended first and loses the four frames decoded from it (`models.geometry.decode_padding`: the VAE's decoder
        is causal in time, so earlier frames do not see the copy; only the GroupNorm statistics of the last chunk do).
        `published`: the VAE's own pair-by-pair decode, F = 4f for an even f, as the published pipeline decodes.
        """
        extra = decode_padding(latents.shape[1], alignment)
        if extra:
            latents = torch.cat([latents, latents[:, -1:].expand(-1, extra, -1, -1, -1)], dim=1)
        frames = super().decode_latents(latents)
        if extra:
            frames = frames[:, :, : -extra * self.vae_scale_factor_temporal]
        return frames

    def encode_image_latents(self, image: torch.Tensor, generator, dtype) -> torch.Tensor:
        """`[B, 3, H, W]` in [-1, 1] → posterior samples `[B, 1, 16, h, w]`, one VAE call per image (as published)."""
        latents = []
        for i, img in enumerate(image):
            gen = generator[i] if isinstance(generator, list) else generator
            latents.append(retrieve_latents(self.vae.encode(img[None, :, None]), gen))
        return torch.cat(latents).to(dtype).permute(0, 2, 1, 3, 4)

    def encode_control_latents(self, control_video: torch.Tensor, generator, dtype) -> torch.Tensor:
        """`[B, F, 3, H, W]` in [-1, 1] → posterior samples × scaling factor `[B, F_lat, 16, h, w]`."""
        video = control_video.permute(0, 2, 1, 3, 4)
        if isinstance(generator, list):
            latents = torch.cat(
                [retrieve_latents(self.vae.encode(v[None]), g) for v, g in zip(video, generator, strict=False)]
            )
        else:
            latents = retrieve_latents(self.vae.encode(video), generator)
        return (latents.permute(0, 2, 1, 3, 4) * self.vae.config.scaling_factor).to(dtype)

    def prepare_latents(
        self,
        image: torch.Tensor,
        control_video: torch.Tensor,
        num_videos_per_prompt: int,
        num_channels_latents: int,
        num_frames: int,
        height: int,
        width: int,
        dtype: torch.dtype,
        device: torch.device,
        generator=None,
        latents: torch.Tensor | None = None,
        image_latent_scale: float | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, int]:
        """Noise, image latents and pose latents, drawn from `generator` in the order image → pose → noise.

        Returns `(latents, image_latents, control_latents, padding)`: `padding` latent frames were added at the
        front (for odd latent counts) and must be dropped before decoding. Image and pose latents are sampled once
        per prompt and repeated for its `num_videos_per_prompt` videos.
        """
        prompts = image.shape[0]
        batch = prompts * num_videos_per_prompt
        if isinstance(generator, list) and len(generator) != batch:
            raise InputError(f"got {len(generator)} generators for {batch} videos; pass one per video or a single one")
        per_prompt_gen = generator[::num_videos_per_prompt] if isinstance(generator, list) else generator

        latent_frames = (num_frames - 1) // self.vae_scale_factor_temporal + 1
        p_t = self.transformer.config.patch_size_t
        padding = (p_t - latent_frames % p_t) % p_t if p_t else 0
        total_frames = latent_frames + padding
        h, w = height // self.vae_scale_factor_spatial, width // self.vae_scale_factor_spatial

        image_latents = self.encode_image_latents(image, per_prompt_gen, dtype) * self.image_latent_scale(
            image_latent_scale
        )
        control_latents = self.encode_control_latents(control_video, per_prompt_gen, dtype)
        if control_latents.shape[1] != latent_frames:
            raise InputError(
                f"pose video encodes to {control_latents.shape[1]} latent frames, expected {latent_frames}"
            )

        # The image anchors frame 0; the other frames are zero, as in training.
        image_latents = torch.cat(
            [image_latents, image_latents.new_zeros((prompts, total_frames - 1, num_channels_latents, h, w))], dim=1
        )
        # Odd latent counts: the noise gets an extra leading frame that is dropped after denoising; give the pose
        # the same extra frame (a copy of its first), so pose frame i still lines up with output frame i.
        if padding:
            control_latents = torch.cat([control_latents[:, :1].expand(-1, padding, -1, -1, -1), control_latents], 1)

        if num_videos_per_prompt > 1:
            image_latents = image_latents.repeat_interleave(num_videos_per_prompt, dim=0)
            control_latents = control_latents.repeat_interleave(num_videos_per_prompt, dim=0)

        shape = (batch, total_frames, num_channels_latents, h, w)
        if latents is None:
            latents = randn_tensor(shape, generator=generator, device=device, dtype=dtype)
        elif tuple(latents.shape) != shape:
            raise InputError(f"latents must have shape {shape}, got {tuple(latents.shape)}")
        else:
            latents = latents.to(device=device, dtype=dtype)
        return latents * self.scheduler.init_noise_sigma, image_latents, control_latents, padding

    def _broadcast_to_prompts(self, tensor: torch.Tensor, prompts: int, what: str) -> torch.Tensor:
        if tensor.shape[0] == prompts:
            return tensor
        if tensor.shape[0] == 1:
            return tensor.expand(prompts, *tensor.shape[1:])
        raise InputError(f"got {tensor.shape[0]} {what} for {prompts} prompts; give one, or one per prompt")

    # ------------------------------------------------------------------------------------------- one step
    def denoise_step(
        self,
        latents: torch.Tensor,
        t: torch.Tensor,
        previous_t: torch.Tensor | None,
        inputs: DenoiseInputs,
        guidance_scale: float,
        old_pred_original_sample: torch.Tensor | None = None,
        unconditional: bool = True,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """One denoising step: model call (both guidance branches in one batch), guidance, scheduler step.

        `latents [B, F, 16, h, w]` at timestep `t` (`previous_t`: the step before, None at the first; the DPM
        scheduler needs it). Returns `(latents at the next timestep, the DPM scheduler's x0 estimate)`; feed the
        second back in at the next step. The whole-clip loop of `__call__` and windowed generation both call this,
        with `inputs` holding what the steps of one (window of a) generation share.

        `unconditional=False` (under guidance): only the conditional rows run, in their own cache context (the
        caches keep per-context state of the batch they saw), guided by `inputs.guidance_delta`.
        """
        dtype = latents.dtype
        do_cfg = inputs.do_classifier_free_guidance
        both = do_cfg and unconditional
        image_latents, prompt_embeds = inputs.image_latents, inputs.prompt_embeds
        if do_cfg and not unconditional:
            if inputs.guidance_delta is None:
                raise RuntimeError("a step without the unconditional branch needs a guided step before it")
            image_latents, prompt_embeds = image_latents.chunk(2)[1], prompt_embeds.chunk(2)[1]
        model_input = torch.cat([latents] * 2) if both else latents
        model_input = torch.cat([self.scheduler.scale_model_input(model_input, t), image_latents], dim=2)
        with self.transformer.cache_context("cond_uncond" if both or not do_cfg else "cond"):
            noise_pred = self.transformer(
                hidden_states=model_input,
                encoder_hidden_states=prompt_embeds,
                timestep=t.expand(model_input.shape[0]),
                control_hidden_states=inputs.control_latents,
                pose_control_function=inputs.pose_control_function,
                ofs=inputs.ofs,
                image_rotary_emb=inputs.image_rotary_emb,
                attention_kwargs=inputs.attention_kwargs,
                return_dict=False,
            )[0].float()
        if both:
            uncond, cond = noise_pred.chunk(2)
            if inputs.keep_guidance_delta:
                inputs.guidance_delta = cond - uncond
            noise_pred = uncond + guidance_scale * (cond - uncond)
        elif do_cfg:  # cond + (scale − 1)·(cond − uncond), with the difference of the last guided step
            noise_pred = noise_pred + (guidance_scale - 1.0) * inputs.guidance_delta
        if isinstance(self.scheduler, CogVideoXDPMScheduler):
            latents, old_pred_original_sample = self.scheduler.step(
                noise_pred,
                old_pred_original_sample,
                t,
                previous_t,
                latents,
                **inputs.extra_step_kwargs,
                return_dict=False,
            )
        else:
            latents = self.scheduler.step(noise_pred, t, latents, **inputs.extra_step_kwargs, return_dict=False)[0]
        return latents.to(dtype), old_pred_original_sample

    # -------------------------------------------------------------------------------------------- __call__
    @torch.no_grad()
    def __call__(
        self,
        image: PIL.Image.Image | np.ndarray | torch.Tensor | Sequence[PIL.Image.Image],
        control_video: Any,
        prompt: str | list[str] | None = None,
        negative_prompt: str | list[str] | None = None,
        height: int | None = None,
        width: int | None = None,
        num_frames: int = PUBLISHED.num_frames,
        num_inference_steps: int = PUBLISHED.steps,
        timesteps: list[int] | None = None,
        guidance_scale: float = PUBLISHED.guidance,
        use_dynamic_cfg: bool = False,
        num_videos_per_prompt: int = 1,
        eta: float = 0.0,
        generator: torch.Generator | list[torch.Generator] | None = None,
        latents: torch.Tensor | None = None,
        prompt_embeds: torch.Tensor | None = None,
        negative_prompt_embeds: torch.Tensor | None = None,
        output_type: str = "pil",
        return_dict: bool = True,
        attention_kwargs: dict[str, Any] | None = None,
        callback_on_step_end: Callable[[Any, int, Any, dict], dict]
        | PipelineCallback
        | MultiPipelineCallbacks
        | None = None,
        callback_on_step_end_tensor_inputs: list[str] | None = None,
        max_sequence_length: int | None = None,
        image_latent_scale: float | None = None,
        pose_control_function: str = "padaln",
        window_frames: int | None = None,
        overlap_frames: int | None = None,
        long_video: str = "windows",
        guidance_schedule: GuidanceSchedule | None = None,
        decode_alignment: str = "aligned",
    ) -> DynamiCtrlPipelineOutput | tuple:
        """Animate `image` along `control_video` (rendered pose frames; frame 0 is the reference's own pose).

        Defaults are the published recommendation (37 frames, 25 steps, CFG 3.0). `height`/`width` must be
        multiples of 16 and default to the pose video's size. `callback_on_step_end(pipe, step, timestep, tensors)`
        may return replacements for the tensors named in `callback_on_step_end_tensor_inputs` (default `latents`).

        Long videos: with `window_frames` (4k+1, the clip length the model was trained on) and `num_frames` above
        it, generation runs on overlapping windows of that length sharing `overlap_frames` (a multiple of 4;
        default about a quarter of the window), `long_video="windows"` fused at every step or `"chain"`ed segment
        after segment (`dynamictrl.pipelines.windowing`). Up to `window_frames` it is the whole-clip path, unchanged.

        `guidance_schedule` (whole-clip path, under guidance): the steps it lists in
        `unconditional_steps(num_inference_steps)` run both branches, the others the conditional rows only (the
        `--speed` presets, `dynamictrl.pipelines.acceleration`). None: both branches at every step.

        `decode_alignment`: `aligned` (frame t of the output is frame t of the video) or `published` (the published
        pipeline's decode of even latent counts: the reference held for four frames, the rest three frames late);
        see `decode_latents`.
        """
        if isinstance(callback_on_step_end, (PipelineCallback, MultiPipelineCallbacks)):
            callback_on_step_end_tensor_inputs = callback_on_step_end.tensor_inputs
        callback_on_step_end_tensor_inputs = callback_on_step_end_tensor_inputs or ["latents"]
        if isinstance(image, np.ndarray) and image.ndim == 3:
            image = PIL.Image.fromarray(image)
        if height is None or width is None:
            shape = getattr(control_video, "shape", None)
            if shape is not None and len(shape) >= 4 and torch.is_tensor(control_video):
                height, width = height or int(shape[-2]), width or int(shape[-1])
            elif isinstance(control_video, np.ndarray):
                height, width = height or int(control_video.shape[-3]), width or int(control_video.shape[-2])
            else:
                raise InputError("pass height and width (multiples of 16)")

        self.check_inputs(
            image,
            prompt,
            height,
            width,
            negative_prompt,
            callback_on_step_end_tensor_inputs,
            latents,
            prompt_embeds,
            negative_prompt_embeds,
            num_frames=num_frames,
            num_inference_steps=num_inference_steps if timesteps is None else None,
            guidance_scale=guidance_scale,
        )
        check_decode_alignment(decode_alignment)  # before any work, not at the decode
        plan = None
        if window_frames is not None and num_frames > window_frames:
            if long_video not in windowing.STRATEGIES:
                raise InputError(f"long_video must be one of {', '.join(windowing.STRATEGIES)}, got {long_video!r}")
            if not isinstance(self.scheduler, (CogVideoXDPMScheduler, CogVideoXDDIMScheduler)):
                raise InputError(
                    f"long videos need a scheduler whose step keeps no state; {type(self.scheduler).__name__} "
                    "counts its steps (use CogVideoXDPMScheduler or CogVideoXDDIMScheduler)"
                )
            if overlap_frames is None:
                overlap_frames = default_overlap_frames(window_frames, self.vae_scale_factor_temporal)
            plan = windowing.plan_for_frames(
                num_frames,
                window_frames,
                overlap_frames,
                self.vae_scale_factor_temporal,
                self.transformer.config.patch_size_t,
            )
        if max_sequence_length is None:  # the text length the transformer was trained with (226 for CogVideoX)
            max_sequence_length = self.transformer.config.max_text_seq_length
        if num_videos_per_prompt < 1:
            raise InputError(f"num_videos_per_prompt must be >= 1, got {num_videos_per_prompt}")
        self._guidance_scale = guidance_scale
        self._current_timestep = None
        self._attention_kwargs = attention_kwargs
        self._interrupt = False

        # 1. Batch and device.
        if prompt is not None:
            prompts = 1 if isinstance(prompt, str) else len(prompt)
        else:
            prompts = prompt_embeds.shape[0]
        device = self._execution_device
        do_cfg = guidance_scale > 1.0

        # 2. Text (as stock: the negative prompt defaults to "", no attention mask).
        prompt_embeds, negative_prompt_embeds = self.encode_prompt(
            prompt=prompt,
            negative_prompt=negative_prompt,
            do_classifier_free_guidance=do_cfg,
            num_videos_per_prompt=num_videos_per_prompt,
            prompt_embeds=prompt_embeds,
            negative_prompt_embeds=negative_prompt_embeds,
            max_sequence_length=max_sequence_length,
            device=device,
        )
        if prompt_embeds.shape[0] == prompts and num_videos_per_prompt > 1:  # user-given embeddings
            prompt_embeds = prompt_embeds.repeat_interleave(num_videos_per_prompt, dim=0)
            if negative_prompt_embeds is not None:
                negative_prompt_embeds = negative_prompt_embeds.repeat_interleave(num_videos_per_prompt, dim=0)
        dtype = prompt_embeds.dtype
        if do_cfg:
            prompt_embeds = torch.cat([negative_prompt_embeds, prompt_embeds], dim=0)

        # 3. Timesteps.
        timesteps, num_inference_steps = retrieve_timesteps(self.scheduler, num_inference_steps, device, timesteps)
        self._num_timesteps = len(timesteps)

        # 4. Reference image and pose video.
        self._warn_if_stretched(image, height, width)
        image = self.video_processor.preprocess(image, height=height, width=width).to(device, dtype=dtype)
        image = self._broadcast_to_prompts(image, prompts, "images")
        control = control_video_to_tensor(control_video, height, width, num_frames).to(device, dtype=dtype)
        control = self._broadcast_to_prompts(control, prompts, "pose videos")

        # 5. Latents: image → pose → noise from the generator.
        latents, image_latents, control_latents, padding = self.prepare_latents(
            image,
            control,
            num_videos_per_prompt,
            self.transformer.config.in_channels // 2,
            num_frames,
            height,
            width,
            dtype,
            device,
            generator,
            latents,
            image_latent_scale,
        )
        if plan is not None:  # one long latent, no padding: each window is [reference slot | its video latents]
            latents, control_latents = latents[:, padding:], control_latents[:, padding:]
            image_latents, padding = image_latents[:, : plan.window_latents], 0
        # 6. Denoising. The pose batch is passed once: both guidance branches share it (text-only guidance).
        step_inputs = DenoiseInputs(
            prompt_embeds=prompt_embeds,
            image_latents=torch.cat([image_latents] * 2) if do_cfg else image_latents,
            control_latents=control_latents,
            do_classifier_free_guidance=do_cfg,
            ofs=None if self.transformer.config.ofs_embed_dim is None else latents.new_full((1,), OFS),
            image_rotary_emb=(
                self._prepare_rotary_positional_embeddings(
                    height, width, latents.size(1) if plan is None else plan.window_latents, device
                )
                if self.transformer.config.use_rotary_positional_embeddings
                else None
            ),
            extra_step_kwargs=self.prepare_extra_step_kwargs(generator, eta),
            attention_kwargs=attention_kwargs,
            pose_control_function=pose_control_function,
        )
        num_warmup_steps = max(len(timesteps) - num_inference_steps * self.scheduler.order, 0)
        old_pred_original_sample = None
        guided_steps = None
        if guidance_schedule is not None and do_cfg:
            if plan is not None:
                logger.warning("The guidance schedule is not applied to windowed generation; guiding every step")
            else:
                guided_steps = set(guidance_schedule.unconditional_steps(len(timesteps)))
                step_inputs.keep_guidance_delta = len(guided_steps) < len(timesteps)

        def scale_at(i: int) -> float:
            if use_dynamic_cfg:
                self._guidance_scale = 1 + guidance_scale * (
                    (1 - math.cos(math.pi * (i / num_inference_steps) ** 5.0)) / 2
                )
            return self.guidance_scale

        def step_end(i: int, t: torch.Tensor, latents: torch.Tensor) -> torch.Tensor:
            nonlocal negative_prompt_embeds
            if callback_on_step_end is None:
                return latents
            available = {
                "latents": latents,
                "prompt_embeds": step_inputs.prompt_embeds,
                "negative_prompt_embeds": negative_prompt_embeds,
            }
            outputs = callback_on_step_end(self, i, t, {k: available[k] for k in callback_on_step_end_tensor_inputs})
            outputs = outputs or {}
            step_inputs.prompt_embeds = outputs.pop("prompt_embeds", step_inputs.prompt_embeds)
            negative_prompt_embeds = outputs.pop("negative_prompt_embeds", negative_prompt_embeds)
            return outputs.pop("latents", latents)

        if plan is not None:
            denoise = windowing.denoise_windows if long_video == "windows" else windowing.denoise_chain
            extra = {"on_step_end": step_end} if long_video == "windows" else {}
            if long_video == "chain" and callback_on_step_end is not None:
                logger.warning("callback_on_step_end is not called for chained segments (long_video='chain')")
            with self.progress_bar(total=windowing.window_steps(plan, len(timesteps), long_video)) as progress_bar:
                latents = denoise(
                    self, latents, timesteps, step_inputs, control_latents, plan, scale_at, progress_bar, **extra
                )
        else:
            with self.progress_bar(total=num_inference_steps) as progress_bar:
                for i, t in enumerate(timesteps):
                    if self.interrupt:
                        continue
                    self._current_timestep = t
                    latents, old_pred_original_sample = self.denoise_step(
                        latents,
                        t,
                        timesteps[i - 1] if i > 0 else None,
                        step_inputs,
                        scale_at(i),
                        old_pred_original_sample,
                        unconditional=guided_steps is None or i in guided_steps,
                    )
                    latents = step_end(i, t, latents)
                    if i == len(timesteps) - 1 or ((i + 1) > num_warmup_steps and (i + 1) % self.scheduler.order == 0):
                        progress_bar.update()
        self._current_timestep = None

        # 7. Decode; drop the padding latent and any frames the VAE decodes beyond num_frames.
        if output_type == "latent":
            video = latents[:, padding:]
        else:
            video = self.decode_latents(latents[:, padding:], decode_alignment)[:, :, :num_frames]
            video = self.video_processor.postprocess_video(video=video, output_type=output_type)
        self.maybe_free_model_hooks()
        if not return_dict:
            return (video,)
        return DynamiCtrlPipelineOutput(frames=video)

    @staticmethod
    def _warn_if_stretched(image: Any, height: int, width: int) -> None:
        size = None
        if isinstance(image, PIL.Image.Image):
            size = image.size
        elif isinstance(image, (list, tuple)) and image and isinstance(image[0], PIL.Image.Image):
            size = image[0].size
        if size and abs(size[0] / size[1] - width / height) > 0.01 * (width / height):
            logger.warning(
                "Reference image is %dx%d but the output is %dx%d: it will be stretched, and a pose computed on a "
                "crop will not line up. Crop it to the output aspect first (dynamictrl.io.images.cover_crop).",
                size[0],
                size[1],
                width,
                height,
            )
