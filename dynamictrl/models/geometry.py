"""Sizes the CogVideoX VAE and transformer can take, checked without importing torch.

The CogVideoX-1.5 VAE compresses 4 frames into one latent frame (plus the first frame on its own), so a video has
`4k + 1` frames; it compresses 8×8 pixels into one latent pixel and the transformer patches 2×2 latents, so a side
is a multiple of 16. The 3-D RoPE grid covers `sample_height × 8` pixels (2400 px for CogVideoX-1.5). A VAE of
other depth compresses 2^(levels − 1) per side (the 3-level VAE of a small model trained here: 4×, so sides are
multiples of 8 and its RoPE grid covers `sample_height × 4` pixels): `size_limits` reads it from the VAE config.
"""

from __future__ import annotations

from typing import Any

from ..errors import InputError

TEMPORAL_COMPRESSION = 4
SPATIAL_COMPRESSION = 8


def nearest_valid_frames(num_frames: int, temporal_compression: int = TEMPORAL_COMPRESSION) -> int:
    return temporal_compression * max(1, round((num_frames - 1) / temporal_compression)) + 1


def validate_num_frames(
    num_frames: int, temporal_compression: int = TEMPORAL_COMPRESSION, flag: str = "num_frames"
) -> None:
    if not isinstance(num_frames, int) or num_frames < 1 or (num_frames - 1) % temporal_compression:
        near = nearest_valid_frames(num_frames, temporal_compression) if isinstance(num_frames, int) else 37
        raise InputError(
            f"{flag} must be {temporal_compression}k+1 (e.g. 13, 25, 37, 49), got {num_frames}; try {near}"
        )


def validate_size(
    height: int,
    width: int,
    multiple: int = 16,
    max_side: int | None = None,
    flags: tuple[str, str] = ("height", "width"),
) -> None:
    for name, value in zip(flags, (height, width), strict=True):
        if not isinstance(value, int) or value <= 0 or value % multiple:
            near = max(multiple, round(value / multiple) * multiple) if isinstance(value, int) else 768
            raise InputError(f"{name} must be a positive multiple of {multiple}, got {value}; try {near}")
        if max_side is not None and value > max_side:
            raise InputError(f"{name} {value} exceeds the model's maximum of {max_side} px; use a smaller size")


def size_limits(
    transformer_config: dict[str, Any], vae_config: dict[str, Any] | None = None
) -> tuple[int, int | None]:
    """(multiple, max side in pixels or None) from a transformer's `config.json` (and its VAE's), no weights read."""
    blocks = len((vae_config or {}).get("block_out_channels", (0,) * 4))
    spatial = 2 ** (blocks - 1) if vae_config else SPATIAL_COMPRESSION
    multiple = spatial * int(transformer_config.get("patch_size", 2))
    max_side = None
    if transformer_config.get("patch_size_t") is not None and transformer_config.get("sample_height"):
        max_side = int(transformer_config["sample_height"]) * spatial
    return multiple, max_side


def latent_frame_count(num_frames: int, temporal_compression: int = TEMPORAL_COMPRESSION) -> int:
    """Latent frames of a `4k + 1`-frame video: the causal VAE keeps frame 0 alone, then packs 4 frames per latent."""
    return (num_frames - 1) // temporal_compression + 1


def window_latent_frames(
    window_frames: int, temporal_patch: int | None = 2, temporal_compression: int = TEMPORAL_COMPRESSION
) -> int:
    """Latent frames one long-video window gives the transformer: those of a `window_frames` clip, rounded up to
    the temporal patch (2 for CogVideoX-1.5), exactly as the whole-clip path pads it; latent frame 0 is the
    reference slot, the rest are the window's own frames."""
    frames = latent_frame_count(window_frames, temporal_compression)
    return frames + (-frames % temporal_patch if temporal_patch else 0)


def max_overlap_frames(window_frames: int, temporal_compression: int = TEMPORAL_COMPRESSION) -> int:
    """Largest overlap (pixel frames) a window allows: its video latents (all but the reference slot) less one."""
    return (window_latent_frames(window_frames, temporal_compression=temporal_compression) - 2) * temporal_compression


def default_overlap_frames(window_frames: int, temporal_compression: int = TEMPORAL_COMPRESSION) -> int:
    """About a quarter of a window's video frames, in whole latent frames (8 of 37)."""
    video_latents = window_latent_frames(window_frames, temporal_compression=temporal_compression) - 1
    return max(1, min(video_latents - 1, round(video_latents / 4))) * temporal_compression


MIN_WINDOW_FRAMES = 9  # the reference slot and 3 video latents: the least that leaves a stride beside an overlap
LONG_VIDEO_STRATEGIES = ("windows", "chain")  # clips beyond one window: fused overlapping windows, or chained segments

# How latent frames become pixel frames. diffusers' CogVideoX VAE decodes latent frames two at a time, and only a first
# chunk of odd length (three latents) decodes its first latent, which encodes frame 0 alone, as one frame. An even
# count (8k + 5 frames: 21, 37) is decoded pair by pair from the start: latent 0 gives four frames, so every later
# frame comes three frames late and the last three poses are cut. The published pipeline decodes so (its fixture
# decodes 4 latents to 16 frames and keeps the first 13). `aligned` gives an even count a copy of its last latent, so
# that the decode chunks match the encoder's, and drops the four frames decoded from the copy.
DECODE_ALIGNMENTS = ("aligned", "published")


def check_decode_alignment(alignment: str) -> None:
    """One-line `InputError` unless `alignment` is one of `DECODE_ALIGNMENTS`."""
    if alignment not in DECODE_ALIGNMENTS:
        raise InputError(f"decode alignment must be one of {', '.join(DECODE_ALIGNMENTS)}, got {alignment!r}")


def decode_padding(latent_frames: int, alignment: str = "aligned") -> int:
    """Latent frames to append before decoding `latent_frames` so frame t of the output is frame t of the video:
    1 for an even count when `aligned`, else 0."""
    check_decode_alignment(alignment)
    return int(alignment == "aligned" and latent_frames > 1 and latent_frames % 2 == 0)
