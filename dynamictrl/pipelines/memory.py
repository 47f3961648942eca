"""Memory presets (`--memory 80gb|40gb|24gb|16gb|12gb|auto`) and the memory model that predicts a job's peak.

A preset is a set of diffusers mechanisms, each applied only where it can work; the others say so in one line:

| preset | T5 | transformer weights | transformer placement | VAE decode |
|---|---|---|---|---|
| `none` (default) | resident | run dtype | resident | the `--no-vae-tiling` flag decides (tiled by default) |
| `80gb` | encodes, then leaves the GPU | run dtype | resident | whole frames |
| `40gb` | encodes, then leaves the GPU | run dtype | resident | tiled |
| `24gb` | encodes, then leaves the GPU | float8 storage (`enable_layerwise_casting`) | resident | tiled |
| `16gb` | encodes, then leaves the GPU | run dtype | block-level group offload, CUDA streams | tiled |
| `12gb` | encodes, then leaves the GPU | float8 storage | block-level group offload, CUDA streams | tiled |

`auto` predicts the peak of every preset with `estimate_peak` and takes the first (from `80gb` down) that fits in
90% of the device's free memory (the CPU: available RAM). The estimate, and what was applied or skipped, go to the
sidecar (`runtime.memory`).

The memory model (`estimate_peak`) needs only the components' `config.json`: parameter counts come from building
each model on the meta device. Peak = the weights resident on the device + the largest working set of the three
stages (prompt encoding, encoding the pose video, one window of denoising, decoding):

- **denoising**: `TOKEN_BYTES` bytes per (batch row × token × hidden unit) at float32 (scaled by the run dtype),
  batch 2 under guidance, tokens = the window's video tokens + text tokens; attention is assumed memory-efficient
  (SDPA/flash: no N×N score matrix);
- **decoding**: `DECODE_FIXED` + `DECODE_BYTES_PER_CHANNEL` × the VAE's top-level channels per output pixel of
  the largest decoded chunk (the first: 3 latent frames → 9 frames, as the aligned decode always starts; or one
  tile of it with tiling), plus `HELD_VIDEOS` float32 videos of the job's size;
- **encoding**: `ENCODE_FIXED` + `ENCODE_BYTES_PER_CHANNEL` per channel per input pixel of one 8-frame chunk
  (tiled like the decode), plus the pose video in float32;
- **prompt encoding**: T5's weights when it visits the device (its activations are small: 226 tokens).

and on the CPU `CPU_RUNTIME` besides. The VAE coefficients were fitted on this project's 2-core CPU in float32 with
the `small` configs (models/configs.py), against the kernel's exact high-water mark (`benchmarks/peak_rss.py`):
`python benchmarks/bench_memory_model.py --fit` runs four sizes (128² and 256² at 21 frames, 128²×53, 192²×45), the
median of three processes each, and fits the decode and encode stages alone by least squares; `CPU_RUNTIME` is what
a whole job adds to its decode stage beyond the videos the model already counts, averaged over the four (the same
job's peak varies by up to 15% from process to process). The decode terms and `CPU_RUNTIME` were refitted when the
decode became aligned (its first chunk 3 latent frames, 9 frames out: `DECODE_CHUNK_FRAMES`); the encode terms,
whose path did not change, are from an earlier fit (RSS sampled every 2 ms). A line through that gap against the
video's size slopes +7.3 videos in this fit and −3.3 in the one before: noise, so no per-video term. An earlier
refit from two 21-frame jobs alone had put 12.6 videos there, which over-predicts the published H20 peaks by up to
15% (`tests/unit/pipelines/test_memory.py`); the GPU terms were kept. The benchmark checks the model at three other
sizes and frame counts (median of three processes).
`TOKEN_BYTES` comes from a transformer call alone (3 heads x 64 at 3,120 tokens); at 6 heads it measured about
1.8x more (the CPU attention kernel's buffers grow with the heads), so where the transformer sets the peak
(not in these jobs: the VAE does, as for the 5B model) the model is less certain. The full-size
CogVideoX VAE (random weights) measured 7.4 kB per output pixel-frame on the same CPU when this project began: 58
bytes per top-level channel, so for it the decode term over-predicts by about 1.5x (on the safe side). On a GPU
they are scaled by the dtype's size. The denoising stage and the transformer's weights were checked on an NVIDIA
H200 (`benchmarks/gpu_5b.py`, `benchmarks/results/gpu_5b.json`: the 5B transformer in bf16 at the published job):
within 3.2% of the measured peak for every preset's transformer part (`tests/unit/pipelines/test_memory.py`), once
float8 storage counts only the parameters diffusers casts (`_float8_counts`; counting all of them predicted `24gb`
9.9% low). Whole jobs at the released size on the same GPU (`benchmarks/gpu_5b_job.py`: T5-XXL, 5B, the CogVideoX
VAE, 37 frames of 1360x768): predicted +6.5% (`none`), +5.5% (`80gb`), −0.1% (`24gb`), +3.4% (`12gb`) of the
measured peak; the decode term over-predicts the full-size VAE's decode (on the safe side), as above.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import InputError

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)

GIB = 1024**3
TOKEN_BYTES = 60.0  # float32 bytes per (batch row x token x hidden unit) at the transformer's peak
DECODE_BYTES_PER_CHANNEL = 82.0  # float32 bytes per output pixel of a decoded chunk per top-level VAE channel
DECODE_FIXED = 73 * 2**20  # float32 working memory of a decode that does not grow with its size
ENCODE_BYTES_PER_CHANNEL = 32.1  # float32 bytes per input pixel of an encoded chunk per top-level VAE channel
ENCODE_FIXED = 77 * 2**20  # float32 working memory of an encode that does not grow with its size
HELD_VIDEOS = 4.6  # float32 video-sized tensors alive at the decode's peak (decoded chunks + their concatenation:
#                    2; the pipeline's pose-video copies and what the CPU heap keeps of them: the rest)
CPU_RUNTIME = 138 * 2**20  # a CPU job's memory beyond tensors it holds (heap kept from earlier stages, threads)
CHUNK_FRAMES = 8  # diffusers' CogVideoX VAE encodes 8 frames at a time, and decodes 2 latent frames (8 frames)
DECODE_CHUNK_FRAMES = 9  # ... after a first chunk of 3 (9 frames), which the aligned decode always has
#                          (`models.geometry.decode_padding`)
AUTO_HEADROOM = 0.9  # `auto` plans for 90% of the free memory


@dataclass(frozen=True)
class MemoryPreset:
    """A named `--memory` choice: which memory mechanisms to use (each applies only where it can)."""

    name: str  # the device memory it is designed for, e.g. "24gb"
    free_text_encoder: bool = False  # T5 encodes the prompt on the accelerator, then goes back to the CPU
    fp8_transformer: bool = False  # transformer weights stored in float8_e4m3fn, computed in the run dtype
    group_offload: bool = False  # transformer blocks stream from the CPU (diffusers' block-level group offload)
    vae_tiling: bool | None = None  # None: the --no-vae-tiling flag decides
    description: str = ""


MEMORY_PRESETS: dict[str, MemoryPreset] = {
    p.name: p
    for p in (
        MemoryPreset("none", description="no memory preset: every component resident, the flags decide"),
        MemoryPreset("80gb", free_text_encoder=True, vae_tiling=False, description="T5 on the GPU only to encode"),
        MemoryPreset("40gb", free_text_encoder=True, vae_tiling=True, description="80gb + tiled VAE decode"),
        MemoryPreset(
            "24gb", free_text_encoder=True, fp8_transformer=True, vae_tiling=True,
            description="40gb + float8 transformer weights",
        ),
        MemoryPreset(
            "16gb", free_text_encoder=True, group_offload=True, vae_tiling=True,
            description="40gb + transformer group offload (block level, one block at a time)",
        ),
        MemoryPreset(
            "12gb", free_text_encoder=True, fp8_transformer=True, group_offload=True, vae_tiling=True,
            description="16gb + float8 transformer weights",
        ),
    )
}  # fmt: skip
AUTO = "auto"
MEMORY_NAMES = (*MEMORY_PRESETS, AUTO)
AUTO_ORDER = ("80gb", "40gb", "24gb", "16gb", "12gb")


# ---------------------------------------------------------------------------------------------- memory model
@dataclass(frozen=True)
class ModelSizes:
    """What the memory model needs of a pipeline: parameter counts and the shapes that set activation sizes."""

    transformer_params: int
    transformer_block_params: int  # one transformer block (group offload keeps two on the device)
    num_layers: int
    text_encoder_params: int
    vae_params: int
    hidden_dim: int  # the transformer's inner dim (heads x head dim)
    patch_size: int
    patch_size_t: int
    text_tokens: int
    vae_top_channels: int  # block_out_channels[0]: the channels of the decoder's full-resolution level
    spatial_compression: int
    temporal_compression: int
    tile_height: int | None  # the VAE's tile size in pixels when tiling splits a frame
    tile_width: int | None
    # The transformer's parameters that float8 storage (`enable_layerwise_casting`) stores in one byte, in all and
    # in one block: diffusers keeps norms, embeddings and the output projection in the compute dtype (the 5B model:
    # 82.5%, the fraction an H200 run measured, `benchmarks/results/gpu_5b.json`). None: every parameter.
    transformer_float8_params: int | None = None
    transformer_block_float8_params: int | None = None

    @classmethod
    def from_configs(
        cls, transformer: dict[str, Any], vae: dict[str, Any], text_encoder: dict[str, Any] | None
    ) -> ModelSizes:
        """From the three `config.json` dicts, no weights read: the models are built on the meta device (the 5B
        model's take about 10 s; `from_modules` counts loaded ones at once)."""
        from diffusers import AutoencoderKLCogVideoX

        from ..models.transformer_dynamictrl import DynamiCtrlTransformer

        def public(config: dict[str, Any]) -> dict[str, Any]:
            return {k: v for k, v in config.items() if not k.startswith("_")}

        text = None
        if text_encoder is not None:
            from transformers import T5Config, T5EncoderModel

            text = _meta(lambda: T5EncoderModel(T5Config(**public(text_encoder))))
        return cls.from_modules(
            _meta(lambda: DynamiCtrlTransformer.from_config(public(transformer))),
            _meta(lambda: AutoencoderKLCogVideoX.from_config(public(vae))),
            text,
        )

    @classmethod
    def from_modules(cls, transformer: Any, vae: Any, text_encoder: Any | None) -> ModelSizes:
        """From built models (loaded, or on the meta device): their parameters and configs."""
        from ..models.configs import spatial_compression

        tf, ae = transformer.config, vae.config
        float8, block_float8 = _float8_counts(transformer)
        return cls(
            transformer_params=_count(transformer),
            transformer_block_params=_count(transformer.transformer_blocks[0]),
            num_layers=len(transformer.transformer_blocks),
            text_encoder_params=0 if text_encoder is None else _count(text_encoder),
            vae_params=_count(vae),
            hidden_dim=int(tf.num_attention_heads) * int(tf.attention_head_dim),
            patch_size=int(tf.patch_size),
            patch_size_t=int(tf.patch_size_t or 1),
            text_tokens=int(tf.max_text_seq_length),
            vae_top_channels=int(ae.block_out_channels[0]),
            spatial_compression=spatial_compression(dict(ae)),
            temporal_compression=int(ae.temporal_compression_ratio),
            tile_height=int(ae.sample_height) // 2,  # diffusers' CogVideoX VAE: tile_sample_min = sample size // 2
            tile_width=int(ae.sample_width) // 2,
            transformer_float8_params=float8,
            transformer_block_float8_params=block_float8,
        )


def _meta(build):
    import torch

    with torch.device("meta"):
        return build()


def _count(module: Any) -> int:
    return sum(p.numel() for p in module.parameters())


def _float8_counts(transformer: Any) -> tuple[int, int]:
    """Parameters that float8 storage casts, in all and in the first block: read off a meta-device twin of
    `transformer` with diffusers' layerwise casting applied as `apply_memory` applies it (which layers it casts
    is diffusers' decision, its skip patterns)."""
    import torch

    twin = _meta(lambda: type(transformer).from_config(transformer.config))
    twin.enable_layerwise_casting(storage_dtype=torch.float8_e4m3fn, compute_dtype=torch.bfloat16)

    def count(module: Any) -> int:
        return sum(p.numel() for p in module.parameters() if p.dtype == torch.float8_e4m3fn)

    return count(twin), count(twin.transformer_blocks[0])


@dataclass(frozen=True)
class MemoryEstimate:
    """Predicted peak memory of one job on its device, in bytes, by stage."""

    preset: str
    weights: dict[str, int]  # bytes on the device while denoising, per component
    text_stage: int  # T5 weights on the device + its activations (peak of the prompt encoding)
    encode_stage: int  # VAE working memory encoding the pose video + the video itself
    denoise_stage: int  # transformer activations of one window
    decode_stage: int  # VAE working memory + the decoded video
    peak: int
    peak_stage: str

    def to_json(self) -> dict[str, Any]:
        def gib(value: int) -> float:
            return round(value / GIB, 3)

        return {
            "preset": self.preset,
            "predicted_peak_gib": gib(self.peak),
            "peak_stage": self.peak_stage,
            "weights_gib": {k: gib(v) for k, v in self.weights.items()},
            "text_stage_gib": gib(self.text_stage),
            "encode_working_gib": gib(self.encode_stage),
            "denoise_activations_gib": gib(self.denoise_stage),
            "decode_working_gib": gib(self.decode_stage),
        }


def estimate_peak(
    sizes: ModelSizes,
    *,
    height: int,
    width: int,
    frames: int,
    window: int | None = None,
    guidance: bool = True,
    dtype_bytes: int = 4,
    preset: str = "none",
    vae_tiling: bool = True,
    device_type: str = "cuda",
) -> MemoryEstimate:
    """The memory model (module docstring) for `frames` frames of `height`×`width` under `preset`.

    `window`: the long-video window in frames (None: the whole clip is one window). `vae_tiling` is the flag's
    value, used when the preset does not decide. On the CPU nothing is offloaded (group offload and freeing T5
    do not apply there), so its weights stay resident.
    """
    chosen = MEMORY_PRESETS[preset]
    on_gpu = device_type != "cpu"
    scale = dtype_bytes / 4.0
    tiling = vae_tiling if chosen.vae_tiling is None else chosen.vae_tiling

    # Weights resident while denoising.
    def stored(params: int, float8: int | None) -> int:
        """Bytes of `params` parameters; under float8 storage `float8` of them (None: all) take one byte."""
        if not chosen.fp8_transformer:
            return params * dtype_bytes
        float8 = params if float8 is None else float8
        return float8 + (params - float8) * dtype_bytes

    transformer = stored(sizes.transformer_params, sizes.transformer_float8_params)
    if chosen.group_offload and on_gpu:
        transformer = (sizes.transformer_params - sizes.transformer_block_params * sizes.num_layers) * dtype_bytes
        # block level with streams keeps the running block and the prefetched one
        transformer += 2 * stored(sizes.transformer_block_params, sizes.transformer_block_float8_params)
    if chosen.fp8_transformer:  # one layer at a time is up-cast: the largest, a feed-forward projection (~1/3 block)
        transformer += sizes.transformer_block_params * dtype_bytes // 3
    text = 0 if (chosen.free_text_encoder and on_gpu) else sizes.text_encoder_params * dtype_bytes
    weights = {"transformer": transformer, "text_encoder": text, "vae": sizes.vae_params * dtype_bytes}

    # Prompt encoding: T5 comes to the device for it (when it was away), its activations are small.
    text_stage = sizes.text_encoder_params * dtype_bytes - text
    # Denoising one window: batch rows x tokens x hidden units.
    window_frames = min(frames, window) if window else frames
    latent_frames = (window_frames - 1) // sizes.temporal_compression + 1
    latent_frames += (-latent_frames) % sizes.patch_size_t
    side = sizes.spatial_compression * sizes.patch_size
    tokens = (latent_frames // sizes.patch_size_t) * (height // side) * (width // side) + sizes.text_tokens
    rows = 2 if guidance else 1
    denoise_stage = int(TOKEN_BYTES * scale * rows * tokens * sizes.hidden_dim)
    # Coding in chunks of frames (one tile of them with tiling): encoding 8 at a time, decoding 9 at most.
    chunk_h, chunk_w = height, width
    if tiling and sizes.tile_height and sizes.tile_width and (height > sizes.tile_height or width > sizes.tile_width):
        chunk_h, chunk_w = min(height, sizes.tile_height), min(width, sizes.tile_width)
    channels = sizes.vae_top_channels
    video_bytes = 3 * frames * height * width * 4  # a video in float32
    # Encoding the pose video (the reference is one frame: smaller), the video itself held meanwhile.
    encode_pixels = CHUNK_FRAMES * chunk_h * chunk_w
    encode_stage = int((ENCODE_FIXED + ENCODE_BYTES_PER_CHANNEL * channels * encode_pixels) * scale) + video_bytes
    decode_pixels = (DECODE_CHUNK_FRAMES if frames > 1 else 1) * chunk_h * chunk_w
    decode_stage = int((DECODE_FIXED + DECODE_BYTES_PER_CHANNEL * channels * decode_pixels) * scale)
    decode_stage += int(HELD_VIDEOS * video_bytes)

    stages = {"text": text_stage, "encode": encode_stage, "denoise": denoise_stage, "decode": decode_stage}
    peak_stage = max(stages, key=stages.get)
    if device_type == "cpu":
        weights["runtime"] = CPU_RUNTIME
    peak = sum(weights.values()) + stages[peak_stage]
    return MemoryEstimate(preset, weights, text_stage, encode_stage, denoise_stage, decode_stage, peak, peak_stage)


def free_memory(device: torch.device) -> int:
    """Bytes free on `device`: CUDA's free memory, or the CPU's available RAM (/proc/meminfo MemAvailable)."""
    import torch

    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    import os

    return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES"))


def choose_preset(estimates: dict[str, MemoryEstimate], free: int) -> str:
    """`auto`: the first preset of `AUTO_ORDER` (of those `estimates` has) whose predicted peak fits in
    `AUTO_HEADROOM` of `free` bytes; the last one (with a warning) when none does."""
    order = [name for name in AUTO_ORDER if name in estimates]
    for name in order:
        if estimates[name].peak <= AUTO_HEADROOM * free:
            return name
    last = order[-1]
    logger.warning(
        "--memory auto: even %s is predicted to need %.1f GiB, more than the %.1f GiB free; trying it anyway",
        last,
        estimates[last].peak / GIB,
        free / GIB,
    )
    return last


# ------------------------------------------------------------------------------------------------ applying
@dataclass
class AppliedMemory:
    """What `--memory` resolved to on this device (recorded in the sidecar)."""

    preset: str
    requested: str
    estimate: MemoryEstimate | None = None
    applied: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    free_text_encoder: bool = False
    vae_tiling: bool | None = None

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["estimate"] = self.estimate.to_json() if self.estimate is not None else None
        return data


def plan_memory(requested: str, estimates: dict[str, MemoryEstimate], device: torch.device) -> AppliedMemory:
    """Resolve `auto` and decide, per mechanism, whether it applies on `device` (each skip is one logged line)."""
    if requested not in MEMORY_NAMES:
        raise InputError(f"--memory must be one of {', '.join(MEMORY_NAMES)}, got {requested!r}")
    name = choose_preset(estimates, free_memory(device)) if requested == AUTO else requested
    if requested == AUTO:
        logger.info("--memory auto chose %s (predicted peak %.2f GiB)", name, estimates[name].peak / GIB)
    preset = MEMORY_PRESETS[name]
    plan = AppliedMemory(name, requested, estimates.get(name), vae_tiling=preset.vae_tiling)
    on_gpu = device.type == "cuda"
    wanted = {
        "free_text_encoder": preset.free_text_encoder,
        "fp8_transformer": preset.fp8_transformer,
        "group_offload": preset.group_offload,
    }
    for part, on in wanted.items():
        if on:
            gpu_only = part in ("free_text_encoder", "group_offload")
            (plan.skipped if gpu_only and not on_gpu else plan.applied).append(part)
    if plan.skipped:
        logger.info(
            "--memory %s: %s %s a CUDA GPU and do%s not apply on %s",
            name,
            " and ".join(plan.skipped),
            "needs" if len(plan.skipped) == 1 else "need",
            "es" if len(plan.skipped) == 1 else "",
            device.type,
        )
    plan.free_text_encoder = "free_text_encoder" in plan.applied
    if preset.vae_tiling is not None:
        plan.applied.append("vae_tiling" if preset.vae_tiling else "whole_frame_decode")
    return plan


def kept_on_cpu(plan: AppliedMemory) -> tuple[str, ...]:
    """The pipeline components `plan` keeps on the CPU when the pipeline is placed on its device."""
    return tuple(
        name
        for name, kept in (("transformer", "group_offload" in plan.applied), ("text_encoder", plan.free_text_encoder))
        if kept
    )


def apply_memory(pipe, plan: AppliedMemory, device: torch.device, dtype: torch.dtype) -> None:
    """Set up `pipe` (loaded, still on the CPU) as `plan` says, before it is placed on `device`: float8 weight
    storage; block-level group offload with CUDA streams, one block per group, the next one prefetched while the
    current one runs (each block advances the PadaLN chain inside its own forward, so its hook onloads
    `control_norm1` with it: `tests/unit/models/test_transformer_dynamictrl.py` checks that every block's module
    runs inside its block's forward); T5 stays on the CPU between prompts (`encode_prompts` brings it over). Place
    the rest with `acceleration.place(..., keep_on_cpu=kept_on_cpu(plan))`."""
    import torch

    if "fp8_transformer" in plan.applied:
        pipe.transformer.enable_layerwise_casting(storage_dtype=torch.float8_e4m3fn, compute_dtype=dtype)
    if "group_offload" in plan.applied:
        pipe.transformer.enable_group_offload(
            onload_device=device,
            offload_device=torch.device("cpu"),
            offload_type="block_level",
            num_blocks_per_group=1,  # diffusers' streams need one block per group
            use_stream=True,
        )
    if kept_on_cpu(plan):
        pipe.execution_device = device  # the weights no longer tell the pipeline where to run


def encode_prompts(pipe, device: torch.device, prompt: str, negative_prompt: str | None, guidance: float):
    """`(prompt_embeds, negative_prompt_embeds)` with T5 brought to `device` for the call and sent back after."""
    import torch

    pipe.text_encoder.to(device)
    try:
        with torch.no_grad():
            return pipe.encode_prompt(
                prompt=prompt,
                negative_prompt=negative_prompt,
                do_classifier_free_guidance=guidance > 1.0,
                max_sequence_length=pipe.transformer.config.max_text_seq_length,
                device=device,
            )
    finally:
        pipe.text_encoder.to("cpu")
        if device.type == "cuda":
            torch.cuda.empty_cache()


def estimates_for(
    sizes: ModelSizes, names: tuple[str, ...] = tuple(MEMORY_PRESETS), **job: Any
) -> dict[str, MemoryEstimate]:
    """`estimate_peak` of each preset in `names` for the same job."""
    return {name: estimate_peak(sizes, preset=name, **job) for name in names}


__all__ = [
    "MEMORY_NAMES",
    "MEMORY_PRESETS",
    "AppliedMemory",
    "MemoryEstimate",
    "MemoryPreset",
    "ModelSizes",
    "apply_memory",
    "kept_on_cpu",
    "choose_preset",
    "encode_prompts",
    "estimate_peak",
    "estimates_for",
    "plan_memory",
]
