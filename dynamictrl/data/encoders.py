"""The frozen encoders of training data: VAE posterior moments, T5 prompt embeddings and their fingerprints.

Training (`training.spec`, `training.trainer`), `dynamictrl prepare-data --cache-latents` and the latent cache
(`data.dataset.LatentCache`) all encode through these functions, so a cached tensor and a freshly encoded one are
the same numbers, and a cache key (which holds `fingerprint` of the encoder) names exactly one encoder.

- `encode_moments`: pixels → VAE posterior moments (mean ‖ logvar), deterministic, hence cacheable;
- `sample_latents`: a posterior sample from moments with a given generator (the trainer's step generator);
- `encode_prompts`: T5 embeddings padded as CogVideoX pads them;
- `load_encoders`: only the VAE and T5/tokenizer of a pipeline folder (`pipelines.loading.resolve_model` finds them).
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import torch

from ..errors import InputError

logger = logging.getLogger(__name__)

DEFAULT_MAX_TEXT_LENGTH = 226  # CogVideoX's max_text_seq_length, when a transformer config does not say


# VAE attributes that change its moments when tiling is on (diffusers' AutoencoderKLCogVideoX.enable_tiling).
TILING_ATTRIBUTES = (
    "tile_sample_min_height",
    "tile_sample_min_width",
    "tile_overlap_factor_height",
    "tile_overlap_factor_width",
)


def fingerprint(module: Any) -> str:
    """A short hash of a frozen encoder's config and weights (in their loaded dtype): part of every cache key.

    A VAE with tiling on (the trainer's `vae_tiling`, prepare-data's `--vae-tiling`) blends tiles, so its moments
    differ: its tile settings are hashed too (only when on, so untiled keys stay as they were).
    """
    config = getattr(module, "config", {})
    config = config.to_dict() if hasattr(config, "to_dict") else dict(config)
    h = hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode())
    if getattr(module, "use_tiling", False) is True:
        tiling = {name: getattr(module, name, None) for name in TILING_ATTRIBUTES}
        h.update(json.dumps({"tiling": tiling}, sort_keys=True).encode())
    with torch.no_grad():
        for name, param in sorted(module.state_dict().items()):
            h.update(name.encode())
            h.update(param.detach().float().cpu().numpy().tobytes())
    return h.hexdigest()[:16]


@torch.no_grad()
def encode_moments(vae: Any, pixels: torch.Tensor) -> torch.Tensor:
    """One clip `[F, 3, H, W]` in [-1, 1] → VAE posterior moments (mean ‖ logvar) `[f, 32, h, w]`, float32, CPU.

    Deterministic (no sampling), so the moments can be cached; `sample_latents` draws from them.
    """
    return encode_moments_batch(vae, [pixels], group=1)[0]


@torch.no_grad()
def encode_moments_batch(vae: Any, clips: list[torch.Tensor], group: int = 1) -> list[torch.Tensor]:
    """Clips of one shape `[F, 3, H, W]` → their moments `[f, 32, h, w]`, `group` clips per VAE call.

    The last call is padded to `group` clips (repeating its last clip), so every call has the same batch size: the
    kernels a batch size selects give each clip the same numbers whatever its companions (measured: exactly equal),
    so a clip's moments depend on `group` alone, not on the micro-batch or the number of processes. `group=1` is
    `encode_moments`. Batches of 4-8 small clips cost about 2.6x less per clip on the CPU than one at a time (64 px,
    docs/small_model.md) and agree with one at a time to float rounding (about 2e-5).
    """
    device, dtype = vae.device, vae.dtype
    moments: list[torch.Tensor] = []
    for first in range(0, len(clips), group):
        chunk = list(clips[first : first + group])
        real = len(chunk)
        chunk += [chunk[-1]] * (group - real)
        video = torch.stack(chunk).to(device=device, dtype=dtype).permute(0, 2, 1, 3, 4)  # [group, 3, F, H, W]
        out = vae.encode(video).latent_dist.parameters[:real]
        moments.extend(out.permute(0, 2, 1, 3, 4).float().cpu().unbind(0))
    return moments


def sample_latents(moments: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Posterior sample from moments `[..., 2C, h, w]` (channel dim −3), as `DiagonalGaussianDistribution.sample`.

    Drawn on the CPU from `generator` in float32, so it is the same sample on every device and from the cache.
    """
    mean, logvar = moments.float().chunk(2, dim=-3)
    std = torch.exp(0.5 * logvar.clamp(-30.0, 20.0))
    return mean + std * torch.randn(mean.shape, generator=generator, dtype=torch.float32)


@torch.no_grad()
def encode_prompts(tokenizer: Any, text_encoder: Any, prompts: list[str], max_length: int) -> torch.Tensor:
    """T5 embeddings `[B, max_length, D]` (float32, CPU), padded as CogVideoX pads (no attention mask)."""
    ids = tokenizer(
        prompts,
        padding="max_length",
        max_length=max_length,
        truncation=True,
        add_special_tokens=True,
        return_tensors="pt",
    ).input_ids
    return text_encoder(ids.to(text_encoder.device))[0].float().cpu()


@dataclass(eq=False)
class FrozenEncoders:
    """The frozen VAE and (optional) T5 of a model, with the cache fingerprints; a `data.prepare.LatentEncoder`.

    `vae_id` / `text_id` are computed on first use (hashing T5-XXL reads all its weights) and are taken in the
    dtype the encoders were loaded in, with the VAE's tiling: a bf16 and an fp32 VAE, or a tiled and an untiled one,
    are different cache keys (so enable tiling before the first use).
    """

    vae: Any
    tokenizer: Any = None
    text_encoder: Any = None
    max_text_length: int = DEFAULT_MAX_TEXT_LENGTH
    sources: dict[str, Path] = field(default_factory=dict)  # component → folder it was loaded from

    @cached_property
    def vae_id(self) -> str:
        return fingerprint(self.vae)

    @cached_property
    def text_id(self) -> str | None:
        return fingerprint(self.text_encoder) if self.text_encoder is not None else None

    def to(self, device: str | torch.device) -> FrozenEncoders:
        self.vae.to(device)
        if self.text_encoder is not None:
            self.text_encoder.to(device)
        return self

    def encode_video(self, pixels: torch.Tensor) -> torch.Tensor:
        """`[F, 3, H, W]` in [-1, 1] → moments `[f, 32, h, w]` (float32, CPU)."""
        return encode_moments(self.vae, pixels)

    def encode_prompt(self, prompt: str) -> torch.Tensor:
        """One prompt → T5 embedding `[L, D]` (float32, CPU)."""
        if self.text_encoder is None:
            raise InputError(f"prompt {prompt[:40]!r} needs a text encoder, and the model has no text_encoder/")
        return encode_prompts(self.tokenizer, self.text_encoder, [prompt], self.max_text_length)[0]


def load_encoders(
    model_folder: str | Path,
    dtype: torch.dtype = torch.float32,
    *,
    text_encoder: bool | None = None,
) -> FrozenEncoders:
    """Load only the VAE and the T5 + tokenizer of a model (a pipeline folder, or anything `resolve_model` takes).

    Components are found by `dynamictrl.pipelines.loading.resolve_model`, as inference finds them (missing ones
    come from the CogVideoX-1.5 I2V base). `text_encoder`: True requires T5, False skips it, None (default) loads
    it when a local folder has `text_encoder/` (a folder without one can train from a cache of its prompts).
    Both are frozen (`requires_grad_(False)`, eval) in `dtype`, on the CPU; `max_text_length` comes from the
    transformer's `config.json` (no transformer weights are read).
    """
    from diffusers import AutoencoderKLCogVideoX

    from ..pipelines.loading import resolve_model

    folder = Path(model_folder).expanduser()
    if text_encoder is None:
        text_encoder = (folder / "text_encoder").is_dir() if folder.is_dir() else True
    resolved = resolve_model(str(model_folder), need_text_encoder=text_encoder)
    transformer_config = resolved.config("transformer")
    max_text_length = int(transformer_config.get("max_text_seq_length") or DEFAULT_MAX_TEXT_LENGTH)
    vae = AutoencoderKLCogVideoX.from_pretrained(resolved.components["vae"], torch_dtype=dtype)
    vae.requires_grad_(False).eval()
    sources = {"vae": resolved.components["vae"]}
    tokenizer = t5 = None
    if text_encoder:
        from transformers import AutoTokenizer, T5EncoderModel

        tokenizer = AutoTokenizer.from_pretrained(resolved.components["tokenizer"])
        t5 = T5EncoderModel.from_pretrained(resolved.components["text_encoder"], dtype=dtype)
        t5.requires_grad_(False).eval()
        sources.update(tokenizer=resolved.components["tokenizer"], text_encoder=resolved.components["text_encoder"])
    logger.info("Loaded the frozen encoders of %s (%s)", model_folder, ", ".join(sources))
    return FrozenEncoders(vae, tokenizer, t5, max_text_length, sources)


__all__ = [
    "FrozenEncoders",
    "encode_moments",
    "encode_moments_batch",
    "encode_prompts",
    "fingerprint",
    "load_encoders",
    "sample_latents",
]
