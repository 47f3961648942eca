"""Memory and speed options for a loaded `DynamiCtrlPipeline`, as named choices (CLI flags map 1:1 onto these).

The caches are diffusers features; this module only picks sane settings and refuses unknown names with the list
of valid ones. Device and dtype names are resolved by `dynamictrl.io.devices`.

Speed presets (`--speed exact|fast|fastest`, `SPEED_PRESETS`) combine a cache with a `GuidanceSchedule` (which
steps evaluate the unconditional branch; the pipeline's `denoise_step` reuses the last (cond − uncond) difference
on the others). `resolve_speed` applies the precedence rule: an explicit `--cache` replaces the preset's cache,
the preset's guidance schedule stays; presets never change `--steps` (their schedules are fractions of it).
`BlockCounter` counts transformer block evaluations, the cost measure the presets are designed against.
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from ..errors import InputError

if TYPE_CHECKING:  # torch loads lazily: the CLI reads the choices below to build --help
    import torch

logger = logging.getLogger(__name__)

OFFLOAD_MODES = ("none", "model", "sequential")
CACHE_METHODS = ("none", "first-block", "pab", "faster", "taylorseer")
TAYLORSEER_INTERVAL = 2  # `--cache taylorseer`: a full transformer pass every 2nd step after the warm-up
TAYLORSEER_WARMUP = 3  # full passes before the first prediction (diffusers' default `disable_cache_before_step`)
COMPILE_BACKEND = "inductor"  # `--compile`: torch.compile's default backend (on the CPU it needs a C++ compiler)


def place(pipe, device: torch.device, offload: str = "none", keep_on_cpu: tuple[str, ...] = ()) -> None:
    """Move the pipeline to `device`, or set up CPU offload (`model`: whole models, `sequential`: layer by layer).

    Model offload keeps one of T5 / transformer / VAE on the GPU at a time (about 12 GB peak for 5B in bf16);
    sequential offload needs the least memory but is several times slower. `keep_on_cpu`: components a memory
    preset handles itself (`pipelines.memory.kept_on_cpu`), left where they are.
    """
    if offload not in OFFLOAD_MODES:
        raise InputError(f"unknown offload mode {offload!r}; choose one of {', '.join(OFFLOAD_MODES)}")
    if offload != "none" and keep_on_cpu:
        raise InputError(f"--offload {offload} and a --memory preset that offloads cannot be combined; give one")
    if offload == "none" or device.type == "cpu":
        if offload != "none":
            logger.info("CPU offload has no effect when running on the CPU; ignoring --offload %s", offload)
        if not keep_on_cpu:
            pipe.to(device)
        else:  # the models only: tokenizer and scheduler have no device
            for name, component in pipe.components.items():
                if name not in keep_on_cpu and hasattr(component, "parameters"):
                    component.to(device)
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


def cache_config(pipe, method: str, threshold: float | None = None, interval: int | None = None) -> Any | None:
    """A diffusers cache config for `method` (`first-block`, `pab`, `faster`, `taylorseer`), or None for `none`.

    Defaults follow the diffusers documentation for CogVideoX. The caches trade quality for speed; their effect on
    pose fidelity with the real weights has not been measured here (CPU only).

    `taylorseer` is diffusers' TaylorSeer in its lite form: on predicted steps every block is skipped and the
    transformer's `proj_out` output is extrapolated (first order) from the last two full passes. The lite form
    keeps one output-sized tensor per order instead of both streams of every block (about 18 GB for the 5B model
    at 1360x768 in bf16). `interval`: a full pass every `interval`-th step after the warm-up (default 2).
    """
    import torch
    from diffusers import (
        FasterCacheConfig,
        FirstBlockCacheConfig,
        PyramidAttentionBroadcastConfig,
        TaylorSeerCacheConfig,
    )

    if method not in CACHE_METHODS:
        raise InputError(f"unknown cache method {method!r}; choose one of {', '.join(CACHE_METHODS)}")
    if method == "none":
        return None
    if method == "taylorseer":
        return TaylorSeerCacheConfig(
            cache_interval=TAYLORSEER_INTERVAL if interval is None else interval,
            disable_cache_before_step=TAYLORSEER_WARMUP,
            max_order=1,
            taylor_factors_dtype=torch.float32,  # output-sized only (lite): the extrapolation is kept exact
            use_lite_mode=True,
        )
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


def enable_cache(pipe, method: str, threshold: float | None = None, interval: int | None = None) -> None:
    """Hook the cache `method` onto `pipe.transformer` (nothing for `none`); `disable_cache()` removes it."""
    config = cache_config(pipe, method, threshold, interval)
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


def compile_blocks(pipe, fullgraph: bool = True) -> None:
    """`--compile`: regional `torch.compile` of the transformer blocks (diffusers' `compile_repeated_blocks`, the
    model's `_repeated_blocks`): every block has the same shapes, so one graph serves all of them and the compile
    costs one block's, paid on the first step. `fullgraph=False` where hooks run inside the blocks (a step cache,
    group offload, context parallelism): their Python decisions then break the graph instead of failing it. Output:
    the eager one to float rounding (2.8e-6 on the tiny model's frames, `tests/unit/pipelines/test_acceleration.py`
    with the `aot_eager` backend)."""
    pipe.transformer.compile_repeated_blocks(fullgraph=fullgraph, backend=COMPILE_BACKEND)


# ------------------------------------------------------------------------------------------------ speed presets
@dataclass(frozen=True)
class GuidanceSchedule:
    """Which denoising steps evaluate the unconditional (negative-prompt) branch of classifier-free guidance.

    Steps `0 .. ceil(full_fraction · N) - 1` run both branches; after them, every `every`-th step does too (None:
    none). On the other steps `denoise_step` runs the conditional rows only (half the batch) and guides with the
    (cond − uncond) difference of the last step that ran both: `cond + (scale − 1) · difference`, which equals
    full guidance when the difference has not changed. The default (`full_fraction=1.0`) is plain guidance.
    """

    full_fraction: float = 1.0
    every: int | None = None

    def __post_init__(self) -> None:
        if not 0.0 < self.full_fraction <= 1.0:
            raise ValueError(f"full_fraction must be in (0, 1], got {self.full_fraction}")
        if self.every is not None and self.every < 1:
            raise ValueError(f"every must be >= 1 or None, got {self.every}")

    @property
    def is_exact(self) -> bool:
        """True when every step runs both branches whatever the step count."""
        return self.full_fraction >= 1.0 or self.every == 1

    def unconditional_steps(self, num_steps: int) -> list[int]:
        """Indices (0-based) of the steps that run both branches, out of `num_steps`; always includes step 0."""
        full = max(1, math.ceil(self.full_fraction * num_steps))
        later = range(full, num_steps, self.every) if self.every else ()
        return sorted({*range(min(full, num_steps)), *later})

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class SpeedPreset:
    """A named `--speed` choice: a cache method (with its interval) and a guidance schedule; steps are the user's."""

    name: str
    cache: str
    guidance: GuidanceSchedule
    description: str
    cache_interval: int | None = None


SPEED_PRESETS: dict[str, SpeedPreset] = {
    preset.name: preset
    for preset in (
        SpeedPreset("exact", "none", GuidanceSchedule(), "no cache, guidance at every step: today's computation"),
        SpeedPreset(
            "fast",
            "taylorseer",
            GuidanceSchedule(),
            "TaylorSeer (lite): a full transformer pass every 2nd step after 3 warm-up steps, the others "
            "extrapolated; guidance at every step (25 steps: 14 of 25 passes, 1.79x fewer block evaluations)",
            cache_interval=2,
        ),
        SpeedPreset(
            "fastest",
            "taylorseer",
            GuidanceSchedule(full_fraction=0.5),
            "TaylorSeer (lite) every 3rd step after 3 warm-up steps; the unconditional branch only in the first "
            "half of the steps, the second half reusing its last (cond - uncond) (25 steps: 2.78x fewer)",
            cache_interval=3,
        ),
    )
}
SPEED_NAMES = tuple(SPEED_PRESETS)


@dataclass(frozen=True)
class ResolvedSpeed:
    """What a `--speed` preset resolved to after the user's explicit `--cache` (recorded in the sidecar)."""

    preset: str
    cache: str
    cache_interval: int | None
    cache_threshold: float | None
    guidance: GuidanceSchedule
    steps: int
    overridden: tuple[str, ...] = ()  # flags the user gave that replaced a part of the preset

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "guidance": self.guidance.to_json(), "overridden": list(self.overridden)}


def resolve_speed(
    preset: str, steps: int, cache: str | None = None, cache_threshold: float | None = None
) -> ResolvedSpeed:
    """The preset `preset` with the user's explicit choices applied.

    Precedence: an explicit `cache` (`--cache`, any value including `none`) replaces the preset's cache and its
    interval; the preset's guidance schedule stays. `steps` (`--steps`, default 25) is always the user's: presets
    do not change it, their schedules are fractions and intervals of it.
    """
    if preset not in SPEED_PRESETS:
        raise InputError(f"--speed must be one of {', '.join(SPEED_NAMES)}, got {preset!r}")
    chosen = SPEED_PRESETS[preset]
    if cache is None:
        return ResolvedSpeed(preset, chosen.cache, chosen.cache_interval, cache_threshold, chosen.guidance, steps)
    if cache not in CACHE_METHODS:
        raise InputError(f"--cache must be one of {', '.join(CACHE_METHODS)}, got {cache!r}")
    overridden = ("--cache",) if cache != chosen.cache or chosen.cache_interval is not None else ()
    if overridden and preset != "exact":
        logger.info("--cache %s replaces the %s preset's %s cache", cache, preset, chosen.cache)
    return ResolvedSpeed(preset, cache, None, cache_threshold, chosen.guidance, steps, overridden)


def apply_speed(pipe, speed: ResolvedSpeed, guidance_scale: float) -> GuidanceSchedule | None:
    """Enable `speed`'s cache on `pipe` and return the guidance schedule to pass to the pipeline (None: plain).

    Parts that cannot apply say so in one logged line: guidance truncation without guidance (`guidance_scale` ≤ 1),
    TaylorSeer with too few steps to predict any. A transformer without the modules a cache hooks is refused.
    """
    if speed.cache == "taylorseer":
        if not hasattr(pipe.transformer, "proj_out") or not hasattr(pipe.transformer, "transformer_blocks"):
            raise InputError(f"--speed {speed.preset}: the taylorseer cache needs a CogVideoX-style transformer")
        if speed.steps <= TAYLORSEER_WARMUP + 1:
            logger.warning(
                "--speed %s: TaylorSeer saves nothing with --steps %d (it warms up for %d steps)",
                speed.preset,
                speed.steps,
                TAYLORSEER_WARMUP,
            )
    enable_cache(pipe, speed.cache, speed.cache_threshold, speed.cache_interval)
    if speed.guidance.is_exact:
        return None
    if guidance_scale <= 1.0:
        logger.warning("--speed %s: guidance truncation does nothing with --guidance <= 1", speed.preset)
        return None
    return speed.guidance


class BlockCounter:
    """Counts transformer block evaluations: batch rows through each block that really ran (`with` block).

    A forward pre-hook on every block's feed-forward (`transformer_blocks[i].ff`) adds the batch size of its input
    `[B, S, D]`: a cache that skips a block returns before its feed-forward, and a step that runs the conditional
    branch only counts half the rows of a guided step. `rows[i]` lists the rows of each call of block i, in order
    (without a cache: one entry per denoising step).
    """

    def __init__(self, transformer) -> None:
        self.blocks = list(transformer.transformer_blocks)
        self.rows: list[list[int]] = [[] for _ in self.blocks]
        self._handles: list[Any] = []

    @property
    def total(self) -> int:
        return sum(sum(rows) for rows in self.rows)

    def __enter__(self) -> BlockCounter:
        for index, block in enumerate(self.blocks):
            record = self.rows[index].append
            self._handles.append(block.ff.register_forward_pre_hook(lambda _, args, rec=record: rec(args[0].shape[0])))
        return self

    def __exit__(self, *_: Any) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
