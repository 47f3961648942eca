"""`dynamictrl animate` end to end on a tiny model in the released layout, and its one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from dynamictrl.cli import main
from dynamictrl.io.media import probe_video, read_video, save_image, write_video

H, W = 64, 96


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "dynamictrl", *args], capture_output=True, text=True, env=full_env, timeout=600
    )


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("inputs")
    rng = np.random.default_rng(0)
    image = folder / "person.png"
    save_image(image, rng.integers(0, 256, (H * 2, W * 2, 3), dtype=np.uint8))  # same aspect, 2x the size
    pose = folder / "pose.mp4"
    frames = np.zeros((13, H, W, 3), dtype=np.uint8)
    for i, frame in enumerate(frames):  # a bar moving to the right
        frame[10:50, 5 + 5 * i : 15 + 5 * i] = (255, 0, 0)
    write_video(pose, frames, fps=8)
    (folder / "notes.txt").write_text("not an image")
    (folder / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(200))
    return folder


def _animate_args(inputs: Path, model: Path, out: Path, *extra: str) -> list[str]:
    return [
        "animate",
        "--image", str(inputs / "person.png"),
        "--pose-video", str(inputs / "pose.mp4"),
        "--prompt", "a woman in a red dress dancing in a studio",
        "--model", str(model),
        "--frames", "9", "--height", str(H), "--width", str(W), "--steps", "2", "--fps", "8",
        "--out", str(out),
        *extra,
    ]  # fmt: skip


def test_animate_writes_a_playable_video_and_its_sidecar(inputs, tiny_models, tmp_path):
    out = tmp_path / "result.mp4"
    proc = run_cli(*_animate_args(inputs, tiny_models.dynamictrl, out, "--side-by-side", "--seed", "7"))
    assert proc.returncode == 0, proc.stderr
    info = probe_video(out)
    assert (info.num_frames, info.height, info.width) == (9, H, W)
    frames, fps = read_video(out)
    assert frames.shape == (9, H, W, 3) and fps == pytest.approx(8)
    sbs = probe_video(tmp_path / "result_side_by_side.mp4")
    assert (sbs.num_frames, sbs.height, sbs.width) == (9, H, 3 * W)
    sidecar = json.loads((tmp_path / "result.json").read_text())
    assert sidecar["seed"] == 7 and sidecar["settings"]["num_frames"] == 9 and sidecar["settings"]["steps"] == 2
    assert sidecar["outputs"]["num_frames"] == 9
    assert sidecar["model"]["image_latent_scale"] == 1.0
    assert {"torch", "diffusers", "transformers", "dynamictrl"} <= set(sidecar["versions"])
    assert str(out) in proc.stdout
    assert not list(tmp_path.glob(".*partial*")), "temporary files left behind"


def test_same_seed_same_video_transformer_only_model_differs(inputs, tiny_models, tmp_path):
    """In-process runs: a seed reproduces a video; the Mask-style model completed from the base runs too."""
    a, b, c = tmp_path / "a.mp4", tmp_path / "b.mp4", tmp_path / "c.mp4"
    assert main(_animate_args(inputs, tiny_models.dynamictrl, a)) == 0
    assert main(_animate_args(inputs, tiny_models.dynamictrl, b)) == 0
    assert main([*_animate_args(inputs, tiny_models.transformer_only, c), "--base", str(tiny_models.base)]) == 0
    va, vb, vc = (read_video(p)[0].astype(int) for p in (a, b, c))
    assert np.array_equal(va, vb)
    assert np.abs(va - vc).max() > 0


BAD_INPUTS = [
    ("missing image", {"--image": "{dir}/nope.jpg"}, "Image not found"),
    ("image that is not an image", {"--image": "{dir}/notes.txt"}, "not a readable image"),
    ("unreadable pose video", {"--pose-video": "{dir}/broken.mp4"}, "not a readable video"),
    ("pose video too short", {"--frames": "17"}, "has 13 frames"),
    ("height not a multiple of 16", {"--height": "60"}, "multiple of 16"),
    ("frame count not 4k+1", {"--frames": "12"}, "4k\\+1"),
    ("steps < 1", {"--steps": "0"}, "--steps must be >= 1"),
]


@pytest.mark.parametrize("name, change, message", BAD_INPUTS, ids=[b[0] for b in BAD_INPUTS])
def test_bad_input_gives_one_line_and_nonzero_exit(inputs, tiny_models, tmp_path, capsys, name, change, message):
    args = _animate_args(inputs, tiny_models.dynamictrl, tmp_path / "out.mp4")
    for flag, value in change.items():
        args[args.index(flag) + 1] = value.format(dir=inputs)
    code = main(args)
    err = capsys.readouterr().err.strip().splitlines()
    assert code != 0
    assert len(err) == 1 and err[0].startswith("error: "), err
    import re

    assert re.search(message, err[0]), err[0]
    assert not (tmp_path / "out.mp4").exists()


def test_missing_weights_offline_in_a_real_process(inputs, tmp_path):
    proc = run_cli(
        *_animate_args(inputs, Path("dynamictrl"), tmp_path / "out.mp4"),
        env={"HF_HOME": str(tmp_path / "hf"), "HF_HUB_CACHE": str(tmp_path / "hf" / "hub")},
    )
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert lines[-1].startswith("error: ") and "dynamictrl download dynamictrl" in lines[-1]
    assert "Traceback" not in proc.stderr


def test_help_reads_well():
    top = run_cli("--help")
    assert top.returncode == 0 and "animate" in top.stdout and "download" in top.stdout
    sub = run_cli("animate", "--help")
    assert sub.returncode == 0
    for flag in ("--image", "--pose-video", "--driving-video", "--frames", "--offload", "--side-by-side"):
        assert flag in sub.stdout


def test_driving_video_runs_the_pose_stage_once_and_reuses_it(tiny_models, media_dir, tmp_path, capsys, monkeypatch):
    """--driving-video: extract, align, render, generate; the second run takes the poses from the cache."""
    import shutil

    monkeypatch.setenv("DYNAMICTRL_CACHE_DIR", str(tmp_path / "cache"))
    clip = tmp_path / "clip.mp4"
    frames, fps = read_video(media_dir / "motion1.mp4", max_frames=12)
    write_video(clip, frames, fps)
    reference = tmp_path / "human2.jpg"
    shutil.copy(media_dir / "human2.jpg", reference)
    args = [
        "animate", "--image", str(reference), "--driving-video", str(clip),
        "--prompt", "a man in a suit walking on a runway", "--model", str(tiny_models.dynamictrl),
        "--frames", "9", "--height", "96", "--width", "64", "--steps", "1", "--pose-backend", "mediapipe",
    ]  # fmt: skip
    for run, out in enumerate((tmp_path / "first.mp4", tmp_path / "second.mp4")):
        assert main([*args, "--out", str(out)]) == 0, capsys.readouterr().err
        sidecar = json.loads(out.with_suffix(".json").read_text())
        assert sidecar["pose_stage"]["cache_hit"] is (run == 1)
        assert sidecar["pose_stage"]["backend"].startswith("mediapipe")
        pose = probe_video(out.with_name(f"{out.stem}_pose.mp4"))
        assert (pose.num_frames, pose.height, pose.width) == (9, 96, 64)
        assert out.with_name(f"{out.stem}_pose.json").is_file()
        assert probe_video(out).num_frames == 9


def test_masked_background_reference_is_written_and_used(tiny_models, media_dir, tmp_path):
    """--mask background: the reference's background is black in what the model is given (and in the side-by-side);
    --mask-image takes the user's mask the same way."""
    from dynamictrl.io.media import load_image

    pose = tmp_path / "pose.mp4"
    write_video(pose, np.zeros((9, 96, 64, 3), np.uint8) + 40, fps=8)
    args = [
        "animate", "--image", str(media_dir / "human2.jpg"), "--pose-video", str(pose), "--prompt",
        "a man in a suit on a green lawn", "--model", str(tiny_models.dynamictrl), "--frames", "9",
        "--height", "96", "--width", "64", "--steps", "1",
    ]  # fmt: skip
    out = tmp_path / "b.mp4"
    assert main([*args, "--out", str(out), "--mask", "background"]) == 0
    masked = load_image(tmp_path / "b_masked_reference.png")
    assert masked.shape == (96, 64, 3)
    assert masked[:, :4].max() < 30 and masked[40:70, 24:40].mean() > 30  # black sides, the person kept
    sidecar = json.loads(out.with_suffix(".json").read_text())
    assert sidecar["settings"]["mask"] == "background" and sidecar["outputs"]["masked_reference"]

    user_mask = np.zeros((96, 64, 3), np.uint8)
    user_mask[:, 32:] = 255
    save_image(tmp_path / "mask.png", user_mask)
    assert main([*args, "--out", str(tmp_path / "c.mp4"), "--mask-image", str(tmp_path / "mask.png")]) == 0
    masked = load_image(tmp_path / "c_masked_reference.png")
    assert masked[:, :30].max() == 0 and masked[:, 34:].max() > 0


def test_lora_changes_the_output_and_scale_zero_gives_the_base_model(inputs, tiny_models, tmp_path):
    from dynamictrl.testing import write_tiny_lora

    lora = write_tiny_lora(tmp_path / "lora", tiny_models.dynamictrl / "transformer")
    runs = {
        "base": [],
        "lora": ["--lora", str(lora)],
        "zero": ["--lora", str(lora), "--lora-scale", "0"],
    }
    videos = {}
    for name, extra in runs.items():
        out = tmp_path / f"{name}.mp4"
        assert main([*_animate_args(inputs, tiny_models.dynamictrl, out), *extra]) == 0
        videos[name] = read_video(out)[0].astype(int)
    assert np.abs(videos["lora"] - videos["base"]).mean() > 1.0
    assert np.array_equal(videos["zero"], videos["base"])
    sidecar = json.loads((tmp_path / "lora.json").read_text())
    assert (
        sidecar["model"]["lora"].endswith("pytorch_lora_weights.safetensors") and sidecar["model"]["lora_scale"] == 1
    )


def test_missing_lora_is_refused_before_loading(inputs, tiny_models, tmp_path, capsys):
    code = main([*_animate_args(inputs, tiny_models.dynamictrl, tmp_path / "o.mp4"), "--lora", str(tmp_path)])
    assert code == 1 and "no pytorch_lora_weights.safetensors there" in capsys.readouterr().err


def test_memory_preset_on_the_cpu_applies_what_it_can_and_records_it(inputs, tiny_models, tmp_path, caplog):
    """`--memory 12gb` on the CPU: float8 weight storage and tiling apply, the GPU-only parts are skipped with one
    line, and the sidecar holds the plan and the memory model's estimate."""
    out = tmp_path / "small.mp4"
    with caplog.at_level("INFO", logger="dynamictrl.pipelines.memory"):
        assert main(_animate_args(inputs, tiny_models.dynamictrl, out, "--memory", "12gb")) == 0
    lines = [
        r.getMessage()
        for r in caplog.records
        if "does not apply" in r.getMessage() or "do not apply" in r.getMessage()
    ]
    assert lines == ["--memory 12gb: free_text_encoder and group_offload need a CUDA GPU and do not apply on cpu"]
    plan = json.loads(out.with_suffix(".json").read_text())["runtime"]["memory"]
    assert plan["preset"] == plan["requested"] == "12gb"
    assert plan["applied"] == ["fp8_transformer", "vae_tiling"] and plan["skipped"] == [
        "free_text_encoder",
        "group_offload",
    ]
    assert plan["estimate"]["predicted_peak_gib"] > 0 and plan["estimate"]["peak_stage"] in ("encode", "decode")
    frames, _ = read_video(out)
    assert frames.shape == (9, H, W, 3) and frames.std() > 0


def test_compile_with_a_step_cache_gives_the_uncompiled_video(inputs, tiny_models, tmp_path, monkeypatch):
    """`--compile --speed fast`: the TaylorSeer hooks run inside the compiled blocks (the graph breaks at their
    decisions instead of failing); the video is the one `--speed fast` gives uncompiled, and the sidecar says it was
    compiled. `aot_eager` stands in for inductor's C++ build (test_acceleration.py says why)."""
    import torch

    from dynamictrl.pipelines import acceleration

    monkeypatch.setattr(acceleration, "COMPILE_BACKEND", "aot_eager")
    plain, compiled = tmp_path / "plain.mp4", tmp_path / "compiled.mp4"
    common = ("--speed", "fast", "--steps", "6", "--seed", "2", "--cpu-threads", "1")
    try:
        assert main(_animate_args(inputs, tiny_models.dynamictrl, plain, *common)) == 0
        assert main(_animate_args(inputs, tiny_models.dynamictrl, compiled, *common, "--compile")) == 0
    finally:
        torch._dynamo.reset()
    assert json.loads(compiled.with_suffix(".json").read_text())["settings"]["compile"] is True
    a, b = read_video(plain)[0].astype(int), read_video(compiled)[0].astype(int)
    assert a.std() > 0 and np.abs(a - b).max() <= 2
