"""Context parallelism: one video's transformer forward split over several processes (ring / Ulysses attention).

Uses diffusers' own machinery (`ModelMixin.enable_parallelism` in diffusers/models/modeling_utils.py, the hooks
of diffusers/hooks/context_parallel.py) with the plan `DynamiCtrlTransformer._cp_plan`
(dynamictrl/models/transformer_dynamictrl.py): every rank holds a shard of the text tokens `[B, L/P, D]` and of the
video tokens `[B, N/P, D]` (P = ring_degree × ulysses_degree), with the matching rows of the RoPE tables
`[N/P, head_dim]` and of the PadaLN pose tokens `[B_pose, N/P, D]`; the attention backend exchanges keys/values
(ring) or heads (Ulysses) so every query attends to the whole `L + N` sequence, and the output of `proj_out` is
gathered to `[B, N, C]` on every rank, so every rank returns the full `[B, F, C, H, W]` prediction.

Launch one process per rank, e.g. `accelerate launch --num_processes 2 ...` or `torchrun --nproc-per-node 2 ...`,
initialise `torch.distributed` (nccl on GPUs, gloo on CPU), move the transformer to the rank's device and call
`enable_context_parallel(transformer, ulysses_degree=2)`. Every rank must then run the same forward on the same
inputs (same seed). `dynamictrl animate --context-parallel ulysses|ring` does all of it (jobs/animate.py).

Nothing here imports torch at module level: `CONTEXT_PARALLEL_MODES` and `config_problem` serve the option checks,
which run before any heavy import.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from ..errors import InputError

if TYPE_CHECKING:
    import torch

# `--context-parallel`: none, or how the processes of one launch share a video's attention (all of them ring or
# all of them Ulysses; diffusers also combines the two, which the command line does not offer).
CONTEXT_PARALLEL_MODES = ("none", "ulysses", "ring")

# Backends whose forward op cannot return the log-sum-exp that ring attention needs to merge the per-shard results
# (`_native_attention_forward_op` in diffusers/models/attention_dispatch.py raises on `return_lse=True`); they still
# run Ulysses.
_BACKENDS_WITHOUT_LSE: frozenset[str] = frozenset({"native"})
# What `enable_context_parallel` switches to when the current backend has no context-parallel support.
_FALLBACK_BACKEND = "native"


def _parallel_api() -> tuple[type, type] | None:
    """`(ContextParallelConfig, ModelMixin)` from the installed diffusers, or None when it predates them."""
    try:
        from diffusers.models._modeling_parallel import ContextParallelConfig
        from diffusers.models.modeling_utils import ModelMixin
    except ImportError:
        return None
    if not hasattr(ModelMixin, "enable_parallelism"):
        return None
    return ContextParallelConfig, ModelMixin


def _current_backend(transformer: torch.nn.Module) -> str:
    """The attention backend the transformer's processors use now (their own, else the globally active one)."""
    from diffusers.models.attention_dispatch import _AttentionBackendRegistry
    from diffusers.models.attention_processor import Attention

    for module in transformer.modules():
        if isinstance(module, Attention):
            backend = getattr(module.processor, "_attention_backend", None)
            if backend is not None:
                return str(getattr(backend, "value", backend))
            break
    return _AttentionBackendRegistry.get_active_backend()[0].value


def _backend_supports_cp(backend: str) -> bool:
    from diffusers.models.attention_dispatch import AttentionBackendName, _AttentionBackendRegistry

    return _AttentionBackendRegistry._is_context_parallel_available(AttentionBackendName(backend))


def _backend_for_cp(transformer: torch.nn.Module) -> str:
    """The backend `enable_context_parallel` will run: the current one if it supports CP, else `native`."""
    backend = _current_backend(transformer)
    return backend if _backend_supports_cp(backend) else _FALLBACK_BACKEND


def _config_value(config: Any, key: str, default: Any = None) -> Any:
    """`key` of a transformer config: a `config.json` dict or a model's `.config` (a `FrozenDict`, also a Mapping)."""
    return config.get(key, default) if isinstance(config, Mapping) else getattr(config, key, default)


def video_token_count(transformer: Any, latent_frames: int, latent_height: int, latent_width: int) -> int:
    """Video tokens N after the patch embedding of a latent `[B, F, C, H, W]`: ⌈F/p_t⌉ · (H/p) · (W/p).

    transformer: the model, or its config (`config.json` as a dict)."""
    c = getattr(transformer, "config", transformer)
    p, p_t = int(_config_value(c, "patch_size", 2)), _config_value(c, "patch_size_t")
    frames = latent_frames if p_t is None else (latent_frames + p_t - 1) // p_t
    return frames * (latent_height // p) * (latent_width // p)


def degrees(mode: str, processes: int) -> dict[str, int]:
    """`--context-parallel MODE` (one of `CONTEXT_PARALLEL_MODES`, checked by the option) over `processes`
    processes → `ring_degree` / `ulysses_degree` keyword arguments."""
    if mode == "none":
        return {}
    return {f"{mode}_degree": processes}


def config_problem(
    config: Any,
    *,
    ring_degree: int = 1,
    ulysses_degree: int = 1,
    text_seq_length: int | None = None,
    latent_shape: tuple[int, int, int] | None = None,
) -> str | None:
    """What the transformer config alone says against these degrees (None: nothing), as one line; no torch needed.

    config: `transformer/config.json` as a dict, or a model's `.config`. Ulysses: `num_attention_heads %
    ulysses_degree == 0`; the text tokens L (`text_seq_length`, default `max_text_seq_length`, the length the
    pipeline pads prompts to) and, with `latent_shape = (F, H, W)` of the latent `[B, F, C, H, W]`, the video tokens
    N each divide by `ring_degree × ulysses_degree` (diffusers' equipartition sharder, hooks/context_parallel.py,
    requires it). The 5B model pads prompts to 226 = 2 · 113 tokens, so it splits over 2 processes only.
    """
    if ring_degree < 1 or ulysses_degree < 1:
        return f"ring_degree ({ring_degree}) and ulysses_degree ({ulysses_degree}) must be >= 1"
    degree = ring_degree * ulysses_degree
    if degree == 1:
        return None
    heads = int(_config_value(config, "num_attention_heads", 30))
    if heads % ulysses_degree:
        return f"{heads} attention heads do not divide by ulysses_degree={ulysses_degree}"
    text = int(_config_value(config, "max_text_seq_length", 226)) if text_seq_length is None else text_seq_length
    if text % degree:
        return f"{text} text tokens do not divide by the context-parallel degree {degree}"
    if latent_shape is not None:
        video = video_token_count(config, *latent_shape)
        if video % degree:
            return (
                f"{video} video tokens (latent {latent_shape[0]}×{latent_shape[1]}×{latent_shape[2]} after "
                f"patching) do not divide by the context-parallel degree {degree}"
            )
    return None


def supports_context_parallel(
    transformer: torch.nn.Module,
    *,
    ring_degree: int = 1,
    ulysses_degree: int = 1,
    text_seq_length: int | None = None,
    latent_shape: tuple[int, int, int] | None = None,
) -> str | None:
    """None when `transformer` can run context-parallel with these degrees, else a one-line reason.

    Checks: the installed diffusers has `ModelMixin.enable_parallelism` / `ContextParallelConfig`; the model has a
    `_cp_plan`; its config (`config_problem`: heads, text and video tokens); ring: the attention backend returns the
    log-sum-exp (`native`, the only one that runs on CPU, does not). With both degrees 1 only the diffusers API is
    checked.
    """
    if _parallel_api() is None:
        import diffusers

        return (
            f"the installed diffusers {diffusers.__version__} has no ModelMixin.enable_parallelism / "
            "ContextParallelConfig (context parallelism needs a newer diffusers)"
        )
    if getattr(transformer, "_cp_plan", None) is None:
        return f"{type(transformer).__name__} has no context-parallel plan (_cp_plan)"
    problem = config_problem(
        transformer.config,
        ring_degree=ring_degree,
        ulysses_degree=ulysses_degree,
        text_seq_length=text_seq_length,
        latent_shape=latent_shape,
    )
    if problem is not None or ring_degree * ulysses_degree == 1:
        return problem
    backend = _backend_for_cp(transformer)
    if ring_degree > 1 and backend in _BACKENDS_WITHOUT_LSE:
        return (
            f"ring attention needs an attention backend that returns the log-sum-exp; {backend!r} does not "
            "(use ulysses_degree, or set_attention_backend('_native_cudnn' / 'flash' / 'sage') on a GPU)"
        )
    return None


@contextlib.contextmanager
def _cpu_device_count() -> Iterator[None]:
    """Lets `enable_parallelism` run without an accelerator (CPU + gloo).

    `ModelMixin._resolve_parallel_config` (diffusers/models/modeling_utils.py) takes the rank's device as
    `rank % torch.accelerator.device_count()`, a division by zero on a CPU-only machine; there the device is
    `cpu` whatever the index, so the count is reported as 1 for the duration of the call.
    """
    from unittest import mock

    import torch

    if torch._C._get_accelerator().type != "cpu" or torch.accelerator.device_count() > 0:
        yield
        return
    with mock.patch.object(torch.accelerator, "device_count", return_value=1):
        yield


def enable_context_parallel(transformer: Any, *, ring_degree: int = 1, ulysses_degree: int = 1) -> None:
    """Split `transformer`'s forward over the `ring_degree × ulysses_degree` processes of `torch.distributed`.

    Needs the default process group initialised with exactly that world size. Switches the attention backend to
    `native` when the current one has no context-parallel support, then calls
    `transformer.enable_parallelism(config=ContextParallelConfig(...), cp_plan=transformer._cp_plan)`. Afterwards
    the forward takes and returns full-size tensors on every rank (`hidden_states [B, F, 32, H, W]` →
    `sample [B, F, 16, H, W]`); the split and the gather happen inside. Raises `InputError` when it cannot run
    (reasons: `supports_context_parallel`). Cannot be undone or applied twice (diffusers' rule).
    """
    import torch

    degree = ring_degree * ulysses_degree
    if degree <= 1:
        raise InputError(f"ring_degree × ulysses_degree = {degree}: context parallelism needs at least 2 processes")
    dist = torch.distributed
    if not dist.is_available() or not dist.is_initialized() or dist.get_world_size() != degree:
        found = dist.get_world_size() if dist.is_available() and dist.is_initialized() else "no process group"
        raise InputError(
            f"context parallelism over {degree} processes needs torch.distributed initialised with world size "
            f"{degree} (found {found}); launch with `accelerate launch --num_processes {degree} ...` "
            f"(or `torchrun --nproc-per-node {degree} ...`)"
        )
    reason = supports_context_parallel(transformer, ring_degree=ring_degree, ulysses_degree=ulysses_degree)
    if reason is not None:
        raise InputError(f"cannot enable context parallelism: {reason}")
    backend = _backend_for_cp(transformer)
    if backend != _current_backend(transformer):
        transformer.set_attention_backend(backend)
    context_parallel_config, _ = _parallel_api()
    with _cpu_device_count():
        transformer.enable_parallelism(
            config=context_parallel_config(ring_degree=ring_degree, ulysses_degree=ulysses_degree),
            cp_plan=transformer._cp_plan,
        )
