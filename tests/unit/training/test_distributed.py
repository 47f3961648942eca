"""The shipped accelerate configs (configs/accelerate/*.yaml) as accelerate reads them, and the DeepSpeed keys the
training config owns. The configs' runs on two CPU processes are in tests/e2e/test_cli_train.py."""

from __future__ import annotations

import os
from pathlib import Path
from unittest import mock

import pytest

from dynamictrl.errors import InputError
from dynamictrl.training import load_config

CONFIGS = Path(__file__).resolve().parents[3] / "configs" / "accelerate"

# file → (distributed type, processes, mixed precision, what its plugin must say)
EXPECTED = {
    "single_gpu.yaml": ("NO", 1, "bf16", {}),
    "ddp.yaml": ("MULTI_GPU", 8, "bf16", {}),
    "cpu_2proc.yaml": ("MULTI_GPU", 2, "no", {}),
    "deepspeed_zero2.yaml": ("DEEPSPEED", 8, "bf16", {"zero_stage": 2, "offload_optimizer_device": "cpu"}),
    "cpu_deepspeed_zero2.yaml": ("DEEPSPEED", 2, "no", {"zero_stage": 2, "offload_optimizer_device": "none"}),
    "fsdp.yaml": ("FSDP", 8, "bf16", {"fsdp_version": 2}),
    "cpu_fsdp.yaml": ("FSDP", 2, "no", {"fsdp_version": 2}),
}


def _launch(path: Path):
    """`accelerate launch --config_file path`: its parsed arguments and the environment its launcher would give
    the training processes (nothing is started)."""
    from accelerate.commands.launch import _validate_launch_command, launch_command_parser
    from accelerate.utils.launch import prepare_deepspeed_cmd_env, prepare_multi_gpu_env

    parser = launch_command_parser()
    args = parser.parse_args(["--config_file", str(path), "--main_process_port", "0", "train.py"])
    args, defaults, _ = _validate_launch_command(args)
    if args.use_deepspeed:
        args.deepspeed_fields_from_accelerate_config = ",".join(defaults.deepspeed_config)
        return args, defaults, prepare_deepspeed_cmd_env(args)[1]
    return args, defaults, prepare_multi_gpu_env(args) if args.use_fsdp or args.multi_gpu else {}


def test_every_shipped_config_is_tested():
    assert sorted(p.name for p in CONFIGS.glob("*.yaml")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_shipped_accelerate_configs_parse_into_the_intended_plugins(name):
    """accelerate's own loader reads each file (unknown top-level keys are its error); the nested plugin keys are
    `accelerate launch` flags (a misspelt one would be ignored silently); the plugin built from the launcher's
    environment is the one intended."""
    from accelerate.commands.config.config_args import load_config_from_file
    from accelerate.commands.launch import launch_command_parser
    from accelerate.utils import DeepSpeedPlugin, FullyShardedDataParallelPlugin

    distributed_type, processes, precision, plugin_fields = EXPECTED[name]
    config = load_config_from_file(str(CONFIGS / name))
    assert config.distributed_type.value == distributed_type
    assert config.num_processes == processes and config.mixed_precision == precision
    flags = {action.dest for action in launch_command_parser()._actions}
    for key in config.deepspeed_config or {}:
        assert key in flags, f"{name}: deepspeed_config.{key} is not an accelerate launch flag"
    for key in config.fsdp_config or {}:
        assert key in flags, f"{name}: fsdp_config.{key} is not an accelerate launch flag"

    args, _, env = _launch(CONFIGS / name)
    assert int(args.num_processes) == processes
    with mock.patch.dict(os.environ, env, clear=True):
        if distributed_type == "DEEPSPEED":
            plugin = DeepSpeedPlugin()
            ds = plugin.deepspeed_config
            # Batch size, accumulation and clipping are the training config's (`configure_deepspeed`).
            assert ds["train_micro_batch_size_per_gpu"] == ds["gradient_accumulation_steps"] == "auto"
            assert ds["gradient_clipping"] == "auto"
            assert ds["zero_optimization"]["offload_param"]["device"] == "none"
        elif distributed_type == "FSDP":
            plugin = FullyShardedDataParallelPlugin()
            assert plugin.state_dict_type.name == "SHARDED_STATE_DICT"
            assert plugin.reshard_after_forward is True
            # PoseAdaptiveLayerNorm is its own unit: the model calls each block's control_norm1 before the block.
            assert plugin.transformer_cls_names_to_wrap == ["DynamiCtrlBlock", "PoseAdaptiveLayerNorm"]
            import dynamictrl.models.transformer_dynamictrl as module

            assert all(hasattr(module, cls) for cls in plugin.transformer_cls_names_to_wrap)
        else:
            assert not args.use_deepspeed and not args.use_fsdp
            return
    for field, value in plugin_fields.items():
        assert getattr(plugin, field) == value, (name, field)


def _train_config(tmp_path, **overrides):
    settings = dict(model=str(tmp_path), output_dir=str(tmp_path / "out"), data_root=str(tmp_path), quiet=True)
    return load_config(None, {**settings, **overrides})


def test_deepspeed_keys_come_from_the_training_config(tmp_path):
    from dynamictrl.training.distributed import configure_deepspeed

    plugin = mock.Mock(deepspeed_config={"train_micro_batch_size_per_gpu": "auto", "gradient_clipping": "auto"})
    configure_deepspeed(plugin, _train_config(tmp_path, batch_size=3, gradient_accumulation_steps=2))
    ds = plugin.deepspeed_config
    assert ds == {"train_micro_batch_size_per_gpu": 3, "gradient_accumulation_steps": 2, "gradient_clipping": 1.0}

    plugin = mock.Mock(deepspeed_config={"gradient_clipping": 0.5})  # a DeepSpeed config file that disagrees
    with pytest.raises(InputError, match="gradient_clipping=0.5 but the training config has max_grad_norm=1.0"):
        configure_deepspeed(plugin, _train_config(tmp_path))
