"""`dynamictrl pose` as a user runs it: outputs on the fixture media, the cache, and one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from fractions import Fraction

import av
import numpy as np
import pytest

from dynamictrl.cli import main
from dynamictrl.io.media import load_image, probe_video, save_image


def _env(tmp_path):
    env = dict(os.environ)
    env.update(
        HF_HUB_OFFLINE="1",
        HF_HOME=str(tmp_path / "hf"),  # an empty hub cache: no DWPose weights anywhere
        DYNAMICTRL_CACHE_DIR=str(tmp_path / "cache"),
        TQDM_DISABLE="1",
    )
    env.pop(("DYNAMICTRL_DWPOSE_DIR"), None)
    return env


def _run(args, tmp_path):
    return subprocess.run(
        [sys.executable, "-m", "dynamictrl", "pose", *map(str, args)],
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_pose_writes_video_keypoints_and_reference_then_reuses_the_cache(media_dir, tmp_path):
    out = tmp_path / "out" / "pose.mp4"
    args = [
        "--driving-video", media_dir / "motion1.mp4",
        "--reference-image", media_dir / "human2.jpg",
        "--out", out,
        "--num-frames", 9,
        "--height", 320,
        "--width", 192,
        "--reference-out", tmp_path / "out" / "reference.png",
    ]  # fmt: skip
    result = _run(args, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Pose backend: mediapipe" in result.stderr  # the automatic choice is logged
    assert "Traceback" not in result.stderr and "W0000" not in result.stderr
    assert "9 pose frames, 192x320 at 30 fps, backend mediapipe, pose check: ok" in result.stdout

    info = probe_video(out)
    assert (info.num_frames, info.width, info.height) == (9, 192, 320)
    doc = json.loads((tmp_path / "out" / "pose.json").read_text())
    assert len(doc["frames"]) == 9 and doc["meta"]["backend"] == "mediapipe"
    assert doc["meta"]["source_indices"] == [None, 0, 1, 2, 3, 4, 5, 6, 7]
    assert all(len(f["people"]) == 1 for f in doc["frames"])
    assert load_image(tmp_path / "out" / "reference.png").shape == (320, 192, 3)
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.startswith(".")]  # no partial files left

    again = _run(args, tmp_path)
    assert again.returncode == 0 and "from cache" in again.stdout

    # --model: drawn as that model's folder says it was trained (thicker sticks), from the cached keypoints.
    model = tmp_path / "small-model"
    (model / "transformer").mkdir(parents=True)
    (model / "transformer" / "config.json").write_text("{}")
    style = {"canvas_short_side": 192, "stick_width": 6, "body_point_radius": 5}
    (model / "transformer" / "dynamictrl.json").write_text(json.dumps({"pose_render": style}))
    thick_out = tmp_path / "thick" / "pose.mp4"
    thick = _run([*args[:4], "--out", thick_out, *args[6:12], "--model", model], tmp_path)
    assert thick.returncode == 0 and "from cache" in thick.stdout, thick.stderr
    meta = json.loads(thick_out.with_suffix(".json").read_text())["meta"]
    assert meta["pose_render"]["stick_width"] == 6 and doc["meta"]["pose_render"]["stick_width"] == 4
    from dynamictrl.io.media import read_video

    drawn = [(read_video(p)[0].max(axis=-1) > 40).mean() for p in (out, thick_out)]
    assert drawn[1] > 3 * drawn[0], drawn  # same keypoints, much thicker skeleton


def test_image_without_a_person_is_a_one_line_error(media_dir, tmp_path):
    blank = save_image(tmp_path / "blank.png", np.full((640, 480, 3), 200, dtype=np.uint8))
    result = _run(
        ["--driving-video", media_dir / "motion1.mp4", "--reference-image", blank, "--out", tmp_path / "p.mp4"],
        tmp_path,
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith("error: No person found in the reference image")
    assert "Traceback" not in result.stderr and not (tmp_path / "p.mp4").exists()


def test_missing_dwpose_weights_offline_is_a_one_line_error(media_dir, tmp_path):
    result = _run(
        [
            "--driving-video",
            media_dir / "motion1.mp4",
            "--reference-image",
            media_dir / "human1.jpg",
            "--out",
            tmp_path / "p.mp4",
            "--backend",
            "dwpose",
        ],  # fmt: skip
        tmp_path,
    )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: DWPose weights are not on disk")
    assert "--backend mediapipe" in lines[0]


def _empty_video(path):
    with av.open(str(path), "w", format="avi") as container:
        stream = container.add_stream("mpeg4", rate=Fraction(10))
        stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
        container.start_encoding()
    return path


@pytest.mark.parametrize(
    ("case", "extra", "message"),
    [
        ("corrupt", [], "not a readable video"),
        ("empty", [], "contains no video frames"),
        ("text", [], "not a readable video"),
        ("motion", ["--backend", "openpose"], "--pose-backend must be one of auto, dwpose, mediapipe.*got 'openpose'"),
        ("motion", ["--num-frames", "200"], "gives 83 frames .* but 199 are needed"),
        ("motion", ["--people", "crowd"], "--people must be one of all, main, got 'crowd'"),
        ("motion", ["--stride", "0"], "--stride must be >= 1, got 0"),
    ],
)
def test_bad_input_is_a_one_line_error_and_exit_1(media_dir, tmp_path, capsys, case, extra, message):
    videos = {"motion": media_dir / "motion1.mp4", "corrupt": tmp_path / "c.mp4", "text": tmp_path / "t.mp4"}
    (tmp_path / "c.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(2000))
    (tmp_path / "t.mp4").write_text("hello")
    videos["empty"] = _empty_video(tmp_path / "e.avi")
    code = main(
        [
            "pose",
            "--driving-video",
            str(videos[case]),
            "--reference-image",
            str(media_dir / "human1.jpg"),
            "--out",
            str(tmp_path / "p.mp4"),
            "--cache-dir",
            str(tmp_path / "cache"),
            *extra,
        ]  # fmt: skip
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1
    assert len(err) == 1 and err[0].startswith("error: ")
    import re

    assert re.search(message, err[0]), err[0]
    assert not (tmp_path / "p.mp4").exists()
