"""DynamiCtrl transformer: CogVideoX-1.5 plus a Pose-adaptive LayerNorm (PadaLN) in every block.

Math (paper arXiv 2503.21246; the published code's `dynamictrl/models/model_dynamictrl.py` at commit 15eb5e9 of
https://github.com/gulucaptain/DynamiCtrl):

- the pose latent `[B, F, 16, H, W]` is duplicated to 32 channels and embedded by the model's own `patch_embed`
  into control tokens `c_0` (same count and order as the video tokens; no text part);
- block i normalises and modulates the control stream with its own timestep-conditioned LayerNorm,
  `ĉ_i = LN_i(c_i) (1 + scale_i) + shift_i`, and adds `ĉ_i` to the normalised video tokens *at the attention input
  only*; the residual stream never sees the pose directly;
- the stream moves on as `c_{i+1} = (1 + gate_i) ĉ_i`.

What differs from the published module (same numbers; `tests/unit/models/test_transformer_dynamictrl.py` checks
them against outputs of the published code):

- the control chain depends only on the pose latent and the timestep, so it runs in the model's block loop at the
  pose batch size, not inside the blocks. Under classifier-free guidance the pipeline passes the pose once for both
  branches and the chain runs at half the batch;
- each block returns the stock `(hidden_states, encoder_hidden_states)` pair and is registered with diffusers'
  `TransformerBlockRegistry`, so First-Block Cache, Pyramid Attention Broadcast and FasterCache apply;
- attention goes through `diffusers.models.attention_dispatch.dispatch_attention_fn`, so
  `set_attention_backend(...)` (flash, sage, flex...) takes effect; stock `CogVideoXAttnProcessor2_0` ignores it.

The configuration is exactly the stock `CogVideoXTransformer3DModel` one (no added keys), so a released
`transformer/config.json` loads as is.
"""

from __future__ import annotations

import functools
import logging
import os
from typing import Any

import torch
from diffusers import CogVideoXTransformer3DModel
from diffusers.hooks._helpers import (
    AttentionProcessorMetadata,
    AttentionProcessorRegistry,
    TransformerBlockMetadata,
    TransformerBlockRegistry,
)
from diffusers.models._modeling_parallel import ContextParallelInput, ContextParallelOutput
from diffusers.models.attention_dispatch import dispatch_attention_fn
from diffusers.models.attention_processor import Attention
from diffusers.models.embeddings import apply_rotary_emb
from diffusers.models.modeling_outputs import Transformer2DModelOutput
from diffusers.models.transformers.cogvideox_transformer_3d import CogVideoXBlock
from diffusers.utils import apply_lora_scale
from torch import nn

from ..errors import CheckpointError, InputError
from .checkpoint import checkpoint_parameter_names
from .configs import POSE_CONTROL_FUNCTIONS

logger = logging.getLogger(__name__)

CONTROL_KEY_MARKER = ".control_norm1."


class PoseAdaptiveLayerNorm(nn.Module):
    """PadaLN: a timestep-conditioned LayerNorm for the pose stream (the published code's `PoseAdaptiveLN`).

    `linear(SiLU(temb))` gives (shift, scale, gate), in that order. The LayerNorm has its own affine parameters,
    separate from the block's `norm1`. State-dict names: `linear.{weight,bias}`, `norm.{weight,bias}`.
    """

    def __init__(
        self,
        conditioning_dim: int,
        embedding_dim: int,
        elementwise_affine: bool = True,
        eps: float = 1e-5,
        bias: bool = True,
    ) -> None:
        super().__init__()
        self.silu = nn.SiLU()
        self.linear = nn.Linear(conditioning_dim, 3 * embedding_dim, bias=bias)
        self.norm = nn.LayerNorm(embedding_dim, eps=eps, elementwise_affine=elementwise_affine)

    def forward(self, control: torch.Tensor, temb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """`control [B, N, D]`, `temb [B, T]` → (modulated pose tokens `[B, N, D]`, gate `[B, 1, D]`)."""
        shift, scale, gate = self.linear(self.silu(temb)).chunk(3, dim=1)
        modulated = self.norm(control) * (1 + scale)[:, None, :] + shift[:, None, :]
        return modulated, gate[:, None, :]

    def step(self, control: torch.Tensor, temb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One link of the control chain: returns (pose tokens for this block, control stream for the next).

        The next stream is `ĉ + gate·ĉ` exactly as the published code computes it (its FIXME at l.173).
        """
        pose_tokens, gate = self(control, temb)
        return pose_tokens, pose_tokens + gate * pose_tokens


def _add_pose(hidden_states: torch.Tensor, pose_tokens: torch.Tensor) -> torch.Tensor:
    """`hidden_states [k·B, N, D] + pose_tokens [B, N, D]`: the pose batch is shared by k guidance branches."""
    if pose_tokens.shape[0] == hidden_states.shape[0]:
        return hidden_states + pose_tokens
    repeats = hidden_states.shape[0] // pose_tokens.shape[0]
    return (hidden_states.unflatten(0, (repeats, pose_tokens.shape[0])) + pose_tokens).flatten(0, 1)


class DynamiCtrlAttnProcessor:
    """Joint text-video self-attention of CogVideoX with the pose tokens added to the video query input.

    Goes through `dispatch_attention_fn`, so the model's `set_attention_backend()` and the
    `attention_backend(...)` context manager choose the kernel. Supports fused QKV projections.
    """

    _attention_backend = None
    _parallel_config = None

    def __call__(
        self,
        attn: Attention,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        image_rotary_emb: tuple[torch.Tensor, torch.Tensor] | None = None,
        pose_hidden_states: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if pose_hidden_states is not None:
            hidden_states = _add_pose(hidden_states, pose_hidden_states)
        text_seq_length = encoder_hidden_states.size(1)
        hidden_states = torch.cat([encoder_hidden_states, hidden_states], dim=1)

        if getattr(attn, "fused_projections", False):
            query, key, value = attn.to_qkv(hidden_states).chunk(3, dim=-1)
        else:
            query, key, value = attn.to_q(hidden_states), attn.to_k(hidden_states), attn.to_v(hidden_states)
        # [B, S, heads, head_dim]: the layout dispatch_attention_fn expects.
        query, key, value = (x.unflatten(2, (attn.heads, -1)) for x in (query, key, value))
        if attn.norm_q is not None:
            query = attn.norm_q(query)
        if attn.norm_k is not None:
            key = attn.norm_k(key)

        if image_rotary_emb is not None:  # RoPE on the video tokens only
            query = torch.cat(
                [
                    query[:, :text_seq_length],
                    apply_rotary_emb(query[:, text_seq_length:], image_rotary_emb, sequence_dim=1),
                ],
                dim=1,
            )
            key = torch.cat(
                [
                    key[:, :text_seq_length],
                    apply_rotary_emb(key[:, text_seq_length:], image_rotary_emb, sequence_dim=1),
                ],
                dim=1,
            )

        if attention_mask is not None:
            batch, seq = hidden_states.shape[:2]
            attention_mask = attn.prepare_attention_mask(attention_mask, seq, batch)
            attention_mask = attention_mask.view(batch, attn.heads, -1, attention_mask.shape[-1])

        hidden_states = dispatch_attention_fn(
            query,
            key,
            value,
            attn_mask=attention_mask,
            dropout_p=0.0,
            is_causal=False,
            backend=self._attention_backend,
            parallel_config=self._parallel_config,
        )
        hidden_states = hidden_states.flatten(2, 3).type_as(query)
        hidden_states = attn.to_out[1](attn.to_out[0](hidden_states))
        encoder_hidden_states, hidden_states = hidden_states.split(
            [text_seq_length, hidden_states.size(1) - text_seq_length], dim=1
        )
        return hidden_states, encoder_hidden_states


class DynamiCtrlBlock(CogVideoXBlock):
    """A stock CogVideoX block plus `control_norm1`; pose tokens enter through the attention input.

    `forward` advances the control chain itself: given the control stream `c_i [B_pose, N, D]` and the pose batch's
    time embedding, it computes this block's pose tokens `ĉ_i` and the next stream with `control_norm1.step` and
    returns `(hidden_states, encoder_hidden_states, c_{i+1})`. The PadaLN step thus runs inside the block's own
    forward, so hooks on the block cover its weights too (diffusers' block-level group offload onloads them with the
    block). Without a control stream it returns the stock pair. Diffusers' block hooks read outputs 0 and 1 (the
    registry below); a hook that skips the block returns the pair (or zeros, TaylorSeer's inactive blocks), and the
    model then keeps the stream it had.
    """

    def __init__(
        self,
        dim: int,
        num_attention_heads: int,
        attention_head_dim: int,
        time_embed_dim: int,
        dropout: float = 0.0,
        activation_fn: str = "gelu-approximate",
        attention_bias: bool = False,
        qk_norm: bool = True,
        norm_elementwise_affine: bool = True,
        norm_eps: float = 1e-5,
        final_dropout: bool = True,
        ff_inner_dim: int | None = None,
        ff_bias: bool = True,
        attention_out_bias: bool = True,
    ) -> None:
        super().__init__(
            dim=dim,
            num_attention_heads=num_attention_heads,
            attention_head_dim=attention_head_dim,
            time_embed_dim=time_embed_dim,
            dropout=dropout,
            activation_fn=activation_fn,
            attention_bias=attention_bias,
            qk_norm=qk_norm,
            norm_elementwise_affine=norm_elementwise_affine,
            norm_eps=norm_eps,
            final_dropout=final_dropout,
            ff_inner_dim=ff_inner_dim,
            ff_bias=ff_bias,
            attention_out_bias=attention_out_bias,
        )
        self.attn1.set_processor(DynamiCtrlAttnProcessor())
        self.control_norm1 = PoseAdaptiveLayerNorm(time_embed_dim, dim, norm_elementwise_affine, norm_eps, bias=True)

    def forward(
        self,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor,
        temb: torch.Tensor,
        image_rotary_emb: tuple[torch.Tensor, torch.Tensor] | None = None,
        attention_kwargs: dict[str, Any] | None = None,
        control: torch.Tensor | None = None,
        control_temb: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, ...]:
        next_control = None
        if control is not None:
            pose_tokens, next_control = self.control_norm1.step(control, control_temb)
            attention_kwargs = {**(attention_kwargs or {}), "pose_hidden_states": pose_tokens}
        hidden_states, encoder_hidden_states = super().forward(
            hidden_states, encoder_hidden_states, temb, image_rotary_emb, attention_kwargs
        )
        if next_control is None:
            return hidden_states, encoder_hidden_states
        return hidden_states, encoder_hidden_states, next_control


TransformerBlockRegistry.register(
    DynamiCtrlBlock,
    TransformerBlockMetadata(return_hidden_states_index=0, return_encoder_hidden_states_index=1),
)


def _skip_attention_output(self, *args, **kwargs):
    """What a skipped attention layer returns (diffusers layer-skip hooks): its inputs, unchanged."""
    hidden_states = kwargs.get("hidden_states", args[0] if args else None)
    encoder_hidden_states = kwargs.get("encoder_hidden_states", args[1] if len(args) > 1 else None)
    return hidden_states, encoder_hidden_states


AttentionProcessorRegistry.register(
    DynamiCtrlAttnProcessor, AttentionProcessorMetadata(skip_processor_output_fn=_skip_attention_output)
)


class DynamiCtrlTransformer(CogVideoXTransformer3DModel):
    """The DynamiCtrl diffusion transformer (`from dynamictrl import DynamiCtrlTransformer`).

    Loads the released layout (`transformer/config.json` + safetensors with `control_norm1` weights) with
    `from_pretrained`. The forward takes the published code's arguments; `control_hidden_states` is the pose latent
    `[B_pose, F, 16, H, W]` (already × VAE scaling factor), where `B_pose` may divide the batch of
    `hidden_states`: the k guidance branches then share one pose and the control chain runs once.
    """

    _no_split_modules = ["DynamiCtrlBlock", "CogVideoXPatchEmbed"]
    _repeated_blocks = ["DynamiCtrlBlock"]

    # Context parallelism (`enable_parallelism`, or `dynamictrl.pipelines.context_parallel.enable_context_parallel`):
    # the sequence is split on entry to the first block, after the patch embedding; each rank holds a shard of the
    # text tokens [B, L/P, D] and a shard of the video tokens [B, N/P, D], the ring / Ulysses attention backend sees
    # the keys of all ranks (their order does not matter: no mask), and the output of `proj_out` is gathered back to
    # [B, N, C] before `_unpatchify`. The control stream [B_pose, N, D] is split on entry to the first block like the
    # video tokens and stays split (PadaLN is per token, and each block passes its shard on); the RoPE tables
    # `(cos, sin)` [N, head_dim] reach every block at full length, so every block cuts the rows of its own video
    # shard. Text and video token counts must each divide by the degree. The plan
    # format: diffusers/models/_modeling_parallel.py, hooks/context_parallel.py.
    _cp_plan = {
        "transformer_blocks.0": {
            "hidden_states": ContextParallelInput(split_dim=1, expected_dims=3),
            "encoder_hidden_states": ContextParallelInput(split_dim=1, expected_dims=3),
            "control": ContextParallelInput(split_dim=1, expected_dims=3),  # the stream stays split block to block
        },
        "transformer_blocks.*": {
            "image_rotary_emb": [
                ContextParallelInput(split_dim=0, expected_dims=2),
                ContextParallelInput(split_dim=0, expected_dims=2),
            ],
        },
        "proj_out": ContextParallelOutput(gather_dim=1, expected_dims=3),
    }

    # Same signature (and so the same config keys) as the stock model: `functools.wraps` exposes the parent's
    # signature to diffusers' config machinery.
    @functools.wraps(CogVideoXTransformer3DModel.__init__)
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        c = self.config
        # The stock blocks are rebuilt as DynamiCtrl blocks. Under `from_pretrained` this runs on the meta
        # device, so the double construction costs nothing.
        self.transformer_blocks = nn.ModuleList(
            [
                DynamiCtrlBlock(
                    dim=c.num_attention_heads * c.attention_head_dim,
                    num_attention_heads=c.num_attention_heads,
                    attention_head_dim=c.attention_head_dim,
                    time_embed_dim=c.time_embed_dim,
                    dropout=c.dropout,
                    activation_fn=c.activation_fn,
                    attention_bias=c.attention_bias,
                    norm_elementwise_affine=c.norm_elementwise_affine,
                    norm_eps=c.norm_eps,
                )
                for _ in range(c.num_layers)
            ]
        )

    # ------------------------------------------------------------------------------------------- loading
    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | os.PathLike, **kwargs: Any):
        """Load DynamiCtrl weights; refuse a plain CogVideoX checkpoint instead of silently running without pose.

        Accepts everything `ModelMixin.from_pretrained` accepts (`subfolder`, `torch_dtype`, `variant`, ...).
        """
        names = checkpoint_parameter_names(pretrained_model_name_or_path, kwargs.get("subfolder"), kwargs)
        if names is not None and not any(CONTROL_KEY_MARKER in n for n in names):
            where = os.path.join(str(pretrained_model_name_or_path), kwargs.get("subfolder") or "")
            raise CheckpointError(
                f"{where.rstrip('/')} is a plain CogVideoX transformer: it has no PadaLN `control_norm1` weights, so "
                "it cannot follow a pose. Use released DynamiCtrl weights (e.g. --model gulucaptain/DynamiCtrl); "
                "to fine-tune from CogVideoX, load it with DynamiCtrlTransformer.from_cogvideox()"
            )
        return super().from_pretrained(pretrained_model_name_or_path, **kwargs)

    @classmethod
    def from_cogvideox(cls, pretrained_model_name_or_path: str | os.PathLike, **kwargs: Any) -> DynamiCtrlTransformer:
        """Start from a stock CogVideoX-1.5 I2V transformer: stock weights loaded, PadaLN at PyTorch default init.

        This is how the published code starts training from the base model (`from_pretrained_2d`); unlike it, any key
        other than `control_norm1.*` that is missing or mismatched is an error, not a printed warning.
        """
        base = CogVideoXTransformer3DModel.from_pretrained(pretrained_model_name_or_path, **kwargs)
        model = cls.from_config(base.config)
        missing, unexpected = model.load_state_dict(base.state_dict(), strict=False)
        bad_missing = [k for k in missing if CONTROL_KEY_MARKER not in k]
        if bad_missing or unexpected:
            raise CheckpointError(
                f"{pretrained_model_name_or_path} does not match the CogVideoX-1.5 layout: missing {bad_missing[:5]}, "
                f"unexpected {unexpected[:5]}"
            )
        return model if base.dtype == model.dtype else model.to(dtype=base.dtype)

    # ------------------------------------------------------------------------------------------- forward
    def fuse_qkv_projections(self) -> None:
        """Fuse Q, K, V into one projection; keeps our processor (the stock method would swap it out)."""
        for module in self.modules():
            if isinstance(module, Attention):
                module.fuse_projections(fuse=True)

    def embed_control(self, control_hidden_states: torch.Tensor) -> torch.Tensor:
        """Pose latent `[B, F, 16, H, W]` → control tokens `[B, N_video, D]` through the model's `patch_embed`.

        The latent is duplicated to 32 channels because the I2V patch embedder expects noise‖image channels. The
        text part of the embedder gets zero tokens (the published code projects the prompt and throws it away).
        """
        expected = self.config.in_channels // 2
        if control_hidden_states.shape[2] != expected:
            raise InputError(
                f"control_hidden_states must have {expected} latent channels, got shape "
                f"{tuple(control_hidden_states.shape)} (expected [B, F, {expected}, H, W])"
            )
        doubled = torch.cat([control_hidden_states, control_hidden_states], dim=2)
        no_text = doubled.new_zeros((doubled.shape[0], 0, self.config.text_embed_dim))
        return self.embedding_dropout(self.patch_embed(no_text, doubled))

    def _time_embedding(
        self, timestep: torch.Tensor, ofs: torch.Tensor | None, dtype: torch.dtype, timestep_cond=None
    ):
        emb = self.time_embedding(self.time_proj(timestep).to(dtype=dtype), timestep_cond)
        if self.ofs_embedding is not None:
            emb = emb + self.ofs_embedding(self.ofs_proj(ofs).to(dtype=dtype))
        return emb

    @staticmethod
    def _shared_pose_rows(timestep: torch.Tensor, batch: int, pose_batch: int) -> bool:
        """True when the k = batch / pose_batch branches all use the same timesteps (always so under CFG)."""
        if timestep.ndim == 0 or timestep.numel() == 1:
            return True
        rows = timestep.reshape(batch // pose_batch, pose_batch)
        return bool((rows == rows[:1]).all())

    @apply_lora_scale("attention_kwargs")
    def forward(
        self,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor,
        timestep: int | float | torch.Tensor,
        control_hidden_states: torch.Tensor | None = None,
        pose_control_function: str = "padaln",
        timestep_cond: torch.Tensor | None = None,
        ofs: int | float | torch.Tensor | None = None,
        image_rotary_emb: tuple[torch.Tensor, torch.Tensor] | None = None,
        attention_kwargs: dict[str, Any] | None = None,
        return_dict: bool = True,
    ) -> tuple[torch.Tensor] | Transformer2DModelOutput:
        """Predict v for `hidden_states [B, F, 32, H, W]` (noisy latent ‖ image latent), like the published code.

        `control_hidden_states [B_pose, F, 16, H, W]` with `B % B_pose == 0`; `None` runs without pose injection
        (the PadaLN branch contributes nothing). `pose_control_function`: "padaln" (the published method, the one
        with released weights) or "direct" (the paper's ablation: the control tokens `c_0` added to the video tokens
        once, before the blocks; for models trained that way, `pose_control_function: direct` in training).
        """
        if pose_control_function not in POSE_CONTROL_FUNCTIONS:
            raise InputError(
                f"pose_control_function={pose_control_function!r} is not supported; choose one of "
                f"{', '.join(POSE_CONTROL_FUNCTIONS)} ('padaln' has released weights; the published code's other "
                "variants do not run)"
            )
        batch_size, num_frames, _, height, width = hidden_states.shape
        if not torch.is_tensor(timestep):
            timestep = torch.tensor([timestep], device=hidden_states.device)
        if timestep.ndim == 0:
            timestep = timestep[None]
        if timestep.shape[0] == 1 and batch_size > 1:
            timestep = timestep.expand(batch_size)

        # 1. Time (+ ofs) embedding, as stock.
        emb = self._time_embedding(timestep, ofs, hidden_states.dtype, timestep_cond)

        # 2. Text and video tokens, as stock.
        text_seq_length = encoder_hidden_states.shape[1]
        tokens = self.embedding_dropout(self.patch_embed(encoder_hidden_states, hidden_states))
        encoder_hidden_states, hidden_states = tokens[:, :text_seq_length], tokens[:, text_seq_length:]

        # 3. Control tokens and the time embedding of the pose batch.
        control = control_emb = None
        if control_hidden_states is not None:
            if control_hidden_states.shape[0] == 0 or batch_size % control_hidden_states.shape[0]:
                raise InputError(
                    f"control batch {control_hidden_states.shape[0]} must divide the hidden batch {batch_size}"
                )
            if control_hidden_states.shape[1] != num_frames or control_hidden_states.shape[-2:] != (height, width):
                raise InputError(
                    f"control latent {tuple(control_hidden_states.shape)} does not match the video latent: "
                    f"{num_frames} frames of {height}×{width} expected"
                )
            control = self.embed_control(control_hidden_states)
            pose_batch = control.shape[0]
            if pose_batch != batch_size and not self._shared_pose_rows(timestep, batch_size, pose_batch):
                control = control.repeat(batch_size // pose_batch, 1, 1)
                pose_batch = batch_size
            control_emb = emb[:pose_batch]
            if pose_control_function == "direct":
                hidden_states = hidden_states + control.repeat(batch_size // pose_batch, 1, 1)
                control = control_emb = None

        # 4. Blocks; each advances the control chain (at the pose batch size) inside its own forward.
        checkpointing = torch.is_grad_enabled() and self.gradient_checkpointing
        for block in self.transformer_blocks:
            if checkpointing:
                outputs = self._gradient_checkpointing_func(
                    block, hidden_states, encoder_hidden_states, emb, image_rotary_emb, attention_kwargs, control,
                    control_emb,
                )  # fmt: skip
            else:
                outputs = block(
                    hidden_states=hidden_states,
                    encoder_hidden_states=encoder_hidden_states,
                    temb=emb,
                    image_rotary_emb=image_rotary_emb,
                    attention_kwargs=attention_kwargs,
                    control=control,
                    control_temb=control_emb,
                )
            hidden_states, encoder_hidden_states = outputs[0], outputs[1]
            if control is not None and len(outputs) > 2 and outputs[2] is not None:
                control = outputs[2]  # a hook that skipped the block (a step cache) leaves the stream as it was

        # 5. Output head and unpatchify, as stock (the published code normalises [text; video] jointly, which is the
        # same per-token LayerNorm).
        hidden_states = self.norm_final(hidden_states)
        hidden_states = self.proj_out(self.norm_out(hidden_states, temb=emb))
        output = self._unpatchify(hidden_states, batch_size, num_frames, height, width)
        if not return_dict:
            return (output,)
        return Transformer2DModelOutput(sample=output)

    def _unpatchify(self, tokens: torch.Tensor, batch: int, frames: int, height: int, width: int) -> torch.Tensor:
        p, p_t = self.config.patch_size, self.config.patch_size_t
        if p_t is None:
            out = tokens.reshape(batch, frames, height // p, width // p, -1, p, p)
            return out.permute(0, 1, 4, 2, 5, 3, 6).flatten(5, 6).flatten(3, 4)
        out = tokens.reshape(batch, (frames + p_t - 1) // p_t, height // p, width // p, -1, p_t, p, p)
        return out.permute(0, 1, 5, 4, 2, 6, 3, 7).flatten(6, 7).flatten(4, 5).flatten(1, 2)
