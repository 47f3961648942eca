"""The metric networks one run uses, built once before the first pair; a network that cannot be built is recorded.

Each wanted metric group loads its network here (LPIPS backbones and heads, the FID Inception, the FID-VID
3D-ResNet, the protocol's FVD I3D, the pose stage's extractor). Missing or unfitting weights raise
`MetricUnavailableError` in the loaders (`weights.py` words the message: the file and where to get it); that message
goes to `unavailable[metric]`, the network stays `None`, and every other metric still runs. Every weight file used
is recorded with its SHA-1 in `weights`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from ..errors import MetricUnavailableError
from .protocols import Protocol

logger = logging.getLogger(__name__)


class NetworkSet:
    """Networks by metric (`lpips` by net name; `fid`, `fid_vid`, `fvd`, `pose` or None), plus what could not load."""

    def __init__(self) -> None:
        self.lpips: dict[str, Any] = {}
        self.fid: Any = None
        self.fid_vid: Any = None
        self.fvd: Any = None
        self.pose: Any = None
        self.unavailable: dict[str, str] = {}
        """metric -> one-line reason it is not computed (later stages may add to it)."""
        self.weights: dict[str, Any] = {}
        """weight key -> record (file, SHA-1, whether it matches the published one)."""

    @classmethod
    def load(
        cls,
        protocol: Protocol,
        metrics: Iterable[str],
        *,
        weights_dir: Path | None = None,
        device: str = "cpu",
        pose_backend: str = "auto",
    ) -> NetworkSet:
        """Build the networks of the wanted metric groups (`metrics`), in the order the report lists them."""
        nets, wanted = cls(), set(metrics)
        if "lpips" in wanted:
            from .lpips import load_lpips

            for net in protocol.lpips_nets:
                built = nets._attempt(f"lpips_{net}", lambda net=net: load_lpips(net, weights_dir))
                if built is not None:
                    nets.lpips[net] = built[0].to(device)
                    nets._record(built[1])
        if "fid" in wanted:
            from .video_metrics import InceptionFID

            nets.fid = nets._attempt("fid", lambda: InceptionFID(weights_dir, device))
        if "fid_vid" in wanted:
            from .video_metrics import DiscoResNet3D

            nets.fid_vid = nets._attempt("fid_vid", lambda: DiscoResNet3D(weights_dir, device))
        if "fvd" in wanted:
            from .video_metrics import build_fvd_extractor

            nets.fvd = nets._attempt("fvd", lambda: build_fvd_extractor(protocol.fvd_backend, weights_dir, device))
        for extractor in (nets.fid, nets.fid_vid, nets.fvd):
            if extractor is not None:
                nets._record(extractor.weights)
        if "pose" in wanted:
            from .pose_fidelity import load_pose_extractor

            nets.pose = nets._attempt("pose", lambda: load_pose_extractor(pose_backend, device))
        return nets

    def _attempt(self, metric: str, build: Callable[[], Any]) -> Any:
        try:
            return build()
        except MetricUnavailableError as exc:
            self.unavailable[metric] = str(exc)
            logger.warning("%s", exc)
            return None

    def _record(self, used: dict[str, str]) -> None:
        from .weights import weight_record

        for key, path in used.items():
            if key not in self.weights:
                self.weights[key] = weight_record(key, Path(path))

    def close(self) -> None:
        """Release what needs releasing (the pose extractor's native resources)."""
        close = getattr(self.pose, "close", None)
        if callable(close):
            close()
