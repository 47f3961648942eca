"""`python -m dynamictrl evaluate` on small folders made from the fixture dance video.

The folders hold a good pair, a degraded pair, a pair of different sizes, and four broken cases (frame counts that
differ, an unreadable video, a generated video with no ground truth, a ground truth with no generated video). The
run must report each broken case per file, compute everything else, and write metrics.json and the HTML report. No
real LPIPS/FVD/FID-VID weights exist here, so those must be listed as unavailable with the file to get.

Arguments that cannot work (a file where a folder is expected, a report folder that cannot be written or that is an
input folder) must fail before anything is computed: exit 1, one line on stderr, no traceback, nothing written.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

from dynamictrl.io.media import read_video, save_image, write_video

ROOT = Path(__file__).resolve().parents[2]


def _run(*args: str, home: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, TORCH_HOME=str(home), TQDM_DISABLE="1", HF_HUB_OFFLINE="1")
    env.pop("DYNAMICTRL_METRIC_WEIGHTS", None)
    return subprocess.run(
        [sys.executable, "-m", "dynamictrl", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
    )


@pytest.fixture(scope="module")
def dance(media_dir) -> np.ndarray:
    import cv2

    frames, _ = read_video(media_dir / "motion1.mp4", max_frames=16)
    return np.stack([cv2.resize(f, (144, 256), interpolation=cv2.INTER_AREA) for f in frames])


@pytest.fixture(scope="module")
def folders(tmp_path_factory, dance):
    import cv2

    root = tmp_path_factory.mktemp("cli_eval")
    gen, ref = root / "generated", root / "ground_truth"
    good, other = dance[:8], dance[8:]
    write_video(ref / "good.mp4", good, 16)
    write_video(gen / "good.mp4", good, 16)
    write_video(ref / "blurry.mp4", other, 16)
    write_video(gen / "blurry.mp4", np.stack([cv2.GaussianBlur(f, (0, 0), 3.0) for f in other]), 16)
    write_video(ref / "resized.mp4", good, 16)
    write_video(gen / "resized.mp4", np.stack([cv2.resize(f, (72, 128)) for f in good]), 16)
    write_video(ref / "short.mp4", good, 16)
    write_video(gen / "short.mp4", good[:5], 16)
    write_video(ref / "broken.mp4", good, 16)
    (gen / "broken.mp4").write_bytes(b"this is not a video")
    write_video(gen / "orphan.mp4", good, 16)
    write_video(ref / "lonely.mp4", good, 16)
    return root


def test_evaluate_writes_metrics_and_report_and_reports_bad_files(folders, tmp_path):
    out = tmp_path / "report"
    proc = _run(
        "evaluate",
        "--generated", str(folders / "generated"),
        "--ground-truth", str(folders / "ground_truth"),
        "--protocol", "disco",
        "--pose-backend", "mediapipe-body",
        "--out", str(out),
        home=tmp_path / "torch_home",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    data = json.loads((out / "metrics.json").read_text())
    videos = data["videos"]
    assert {n for n, v in videos.items() if v["status"] == "ok"} == {"good", "blurry", "resized"}
    messages = {p["video"]: p["message"] for p in data["problems"] if p["severity"] == "error"}
    assert "different frame counts: 5 generated" in messages["short"]
    assert "not a readable video" in messages["broken"]
    assert messages["orphan"] == "no reference video of this name"
    assert messages["lonely"] == "no generated video of this name"
    assert any("different sizes" in m for m in videos["resized"]["problems"])

    good, blurry = videos["good"]["metrics"], videos["blurry"]["metrics"]
    assert good["psnr"] == 100.0 and good["ssim"] == pytest.approx(1.0) and good["l1"] == 0.0
    assert blurry["psnr"] < 40 and blurry["ssim"] < 0.95 and blurry["psnr_disco_legacy"] > blurry["psnr"]
    aggregate = data["aggregate"]
    assert aggregate["videos_evaluated"] == 3 and aggregate["frames_evaluated"] == 24
    assert aggregate["fid"] > 0 and aggregate["fid_samples"] == 24
    # 24 frames are far fewer than the 2048 FID needs: the number is kept but marked.
    assert aggregate["fid_reliable"] is False and "fewer than 2048" in aggregate["fid_note"]
    # Pose fidelity with the pose stage: the good copy follows its driving pose exactly, the blurred one less.
    assert good["pose"]["pck@0.05"] == 1.0 and good["pose"]["pose_distance"] == pytest.approx(0.0, abs=1e-9)
    assert 0 < aggregate["pose"]["pck@0.1"] <= 1.0
    assert aggregate["temporal"]["warp_error"] is not None

    unavailable = data["unavailable"]
    assert "vgg16-397923af.pth" in unavailable["lpips_vgg"] and "alexnet-owt-7be5be79.pth" in unavailable["lpips_alex"]
    assert "i3d_pretrained_400.pt" in unavailable["fvd"] and "resnet-50-kinetics.pth" in unavailable["fid_vid"]
    assert data["protocol"]["name"] == "disco" and data["versions"]["torch"]
    assert data["weights"]["inception_fid"]["matches_published_sha1"] is True

    html = (out / "report.html").read_text()
    assert "figures/per_video.png" in html and "different frame counts" in html and "vgg16-397923af.pth" in html
    assert "(unreliable" in html and "<div class='scroll'>" in html
    assert (out / "figures" / "per_video.png").stat().st_size > 5000
    assert len(list((out / "figures").glob("worst_*.png"))) == 3
    assert "wrote" in proc.stdout and "file problem(s)" in proc.stdout


def test_dynamictrl_protocol_pairs_after_the_reference_frame(folders, dance, tmp_path):
    """Also the old spelling `--reference` of `--ground-truth`."""
    gen, ref = tmp_path / "g", tmp_path / "r"
    # Frame folders (lossless PNG), so a correct pairing gives identical frames.
    for i, frame in enumerate(dance):  # the whole driving video
        save_image(ref / "clip" / f"{i}.png", frame)
    for i, frame in enumerate(np.concatenate([dance[:1], dance[:5]])):  # reference-pose frame + 5 frames
        save_image(gen / "clip" / f"{i}.png", frame)
    out = tmp_path / "out"
    proc = _run(
        "evaluate", "--generated", str(gen), "--reference", str(ref), "--out", str(out), "--metrics", "frame",
        home=tmp_path / "torch_home",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    data = json.loads((out / "metrics.json").read_text())
    clip = data["videos"]["clip"]
    assert clip["frames"] == 5 and clip["metrics"]["psnr"] == 100.0
    assert clip["problems"] == ["reference has 16 frames; its first 5 are used"]


@pytest.mark.parametrize(
    "case, expected",
    [
        ("missing", "--generated folder not found"),
        ("unmatched", "No generated video has a reference"),
        ("device", "--device must be auto, cpu, cuda or cuda:N, got 'tpu0'"),
    ],
)
def test_bad_input_is_one_line_and_exit_1(tmp_path, dance, case, expected):
    gen, ref = tmp_path / "g", tmp_path / "r"
    if case == "missing":
        ref.mkdir()
    else:
        write_video(gen / "x.mp4", dance[:2], 16)
        write_video(ref / ("y.mp4" if case == "unmatched" else "x.mp4"), dance[:2], 16)
    extra = ["--device", "tpu0"] if case == "device" else []
    proc = _run("evaluate", "--generated", str(gen), "--reference", str(ref), "--out", str(tmp_path / "o"), *extra,
                home=tmp_path / "torch_home")  # fmt: skip
    assert proc.returncode == 1
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and expected in lines[0]
    assert not (tmp_path / "o" / "metrics.json").exists()


def _assert_refused(proc: subprocess.CompletedProcess, *expected: str) -> None:
    assert proc.returncode == 1, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), proc.stderr
    assert "Traceback" not in proc.stderr
    for text in expected:
        assert text in lines[0], lines[0]


@pytest.fixture
def pair(tmp_path, dance) -> tuple[Path, Path]:
    gen, gt = tmp_path / "g", tmp_path / "gt"
    write_video(gen / "x.mp4", dance[:2], 16)
    write_video(gt / "x.mp4", dance[:2], 16)
    return gen, gt


def _listing(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


@pytest.mark.parametrize("flag", ["--generated", "--ground-truth"])
def test_a_video_file_where_a_folder_is_expected(tmp_path, pair, flag):
    gen, gt = pair
    given = {"--generated": gen, "--ground-truth": gt}
    given[flag] = given[flag] / "x.mp4"
    before = _listing(tmp_path)
    out = tmp_path / "o"
    proc = _run("evaluate", "--generated", str(given["--generated"]), "--ground-truth", str(given["--ground-truth"]),
                "--out", str(out), home=tmp_path / "torch_home")  # fmt: skip
    _assert_refused(proc, f"{flag} {given[flag]} is a file", "give the folder")
    assert _listing(tmp_path) == before


@pytest.mark.parametrize("case", ["file", "generated", "inside_ground_truth", "under_a_file"])
def test_a_report_folder_that_cannot_be_one_is_refused_before_any_work(tmp_path, pair, case):
    gen, gt = pair
    (tmp_path / "notes.txt").write_text("keep me")
    out, expected = {
        "file": (tmp_path / "notes.txt", "is a file; give a folder"),
        "generated": (gen, "is the --generated folder"),
        "inside_ground_truth": (gt / "report", "is inside the --ground-truth folder"),
        "under_a_file": (tmp_path / "notes.txt" / "report", "is a file, not a folder"),
    }[case]
    before = _listing(tmp_path)
    proc = _run("evaluate", "--generated", str(gen), "--ground-truth", str(gt), "--out", str(out),
                home=tmp_path / "torch_home")  # fmt: skip
    _assert_refused(proc, f"--out {out}", expected)
    assert _listing(tmp_path) == before and (tmp_path / "notes.txt").read_text() == "keep me"


def _unwritable_folder(tmp_path: Path) -> Path:
    """A folder this process cannot create files in: a read-only folder, or (root ignores permission bits) /sys,
    which is read-only for root too, as a read-only bind mount is."""
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    for candidate in (locked, Path("/sys")):
        try:
            fd, probe = tempfile.mkstemp(dir=candidate)
        except OSError:
            return candidate
        os.close(fd)
        os.unlink(probe)
    pytest.skip("no unwritable folder on this machine")


def test_an_unwritable_report_location_is_refused_before_any_work(tmp_path, pair):
    gen, gt = pair
    parent = _unwritable_folder(tmp_path)
    out = parent / "dynamictrl-evaluate-test" / "report"
    try:
        proc = _run("evaluate", "--generated", str(gen), "--ground-truth", str(gt), "--out", str(out),
                    home=tmp_path / "torch_home")  # fmt: skip
        _assert_refused(proc, f"--out {out}", f"cannot write in {parent}", "choose a folder you can write to")
        assert not (parent / "dynamictrl-evaluate-test").exists()
        if parent != Path("/sys"):
            assert list(parent.iterdir()) == []
    finally:
        (tmp_path / "locked").chmod(0o755)
