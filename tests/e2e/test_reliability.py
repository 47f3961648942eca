"""Reliability as a user (or an adversary) meets it, through `python -m dynamictrl` in a real process.

Every bad case exits non-zero with one `error:` line and no traceback, leaves no file behind, leaves every input
byte-identical, and is found before any model is loaded: the model folder given here has valid configs but corrupt
weights, so reaching the weight loading would give a different error.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from dynamictrl.io.media import save_image, write_video

H, W = 64, 96


def run_cli(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "dynamictrl", *map(str, args)],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=600,
        cwd=cwd,
    )


def run_cli_together(*arg_lists: list) -> list[subprocess.CompletedProcess]:
    """`run_cli` of each argument list, all at once (each process mostly imports and encodes, so on 2 cores the pair
    takes little more than one)."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "dynamictrl", *map(str, args)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for args in arg_lists
    ]
    done = []
    for proc in procs:
        stdout, stderr = proc.communicate(timeout=600)
        done.append(subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr))
    return done


def assert_one_line_error(proc: subprocess.CompletedProcess, *fragments: str) -> str:
    assert proc.returncode != 0, proc.stdout
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in folder.rglob("*")
        if p.is_file()
    }


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("inputs")
    rng = np.random.default_rng(0)
    save_image(folder / "person.png", rng.integers(0, 256, (H * 2, W * 2, 3), dtype=np.uint8))
    frames = np.zeros((13, H, W, 3), dtype=np.uint8)
    for i, frame in enumerate(frames):
        frame[10:50, 5 + 5 * i : 15 + 5 * i] = (255, 0, 0)
    write_video(folder / "pose.mp4", frames, fps=8)
    (folder / "a_file.jpg").write_bytes(b"not a folder")
    (folder / "existing_dir.mp4").mkdir()
    return folder


@pytest.fixture(scope="module")
def poisoned_model(tiny_models, tmp_path_factory) -> Path:
    """The tiny model with random bytes for transformer weights: loading it fails, its configs read fine."""
    folder = tmp_path_factory.mktemp("poisoned") / "model"
    shutil.copytree(tiny_models.dynamictrl, folder)
    (folder / "transformer" / "diffusion_pytorch_model.safetensors").write_bytes(os.urandom(4096))
    return folder


def animate_args(inputs: Path, model: Path, out: Path | str, *extra: str) -> list[str]:
    return [
        "animate", "--image", inputs / "person.png", "--pose-video", inputs / "pose.mp4",
        "--prompt", "a woman dancing", "--model", model, "--frames", "9", "--height", H, "--width", W,
        "--steps", "2", "--out", out, *extra,
    ]  # fmt: skip


def with_flags(args: list, *pairs: str) -> list:
    """`args` with each `flag value` pair of `pairs` replaced (or appended when absent)."""
    args = list(args)
    for flag, value in zip(pairs[::2], pairs[1::2], strict=True):
        if flag in args:
            args[args.index(flag) + 1] = value
        else:
            args += [flag, value]
    return args


# --------------------------------------------------------------------------- 1. outputs checked before the work
OUTPUT_CASES = [
    ("out is an existing folder", lambda d, t: d / "existing_dir.mp4", "is a folder"),
    ("out under a file", lambda d, t: d / "a_file.jpg" / "o.mp4", "is a file"),
    ("out is the pose video", lambda d, t: d / "pose.mp4", "would overwrite it"),
]


@pytest.mark.parametrize("name, out, message", OUTPUT_CASES, ids=[c[0] for c in OUTPUT_CASES])
def test_animate_checks_outputs_before_loading_the_model(inputs, poisoned_model, tmp_path, name, out, message):
    before = digest(inputs)
    proc = run_cli(*animate_args(inputs, poisoned_model, out(inputs, tmp_path)))
    assert_one_line_error(proc, message)
    assert digest(inputs) == before


def test_animate_refuses_a_read_only_folder_before_any_work(inputs, poisoned_model, tmp_path):
    if shutil.which("unshare") is None or subprocess.run(["unshare", "-m", "true"], capture_output=True).returncode:
        pytest.skip("no mount namespaces here; the read-only probe is unit-tested in tests/unit/io/test_outputs.py")
    folder = tmp_path / "ro"
    folder.mkdir()
    args = " ".join(f"'{a}'" for a in animate_args(inputs, poisoned_model, folder / "o.mp4"))
    script = (
        f"mount --bind {folder} {folder} && mount -o remount,ro,bind {folder} && {sys.executable} -m dynamictrl {args}"
    )
    proc = subprocess.run(
        ["unshare", "-m", "sh", "-c", script],
        capture_output=True,
        text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    assert_one_line_error(proc, "read-only file system")
    assert not list(folder.iterdir())


def test_corrupt_weights_are_named_in_one_line(inputs, poisoned_model, tmp_path):
    proc = run_cli(*animate_args(inputs, poisoned_model, tmp_path / "o.mp4"))
    line = assert_one_line_error(proc, "diffusion_pytorch_model.safetensors", "corrupt or incomplete", "intact copy")
    assert "SafetensorError" not in line.split("(")[0]
    assert not list(tmp_path.iterdir())


def test_pose_outputs_must_not_collide(inputs, media_dir, tmp_path):
    same = run_cli("pose", "--driving-video", media_dir / "motion1.mp4", "--image", inputs / "person.png",
                   "--out", tmp_path / "p.mp4", "--keypoints", tmp_path / "p.mp4")  # fmt: skip
    assert_one_line_error(same, "--keypoints must end in .json")  # the published failure: the video was lost
    wrong_suffix = run_cli("pose", "--driving-video", media_dir / "motion1.mp4", "--image", inputs / "person.png",
                           "--out", tmp_path / "p.json")  # fmt: skip
    assert_one_line_error(wrong_suffix, "--out must end in .mp4")
    assert not list(tmp_path.iterdir())


# ------------------------------------------------------------------------------- 3. every number checked up front
NUMBER_CASES = [
    (["--guidance", "nan"], "--guidance must be a finite number"),
    (["--fps", "nan"], "--fps must be a finite number"),
    (["--steps", "4000"], "exceeds the scheduler's 1000 training timesteps"),
    (["--height", "8192"], "exceeds the model's maximum of 512 px"),
    (["--frames", "abc"], "--frames must be an integer"),
]


@pytest.mark.parametrize("extra, message", NUMBER_CASES, ids=[" ".join(c[0]) for c in NUMBER_CASES])
def test_numbers_are_checked_before_the_model_loads(inputs, poisoned_model, tmp_path, extra, message):
    args = with_flags(animate_args(inputs, poisoned_model, tmp_path / "o.mp4"), *extra)
    assert_one_line_error(run_cli(*args), message)
    assert not list(tmp_path.iterdir())


def test_pose_checks_its_sizes_like_animate(inputs, media_dir, tmp_path):
    proc = run_cli("pose", "--driving-video", media_dir / "motion1.mp4", "--image", inputs / "person.png",
                   "--out", tmp_path / "p.mp4", "--height", "17")  # fmt: skip
    assert_one_line_error(proc, "--height must be a positive multiple of 16")


# ------------------------------------------------------------------------------------------- 7. fast validation
def test_a_typo_is_refused_before_torch_is_imported(inputs, tmp_path):
    code = (
        "import sys\nfrom dynamictrl.cli import main\n"
        f"rc = main({[str(a) for a in animate_args(inputs, tmp_path, tmp_path / 'o.mp4', '--seed', '-3')]!r})\n"
        "print(rc, 'torch' in sys.modules, 'diffusers' in sys.modules)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.stdout.split() == ["1", "False", "False"], proc.stdout + proc.stderr
    assert "--seed must be >= 0" in proc.stderr


# ------------------------------------------------------------------------------------------------ 5. interrupts
def test_sigterm_is_handled_like_ctrl_c_and_leaves_nothing(inputs, tiny_models, tmp_path):
    out = tmp_path / "out" / "o.mp4"
    args = animate_args(inputs, tiny_models.dynamictrl, out, "--steps", "400", "--side-by-side")
    proc = subprocess.Popen(
        [sys.executable, "-m", "dynamictrl", *map(str, args)],
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    deadline = time.monotonic() + 300
    lines = []
    for line in proc.stderr:  # INFO logs: the job has passed its checks and is loading the model
        lines.append(line)
        if "Loading DynamiCtrl transformer" in line or time.monotonic() > deadline:
            break
    time.sleep(2.0)
    proc.send_signal(signal.SIGTERM)
    rest = proc.stderr.read()
    assert proc.wait(timeout=120) == 143, "".join(lines) + rest
    assert "terminated" in rest and "Traceback" not in rest
    assert not out.parent.exists() or not any(out.parent.iterdir()), list(out.parent.iterdir())


# ----------------------------------------------------------------------------------------------- 10. small ones
def test_photo_like_pose_video_gets_a_warning(inputs, tiny_models, media_dir, tmp_path):
    from dynamictrl.io.media import read_video

    frames, _ = read_video(media_dir / "motion1.mp4", max_frames=9)
    clip = tmp_path / "not_a_pose.mp4"
    write_video(clip, frames, 8)
    out = tmp_path / "o.mp4"
    args = with_flags(animate_args(inputs, tiny_models.dynamictrl, out), "--pose-video", clip, "--steps", "1",
                      "--height", "96", "--width", "64")  # fmt: skip
    proc = run_cli(*args)
    assert proc.returncode == 0, proc.stderr
    warnings = json.loads(out.with_suffix(".json").read_text())["pose_warnings"]
    assert any("--driving-video" in w for w in warnings), warnings
    assert proc.stderr.count(warnings[0][:60]) == 1, "the warning is printed once"


def test_download_messages_are_direct(tmp_path):
    unknown = run_cli("download", "not-a-model")
    assert_one_line_error(unknown, "unknown model 'not-a-model'")
    offline = run_cli("download", "dynamictrl-mask-b01")
    line = assert_one_line_error(offline, "HF_HUB_OFFLINE", "dynamictrl download dynamictrl-mask-b01")
    assert "--model" not in line


def test_model_list_has_no_pose_networks(inputs, tmp_path):
    helptext = run_cli("animate", "--help").stdout
    options = helptext[helptext.index("generation:") :]
    model_help = options[options.index("--model") : options.index("--base")]
    assert "dynamictrl-mask-b01" in model_help and "dwpose" not in model_help.lower()
    proc = run_cli(*animate_args(inputs, Path("dwpose"), tmp_path / "o.mp4"))
    assert_one_line_error(proc, "'dwpose' is not an animation model")


def test_failed_demo_leaves_no_output_folder(tmp_path):
    """The demo writes its inputs (reference, pose, ground truth) and then animates: a model that fails to resolve
    after the inputs were written leaves no --out-dir behind."""
    out = tmp_path / "demo"
    (tmp_path / "not-a-model").mkdir()
    proc = run_cli("demo", "--out-dir", out, "--model", tmp_path / "not-a-model", "--frames", "9")
    assert_one_line_error(proc, "no transformer found")
    assert not out.exists()


# ------------------------------------------------------------------------------------- 8. same seed, same video
def test_two_processes_with_the_same_arguments_write_the_same_bytes(inputs, tiny_models, tmp_path):
    """Two processes at once (one CPU thread each, so they do not share a core's threads) write identical bytes."""
    outs = [tmp_path / run / "o.mp4" for run in ("a", "b")]
    args = [animate_args(inputs, tiny_models.dynamictrl, out, "--side-by-side", "--seed", "5", "--cpu-threads", "1")
            for out in outs]  # fmt: skip
    videos = []
    for proc, out in zip(run_cli_together(*args), outs, strict=True):
        assert proc.returncode == 0, proc.stderr
        videos.append((out.read_bytes(), out.with_name("o_side_by_side.mp4").read_bytes()))
        assert json.loads(out.with_suffix(".json").read_text())["runtime"]["cpu_threads"] == 1
    assert videos[0] == videos[1]


# -------------------------------------------------------------------------------------- 9. phone videos upright
def test_a_phone_clip_stored_sideways_gives_the_same_poses_as_upright(inputs, media_dir, tmp_path):
    """A portrait clip stored as landscape pixels plus a display matrix (as phones do) is read upright."""
    import av

    from dynamictrl.io.media import read_video

    frames, fps = read_video(media_dir / "motion1.mp4", max_frames=8)
    frames = frames[:, ::4, ::4]  # 270x480 portrait, to stay fast
    upright = tmp_path / "upright.mp4"
    write_video(upright, frames, fps)
    sideways = tmp_path / "phone.mp4"
    stored = np.ascontiguousarray(np.rot90(frames, k=1, axes=(1, 2)))  # pixels turned 90° counter-clockwise
    with av.open(str(sideways), "w") as container:
        stream = container.add_stream("libx264", rate=int(round(fps)))
        stream.width, stream.height, stream.pix_fmt = stored.shape[2], stored.shape[1], "yuv420p"
        stream.set_display_matrix([0, 65536, 0, -65536, 0, 0, 0, 0, 1 << 30])  # "-90": what an upright iPhone writes
        for frame in stored:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    assert np.abs(read_video(sideways)[0].astype(int) - read_video(upright)[0].astype(int)).mean() < 3

    args = [["pose", "--driving-video", clip, "--image", media_dir / "human1.jpg",
             "--out", tmp_path / f"{clip.stem}_pose.mp4", "--height", "192", "--width", "112",
             "--pose-backend", "mediapipe-body", "--pose-cache-dir", tmp_path / f"cache_{clip.stem}"]
            for clip in (upright, sideways)]  # fmt: skip
    results = []
    for proc, clip in zip(run_cli_together(*args), (upright, sideways), strict=True):
        assert proc.returncode == 0, proc.stderr
        assert "upside down" not in proc.stderr
        results.append(json.loads((tmp_path / f"{clip.stem}_pose.json").read_text()))
    assert len(results[0]["frames"]) == len(results[1]["frames"]) == 9
