"""Context parallelism of DynamiCtrlTransformer (`dynamictrl.pipelines.context_parallel`) on 2 CPU processes.

The 2-process test launches this file twice as a script (one process per rank, gloo, torchrun-style environment);
each rank builds the same tiny seeded transformer, runs the single-process forward as reference, then the same
forward with Ulysses (ulysses_degree=2, native backend) and with ring attention (ring_degree=2), and compares the
gathered `[B, F, 16, H, W]` output (|max| 2.56) with the reference. Measured max |difference|, float32, on both
ranks: Ulysses 4.8e-7, ring 4.8e-7; bound 1e-5. (Leaving the text tokens unsplit, so that every rank attends to
them twice, gives 4.7e-2: the check tells.)

Ring attention merges per-shard results by their log-sum-exp, which the only CPU backend (`native`) does not return
(`_native_attention_forward_op` in diffusers/models/attention_dispatch.py raises on `return_lse=True`). For the ring
case the worker therefore wraps that op with an exact math version that also returns the LSE; the sharding plan,
the ring exchange and the merge are diffusers' and the model's own code.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from dynamictrl.errors import InputError
from dynamictrl.pipelines import context_parallel as cp
from dynamictrl.testing import build_tiny_transformer, free_port

WORLD = 2
# Latent [B, F, C, H, W] = [2, 4, 32, 8, 8]: 2·4·4 = 32 video tokens, 32 text tokens (tiny max_text_seq_length).
LATENT = (4, 8, 8)
BATCH = 2


def _inputs() -> dict[str, torch.Tensor]:
    from dynamictrl.training.spec import rotary_embeddings

    g = torch.Generator().manual_seed(1)
    f, h, w = LATENT
    model_config = build_tiny_transformer().config
    cos, sin = rotary_embeddings(model_config, f, h, w, device=None)
    return dict(
        hidden_states=torch.randn(BATCH, f, 32, h, w, generator=g),
        encoder_hidden_states=torch.randn(BATCH, model_config.max_text_seq_length, 32, generator=g),
        # one pose shared by the 2 branches (the guidance layout): the pose batch is half the hidden batch
        control_hidden_states=torch.randn(1, f, 16, h, w, generator=g),
        timestep=torch.tensor([500]),
        ofs=torch.tensor([2.0]),
        image_rotary_emb=(cos, sin),
    )


def _native_op_with_lse(original):
    """`_native_attention_forward_op` that also returns the log-sum-exp `[B, S, H]` when asked (exact math)."""

    def op(
        ctx,
        query,
        key,
        value,
        attn_mask=None,
        dropout_p=0.0,
        is_causal=False,
        scale=None,
        enable_gqa=False,
        return_lse=False,
        _save_ctx=True,
        _parallel_config=None,
    ):
        if not return_lse:
            return original(
                ctx,
                query,
                key,
                value,
                attn_mask,
                dropout_p,
                is_causal,
                scale,
                enable_gqa,
                return_lse,
                _save_ctx=_save_ctx,
                _parallel_config=_parallel_config,
            )
        q, k, v = (x.permute(0, 2, 1, 3).float() for x in (query, key, value))
        scores = q @ k.transpose(-1, -2) * (scale if scale is not None else q.shape[-1] ** -0.5)
        lse = scores.logsumexp(dim=-1)
        out = (scores - lse[..., None]).exp() @ v
        return out.permute(0, 2, 1, 3).to(query.dtype), lse.permute(0, 2, 1)

    return op


def _worker(out_path: str) -> None:
    """One rank: reference forward, then Ulysses and ring forwards; writes the max differences as JSON."""
    import torch.distributed as dist
    from diffusers.models import attention_dispatch

    torch.set_num_threads(1)
    dist.init_process_group("gloo")
    rank = dist.get_rank()
    inputs = _inputs()
    with torch.no_grad():
        reference = build_tiny_transformer()(**inputs, return_dict=False)[0]
    result: dict[str, object] = {"rank": rank}
    for mode in ("ulysses", "ring"):
        degrees = {"ulysses_degree": WORLD} if mode == "ulysses" else {"ring_degree": WORLD}
        if mode == "ring":
            attention_dispatch._native_attention_forward_op = _native_op_with_lse(
                attention_dispatch._native_attention_forward_op
            )
            cp._BACKENDS_WITHOUT_LSE = frozenset()
        model = build_tiny_transformer()
        cp.enable_context_parallel(model, **degrees)
        seen: list[int] = []
        model.norm_final.register_forward_hook(lambda _m, args, _out, seen=seen: seen.append(args[0].shape[1]))
        with torch.no_grad():
            out = model(**inputs, return_dict=False)[0]
        result[mode] = {
            "max_diff": (out - reference).abs().max().item(),
            "shape_ok": out.shape == reference.shape,
            "local_video_tokens": seen[0],
        }
    dist.barrier()
    dist.destroy_process_group()
    Path(out_path).write_text(json.dumps(result))


def test_ring_and_ulysses_match_single_process_forward(tmp_path):
    port = free_port()
    procs = []
    for rank in range(WORLD):
        env = {
            **os.environ,
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": str(port),
            "RANK": str(rank),
            "LOCAL_RANK": str(rank),
            "WORLD_SIZE": str(WORLD),
            "OMP_NUM_THREADS": "1",
            "HF_HUB_OFFLINE": "1",
        }
        out = tmp_path / f"rank{rank}.json"
        procs.append((subprocess.Popen([sys.executable, __file__, str(out)], env=env, stderr=subprocess.PIPE), out))
    for proc, _ in procs:
        try:
            _, err = proc.communicate(timeout=180)
        except subprocess.TimeoutExpired:
            for p, _ in procs:
                p.kill()
            pytest.fail("context-parallel workers timed out")
        assert proc.returncode == 0, err.decode()[-4000:]
    video_tokens = cp.video_token_count(build_tiny_transformer(), *LATENT)
    for _, out in procs:
        result = json.loads(out.read_text())
        for mode in ("ulysses", "ring"):
            r = result[mode]
            assert r["shape_ok"], (result["rank"], mode)
            assert r["local_video_tokens"] == video_tokens // WORLD, (result["rank"], mode, r)
            assert r["max_diff"] < 1e-5, (result["rank"], mode, r)


def test_enable_without_process_group_raises_one_line():
    assert not torch.distributed.is_initialized()
    with pytest.raises(InputError) as err:
        cp.enable_context_parallel(build_tiny_transformer(), ulysses_degree=2)
    message = str(err.value)
    assert "\n" not in message and "accelerate launch --num_processes 2" in message


def test_enable_with_degree_one_raises():
    with pytest.raises(InputError):
        cp.enable_context_parallel(build_tiny_transformer())


def test_supports_context_parallel_names_the_problem():
    model = build_tiny_transformer()  # 2 heads, 32 text tokens
    assert cp.supports_context_parallel(model, ulysses_degree=2, latent_shape=LATENT) is None
    reason = cp.supports_context_parallel(model, ulysses_degree=2, latent_shape=(2, 6, 6))  # 1·3·3 = 9 tokens
    assert reason is not None and "9 video tokens" in reason and "\n" not in reason
    reason = cp.supports_context_parallel(model, ulysses_degree=2, text_seq_length=33)
    assert reason is not None and "33 text tokens" in reason
    reason = cp.supports_context_parallel(model, ulysses_degree=4)
    assert reason is not None and "attention heads" in reason
    reason = cp.supports_context_parallel(model, ring_degree=2)  # native backend: no log-sum-exp
    assert reason is not None and "log-sum-exp" in reason


def test_config_problem_reads_config_json_before_any_load():
    """The 5B model's transformer/config.json: 48 heads, prompts padded to 226 = 2 · 113 tokens."""
    five_b = {"num_attention_heads": 48, "max_text_seq_length": 226, "patch_size": 2, "patch_size_t": 2}
    assert cp.config_problem(five_b, ulysses_degree=2, latent_shape=(10, 96, 170)) is None  # 1360x768x37
    assert "226 text tokens do not divide by the context-parallel degree 4" in cp.config_problem(
        five_b, ulysses_degree=4
    )
    assert cp.degrees("ring", 2) == {"ring_degree": 2} and cp.degrees("none", 2) == {}


if __name__ == "__main__":
    _worker(sys.argv[1])
