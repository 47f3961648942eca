"""TrainConfig: YAML + flags, and the one-line errors a bad run gets before any model loads."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from dynamictrl.errors import InputError
from dynamictrl.training.config import TrainConfig, describe_fields, load_config

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def setup(tmp_path):
    (tmp_path / "model" / "transformer").mkdir(parents=True)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "manifest.jsonl").write_text("")
    yaml_path = tmp_path / "run.yaml"
    yaml_path.write_text("model: model\noutput_dir: out\ndata_root: data\nframes: 13\nheight: 32\nwidth: 32\n")
    return yaml_path


def _parse(argv):
    from dynamictrl.cli import train

    parser = argparse.ArgumentParser()
    parser.add_argument("-q", "--quiet", action="store_true")
    train.add_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(argv)


def test_yaml_paths_are_relative_to_the_file_and_flags_override(setup):
    from dynamictrl.cli.train import config_from_args

    args = _parse(
        ["train", str(setup), "--max-steps", "10", "--lr", "1e-4", "--gradient-checkpointing", "--mode", "lora"]
    )
    config = config_from_args(args)
    assert config.model == str(setup.parent / "model")
    assert config.data_root == setup.parent / "data" and config.output_dir == setup.parent / "out"
    assert (config.max_steps, config.learning_rate, config.gradient_checkpointing) == (10, 1e-4, True)
    assert config.mode.value == "lora" and config.lora_targets == ("to_q", "to_k", "to_v", "to_out.0")
    config.check_files()  # everything exists
    args = _parse(["-q", "train", str(setup), "--lora-targets", "to_q,to_v", "--no-gradient-checkpointing"])
    config = config_from_args(args)
    assert config.lora_targets == ("to_q", "to_v") and config.gradient_checkpointing is False and config.quiet


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"optimizer": "sgd"}, "optimizer: unknown value 'sgd'; choose one of adamw, adam"),
        ({"frames": 12}, "frames must be 4k+1"),
        ({"frames": 17}, "odd number of latent frames"),
        ({"height": 40}, "height must be a positive multiple of 16"),
        ({"lr_scheduler": "warmup"}, "lr_scheduler: unknown value"),
        ({"image_dropout": 1.5}, "image_dropout is a probability"),
        ({"pose_control_function": "cross_attention"}, "pose_control_function must be one of padaln, direct"),
        ({"mixed_precision": "fp8"}, "mixed_precision: unknown value"),
        ({"max_steps": "ten"}, "max_steps: 'ten' is not a valid int"),
        ({"zero_init_pose": True}, "zero_init_pose needs init: cogvideox"),
        ({"bogus": 1}, "unknown config key(s) bogus"),
    ],
)
def test_bad_values_are_input_errors(setup, overrides, message):
    with pytest.raises(InputError) as info:
        load_config(setup, overrides)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_missing_files_and_checkpoints(setup, tmp_path):
    with pytest.raises(InputError, match="missing config key"):
        load_config(None, {"model": "x"})
    with pytest.raises(InputError, match="data_root: .* does not exist"):
        load_config(setup, {"data_root": str(tmp_path / "nowhere")}).check_files()
    with pytest.raises(InputError, match="has no checkpoint-N folder"):
        load_config(setup, {"resume": "latest"}).check_files()
    with pytest.raises(InputError, match="is not a checkpoint folder"):
        load_config(setup, {"resume": str(tmp_path)}).check_files()


def test_cli_exits_non_zero_with_one_line_before_loading(setup, capsys, monkeypatch):
    import dynamictrl.cli as cli

    if "train" not in cli.COMMANDS:
        monkeypatch.setattr(cli, "COMMANDS", [*cli.COMMANDS, "train"])
    assert cli.main(["train", str(setup), "--optimizer", "sgd"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: optimizer: unknown value") and "\n" not in err
    assert cli.main(["train", str(setup), "--resume", "latest"]) == 1
    assert "has no checkpoint-N folder" in capsys.readouterr().err


def test_docs_and_shipped_configs_cover_every_key():
    docs = (ROOT / "docs" / "training.md").read_text()
    for key, _, _ in describe_fields():
        assert f"`{key}`" in docs, key
    import yaml

    from dynamictrl.training.vae_config import VaeTrainConfig

    for path in sorted((ROOT / "configs" / "train").glob("*.yaml")):
        keys = set(yaml.safe_load(path.read_text()))
        cls = VaeTrainConfig if path.stem.endswith("_vae") else TrainConfig  # `dynamictrl train-vae` configs
        assert keys <= {f for f, _, _ in describe_fields(cls)}, path
    assert TrainConfig.__dataclass_params__.frozen
