"""What is specific to DynamiCtrl in training: loading, latents, conditions, forward and loss.

The trainer only calls `load_components`, `prepare_batch` and `diffusion_loss`; VAE scaling, RoPE, `ofs`, image
noise, dropouts and the v-prediction target stay here. Every random draw of a sample comes from its own CPU
`torch.Generator`, seeded by `(seed, epoch, index)` (`sample_generator`), in a fixed order (`prepare_batch`), so a
sample's step is the same on any device, with or without the latent cache, after a resume, and whichever rank or
micro-batch it lands in: N processes × batch B train exactly as 1 process × batch N·B.

Recipe (the published code's `scripts/dynamictrl_sft_finetune.py` loop, with its bugs fixed, docs/training.md):
- reference image: pixel noise `σ = exp(N(−3, 0.5²))` per sample, then VAE encode, posterior sample × image scale
  (0.7 = scaling_factor, as trained), zero-padded to the latent frame count; zeroed per sample with
  `image_dropout` (the published loop decided once per batch);
- video and pose: VAE posterior samples × scaling_factor;
- `t ~ U{0, …, T−1}` per sample, `x_t = scheduler.add_noise(x0, ε, t)`, `ofs = 2.0`, RoPE as the pipeline;
- loss: v-prediction MSE in float32, equal to the published `mean(w·(x̂0 − x0)²)`, `w = 1/(1−ᾱ)`.
"""

from __future__ import annotations

import hashlib
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from diffusers.models.embeddings import get_3d_rotary_pos_embed

from ..data.encoders import FrozenEncoders, encode_moments, load_encoders, sample_latents
from ..errors import CheckpointError, InputError

logger = logging.getLogger(__name__)

OFS = 2.0  # same value as dynamictrl.pipelines.pipeline_dynamictrl.OFS (the pipeline is not imported here)
LATENT_CHANNELS = 16


def _unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The model behind DDP / torch.compile / DeepSpeed wrappers (for its config; a DeepSpeed engine has a
    `config` of its own, its DeepSpeed settings)."""
    from diffusers.configuration_utils import ConfigMixin

    while not isinstance(model, ConfigMixin) and hasattr(model, "module"):
        model = model.module
    return getattr(model, "_orig_mod", model)


def rotary_embeddings(
    transformer_config: Any, latent_frames: int, latent_height: int, latent_width: int, device: torch.device | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """3-D RoPE `(cos, sin)`, each `[N_video, head_dim]`: the tables `DynamiCtrlPipeline` builds for this size.

    Same call as `CogVideoXImageToVideoPipeline._prepare_rotary_positional_embeddings` (grid in patches, base
    size `sample_{height,width} / patch_size`, "slice" grid for CogVideoX-1.5), in latent units.
    """
    c = transformer_config
    p, p_t = c.patch_size, c.patch_size_t
    grid = (latent_height // p, latent_width // p)
    if p_t is None:
        raise CheckpointError("training supports CogVideoX-1.5 transformers (patch_size_t set) only")
    return get_3d_rotary_pos_embed(
        embed_dim=c.attention_head_dim,
        crops_coords=None,
        grid_size=grid,
        temporal_size=(latent_frames + p_t - 1) // p_t,
        grid_type="slice",
        max_size=(c.sample_height // p, c.sample_width // p),
        device=device,
    )


def v_target(scheduler: Any, x0: torch.Tensor, noise: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
    """`v = √ᾱ_t·ε − √(1−ᾱ_t)·x0` in float32."""
    alphas = scheduler.alphas_cumprod.to(device=x0.device, dtype=torch.float32)[timesteps.to(x0.device)]
    alphas = alphas.view(-1, *([1] * (x0.ndim - 1)))
    return alphas.sqrt() * noise.float() - (1 - alphas).sqrt() * x0.float()


def diffusion_loss(
    transformer: torch.nn.Module,
    scheduler: Any,
    *,
    video_latents: torch.Tensor,
    image_latents: torch.Tensor,
    control_latents: torch.Tensor,
    prompt_embeds: torch.Tensor,
    timesteps: torch.Tensor,
    noise: torch.Tensor,
    pose_control_function: str = "padaln",
) -> torch.Tensor:
    """The training loss of one batch: v-prediction MSE (float32 scalar) of the DynamiCtrl transformer.

    All latents are `[B, F, 16, h, w]` already × their scales: `video_latents` is x0, `image_latents` is the
    scaled reference latent zero-padded to F frames, `control_latents` the pose latent; `prompt_embeds [B, L, D]`,
    `timesteps [B]` (int), `noise` ε like x0; `pose_control_function` as the transformer's forward. Builds RoPE
    and `ofs` as the pipeline does. The model runs in the dtype of `prompt_embeds` (or under autocast); the target
    and the mean are float32.
    """
    config = _unwrap(transformer).config
    dtype = prompt_embeds.dtype
    noisy = scheduler.add_noise(video_latents, noise, timesteps)
    frames, _, height, width = video_latents.shape[1:]
    rope = (
        rotary_embeddings(config, frames, height, width, video_latents.device)
        if config.use_rotary_positional_embeddings
        else None
    )
    ofs = None if config.ofs_embed_dim is None else video_latents.new_full((1,), OFS, dtype=dtype)
    prediction = transformer(
        hidden_states=torch.cat([noisy, image_latents], dim=2).to(dtype),
        encoder_hidden_states=prompt_embeds,
        timestep=timesteps,
        control_hidden_states=control_latents.to(dtype),
        pose_control_function=pose_control_function,
        ofs=ofs,
        image_rotary_emb=rope,
        return_dict=False,
    )[0]
    return F.mse_loss(prediction.float(), v_target(scheduler, video_latents, noise, timesteps))


# ----------------------------------------------------------------------------------------------- loading
@dataclass
class Components:
    """What a training run holds: the trained transformer, its noise scheduler and the frozen encoders."""

    transformer: torch.nn.Module
    scheduler: Any
    encoders: FrozenEncoders

    @property
    def vae(self) -> Any:
        return self.encoders.vae

    @property
    def tokenizer(self) -> Any:
        return self.encoders.tokenizer

    @property
    def text_encoder(self) -> Any:
        """T5, or None when the model folder has no `text_encoder/` (prompts must then be in the cache)."""
        return self.encoders.text_encoder

    @property
    def vae_scaling_factor(self) -> float:
        return float(self.vae.config.scaling_factor)


def _component_dir(model: Path, name: str) -> Path:
    folder = model / name
    if not folder.is_dir():
        raise InputError(f"{model} has no {name}/ folder; give a pipeline folder in the released layout")
    return folder


def load_components(
    model: str | Path, *, init: str = "dynamictrl", zero_init_pose: bool = False, dtype: torch.dtype = torch.float32
) -> Components:
    """Load transformer, scheduler, VAE, tokenizer and T5 from a local pipeline folder (released layout).

    `init="cogvideox"` starts from a stock CogVideoX-1.5 I2V transformer via `DynamiCtrlTransformer.from_cogvideox`
    (PadaLN at PyTorch default init, or all zero with `zero_init_pose`, which makes the model equal to its base at
    step 0). The transformer is kept in float32 (mixed precision autocasts); VAE and T5 are frozen, in `dtype`
    (`data.encoders.load_encoders`, as `prepare-data --cache-latents` loads them).
    """
    from diffusers import CogVideoXDPMScheduler

    from ..models.transformer_dynamictrl import DynamiCtrlTransformer

    model = Path(model)
    transformer_dir = _component_dir(model, "transformer")
    _component_dir(model, "vae")
    if init == "cogvideox":
        transformer = DynamiCtrlTransformer.from_cogvideox(transformer_dir, torch_dtype=torch.float32)
        if zero_init_pose:
            zero_pose_path_(transformer)
    else:
        transformer = DynamiCtrlTransformer.from_pretrained(transformer_dir, torch_dtype=torch.float32)
    scheduler = CogVideoXDPMScheduler.from_config(
        CogVideoXDPMScheduler.load_config(_component_dir(model, "scheduler"))
    )
    return Components(transformer, scheduler, load_encoders(model, dtype))


def zero_pose_path_(transformer: torch.nn.Module) -> None:
    """Zero every `control_norm1` (linear and LayerNorm affine): pose tokens are 0, the model is its base."""
    with torch.no_grad():
        for block in transformer.transformer_blocks:
            for param in block.control_norm1.parameters():
                param.zero_()


def check_frames(transformer_config: Any, frames: int) -> None:
    latent_frames = (frames - 1) // 4 + 1
    p_t = transformer_config.patch_size_t or 1
    if latent_frames % p_t:
        raise InputError(f"frames={frames} gives {latent_frames} latent frames, not a multiple of patch_size_t={p_t}")


# ------------------------------------------------------------------------------------------------- batches
@dataclass(frozen=True)
class Conditioning:
    """The recipe's augmentation knobs (TrainConfig fields of the same names)."""

    image_noise: bool = True
    image_noise_mean: float = -3.0
    image_noise_std: float = 0.5
    image_dropout: float = 0.05
    caption_dropout: float = 0.0
    pose_dropout: float = 0.0
    image_latent_scale: float = 0.7


def sample_generator(seed: int, epoch: int, index: int) -> torch.Generator:
    """The CPU generator of every random draw of sample `index` in `epoch` (a 63-bit seed hashed from the three)."""
    digest = hashlib.sha256(f"dynamictrl-step/{seed}/{epoch}/{index}".encode()).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest[:8], "little") >> 1)


def prepare_batch(
    samples: list[dict[str, Any]],
    *,
    vae: Any,
    scheduler: Any,
    conditioning: Conditioning,
    generators: list[torch.Generator],
    empty_prompt_embeds: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """Samples (from `data.dataset`, with `video_moments`, `control_moments`, `prompt_embeds` filled in) → the
    keyword arguments of `diffusion_loss` (CPU float32 tensors).

    `generators`: one per sample (`sample_generator`). Each sample's draws come from its own, in this order:
    image-noise σ and pixel noise (only with `image_noise`; without it the reference's moments may come from the
    sample, `image_moments`), the image / video / pose posterior samples, the image-, caption- and pose-dropout
    draws, the timestep, the noise ε. A sample's draws so never depend on the others in its batch.
    """
    c = conditioning
    if len(generators) != len(samples):
        raise ValueError(f"prepare_batch needs one generator per sample, got {len(generators)} for {len(samples)}")
    shapes = sorted({tuple(s["video_moments"].shape) for s in samples})
    if len(shapes) > 1:  # the sampler must keep a batch in one bucket (data.buckets.BucketBatchSampler)
        raise ValueError(f"a batch must have one shape, got video moments of shapes {shapes}")
    scaling = float(vae.config.scaling_factor)
    num_train = scheduler.config.num_train_timesteps
    image_latents, video_latents, control_latents, prompt_embeds, timesteps, noise = [], [], [], [], [], []
    for sample, gen in zip(samples, generators, strict=True):
        if c.image_noise:
            image = sample["image"]
            sigma = math.exp(c.image_noise_mean + c.image_noise_std * float(torch.randn(1, generator=gen)))
            image_moments = encode_moments(vae, (image + sigma * torch.randn(image.shape, generator=gen))[None])
        elif sample.get("image_moments") is not None:
            image_moments = sample["image_moments"]
        else:
            image_moments = encode_moments(vae, sample["image"][None])
        image_latent = sample_latents(image_moments, gen) * c.image_latent_scale  # [1, 16, h, w]
        video_latent = sample_latents(sample["video_moments"], gen) * scaling
        control_latent = sample_latents(sample["control_moments"], gen) * scaling
        drop_image, drop_caption, drop_pose = (
            torch.rand(3, generator=gen) < torch.tensor([c.image_dropout, c.caption_dropout, c.pose_dropout])
        ).tolist()
        embeds = sample["prompt_embeds"].float()
        if drop_caption:
            if empty_prompt_embeds is None:
                raise InputError("caption_dropout needs the empty-prompt embedding (a text encoder or a cached one)")
            embeds = empty_prompt_embeds.float()
        # The image anchors latent frame 0; the other frames are zero (as the pipeline's prepare_latents).
        padded = torch.cat(
            [image_latent, image_latent.new_zeros((video_latent.shape[0] - 1, *image_latent.shape[1:]))]
        )
        image_latents.append(padded * (0.0 if drop_image else 1.0))
        control_latents.append(control_latent * (0.0 if drop_pose else 1.0))
        video_latents.append(video_latent)
        prompt_embeds.append(embeds)
        timesteps.append(torch.randint(0, num_train, (1,), generator=gen, dtype=torch.int64))
        noise.append(torch.randn(video_latent.shape, generator=gen))
    return {
        "video_latents": torch.stack(video_latents),
        "image_latents": torch.stack(image_latents),
        "control_latents": torch.stack(control_latents),
        "prompt_embeds": torch.stack(prompt_embeds),
        "timesteps": torch.cat(timesteps),
        "noise": torch.stack(noise),
    }


def to_device(batch: dict[str, torch.Tensor], device: torch.device, dtype: torch.dtype) -> dict[str, torch.Tensor]:
    """Latents to `device` in float32 (the loss is float32), prompt embeddings in the model's `dtype`."""
    out = {k: v.to(device) for k, v in batch.items()}
    out["prompt_embeds"] = out["prompt_embeds"].to(dtype)
    return out


def write_model_settings(folder: str | Path, image_latent_scale: float, pose_control_function: str = "padaln") -> None:
    """`dynamictrl.json` beside the weights: inference reads its default image-latent scale from it, and how the
    pose enters when it is not the published PadaLN (a `pose_control_function: direct` ablation)."""
    from ..io.atomic import write_json_atomic

    settings: dict[str, Any] = {"image_latent_scale": float(image_latent_scale)}
    if pose_control_function != "padaln":
        settings["pose_control_function"] = pose_control_function
    write_json_atomic(Path(folder) / "dynamictrl.json", settings)
