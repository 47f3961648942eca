"""Run options: one declaration builds each command's flags and options object; values are checked with the flag's
name, before anything heavy is imported."""

from __future__ import annotations

import argparse
import dataclasses
import math
from pathlib import Path

import pytest

from dynamictrl.errors import InputError
from dynamictrl.options import OPTIONS, AnimateOptions, DemoOptions, PoseOptions, add_arguments, from_args, options_of

# The flags of `animate` and `pose` before their options were declared once: every one must still work.
OLD_ANIMATE_FLAGS = (
    "--attention-backend --base --cache --cache-threshold --device --driving-fps --driving-video --dtype --fps "
    "--frames --guidance --height --hold-last --image --image-latent-scale --loop --model --negative-prompt "
    "--no-vae-slicing --no-vae-tiling --num-videos --offload --out --pose-backend --pose-video --prompt --seed "
    "--side-by-side --steps --strict --width"
).split()
OLD_POSE_FLAGS = (
    "--align --backend --cache-dir --device --driving-video --fps --height --hold-last --keypoints --loop --no-cache "
    "--num-frames --out --people --pose-model-dir --reference-image --reference-out --retarget --smooth --start "
    "--strict --stride --width"
).split()
INTERNAL = {"note", "quiet"}  # set by the program, not by a flag


def parser_for(cls, **kwargs) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(exit_on_error=False)
    add_arguments(parser, cls, **kwargs)
    return parser


def flags_to_dests(parser: argparse.ArgumentParser) -> dict[str, str]:
    return {flag: a.dest for a in parser._actions for flag in a.option_strings if a.dest != "help"}


@pytest.mark.parametrize("cls", [AnimateOptions, PoseOptions, DemoOptions])
def test_every_field_has_a_flag_and_every_flag_a_field(cls):
    fields = {f.name for f in dataclasses.fields(cls)} - INTERNAL
    dests = set(flags_to_dests(parser_for(cls)).values())
    assert dests == fields
    assert {name for name, _ in options_of(cls)} == fields


def test_old_flag_spellings_still_parse():
    animate = flags_to_dests(parser_for(AnimateOptions))
    assert set(OLD_ANIMATE_FLAGS) <= set(animate)
    pose = flags_to_dests(parser_for(PoseOptions, extra_aliases={"driving_fps": ["--fps"]}))
    assert set(OLD_POSE_FLAGS) <= set(pose)
    # The same thing has the same flag in both commands.
    for flag in ("--frames", "--pose-backend", "--strict", "--image", "--driving-fps", "--pose-cache-dir"):
        assert animate[flag] == pose[flag]


def test_options_object_is_built_from_the_flags_with_the_declared_defaults():
    args = parser_for(AnimateOptions).parse_args(
        ["--image", "me.jpg", "--pose-video", "p.mp4", "--prompt", "a dancer", "--frames", "13", "--guidance", "4.5",
         "--no-vae-tiling", "--hold-last", "--strict"]
    )  # fmt: skip
    options = from_args(AnimateOptions, args, quiet=True)
    assert options.num_frames == 13 and options.guidance == 4.5 and options.on_short == "hold-last"
    assert options.vae_tiling is False and options.vae_slicing is True and options.strict_pose is True
    assert options.steps == OPTIONS["steps"].default == 25 and options.seed == 42 and options.height == 1360
    assert options.out == Path("outputs/me_p_seed42.mp4")
    assert set(options.to_json()) >= {"num_frames", "strict_pose", "pose_cache_dir", "note", "quiet"}


BAD_VALUES = [
    (["--guidance", "nan"], "--guidance must be a finite number"),
    (["--guidance", "inf"], "--guidance must be a finite number"),
    (["--fps", "nan"], "--fps must be a finite number"),
    (["--frames", "twelve"], "--frames must be an integer"),
    (["--frames", "12"], "--frames must be 4k\\+1"),
    (["--height", "17"], "--height must be a positive multiple of 16"),
    (["--steps", "0"], "--steps must be >= 1"),
    (["--seed", "-1"], "--seed must be >= 0"),
    (["--dtype", "fp8"], "--dtype must be one of auto, float32"),
    (["--device", "gpu"], "--device must be auto, cpu, cuda"),
    (["--pose-backend", "openpose"], "--pose-backend must be one of auto, dwpose"),
    (["--stride", "0"], "--stride must be >= 1"),
    (["--out", "video.gif"], "--out must end in .mp4"),
    (["--context-parallel", "tensor"], "--context-parallel must be one of none, ulysses, ring"),
    (["--context-parallel", "ulysses", "--offload", "model"], "cannot run with --offload model"),
    (["--context-parallel", "ring", "--memory", "16gb"], "cannot run with --memory 16gb, which streams"),
    (["--context-parallel", "ulysses", "--cache", "first-block"], "first-block cache: each process would decide"),
]


@pytest.mark.parametrize("extra, message", BAD_VALUES, ids=[" ".join(b[0]) for b in BAD_VALUES])
def test_bad_values_are_refused_naming_the_flag(extra, message):
    args = parser_for(AnimateOptions).parse_args(
        ["--image", "a.png", "--pose-video", "p.mp4", "--prompt", "x", *extra]
    )
    with pytest.raises(InputError, match=message):
        from_args(AnimateOptions, args)


def test_pose_options_check_sizes_like_animate():
    with pytest.raises(InputError, match="--height must be a positive multiple of 16"):
        PoseOptions(image=Path("a.png"), driving_video=Path("d.mp4"), out=Path("p.mp4"), height=17)
    options = PoseOptions(image=Path("a.png"), driving_video=Path("d.mp4"), out=Path("p.mp4"))
    assert options.keypoints == Path("p.json") and options.num_frames is None


def test_exactly_one_pose_source():
    with pytest.raises(InputError, match="exactly one of --pose-video"):
        AnimateOptions(image=Path("a.png"), prompt="x")
    with pytest.raises(InputError, match="exactly one of --pose-video"):
        AnimateOptions(image=Path("a.png"), prompt="x", pose_video=Path("p.mp4"), driving_video=Path("d.mp4"))


def test_checks_accept_every_default():
    for option in OPTIONS.values():
        option.validate(option.default)
    assert not math.isnan(OPTIONS["guidance"].default)
