"""Named sizes of the models trained here: the `small` DynamiCtrl that a 2-core CPU trains in about two hours.

The released model (CogVideoX-1.5 5B I2V: 42 layers of 3072, a 4-level VAE with 8× spatial compression, T5-XXL
with 226 tokens) is what `dynamictrl animate` runs by default; its configs come with its weights. The `small`
model keeps every class and every config key, at sizes chosen for 64×64-pixel clips of 17 frames:

- VAE: 3 levels, so 4× spatial (64 px → 16 latent px) and still 4× temporal compression (17 frames → 5 latent
  frames); 16 latent channels, as the DynamiCtrl transformer takes. Its `scaling_factor` is measured on the data
  after training (`training.vae`); `invert_scale_latents` is False, so the published convention for the image
  latent (× scaling_factor) is also what training uses.
- T5: 2 layers of 64, random and frozen (the transformer learns to read it), vocabulary from the captions
  (`models.text`), prompts padded to `SMALL_TEXT_LENGTH` tokens.
- transformer: hidden 192 (3 heads × 64), 6 layers, patch 2×2×2; 16×16 latents give 64 tokens per latent-frame
  pair. `sample_height/width` 32 latent px: the RoPE grid covers up to 128 px with the 4× VAE.

These dicts are the keyword arguments of the diffusers / transformers classes (`AutoencoderKLCogVideoX`,
`transformers.T5Config`, `DynamiCtrlTransformer`); nothing here imports torch.
"""

from __future__ import annotations

from typing import Any

# How the pose enters the transformer (`DynamiCtrlTransformer.forward(pose_control_function=...)`): "padaln", the
# published method (released weights); "direct", the paper's ablation: the control tokens added once to the video
# tokens after the patch embedding, no per-block PadaLN (its weights go unused; docs/small_model.md, Ablations).
POSE_CONTROL_FUNCTIONS = ("padaln", "direct")

SMALL_TEXT_LENGTH = 48  # tokens a prompt is padded to (the released model: 226); synthetic captions reach 33
SMALL_TEXT_DIM = 64  # T5 d_model = the transformer's text_embed_dim
SMALL_VOCAB_SIZE = 512  # SentencePiece target size (the trainer stops lower when the captions have fewer pieces)

SMALL_VAE_CONFIG: dict[str, Any] = dict(
    down_block_types=("CogVideoXDownBlock3D",) * 3,
    up_block_types=("CogVideoXUpBlock3D",) * 3,
    block_out_channels=(32, 64, 64),
    latent_channels=16,
    layers_per_block=1,
    norm_num_groups=8,
    temporal_compression_ratio=4,
    # VAE tiling (on by default in `dynamictrl animate`) splits only sides above sample_height / 2 = 256 px.
    sample_height=512,
    sample_width=512,
    scaling_factor=1.0,  # replaced by 1/std of the latents when training ends
    invert_scale_latents=False,
)

# transformers.T5Config keywords (vocab_size comes from the tokenizer). gated-gelu as T5 v1.1, which CogVideoX uses.
SMALL_TEXT_ENCODER_CONFIG: dict[str, Any] = dict(
    d_model=SMALL_TEXT_DIM,
    d_kv=32,
    d_ff=128,
    num_layers=2,
    num_heads=2,
    relative_attention_num_buckets=16,
    relative_attention_max_distance=64,
    dropout_rate=0.0,
    feed_forward_proj="gated-gelu",
)

# The relative-position bias that makes the last head of the small T5 attend to the previous token (for distance
# -1; `models.text.build_t5_encoder`). A random T5's attention is near uniform, so each output is its own token's
# embedding plus the caption's mean: "green" in "a green shirt" and in "a plain green background" came out at cosine
# 0.998. With this head a colour word carries the word before it (cosine 0.21), and "background" its colour.
SMALL_TEXT_PREVIOUS_TOKEN_BIAS = 8.0

SMALL_TRANSFORMER_CONFIG: dict[str, Any] = dict(
    num_attention_heads=3,
    attention_head_dim=64,
    in_channels=32,
    out_channels=16,
    time_embed_dim=128,
    ofs_embed_dim=128,
    text_embed_dim=SMALL_TEXT_DIM,
    num_layers=6,
    sample_width=32,
    sample_height=32,
    sample_frames=17,
    patch_size=2,
    patch_size_t=2,
    max_text_seq_length=SMALL_TEXT_LENGTH,
    use_rotary_positional_embeddings=True,
    patch_bias=False,
)

# The released sizes (CogVideoX1.5-5B-I2V's config.json files; docs/architecture.md): for the memory model and the
# GPU benchmark, which build them with random weights (nothing is downloaded).
RELEASED_TRANSFORMER_CONFIG: dict[str, Any] = dict(
    num_attention_heads=48,
    attention_head_dim=64,
    in_channels=32,
    out_channels=16,
    time_embed_dim=512,
    ofs_embed_dim=512,
    text_embed_dim=4096,
    num_layers=42,
    patch_size=2,
    patch_size_t=2,
    patch_bias=False,
    sample_height=300,
    sample_width=300,
    sample_frames=81,
    max_text_seq_length=226,
    use_rotary_positional_embeddings=True,
    use_learned_positional_embeddings=False,
)
RELEASED_VAE_CONFIG: dict[str, Any] = dict(
    down_block_types=("CogVideoXDownBlock3D",) * 4,
    up_block_types=("CogVideoXUpBlock3D",) * 4,
    block_out_channels=(128, 256, 256, 512),
    latent_channels=16,
    layers_per_block=3,
    norm_num_groups=32,
    temporal_compression_ratio=4,
    sample_height=480,
    sample_width=720,
    scaling_factor=0.7,
    invert_scale_latents=True,
)
RELEASED_TEXT_ENCODER_CONFIG: dict[str, Any] = dict(  # T5 v1.1 XXL, encoder only
    vocab_size=32128,
    d_model=4096,
    d_kv=64,
    d_ff=10240,
    num_layers=24,
    num_heads=64,
    feed_forward_proj="gated-gelu",
    is_encoder_decoder=False,
)

TRANSFORMER_SIZES: dict[str, dict[str, Any]] = {"small": SMALL_TRANSFORMER_CONFIG}
VAE_SIZES: dict[str, dict[str, Any]] = {"small": SMALL_VAE_CONFIG}


def spatial_compression(vae_config: dict[str, Any]) -> int:
    """Pixels per latent pixel along a side: 2^(levels − 1) (8 for the released 4-level VAE, 4 for `small`)."""
    return 2 ** (len(vae_config.get("block_out_channels", (0,) * 4)) - 1)


__all__ = [
    "RELEASED_TEXT_ENCODER_CONFIG",
    "RELEASED_TRANSFORMER_CONFIG",
    "RELEASED_VAE_CONFIG",
    "SMALL_TEXT_DIM",
    "SMALL_TEXT_ENCODER_CONFIG",
    "SMALL_TEXT_LENGTH",
    "SMALL_TEXT_PREVIOUS_TOKEN_BIAS",
    "SMALL_TRANSFORMER_CONFIG",
    "SMALL_VAE_CONFIG",
    "SMALL_VOCAB_SIZE",
    "TRANSFORMER_SIZES",
    "VAE_SIZES",
    "spatial_compression",
]
