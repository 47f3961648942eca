"""LPIPS (Zhang et al., CVPR 2018) v0.1, re-implemented in plain torch so it runs without torchvision.

The definition follows https://github.com/richzhang/PerceptualSimilarity/blob/master/lpips/lpips.py:

1. inputs in [-1, 1] go through the scaling layer `(x - shift) / scale` (shift -0.030, -0.088, -0.188; scale 0.458,
   0.448, 0.450), which maps them to ImageNet-normalised values;
2. five ReLU activations of AlexNet or VGG16 are taken;
3. each is unit-normalised over channels (`x / (||x||_2 + 1e-10)`), the two images' features are subtracted and
   squared;
4. a learned 1x1 convolution without bias (`lin<k>.model.1`, after a dropout that is identity in eval) weights the
   channels, the result is averaged over space and summed over the five layers.

Weights: the backbone is the torchvision ImageNet checkpoint (`alexnet-owt-7be5be79.pth`, `vgg16-397923af.pth`),
the heads the LPIPS v0.1 files (`alex.pth`, `vgg.pth`), all with their published key names.

DisCo's quirk (https://github.com/Wangt-CN/DisCo/blob/main/tool/metrics/ssim_l1_lpips_psnr.py): it passes
`ToTensor()` images in [0, 1] to `lpips.LPIPS(net="vgg")` without `normalize=True`, so [0, 1] is read as if it were
[-1, 1]. `input_convention="disco"` reproduces it.
"""

from __future__ import annotations

import os
from typing import Literal

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

from .networks import AlexNetFeatures, VGG16Features, load_weights, read_state_dict
from .weights import find_weight

LpipsNet = Literal["alex", "vgg"]
InputConvention = Literal["standard", "disco"]

_BACKBONES = {"alex": (AlexNetFeatures, "alexnet"), "vgg": (VGG16Features, "vgg16")}


class ScalingLayer(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("shift", torch.tensor([-0.030, -0.088, -0.188])[None, :, None, None])
        self.register_buffer("scale", torch.tensor([0.458, 0.448, 0.450])[None, :, None, None])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.shift) / self.scale


class NetLinLayer(nn.Module):
    """Dropout then a bias-free 1x1 convolution to one channel; `model.1.weight` is the published key."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.model = nn.Sequential(nn.Dropout(), nn.Conv2d(channels, 1, kernel_size=1, bias=False))


class LPIPS(nn.Module):
    """Learned perceptual distance; `forward(a, b)` takes `[B, 3, H, W]` in [-1, 1] and returns `[B]`."""

    def __init__(self, net: LpipsNet = "alex") -> None:
        super().__init__()
        if net not in _BACKBONES:
            raise ValueError(f"LPIPS net must be one of {sorted(_BACKBONES)}, got {net!r}")
        self.net_name = net
        self.scaling_layer = ScalingLayer()
        self.net = _BACKBONES[net][0]()
        for index, channels in enumerate(self.net.channels):
            self.add_module(f"lin{index}", NetLinLayer(channels))
        self.eval().requires_grad_(False)

    @property
    def lins(self) -> list[NetLinLayer]:
        return [getattr(self, f"lin{i}") for i in range(len(self.net.channels))]

    def forward(self, in0: torch.Tensor, in1: torch.Tensor) -> torch.Tensor:
        feats0 = self.net(self.scaling_layer(in0))
        feats1 = self.net(self.scaling_layer(in1))
        total = in0.new_zeros(in0.shape[0])
        for f0, f1, lin in zip(feats0, feats1, self.lins, strict=True):
            n0 = f0 / (torch.sqrt(torch.sum(f0**2, dim=1, keepdim=True)) + 1e-10)
            n1 = f1 / (torch.sqrt(torch.sum(f1**2, dim=1, keepdim=True)) + 1e-10)
            total = total + lin.model((n0 - n1) ** 2).mean(dim=(1, 2, 3))
        return total


def load_lpips(net: LpipsNet, weights_dir: str | os.PathLike | None = None) -> tuple[LPIPS, dict[str, str]]:
    """The real LPIPS-`net`: ImageNet backbone + v0.1 heads. Returns the model and `{weight key: path}` used.

    Raises `MetricUnavailableError` naming the missing file (the backbones are not downloadable offline).
    """
    metric = f"LPIPS-{net}"
    backbone_key = _BACKBONES[net][1]
    backbone_path = find_weight(backbone_key, weights_dir, metric=metric)
    heads_path = find_weight(f"lpips_{net}", weights_dir, metric=metric)
    model = LPIPS(net)
    load_weights(
        model.net,
        read_state_dict(backbone_path, metric=metric),
        source=str(backbone_path),
        metric=metric,
        prefix_filter="features.",
    )
    heads = read_state_dict(heads_path, metric=metric)
    lin_state = {k: v for k, v in heads.items() if k.startswith("lin")}
    lin_module = nn.ModuleDict({f"lin{i}": lin for i, lin in enumerate(model.lins)})
    load_weights(lin_module, lin_state, source=str(heads_path), metric=metric)
    return model.eval(), {backbone_key: str(backbone_path), f"lpips_{net}": str(heads_path)}


def frames_to_lpips_input(frames: npt.NDArray[np.uint8], convention: InputConvention) -> torch.Tensor:
    """uint8 `[F, H, W, 3]` to the `[F, 3, H, W]` tensor LPIPS receives under `convention`.

    `standard`: [-1, 1], as LPIPS was trained. `disco`: [0, 1] (DisCo's `ToTensor()` without `normalize=True`).
    """
    x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float() / 255.0
    return x * 2.0 - 1.0 if convention == "standard" else x


@torch.no_grad()
def lpips_per_frame(
    model: LPIPS,
    generated: npt.NDArray[np.uint8],
    ground_truth: npt.NDArray[np.uint8],
    *,
    convention: InputConvention = "standard",
    batch_size: int = 4,
    device: str | torch.device = "cpu",
) -> npt.NDArray[np.float64]:
    """LPIPS of each frame pair (same-size uint8 `[F, H, W, 3]` videos); `[F]` float64."""
    if generated.shape != ground_truth.shape:
        raise ValueError(f"LPIPS needs equal shapes, got {generated.shape} and {ground_truth.shape}")
    model = model.to(device)
    out = []
    for start in range(0, len(generated), batch_size):
        a = frames_to_lpips_input(generated[start : start + batch_size], convention).to(device)
        b = frames_to_lpips_input(ground_truth[start : start + batch_size], convention).to(device)
        out.append(model(a, b).double().cpu())
    return torch.cat(out).numpy()
