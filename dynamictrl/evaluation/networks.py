"""Metric backbones in plain torch, with the parameter names of the published weight files.

torchvision cannot be installed next to the CPU torch we pin, so the networks the metrics need are written here,
each with exactly the state-dict keys of the file it is meant to load:

- `AlexNetFeatures`, `VGG16Features`: torchvision's `alexnet().features` / `vgg16().features` (keys
  `features.<i>.weight`), tapped at the ReLUs LPIPS uses
  (https://github.com/richzhang/PerceptualSimilarity/blob/master/lpips/pretrained_networks.py).
- `InceptionI3d`: the Kinetics-400 I3D of https://github.com/piergiaj/pytorch-i3d, the layout of
  `i3d_pretrained_400.pt` that DisCo (https://github.com/Wangt-CN/DisCo/blob/main/tool/metrics/inception3d.py)
  and MCVD load for FVD. TensorFlow-style "same" padding is computed per input.
- `ResNet3D50`: the 3D-ResNet-50 (shortcut B) of https://github.com/kenshohara/3D-ResNets-PyTorch, the layout of
  `resnet-50-kinetics.pth` that DisCo (https://github.com/Wangt-CN/DisCo/blob/main/tool/metrics/resnet3d.py)
  loads for FID-VID.

`load_weights` checks that a file fits the module exactly; a file that does not fit makes the metric unavailable
(`MetricUnavailableError`) instead of silently computing a different metric.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import MetricUnavailableError


# --------------------------------------------------------------------------------------------- 2-D backbones
class _TappedFeatures(nn.Module):
    """A torchvision-style `features` Sequential that returns the activations after the modules in `taps`."""

    taps: tuple[int, ...] = ()
    channels: tuple[int, ...] = ()

    def __init__(self, layers: Sequence[nn.Module]) -> None:
        super().__init__()
        self.features = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outputs = []
        last = self.taps[-1]
        for index, layer in enumerate(self.features):
            x = layer(x)
            if index in self.taps:
                outputs.append(x)
            if index == last:
                break
        return outputs


class AlexNetFeatures(_TappedFeatures):
    """torchvision AlexNet features; outputs relu1..relu5 (channels 64, 192, 384, 256, 256)."""

    taps = (1, 4, 7, 9, 11)
    channels = (64, 192, 384, 256, 256)

    def __init__(self) -> None:
        super().__init__(
            [
                nn.Conv2d(3, 64, kernel_size=11, stride=4, padding=2),
                nn.ReLU(),
                nn.MaxPool2d(kernel_size=3, stride=2),
                nn.Conv2d(64, 192, kernel_size=5, padding=2),
                nn.ReLU(),
                nn.MaxPool2d(kernel_size=3, stride=2),
                nn.Conv2d(192, 384, kernel_size=3, padding=1),
                nn.ReLU(),
                nn.Conv2d(384, 256, kernel_size=3, padding=1),
                nn.ReLU(),
                nn.Conv2d(256, 256, kernel_size=3, padding=1),
                nn.ReLU(),
                nn.MaxPool2d(kernel_size=3, stride=2),
            ]
        )


class VGG16Features(_TappedFeatures):
    """torchvision VGG16 (no batch norm) features; outputs relu1_2, relu2_2, relu3_3, relu4_3, relu5_3."""

    taps = (3, 8, 15, 22, 29)
    channels = (64, 128, 256, 512, 512)

    def __init__(self) -> None:
        layers: list[nn.Module] = []
        in_channels = 3
        for item in (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"):
            if item == "M":
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            else:
                layers += [nn.Conv2d(in_channels, int(item), kernel_size=3, padding=1), nn.ReLU()]
                in_channels = int(item)
        super().__init__(layers)


# ------------------------------------------------------------------------------------------------------ I3D
def _same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow 'SAME' padding (front, back) for one dimension, as pytorch-i3d computes it."""
    if size % stride == 0:
        total = max(kernel - stride, 0)
    else:
        total = max(kernel - (size % stride), 0)
    return total // 2, total - total // 2


def _pad_same(x: torch.Tensor, kernel: Sequence[int], stride: Sequence[int]) -> torch.Tensor:
    t, h, w = x.shape[-3:]
    pt, ph, pw = (_same_padding(s, k, st) for s, k, st in zip((t, h, w), kernel, stride, strict=True))
    return F.pad(x, (*pw, *ph, *pt))


class MaxPool3dSame(nn.Module):
    """Max pooling with TF 'SAME' zero padding (inputs are post-ReLU, so zeros never win spuriously)."""

    def __init__(self, kernel: Sequence[int], stride: Sequence[int]) -> None:
        super().__init__()
        self.kernel, self.stride = tuple(kernel), tuple(stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.max_pool3d(_pad_same(x, self.kernel, self.stride), self.kernel, self.stride)


class Unit3D(nn.Module):
    """Conv3d (+ BatchNorm, eps 1e-3 as in the TF original) (+ ReLU) with 'SAME' padding."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel: Sequence[int] = (1, 1, 1),
        stride: Sequence[int] = (1, 1, 1),
        *,
        batch_norm: bool = True,
        bias: bool = False,
        activation: bool = True,
    ) -> None:
        super().__init__()
        self.kernel, self.stride, self.activation = tuple(kernel), tuple(stride), activation
        self.conv3d = nn.Conv3d(in_channels, out_channels, self.kernel, self.stride, padding=0, bias=bias)
        self.bn = nn.BatchNorm3d(out_channels, eps=0.001, momentum=0.01) if batch_norm else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv3d(_pad_same(x, self.kernel, self.stride))
        if self.bn is not None:
            x = self.bn(x)
        return F.relu(x) if self.activation else x


class InceptionModule3d(nn.Module):
    def __init__(self, in_channels: int, out: Sequence[int]) -> None:
        super().__init__()
        self.b0 = Unit3D(in_channels, out[0])
        self.b1a = Unit3D(in_channels, out[1])
        self.b1b = Unit3D(out[1], out[2], (3, 3, 3))
        self.b2a = Unit3D(in_channels, out[3])
        self.b2b = Unit3D(out[3], out[4], (3, 3, 3))
        self.b3a = MaxPool3dSame((3, 3, 3), (1, 1, 1))
        self.b3b = Unit3D(in_channels, out[5])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.b0(x), self.b1b(self.b1a(x)), self.b2b(self.b2a(x)), self.b3b(self.b3a(x))], dim=1)


class InceptionI3d(nn.Module):
    """Kinetics-400 I3D (Carreira & Zisserman 2017), piergiaj/pytorch-i3d parameter names.

    Input `[B, 3, T, 224, 224]` in [-1, 1]. `forward` returns the 400 logits averaged over the remaining time steps,
    which is what DisCo and MCVD use as FVD features ("FVD-3DInception").
    """

    def __init__(self, num_classes: int = 400) -> None:
        super().__init__()
        spec: list[tuple[str, nn.Module]] = [
            ("Conv3d_1a_7x7", Unit3D(3, 64, (7, 7, 7), (2, 2, 2))),
            ("MaxPool3d_2a_3x3", MaxPool3dSame((1, 3, 3), (1, 2, 2))),
            ("Conv3d_2b_1x1", Unit3D(64, 64)),
            ("Conv3d_2c_3x3", Unit3D(64, 192, (3, 3, 3))),
            ("MaxPool3d_3a_3x3", MaxPool3dSame((1, 3, 3), (1, 2, 2))),
            ("Mixed_3b", InceptionModule3d(192, (64, 96, 128, 16, 32, 32))),
            ("Mixed_3c", InceptionModule3d(256, (128, 128, 192, 32, 96, 64))),
            ("MaxPool3d_4a_3x3", MaxPool3dSame((3, 3, 3), (2, 2, 2))),
            ("Mixed_4b", InceptionModule3d(480, (192, 96, 208, 16, 48, 64))),
            ("Mixed_4c", InceptionModule3d(512, (160, 112, 224, 24, 64, 64))),
            ("Mixed_4d", InceptionModule3d(512, (128, 128, 256, 24, 64, 64))),
            ("Mixed_4e", InceptionModule3d(512, (112, 144, 288, 32, 64, 64))),
            ("Mixed_4f", InceptionModule3d(528, (256, 160, 320, 32, 128, 128))),
            ("MaxPool3d_5a_2x2", MaxPool3dSame((2, 2, 2), (2, 2, 2))),
            ("Mixed_5b", InceptionModule3d(832, (256, 160, 320, 32, 128, 128))),
            ("Mixed_5c", InceptionModule3d(832, (384, 192, 384, 48, 128, 128))),
        ]
        self.end_point_names = [name for name, _ in spec]
        for name, module in spec:
            self.add_module(name, module)
        self.logits = Unit3D(1024, num_classes, batch_norm=False, bias=True, activation=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for name in self.end_point_names:
            x = getattr(self, name)(x)
        # pytorch-i3d: AvgPool3d([1, 7, 7], stride 1) on the 7x7 map of a 224 input, dropout (identity in eval).
        x = F.avg_pool3d(x, kernel_size=(1, 7, 7), stride=1)
        x = self.logits(x)
        return x.squeeze(4).squeeze(3).mean(2)


# ------------------------------------------------------------------------------------------- 3D-ResNet-50
class Bottleneck3d(nn.Module):
    expansion = 4

    def __init__(self, in_planes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None) -> None:
        super().__init__()
        self.conv1 = nn.Conv3d(in_planes, planes, kernel_size=1, bias=False)
        self.bn1 = nn.BatchNorm3d(planes)
        self.conv2 = nn.Conv3d(planes, planes, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm3d(planes)
        self.conv3 = nn.Conv3d(planes, planes * 4, kernel_size=1, bias=False)
        self.bn3 = nn.BatchNorm3d(planes * 4)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        residual = self.downsample(x) if self.downsample is not None else x
        return F.relu(out + residual)


class ResNet3D50(nn.Module):
    """Kinetics 3D-ResNet-50, shortcut type B (Hara et al. 2018), kenshohara/3D-ResNets-PyTorch names.

    Input `[B, 3, 16, 112, 112]`, RGB in 0-255 minus the Kinetics mean (DisCo: 114.7748, 107.7354, 99.4750).
    `forward` returns the 2048-d average-pooled features (`last_fc=False` in DisCo). The original pools with a fixed
    (1, 4, 4) window, which is the global mean for that input size; we take the global mean, identical there.
    """

    def __init__(self, num_classes: int = 400) -> None:
        super().__init__()
        self.conv1 = nn.Conv3d(3, 64, kernel_size=7, stride=(1, 2, 2), padding=(3, 3, 3), bias=False)
        self.bn1 = nn.BatchNorm3d(64)
        self.maxpool = nn.MaxPool3d(kernel_size=(3, 3, 3), stride=2, padding=1)
        self._in_planes = 64
        self.layer1 = self._make_layer(64, 3, 1)
        self.layer2 = self._make_layer(128, 4, 2)
        self.layer3 = self._make_layer(256, 6, 2)
        self.layer4 = self._make_layer(512, 3, 2)
        self.fc = nn.Linear(2048, num_classes)  # kept so the released file loads exactly; not used for features

    def _make_layer(self, planes: int, blocks: int, stride: int) -> nn.Sequential:
        downsample = None
        if stride != 1 or self._in_planes != planes * 4:
            downsample = nn.Sequential(
                nn.Conv3d(self._in_planes, planes * 4, kernel_size=1, stride=stride, bias=False),
                nn.BatchNorm3d(planes * 4),
            )
        layers = [Bottleneck3d(self._in_planes, planes, stride, downsample)]
        self._in_planes = planes * 4
        layers += [Bottleneck3d(self._in_planes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(F.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return x.mean(dim=(2, 3, 4))


# ---------------------------------------------------------------------------------------------- loading
def read_state_dict(path: str | os.PathLike, *, metric: str) -> dict[str, torch.Tensor]:
    """Load a checkpoint file to a flat state dict (unwrapping `{"state_dict": ...}` and DataParallel's `module.`)."""
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a corrupt or foreign file: the metric is unavailable, the run goes on
        raise MetricUnavailableError(
            f"{metric}: cannot read {path} ({type(exc).__name__}: {exc}); re-download it"
        ) from exc
    if isinstance(obj, Mapping) and "state_dict" in obj and isinstance(obj["state_dict"], Mapping):
        obj = obj["state_dict"]
    if not isinstance(obj, Mapping):
        raise MetricUnavailableError(f"{metric}: {path} holds a {type(obj).__name__}, not a state dict")
    return {(k[len("module.") :] if k.startswith("module.") else k): v for k, v in obj.items()}


def load_weights(
    module: nn.Module,
    state_dict: Mapping[str, torch.Tensor],
    *,
    source: str,
    metric: str,
    prefix_filter: str | None = None,
) -> nn.Module:
    """Load `state_dict` into `module` requiring an exact fit (BatchNorm's `num_batches_tracked` may be absent).

    `prefix_filter` keeps only keys starting with it (torchvision classifiers carry `classifier.*` we do not build).
    Returns the module in eval mode with gradients off.
    """
    if prefix_filter is not None:
        state_dict = {k: v for k, v in state_dict.items() if k.startswith(prefix_filter)}
    own = module.state_dict()
    missing = [k for k in own if k not in state_dict and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state_dict if k not in own]
    wrong = [k for k, v in state_dict.items() if k in own and tuple(v.shape) != tuple(own[k].shape)]
    if missing or unexpected or wrong:
        detail = "; ".join(
            f"{label}: {', '.join(keys[:3])}{'...' if len(keys) > 3 else ''}"
            for label, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong))
            if keys
        )
        raise MetricUnavailableError(f"{metric}: {source} does not fit the expected network ({detail})")
    module.load_state_dict(state_dict, strict=False)
    return module.eval().requires_grad_(False)
