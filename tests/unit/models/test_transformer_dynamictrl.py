"""DynamiCtrlTransformer: parity with the published module, loading, and the features users rely on."""

from __future__ import annotations

import pytest
import torch
from diffusers import CogVideoXTransformer3DModel
from safetensors.torch import load_file

from dynamictrl import DynamiCtrlTransformer
from dynamictrl.errors import CheckpointError, InputError
from dynamictrl.models import transformer_dynamictrl as td


@pytest.fixture(scope="module")
def reference_model(reference_tiny):
    model, info = DynamiCtrlTransformer.from_pretrained(reference_tiny / "transformer", output_loading_info=True)
    return model.eval(), info


@pytest.fixture(scope="module")
def inputs(reference_tiny):
    return load_file(reference_tiny / "transformer_inputs.safetensors")


def _forward(model, inp, **overrides):
    kwargs = dict(
        hidden_states=inp["hidden_states"],
        encoder_hidden_states=inp["encoder_hidden_states"],
        timestep=inp["timestep"],
        control_hidden_states=inp["control_hidden_states"],
        ofs=inp["ofs"],
        image_rotary_emb=(inp["rotary_cos"], inp["rotary_sin"]),
        return_dict=False,
    )
    kwargs.update(overrides)
    with torch.no_grad():
        return model(**kwargs)[0]


def test_released_checkpoint_loads_with_no_missing_or_unexpected_keys(reference_model):
    _, info = reference_model
    assert info["missing_keys"] == [] and info["unexpected_keys"] == [] and info["mismatched_keys"] == []


def test_output_matches_published_implementation(reference_model, inputs, reference_tiny):
    model, _ = reference_model
    expected = load_file(reference_tiny / "transformer_expected.safetensors")["sample"]
    out = _forward(model, inputs)
    assert out.shape == expected.shape
    assert (out - expected).abs().max().item() < 1e-4


def test_pose_changes_the_output(reference_model, inputs):
    model, _ = reference_model
    base = _forward(model, inputs)
    flipped = _forward(model, inputs, control_hidden_states=inputs["control_hidden_states"].flip(1))
    assert (base - flipped).abs().max().item() > 1e-2


def test_shared_pose_batch_gives_the_same_numbers_as_a_duplicated_one(reference_model, inputs):
    """Under CFG the pipeline passes the pose once; the control chain then runs at half batch."""
    model, _ = reference_model
    t = torch.tensor([421, 421])
    pose = inputs["control_hidden_states"][:1]
    duplicated = _forward(model, inputs, timestep=t, control_hidden_states=pose.repeat(2, 1, 1, 1, 1))
    shared = _forward(model, inputs, timestep=t, control_hidden_states=pose)
    assert (duplicated - shared).abs().max().item() < 1e-5


def test_shared_pose_batch_with_different_timesteps_falls_back_to_per_row(reference_model, inputs):
    model, _ = reference_model
    pose = inputs["control_hidden_states"][:1]
    duplicated = _forward(model, inputs, control_hidden_states=pose.repeat(2, 1, 1, 1, 1))
    shared = _forward(model, inputs, control_hidden_states=pose)
    assert (duplicated - shared).abs().max().item() < 1e-5


def test_control_chain_runs_once_per_step_for_both_guidance_branches(reference_model, inputs, monkeypatch):
    model, _ = reference_model
    batches = []
    original = td.PoseAdaptiveLayerNorm.forward

    def spy(self, control, temb):
        batches.append(control.shape[0])
        return original(self, control, temb)

    monkeypatch.setattr(td.PoseAdaptiveLayerNorm, "forward", spy)
    _forward(
        model, inputs, timestep=torch.tensor([999, 999]), control_hidden_states=inputs["control_hidden_states"][:1]
    )
    assert batches == [1] * model.config.num_layers


def test_every_module_of_a_block_runs_inside_that_blocks_forward(reference_model, inputs):
    """What diffusers' block-level group offload relies on (`--memory 16gb`): its hook sits on each block's forward
    and brings the block's weights to the GPU there, so a module of block i that ran outside block i's forward would
    find its weights still on the CPU. The PadaLN step (`control_norm1`) runs inside (before, the model called it
    ahead of the block, and only leaf-level offload was safe)."""
    model, _ = reference_model
    running: list[int] = []
    ran: list[tuple[int, str, int | None]] = []
    handles = []

    def leave(_module, _args, _output) -> None:  # returns None: the block's output is kept
        running.pop()

    for i, block in enumerate(model.transformer_blocks):
        handles.append(block.register_forward_pre_hook(lambda _m, _a, i=i: running.append(i)))
        handles.append(block.register_forward_hook(leave))
        for name, module in block.named_modules():
            if module is not block:
                hook = lambda _m, _a, i=i, name=name: ran.append((i, name, running[-1] if running else None))  # noqa: E731
                handles.append(module.register_forward_pre_hook(hook))
    try:
        _forward(model, inputs)
    finally:
        for handle in handles:
            handle.remove()
    outside = [(i, name) for i, name, inside in ran if inside != i]
    assert not outside, outside[:5]
    assert {i for i, name, _ in ran if name.startswith("control_norm1")} == set(range(model.config.num_layers))


def test_block_level_group_offload_keeps_the_numbers(reference_tiny, inputs):
    """diffusers' block-level group offload on the CPU (onload = offload device: the hooks run, nothing moves), with
    the blocks' three outputs (hidden, text, next control stream) passing through its hooks."""
    model = DynamiCtrlTransformer.from_pretrained(reference_tiny / "transformer").eval()
    plain = _forward(model, inputs)
    model.enable_group_offload(
        onload_device=torch.device("cpu"),
        offload_device=torch.device("cpu"),
        offload_type="block_level",
        num_blocks_per_group=1,
    )
    torch.testing.assert_close(_forward(model, inputs), plain, rtol=0, atol=0)


def test_plain_cogvideox_checkpoint_is_refused(tiny_models):
    with pytest.raises(CheckpointError, match="control_norm1"):
        DynamiCtrlTransformer.from_pretrained(tiny_models.base / "transformer")


def test_stock_class_silently_drops_the_pose_weights(reference_tiny):
    """Why `DynamiCtrlTransformer` must be used: the stock class loads the folder but ignores PadaLN."""
    _, info = CogVideoXTransformer3DModel.from_pretrained(reference_tiny / "transformer", output_loading_info=True)
    assert len(info["unexpected_keys"]) == 8 and all(".control_norm1." in k for k in info["unexpected_keys"])


def test_from_cogvideox_starts_training_from_the_base(tiny_models):
    model = DynamiCtrlTransformer.from_cogvideox(tiny_models.base / "transformer")
    stock = CogVideoXTransformer3DModel.from_pretrained(tiny_models.base / "transformer")
    assert torch.equal(model.proj_out.weight, stock.proj_out.weight)
    assert all(hasattr(block, "control_norm1") for block in model.transformer_blocks)


def test_config_is_interchangeable_with_stock(reference_model):
    """No added config keys: a released transformer/config.json builds either class, and vice versa."""
    model, _ = reference_model
    stock = CogVideoXTransformer3DModel.from_config(model.config)

    def public(config):
        return {k: v for k, v in config.items() if k != "_class_name"}

    assert public(stock.config) == public(model.config)
    assert set(DynamiCtrlTransformer.from_config(stock.config).state_dict()) - set(stock.state_dict()) == {
        f"transformer_blocks.{i}.control_norm1.{p}"
        for i in range(2)
        for p in ("linear.weight", "linear.bias", "norm.weight", "norm.bias")
    }


def test_runs_without_pose_and_rejects_unknown_variants(reference_model, inputs):
    model, _ = reference_model
    out = _forward(model, inputs, control_hidden_states=None)
    assert torch.isfinite(out).all()
    with pytest.raises(InputError, match="padaln"):
        _forward(model, inputs, pose_control_function="cross_attention")


def test_direct_adding_adds_the_control_tokens_once_at_the_input(reference_model, inputs):
    """The paper's ablation: `c_0` added to the video tokens after the patch embedding, the blocks run pose-free,
    so the PadaLN weights play no part; the pose still changes the output."""
    model, _ = reference_model
    direct = _forward(model, inputs, pose_control_function="direct")
    with torch.no_grad():
        control = model.embed_control(inputs["control_hidden_states"])
    text_length = inputs["encoder_hidden_states"].shape[1]

    def add_control(module, args, output):
        return torch.cat([output[:, :text_length], output[:, text_length:] + control], dim=1)

    hook = model.patch_embed.register_forward_hook(add_control)
    try:
        expected = _forward(model, inputs, control_hidden_states=None)
    finally:
        hook.remove()
    assert (direct - expected).abs().max().item() < 1e-5
    assert (direct - _forward(model, inputs)).abs().max().item() > 1e-2  # not the PadaLN output
    flipped = _forward(
        model, inputs, control_hidden_states=inputs["control_hidden_states"].flip(1), pose_control_function="direct"
    )
    assert (direct - flipped).abs().max().item() > 1e-2


def test_attention_goes_through_the_diffusers_dispatcher(reference_model, inputs, monkeypatch):
    model, _ = reference_model
    calls = []
    original = td.dispatch_attention_fn

    def spy(*args, **kwargs):
        calls.append(kwargs.get("backend"))
        return original(*args, **kwargs)

    monkeypatch.setattr(td, "dispatch_attention_fn", spy)
    base = _forward(model, inputs)
    model.set_attention_backend("_native_math")
    try:
        math = _forward(model, inputs)
    finally:
        model.reset_attention_backend()
    assert len(calls) == 2 * model.config.num_layers
    assert str(calls[-1]) == "AttentionBackendName._NATIVE_MATH"
    assert (base - math).abs().max().item() < 1e-4


def test_fused_qkv_projections_keep_the_numbers(reference_tiny, inputs):
    model = DynamiCtrlTransformer.from_pretrained(reference_tiny / "transformer").eval()
    base = _forward(model, inputs)
    model.fuse_qkv_projections()
    assert isinstance(model.transformer_blocks[0].attn1.processor, td.DynamiCtrlAttnProcessor)
    assert (base - _forward(model, inputs)).abs().max().item() < 1e-5


def test_gradient_checkpointing_gives_the_same_gradients(reference_tiny, inputs):
    def grads(checkpointing: bool):
        model = DynamiCtrlTransformer.from_pretrained(reference_tiny / "transformer")
        model.train()
        if checkpointing:
            model.enable_gradient_checkpointing()
        out = model(
            inputs["hidden_states"],
            inputs["encoder_hidden_states"],
            inputs["timestep"],
            control_hidden_states=inputs["control_hidden_states"],
            ofs=inputs["ofs"],
            image_rotary_emb=(inputs["rotary_cos"], inputs["rotary_sin"]),
        ).sample
        out.square().mean().backward()
        return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}

    plain, checkpointed = grads(False), grads(True)
    assert plain.keys() == checkpointed.keys()
    assert any(".control_norm1." in n for n in plain)
    for name in plain:
        assert torch.allclose(plain[name], checkpointed[name], atol=1e-5, rtol=1e-4), name


def test_peft_adapters_save_and_load(reference_tiny, inputs, tmp_path):
    from peft import LoraConfig

    model = DynamiCtrlTransformer.from_pretrained(reference_tiny / "transformer").eval()
    base = _forward(model, inputs)
    model.add_adapter(LoraConfig(r=4, lora_alpha=4, target_modules=["to_q", "to_k", "to_v", "to_out.0"]))
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.5)
    adapted = _forward(model, inputs)
    assert (adapted - base).abs().max().item() > 1e-3
    model.save_lora_adapter(tmp_path / "lora")

    fresh = DynamiCtrlTransformer.from_pretrained(reference_tiny / "transformer").eval()
    fresh.load_lora_adapter(tmp_path / "lora", prefix=None, weight_name="pytorch_lora_weights.safetensors")
    assert (adapted - _forward(fresh, inputs)).abs().max().item() < 1e-5
