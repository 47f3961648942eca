"""The animate job: validate inputs, prepare reference and pose, load the model, generate, write outputs.

`dynamictrl animate` and `dynamictrl demo` are thin wrappers around `animate(AnimateOptions(...))`. Inputs are
validated before any weights are loaded, so a typo costs a second, not a model load. Outputs are written
atomically: an interrupted run leaves no half-written video.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from . import __version__
from .errors import InputError
from .io.atomic import write_json_atomic
from .io.media import load_image, probe_video, read_video, side_by_side, write_video
from .models.loading import BASE_MODEL, DEFAULT_MODEL
from .pipelines.acceleration import CACHE_METHODS, DTYPES, OFFLOAD_MODES
from .versions import package_versions

logger = logging.getLogger(__name__)

ON_SHORT_CHOICES = ("error", "loop", "hold-last")


@dataclass(frozen=True)
class AnimateOptions:
    """Every setting of one animation run; saved verbatim in the JSON sidecar.

    Defaults are the published recommendation: 37 frames of 768x1360 (portrait), 25 steps, CFG 3.0, seed 42.
    """

    image: Path
    prompt: str
    out: Path
    pose_video: Path | None = None
    driving_video: Path | None = None
    negative_prompt: str = ""
    model: str = DEFAULT_MODEL
    base: str = BASE_MODEL
    num_frames: int = 37
    height: int = 1360
    width: int = 768
    steps: int = 25
    guidance: float = 3.0
    seed: int = 42
    fps: float | None = None  # None: the pose/driving video's rate, so the motion plays at real speed
    num_videos: int = 1
    device: str = "auto"
    dtype: str = "auto"
    offload: str = "none"
    vae_tiling: bool = True
    vae_slicing: bool = True
    image_latent_scale: float | None = None
    cache: str = "none"
    cache_threshold: float | None = None
    attention_backend: str | None = None
    side_by_side: bool = False
    # pose stage (only with driving_video)
    pose_backend: str = "auto"
    driving_fps: float | None = None
    on_short: str = "error"
    strict_pose: bool = False
    pose_cache_dir: Path | None = None
    note: str | None = None  # shown in the sidecar, e.g. "tiny random model" for the demo
    quiet: bool = False

    def __post_init__(self) -> None:
        from .pipelines.pipeline_dynamictrl import validate_num_frames, validate_size

        if (self.pose_video is None) == (self.driving_video is None):
            raise InputError("give exactly one of --pose-video (a rendered pose video) or --driving-video")
        validate_num_frames(self.num_frames)
        validate_size(self.height, self.width)
        if self.steps < 1:
            raise InputError(f"--steps must be >= 1, got {self.steps}")
        if self.guidance < 0:
            raise InputError(f"--guidance must be >= 0, got {self.guidance}")
        if self.fps is not None and self.fps <= 0:
            raise InputError(f"--fps must be positive, got {self.fps}")
        if self.num_videos < 1:
            raise InputError(f"--num-videos must be >= 1, got {self.num_videos}")
        for name, value, allowed in (
            ("--offload", self.offload, OFFLOAD_MODES),
            ("--cache", self.cache, CACHE_METHODS),
            ("--dtype", self.dtype, DTYPES),
            ("--on-short", self.on_short, ON_SHORT_CHOICES),
        ):
            if value not in allowed:
                raise InputError(f"{name} must be one of {', '.join(allowed)}, got {value!r}")
        if Path(self.out).suffix.lower() != ".mp4":
            raise InputError(f"--out must end in .mp4, got {self.out}")

    def output_paths(self) -> list[Path]:
        out = Path(self.out)
        if self.num_videos == 1:
            return [out]
        return [out.with_name(f"{out.stem}_{i}{out.suffix}") for i in range(self.num_videos)]

    def to_json(self) -> dict[str, Any]:
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in dataclasses.asdict(self).items()}


@dataclass
class AnimateResult:
    videos: list[Path]
    sidecar: Path
    side_by_side: list[Path] = field(default_factory=list)
    pose_video: Path | None = None
    pose_keypoints: Path | None = None
    frames: npt.NDArray[np.uint8] | None = None  # [num_videos, F, H, W, 3]
    warnings: list[str] = field(default_factory=list)


def _fit_pose_frames(frames: npt.NDArray[np.uint8], height: int, width: int) -> npt.NDArray[np.uint8]:
    """Bring rendered pose frames to the output size with the same cover-crop as the reference image."""
    from .pose.reference import cover_crop

    if frames.shape[1:3] == (height, width):
        return frames
    h, w = frames.shape[1:3]
    if abs(w / h - width / height) > 0.01 * (width / height):
        logger.warning(
            "Pose video is %dx%d but the output is %dx%d: it is cropped to fit; render it at the output size "
            "(`dynamictrl pose`) to keep every joint",
            w,
            h,
            width,
            height,
        )
    else:
        logger.info("Resizing the pose video from %dx%d to %dx%d", w, h, width, height)
    return np.stack([cover_crop(f, height, width) for f in frames])


@dataclass
class PreparedInputs:
    """What generation needs besides the model; produced without loading any weights."""

    reference: npt.NDArray[np.uint8]  # [H, W, 3], cropped to the output size
    pose: npt.NDArray[np.uint8]  # [F, H, W, 3], frame 0 = the reference's own pose
    fps: float  # rate at which the pose frames play the motion at real speed
    warnings: list[str] = field(default_factory=list)
    pose_stage: Any = None  # the pose stage's `PreparedPose` with --driving-video


def prepare_inputs(options: AnimateOptions) -> PreparedInputs:
    """Load and validate the reference image and the pose (rendered, or extracted from a driving video)."""
    from .pose.reference import cover_crop

    image = load_image(options.image)
    if options.pose_video is not None:
        info = probe_video(options.pose_video)
        if info.num_frames < options.num_frames:
            raise InputError(
                f"pose video {options.pose_video} has {info.num_frames} frames but --frames is {options.num_frames}; "
                f"lower --frames to {((info.num_frames - 1) // 4) * 4 + 1} or give a longer pose video"
            )
        pose, fps = read_video(options.pose_video, max_frames=options.num_frames)
        pose = _fit_pose_frames(pose, options.height, options.width)
        return PreparedInputs(cover_crop(image, options.height, options.width), pose, fps)

    from .pose.prepare import prepare_pose_video

    prepared = prepare_pose_video(
        options.image,
        options.driving_video,
        options.height,
        options.width,
        options.num_frames,
        backend=options.pose_backend,
        fps=options.driving_fps,
        on_short=options.on_short,
        strict=options.strict_pose,
        cache_dir=options.pose_cache_dir,
        progress=not options.quiet,
    )
    return PreparedInputs(prepared.reference_image, prepared.frames, prepared.fps, list(prepared.warnings), prepared)


def load_configured_pipeline(options: AnimateOptions):
    """Load the pipeline and apply the device, dtype, offload, VAE, cache and attention options."""
    import torch

    from .models.loading import load_pipeline
    from .pipelines import acceleration

    device = acceleration.resolve_device(options.device)
    dtype = acceleration.resolve_dtype(options.dtype, device)
    pipe = load_pipeline(options.model, options.base, torch_dtype=dtype)
    acceleration.place(pipe, device, options.offload)
    acceleration.configure_vae(pipe, options.vae_tiling, options.vae_slicing)
    acceleration.enable_cache(pipe, options.cache, options.cache_threshold)
    acceleration.set_attention_backend(pipe, options.attention_backend)
    pipe.set_progress_bar_config(disable=options.quiet, desc="denoising")
    pipe.run_device, pipe.run_dtype = device, dtype
    if device.type == "cpu" and dtype != torch.float32:
        logger.warning("%s on the CPU is slow; --dtype float32 is faster there", dtype)
    return pipe


def animate(options: AnimateOptions, pipe=None) -> AnimateResult:
    """Run one animation job end to end; `pipe` lets callers reuse a loaded pipeline."""
    import torch

    timings: dict[str, float] = {}
    start = time.perf_counter()
    inputs = prepare_inputs(options)
    reference, pose, warnings, prepared = inputs.reference, inputs.pose, inputs.warnings, inputs.pose_stage
    fps = options.fps or inputs.fps
    timings["prepare_s"] = time.perf_counter() - start
    for message in warnings:
        logger.warning("pose check: %s", message)

    start = time.perf_counter()
    if pipe is None:
        pipe = load_configured_pipeline(options)
    timings["load_s"] = time.perf_counter() - start

    start = time.perf_counter()
    generator = torch.Generator().manual_seed(options.seed)  # CPU generator: the same noise on every device
    frames = pipe(
        image=reference,
        control_video=pose,
        prompt=options.prompt,
        negative_prompt=options.negative_prompt,
        height=options.height,
        width=options.width,
        num_frames=options.num_frames,
        num_inference_steps=options.steps,
        guidance_scale=options.guidance,
        num_videos_per_prompt=options.num_videos,
        generator=generator,
        output_type="np",
        image_latent_scale=options.image_latent_scale,
    ).frames
    timings["generate_s"] = time.perf_counter() - start
    frames_u8 = (np.clip(frames, 0.0, 1.0) * 255.0).round().astype(np.uint8)

    start = time.perf_counter()
    result = AnimateResult(
        videos=[], sidecar=Path(options.out).with_suffix(".json"), frames=frames_u8, warnings=warnings
    )
    for path, video in zip(options.output_paths(), frames_u8, strict=True):
        result.videos.append(write_video(path, video, fps))
        if options.side_by_side:
            panel = side_by_side(np.repeat(reference[None], len(video), axis=0), pose, video)
            result.side_by_side.append(write_video(path.with_name(f"{path.stem}_side_by_side.mp4"), panel, fps))
    if prepared is not None:
        from .pose.types import save_keypoints_json

        stem = Path(options.out).with_name(f"{Path(options.out).stem}_pose")
        result.pose_video = write_video(stem.with_suffix(".mp4"), pose, fps)
        result.pose_keypoints = save_keypoints_json(stem.with_suffix(".json"), prepared.keypoints, prepared.metadata())
    timings["write_s"] = time.perf_counter() - start

    resolved = getattr(pipe, "resolved_model", None)
    sidecar = {
        "dynamictrl_version": __version__,
        "note": options.note,
        "settings": options.to_json(),
        "seed": options.seed,
        "outputs": {
            "videos": [str(p) for p in result.videos],
            "side_by_side": [str(p) for p in result.side_by_side],
            "pose_video": str(result.pose_video) if result.pose_video else None,
            "pose_keypoints": str(result.pose_keypoints) if result.pose_keypoints else None,
            "num_frames": int(frames_u8.shape[1]),
            "height": int(frames_u8.shape[2]),
            "width": int(frames_u8.shape[3]),
            "fps": fps,
        },
        "model": {
            "components": resolved.describe() if resolved else None,
            "sources": resolved.sources if resolved else None,
            "image_latent_scale": pipe.image_latent_scale(options.image_latent_scale),
        },
        "runtime": {
            "device": str(getattr(pipe, "run_device", "unknown")),
            "dtype": str(getattr(pipe, "run_dtype", "unknown")).replace("torch.", ""),
            "timings": {k: round(v, 3) for k, v in timings.items()},
        },
        "pose_warnings": warnings,
        "versions": package_versions(),
    }
    if prepared is not None:
        sidecar["pose_stage"] = {**prepared.metadata(), "cache_hit": prepared.cache_hit, "timings": prepared.timings}
    write_json_atomic(result.sidecar, sidecar)
    return result
