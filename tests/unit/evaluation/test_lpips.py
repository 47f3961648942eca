"""LPIPS end to end with weight files the tests build (torchvision ImageNet checkpoints and LPIPS v0.1 heads, in the
published formats, so the loading code is the one real weights go through), and the messages when they are absent.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from dynamictrl.errors import MetricUnavailableError
from dynamictrl.evaluation.lpips import LPIPS, load_lpips, lpips_per_frame
from dynamictrl.evaluation.networks import AlexNetFeatures, VGG16Features

pytestmark = pytest.mark.usefixtures("no_real_weights")


def _write_lpips_weights(folder, net: str, he_init) -> None:
    backbone = he_init(AlexNetFeatures() if net == "alex" else VGG16Features(), seed=1)
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
def test_lpips_zero_for_identical_and_grows_with_distortion(tmp_path, video, net, he_init, distort):
    _write_lpips_weights(tmp_path, net, he_init)
    model, used = load_lpips(net, tmp_path)
    assert set(used) == {"alexnet" if net == "alex" else "vgg16", f"lpips_{net}"}
    frames = video[:1]
    assert np.all(lpips_per_frame(model, frames, frames) == 0.0)
    mild = lpips_per_frame(model, distort(frames, 0.3), frames)
    strong = lpips_per_frame(model, distort(frames, 0.9), frames)
    assert np.all(mild > 0) and np.all(strong > mild)
    # DisCo's convention ([0, 1] read as [-1, 1]) is a different number for the same pair.
    disco = lpips_per_frame(model, distort(frames, 0.9), frames, convention="disco")
    assert not np.allclose(disco, strong)


def test_lpips_matches_the_published_formula(tmp_path, video, he_init, distort):
    """Recompute LPIPS step by step from the published definition with the same weights."""
    _write_lpips_weights(tmp_path, "alex", he_init)
    model, _ = load_lpips("alex", tmp_path)
    a = torch.from_numpy(video[:1]).permute(0, 3, 1, 2).float() / 127.5 - 1
    b = torch.from_numpy(distort(video[:1], 0.5)).permute(0, 3, 1, 2).float() / 127.5 - 1
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


def test_lpips_without_weights_says_which_file_and_where(tmp_path, he_init):
    with pytest.raises(MetricUnavailableError) as info:
        load_lpips("vgg", tmp_path)
    message = str(info.value)
    assert "vgg16-397923af.pth" in message and "download.pytorch.org" in message and "\n" not in message
    # Backbone present but no heads: the heads file is named.
    _write_lpips_weights(tmp_path, "vgg", he_init)
    (tmp_path / "lpips" / "vgg.pth").unlink()
    with pytest.raises(MetricUnavailableError, match="vgg.pth"):
        load_lpips("vgg", tmp_path)


def test_a_file_that_does_not_fit_is_reported_not_loaded(tmp_path):
    torch.save({"features.0.weight": torch.zeros(3, 3, 3, 3)}, tmp_path / "alexnet-owt-7be5be79.pth")
    torch.save({}, tmp_path / "lpips_alex.pth")
    with pytest.raises(MetricUnavailableError, match="does not fit"):
        load_lpips("alex", tmp_path)
    assert isinstance(LPIPS("alex").lin0.model[1], nn.Conv2d)
