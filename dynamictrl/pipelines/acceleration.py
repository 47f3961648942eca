"""Memory and speed options for a loaded `DynamiCtrlPipeline`, as named choices (CLI flags map 1:1 onto these).

All of them are diffusers features; this module only picks sane settings and refuses unknown names with the list
of valid ones. Device and dtype names are resolved by `dynamictrl.io.devices`.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from ..errors import InputError

if TYPE_CHECKING:  # torch loads lazily: the CLI reads the choices below to build --help
    import torch

logger = logging.getLogger(__name__)

OFFLOAD_MODES = ("none", "model", "sequential")
CACHE_METHODS = ("none", "first-block", "pab", "faster")


def place(pipe, device: torch.device, offload: str = "none") -> None:
    """Move the pipeline to `device`, or set up CPU offload (`model`: whole models, `sequential`: layer by layer).

    Model offload keeps one of T5 / transformer / VAE on the GPU at a time (about 12 GB peak for 5B in bf16);
    sequential offload needs the least memory but is several times slower.
    """
    if offload not in OFFLOAD_MODES:
        raise InputError(f"unknown offload mode {offload!r}; choose one of {', '.join(OFFLOAD_MODES)}")
    if offload == "none" or device.type == "cpu":
        if offload != "none":
            logger.info("CPU offload has no effect when running on the CPU; ignoring --offload %s", offload)
        pipe.to(device)
    elif offload == "model":
        pipe.enable_model_cpu_offload(device=device)
    else:
        pipe.enable_sequential_cpu_offload(device=device)


def configure_vae(pipe, tiling: bool = True, slicing: bool = True) -> None:
    """VAE tiling/slicing: what the published script enables; decoding 1360x768 untiled needs ~32 GB (bf16)."""
    if tiling:
        pipe.vae.enable_tiling()
    else:
        pipe.vae.disable_tiling()
    if slicing:
        pipe.vae.enable_slicing()
    else:
        pipe.vae.disable_slicing()


def cache_config(pipe, method: str, threshold: float | None = None) -> Any | None:
    """A diffusers cache config for `method` (`first-block`, `pab`, `faster`), or None for `none`.

    Defaults follow the diffusers documentation for CogVideoX. The caches trade quality for speed; their effect on
    pose fidelity with the real weights has not been measured here (CPU only).
    """
    from diffusers import FasterCacheConfig, FirstBlockCacheConfig, PyramidAttentionBroadcastConfig

    if method not in CACHE_METHODS:
        raise InputError(f"unknown cache method {method!r}; choose one of {', '.join(CACHE_METHODS)}")
    if method == "none":
        return None
    if method == "first-block":
        return FirstBlockCacheConfig(threshold=0.1 if threshold is None else threshold)
    if method == "pab":
        return PyramidAttentionBroadcastConfig(
            spatial_attention_block_skip_range=2,
            spatial_attention_timestep_skip_range=(100, 800),
            current_timestep_callback=lambda: pipe.current_timestep,
        )
    return FasterCacheConfig(
        spatial_attention_block_skip_range=2,
        spatial_attention_timestep_skip_range=(-1, 681),
        unconditional_batch_skip_range=5,
        unconditional_batch_timestep_skip_range=(-1, 781),
        current_timestep_callback=lambda: pipe.current_timestep,
        attention_weight_callback=lambda _: 0.3,
        tensor_format="BFCHW",
        is_guidance_distilled=False,
    )


def enable_cache(pipe, method: str, threshold: float | None = None) -> None:
    config = cache_config(pipe, method, threshold)
    if config is not None:
        pipe.transformer.enable_cache(config)


def set_attention_backend(pipe, backend: str | None) -> None:
    """Route the transformer's attention through a diffusers backend (`flash`, `_flash_3`, `sage`, `native`...)."""
    if not backend:
        return
    try:
        pipe.transformer.set_attention_backend(backend)
    except (ValueError, RuntimeError, ImportError) as exc:
        raise InputError(f"attention backend {backend!r} is not usable here: {exc}") from exc
