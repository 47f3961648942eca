"""Protocols, pairing/alignment, discovery, and `evaluate()` with every metric group that has weights here."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch
from torch import nn

from dynamictrl.errors import InputError
from dynamictrl.evaluation.evaluator import (
    EvaluationConfig,
    align_pair,
    cover_crop_to,
    discover_videos,
    evaluate,
    read_frames,
)
from dynamictrl.evaluation.protocols import PROTOCOLS, get_protocol
from dynamictrl.evaluation.report import write_report
from dynamictrl.io.media import read_video, save_image, write_video

DISCO, DYNAMICTRL = PROTOCOLS["disco"], PROTOCOLS["dynamictrl"]


def _video(frames: int, height: int = 24, width: int = 16, value: int = 0) -> np.ndarray:
    out = np.full((frames, height, width, 3), value, np.uint8)
    out[:, :, :, 0] = np.arange(frames, dtype=np.uint8)[:, None, None]  # frame index in the red channel
    return out


def test_get_protocol_lists_the_valid_names():
    assert get_protocol("disco") is DISCO
    with pytest.raises(InputError, match="disco, dynamictrl"):
        get_protocol("tiktok")
    assert json.dumps(DYNAMICTRL.to_dict())  # the protocol is saved in metrics.json


def test_disco_pairs_frames_one_to_one_and_resizes_generated_to_reference():
    generated, reference = _video(5, 12, 8), _video(5, 24, 16)
    gen, ref, notes = align_pair(generated, reference, DISCO, 5)
    assert gen.shape == ref.shape == (5, 24, 16, 3) and np.array_equal(ref, reference)  # reference untouched
    assert any("different sizes" in n for n in notes)
    with pytest.raises(InputError, match="different frame counts: 5 generated .* vs 7 reference"):
        align_pair(generated, _video(6), DISCO, 7)


def test_dynamictrl_drops_the_reference_pose_frame_and_uses_leading_reference_frames():
    generated, reference = _video(5), _video(9)
    gen, ref, notes = align_pair(generated, reference[:5], DYNAMICTRL, 9)
    # Generated frame k + 1 pairs with driving frame k.
    assert gen[:, 0, 0, 0].tolist() == [1, 2, 3, 4] and ref[:, 0, 0, 0].tolist() == [0, 1, 2, 3]
    assert notes == ["reference has 9 frames; its first 4 are used"]
    with pytest.raises(InputError, match="fewer than the 4 generated"):
        align_pair(generated, reference[:3], DYNAMICTRL, 3)
    with pytest.raises(InputError, match="drops the first 1"):
        align_pair(generated[:1], reference, DYNAMICTRL, 9)


def test_cover_crop_keeps_the_centre_like_the_published_preprocessing():
    frame = np.zeros((1, 40, 40, 3), np.uint8)
    frame[:, :, 15:25] = 255  # a centred vertical bar
    out = cover_crop_to(frame, 40, 20)  # portrait target: scale 1, crop 10 px on each side
    assert out.shape == (1, 40, 20, 3)
    assert out[0, 20, 5:15].min() == 255 and out[0, 20, :4].max() == 0


def test_discovery_matches_videos_and_frame_folders(tmp_path):
    write_video(tmp_path / "clip_a.mp4", _video(3, 32, 32), 8)
    (tmp_path / "clip_b").mkdir()
    for i in range(3):
        save_image(tmp_path / "clip_b" / f"{i}.png", _video(3, 32, 32)[i])
    (tmp_path / "notes.txt").write_text("not a video")
    found = discover_videos(tmp_path)
    assert list(found) == ["clip_a", "clip_b"]
    assert read_frames(found["clip_b"]).shape == (3, 32, 32, 3)
    assert read_frames(found["clip_a"], max_frames=2).shape == (2, 32, 32, 3)


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
    (root / "ref").mkdir()
    for name, part in (("a", frames[:18]), ("b", frames[18:])):
        write_video(root / "ref" / f"{name}.mp4", part, 16)
    generated = {name: read_frames(root / "ref" / f"{name}.mp4") for name in ("a", "b")}
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
            reference_dir=root / "ref",
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
    (tmp_path / "ref").mkdir()
    with pytest.raises(InputError, match="--generated folder not found"):
        EvaluationConfig(tmp_path / "missing", tmp_path / "ref", DISCO)
    with pytest.raises(InputError, match="Unknown metric group"):
        EvaluationConfig(tmp_path / "gen", tmp_path / "ref", DISCO, metrics=("psnr",))
    with pytest.raises(InputError, match="No videos"):
        evaluate(EvaluationConfig(tmp_path / "gen", tmp_path / "ref", DISCO, progress=False))
    write_video(tmp_path / "gen" / "x.mp4", _video(3, 32, 32), 8)
    write_video(tmp_path / "ref" / "y.mp4", _video(3, 32, 32), 8)
    with pytest.raises(InputError, match="same name"):
        evaluate(EvaluationConfig(tmp_path / "gen", tmp_path / "ref", DISCO, progress=False))


def test_evaluate_pose_fidelity_against_the_pose_stage_keypoints(tmp_path, media_dir):
    """`--poses`: the keypoints `dynamictrl animate` wrote next to its video are the driving poses."""
    import cv2

    from dynamictrl.pose.extract import get_extractor
    from dynamictrl.pose.types import save_keypoints_json

    frames, _ = read_video(media_dir / "motion1.mp4", max_frames=6)
    frames = np.stack([cv2.resize(f, (180, 320), interpolation=cv2.INTER_AREA) for f in frames])
    for i, frame in enumerate(frames):
        save_image(tmp_path / "gen" / "clip" / f"{i}.png", frame)
        save_image(tmp_path / "ref" / "clip" / f"{i}.png", frame)
    extractor = get_extractor("mediapipe-body")
    poses = list(extractor.extract_sequence(iter(frames)))
    extractor.close()
    (tmp_path / "poses").mkdir()
    save_keypoints_json(tmp_path / "poses" / "clip_pose.json", poses)
    (tmp_path / "poses" / "clip.json").write_text('{"settings": "the animate sidecar, not keypoints"}')
    config = EvaluationConfig(
        generated_dir=tmp_path / "gen",
        reference_dir=tmp_path / "ref",
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
