"""Measuring one aligned pair: per-video values for its record, and what the aggregate needs kept in `Collected`.

Frame metrics (L1/MAE, PSNR, legacy PSNR, SSIM, LPIPS) keep their per-frame values, so the aggregate can average over
all frames of all videos; FID, FID-VID and FVD keep features only (a distance needs the whole set); pose fidelity
and flicker keep their per-video records. The lowest-SSIM frame of each video is kept, small, for the report.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ..errors import DynamiCtrlError, InputError
from . import metrics as fm
from .network_set import NetworkSet
from .protocols import Protocol

THUMBNAIL_HEIGHT = 256

Note = Callable[..., None]
"""`note(message, severity="warning")`: records a problem of the pair being measured."""


@dataclass
class Thumbnail:
    """The worst frame of a video (lowest SSIM), kept small for the report."""

    video: str
    frame: int
    ssim: float
    generated: npt.NDArray[np.uint8]
    ground_truth: npt.NDArray[np.uint8]


@dataclass
class Collected:
    """What the per-video loop gathers for the aggregate: per-frame values, features, pose/flicker records."""

    per_frame: dict[str, list[npt.NDArray[np.float64]]] = field(default_factory=dict)
    features: dict[str, dict[str, list[np.ndarray]]] = field(
        default_factory=lambda: {k: {"generated": [], "ground_truth": []} for k in ("fid", "fid_vid", "fvd")}
    )
    pose: list[dict[str, Any]] = field(default_factory=list)
    temporal: list[dict[str, float | None]] = field(default_factory=list)
    thumbnails: list[Thumbnail] = field(default_factory=list)


def thumbnail(frame: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    """`frame` scaled down (area interpolation) to `THUMBNAIL_HEIGHT` rows if it is taller."""
    import cv2

    height, width = frame.shape[:2]
    if height <= THUMBNAIL_HEIGHT:
        return frame.copy()
    new_w = max(1, round(width * THUMBNAIL_HEIGHT / height))
    return cv2.resize(frame, (new_w, THUMBNAIL_HEIGHT), interpolation=cv2.INTER_AREA)


@dataclass
class PairMeasurer:
    """Measures pairs with the run's protocol and networks; everything for the aggregate goes to `collected`."""

    protocol: Protocol
    metrics: tuple[str, ...]
    nets: NetworkSet
    device: str = "cpu"
    poses_dir: Path | None = None
    collected: Collected = field(default_factory=Collected)

    def measure(
        self,
        name: str,
        generated: npt.NDArray[np.uint8],
        ground_truth: npt.NDArray[np.uint8],
        values: dict[str, Any],
        note: Note,
    ) -> None:
        """Every wanted metric of one aligned pair (equal-shape uint8 `[F, H, W, 3]`): per-video values into
        `values`, per-frame values and features into `collected`, problems through `note`."""
        protocol, nets, collected, wanted = self.protocol, self.nets, self.collected, set(self.metrics)

        def keep(metric: str, per_frame: np.ndarray) -> None:
            collected.per_frame.setdefault(metric, []).append(per_frame)
            values[metric] = float(np.mean(per_frame))

        if "frame" in wanted:
            if protocol.l1_variant == "disco":
                keep("l1", fm.l1_disco(generated, ground_truth))
            else:
                keep("mae", fm.mae(generated, ground_truth))
            keep("psnr", fm.psnr(generated, ground_truth))
            keep("psnr_disco_legacy", fm.psnr_disco_legacy(generated, ground_truth))
            try:
                ssim_values = fm.ssim(generated, ground_truth, protocol.ssim_mode)
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
                        thumbnail(generated[worst]),
                        thumbnail(ground_truth[worst]),
                    )
                )
        if nets.lpips:
            from .lpips import lpips_per_frame

            for net, model in nets.lpips.items():
                keep(
                    f"lpips_{net}",
                    lpips_per_frame(
                        model, generated, ground_truth, convention=protocol.lpips_convention, device=self.device
                    ),
                )
        if nets.fid is not None:
            collected.features["fid"]["generated"].append(nets.fid.features(generated))
            collected.features["fid"]["ground_truth"].append(nets.fid.features(ground_truth))
        self._clip_features(generated, ground_truth, values, note)
        if nets.pose is not None:
            pose = self.pose_fidelity(name, generated, ground_truth, note)
            if pose is not None:
                values["pose"] = pose
                collected.pose.append(pose)
        if "temporal" in wanted:
            from .temporal import frame_difference, warping_errors

            warp_generated, warp_ground_truth = warping_errors(generated, ground_truth)
            temporal = {  # metrics.json keys: `_reference` is the ground truth's own value
                "frame_diff": frame_difference(generated),
                "frame_diff_reference": frame_difference(ground_truth),
                "warp_error": warp_generated,
                "warp_error_reference": warp_ground_truth,
            }
            values["temporal"] = temporal
            self.collected.temporal.append(temporal)

    def _clip_features(
        self,
        generated: npt.NDArray[np.uint8],
        ground_truth: npt.NDArray[np.uint8],
        values: dict[str, Any],
        note: Note,
    ) -> None:
        """FID-VID and FVD features of the protocol's clips; a video too short for one clip is noted, not counted."""
        from .video_metrics import clip_starts

        protocol = self.protocol
        starts = clip_starts(
            len(generated), protocol.clip_length, protocol.clip_stride, disco_skip_last=protocol.clip_disco_skip_last
        )
        for key, extractor in (("fid_vid", self.nets.fid_vid), ("fvd", self.nets.fvd)):
            if extractor is None:
                continue
            if not starts:
                note(f"{key}: {len(generated)} frames are too few for {protocol.clip_length}-frame clips; not counted")
                continue
            features = self.collected.features[key]
            features["generated"].append(extractor.clip_features(generated, starts, protocol.clip_length))
            features["ground_truth"].append(extractor.clip_features(ground_truth, starts, protocol.clip_length))
            values[f"{key}_clips"] = len(starts)

    def pose_fidelity(
        self,
        name: str,
        generated: npt.NDArray[np.uint8],
        ground_truth: npt.NDArray[np.uint8],
        note: Note,
    ) -> dict[str, Any] | None:
        """Poses of the generated video against the driving poses: from `poses_dir` when it has this video's
        keypoint file, else re-extracted from the ground truth (self-driven). None (and a note) when not countable."""
        from .pose_fidelity import compare_poses, extract_track, load_pose_json

        protocol, extractor = self.protocol, self.nets.pose
        height, width = generated.shape[1:3]
        try:
            generated_track = extract_track(extractor, generated, protocol.pose_min_score)
            driving_track = None
            if self.poses_dir is not None:
                # `dynamictrl animate` writes <out>_pose.json next to its video, `dynamictrl pose --out X.mp4` X.json.
                candidates = [Path(self.poses_dir) / f"{name}{suffix}" for suffix in ("_pose.json", ".json")]
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
                driving_track = extract_track(extractor, ground_truth, protocol.pose_min_score)
                source = "re-extracted from the reference video"  # stored in metrics.json: the ground-truth video
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
