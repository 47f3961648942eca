"""`evaluate()` with every metric group that has weights here, and the checks of `EvaluationConfig`."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch
from torch import nn

from dynamictrl.errors import InputError
from dynamictrl.evaluation.discovery import read_frames
from dynamictrl.evaluation.evaluator import EvaluationConfig, evaluate
from dynamictrl.evaluation.protocols import PROTOCOLS
from dynamictrl.evaluation.report import write_report
from dynamictrl.io.media import read_video, save_image, write_video

DISCO = PROTOCOLS["disco"]


def _video(frames: int, height: int = 24, width: int = 16, value: int = 0) -> np.ndarray:
    out = np.full((frames, height, width, 3), value, np.uint8)
    out[:, :, :, 0] = np.arange(frames, dtype=np.uint8)[:, None, None]  # frame index in the red channel
    return out


class _TinyI3D(nn.Module):
    """A small network with the StyleGAN-V TorchScript I3D call signature (stands in for the real weights)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv3d(3, 8, 3, stride=2)
        self.fc = nn.Linear(8, 400)

    def forward(self, x: torch.Tensor, rescale: bool = False, resize: bool = False, return_features: bool = False):
        return self.fc(torch.relu(self.conv(x)).mean(dim=(2, 3, 4)))


@pytest.fixture(scope="module")
def folders(tmp_path_factory, media_dir):
    """Ground truth from the fixture dance video; generated = exact copies except one blurred video."""
    import cv2

    root = tmp_path_factory.mktemp("eval")
    frames, _ = read_video(media_dir / "motion1.mp4", max_frames=36)
    frames = np.stack([cv2.resize(f, (72, 128), interpolation=cv2.INTER_AREA) for f in frames])
    (root / "gen").mkdir()
    (root / "gt").mkdir()
    for name, part in (("a", frames[:18]), ("b", frames[18:])):
        write_video(root / "gt" / f"{name}.mp4", part, 16)
    generated = {name: read_frames(root / "gt" / f"{name}.mp4") for name in ("a", "b")}
    weights = root / "weights"
    weights.mkdir()
    torch.manual_seed(0)
    torch.jit.save(torch.jit.script(_TinyI3D()), str(weights / "i3d_torchscript.pt"))
    return root, generated, weights


def test_evaluate_fvd_and_frame_metrics_end_to_end(folders, tmp_path, monkeypatch):
    import cv2

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "no_hub"))
    root, generated, weights = folders
    # The disco protocol's FVD uses the DisCo I3D (tested on its own); here the StyleGAN-V backend, whose weights
    # this test can build small, runs through the whole evaluation.
    protocol = dataclasses.replace(DISCO, fvd_backend="i3d_styleganv")
    same, blurred = tmp_path / "same", tmp_path / "blurred"
    for name, frames in generated.items():
        blurry = np.stack([cv2.GaussianBlur(f, (0, 0), 2.0) for f in frames]) if name == "b" else frames
        for folder, video in ((same, frames), (blurred, blurry)):
            for i, frame in enumerate(video):  # folders of frame images, as DisCo writes them
                save_image(folder / name / f"{i:04d}.png", frame)

    def run(folder, metrics):
        config = EvaluationConfig(
            generated_dir=folder,
            ground_truth_dir=root / "gt",
            protocol=protocol,
            weights_dir=weights,
            metrics=metrics,
            progress=False,
        )
        return evaluate(config)

    same_data = run(same, ("frame", "fvd", "lpips")).data
    blurred_result = run(blurred, ("frame", "fvd"))
    blurred_data = blurred_result.data
    assert same_data["aggregate"]["fvd"] == pytest.approx(0.0, abs=1e-9)
    assert same_data["aggregate"]["fvd_samples"] == 2 * 2  # 18 frames -> clip starts 0, 1 (DisCo skips the last)
    assert blurred_data["aggregate"]["fvd"] > 1e-3
    assert same_data["aggregate"]["ssim"] == pytest.approx(1.0)
    assert blurred_data["videos"]["b"]["metrics"]["ssim"] < 0.95 < blurred_data["videos"]["a"]["metrics"]["ssim"]
    # LPIPS weights are absent: said once, naming the file, and everything else was computed.
    assert "vgg16-397923af.pth" in same_data["unavailable"]["lpips_vgg"]
    assert same_data["weights"]["i3d_torchscript"]["file"].endswith("i3d_torchscript.pt")
    written = write_report(blurred_result, tmp_path / "report")
    html = written["report"].read_text()
    assert "figures/worst_0_b.png" in html
    assert (tmp_path / "report" / "figures" / "worst_0_b.png").stat().st_size > 1000
    assert json.loads(written["metrics"].read_text())["aggregate"]["fvd"] == pytest.approx(
        blurred_data["aggregate"]["fvd"]
    )


def test_evaluate_rejects_bad_arguments(tmp_path):
    (tmp_path / "gen").mkdir()
    (tmp_path / "gt").mkdir()
    with pytest.raises(InputError, match="--generated folder not found"):
        EvaluationConfig(tmp_path / "missing", tmp_path / "gt", DISCO)
    (tmp_path / "clip.mp4").write_bytes(b"")
    with pytest.raises(InputError, match=r"--ground-truth .*clip\.mp4 is a file; give the folder"):
        EvaluationConfig(tmp_path / "gen", tmp_path / "clip.mp4", DISCO)
    with pytest.raises(InputError, match="--device must be auto, cpu, cuda or cuda:N"):
        EvaluationConfig(tmp_path / "gen", tmp_path / "gt", DISCO, device="tpu0")
    assert EvaluationConfig(tmp_path / "gen", tmp_path / "gt", DISCO, device="cpu").device == "cpu"
    with pytest.raises(InputError, match="Unknown metric group"):
        EvaluationConfig(tmp_path / "gen", tmp_path / "gt", DISCO, metrics=("psnr",))
    with pytest.raises(InputError, match="No videos"):
        evaluate(EvaluationConfig(tmp_path / "gen", tmp_path / "gt", DISCO, progress=False))
    write_video(tmp_path / "gen" / "x.mp4", _video(3, 32, 32), 8)
    write_video(tmp_path / "gt" / "y.mp4", _video(3, 32, 32), 8)
    with pytest.raises(InputError, match="same name"):
        evaluate(EvaluationConfig(tmp_path / "gen", tmp_path / "gt", DISCO, progress=False))


def test_evaluate_pose_fidelity_against_the_pose_stage_keypoints(tmp_path, media_dir):
    """`--poses`: the keypoints `dynamictrl animate` wrote next to its video are the driving poses."""
    import cv2

    from dynamictrl.pose.extract import get_extractor
    from dynamictrl.pose.types import save_keypoints_json

    frames, _ = read_video(media_dir / "motion1.mp4", max_frames=6)
    frames = np.stack([cv2.resize(f, (180, 320), interpolation=cv2.INTER_AREA) for f in frames])
    for i, frame in enumerate(frames):
        save_image(tmp_path / "gen" / "clip" / f"{i}.png", frame)
        save_image(tmp_path / "gt" / "clip" / f"{i}.png", frame)
    extractor = get_extractor("mediapipe-body")
    poses = list(extractor.extract_sequence(iter(frames)))
    extractor.close()
    (tmp_path / "poses").mkdir()
    save_keypoints_json(tmp_path / "poses" / "clip_pose.json", poses)
    (tmp_path / "poses" / "clip.json").write_text('{"settings": "the animate sidecar, not keypoints"}')
    config = EvaluationConfig(
        generated_dir=tmp_path / "gen",
        ground_truth_dir=tmp_path / "gt",
        protocol=DISCO,
        poses_dir=tmp_path / "poses",
        metrics=("pose",),
        pose_backend="mediapipe-body",
        progress=False,
    )
    pose = evaluate(config).data["videos"]["clip"]["metrics"]["pose"]
    assert pose["driving_poses"].endswith("clip_pose.json")
    assert pose["pck@0.05"] == 1.0 and pose["frames_with_driving_person"] == 6
    # Shifting the driving keypoints moves every point: PCK at 5 % of the body size drops to 0.
    shifted = [fp.with_people([p.transformed((1.0, 1.0), (0.2, 0.0)) for p in fp.people]) for fp in poses]
    save_keypoints_json(tmp_path / "poses" / "clip_pose.json", shifted)
    assert evaluate(config).data["videos"]["clip"]["metrics"]["pose"]["pck@0.05"] == 0.0
