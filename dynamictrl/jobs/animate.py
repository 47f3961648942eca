"""The animate job: check, prepare reference and pose, load the model, generate, write the outputs.

`dynamictrl animate` and `dynamictrl demo` (and later the app) are thin wrappers around
`animate(AnimateOptions(...))`. Everything that can be checked without weights is checked first, in order of cost:
the options (their own `__post_init__`), the output locations and input files (`preflight`), the model's sizes from
its `config.json` files, and only then the pose stage and the model load. Outputs are staged and renamed into place
together at the end, the sidecar last, so an interrupted or failed run leaves nothing half-written and nothing that
looks complete.

With `--context-parallel` every process of the launch runs this same job: the main one prepares the pose first
(the others then read its cache), each loads the model onto its own device, the transformer's forward is split
over them (`pipelines.context_parallel`), and only the main process writes the outputs.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from .._version import __version__
from ..errors import InputError
from ..io.atomic import write_json_atomic
from ..io.devices import launched_processes
from ..io.images import cover_crop, cover_crop_frames, same_aspect
from ..io.media import load_image, probe_video, read_video, save_image, side_by_side, write_video
from ..io.outputs import StagedOutputs, check_outputs
from ..models.geometry import size_limits, validate_size
from ..options import AnimateOptions
from ..versions import package_versions
from .inputs import check_input_files

logger = logging.getLogger(__name__)


@dataclass
class AnimateResult:
    videos: list[Path]
    sidecar: Path
    side_by_side: list[Path] = field(default_factory=list)
    pose_video: Path | None = None
    pose_keypoints: Path | None = None
    masked_reference: Path | None = None
    frames: npt.NDArray[np.uint8] | None = None  # [num_videos, F, H, W, 3]
    warnings: list[str] = field(default_factory=list)
    written: bool = True  # False on the processes of a --context-parallel launch other than the main one


@dataclass(frozen=True)
class OutputPlan:
    """Every file one run writes, known before it starts (so all can be checked up front)."""

    videos: list[Path]
    side_by_side: list[Path]
    pose_video: Path | None
    pose_keypoints: Path | None
    masked_reference: Path | None
    sidecar: Path

    @classmethod
    def of(cls, options: AnimateOptions) -> OutputPlan:
        out = Path(options.out)
        videos = options.output_paths()
        pose_stem = out.with_name(f"{out.stem}_pose")
        with_pose = options.driving_video is not None
        return cls(
            videos=videos,
            side_by_side=[p.with_name(f"{p.stem}_side_by_side.mp4") for p in videos] if options.side_by_side else [],
            pose_video=pose_stem.with_suffix(".mp4") if with_pose else None,
            pose_keypoints=pose_stem.with_suffix(".json") if with_pose else None,
            masked_reference=(
                out.with_name(f"{out.stem}_masked_reference.png")
                if options.mask != "none" or options.mask_image
                else None
            ),
            sidecar=out.with_suffix(".json"),
        )

    def by_flag(self) -> dict[str, Path | None]:
        """Each output under a label a user recognises (`--out` and what is derived from it)."""
        labelled: dict[str, Path | None] = {"--out": self.videos[0]}
        labelled.update({f"--out (video {i})": p for i, p in enumerate(self.videos[1:], 1)})
        labelled.update({f"--side-by-side ({p.name})": p for p in self.side_by_side})
        labelled.update({"--out (pose video)": self.pose_video, "--out (pose keypoints)": self.pose_keypoints})
        labelled["--out (masked reference)"] = self.masked_reference
        labelled["--out (sidecar)"] = self.sidecar
        return labelled


def _inputs_by_flag(options: AnimateOptions) -> dict[str, Path | None]:
    return {
        "--image": options.image,
        "--pose-video": options.pose_video,
        "--driving-video": options.driving_video,
        "--mask-image": options.mask_image,
    }


def context_parallel_degrees(options: AnimateOptions) -> dict[str, int]:
    """`ring_degree` / `ulysses_degree` of `--context-parallel` over this launch's processes ({} when it is off)."""
    from ..pipelines.context_parallel import degrees

    return degrees(options.context_parallel, launched_processes())


def preflight(options: AnimateOptions) -> OutputPlan:
    """Cheap checks before any heavy import or work: output locations, and that the input files are there."""
    if options.context_parallel != "none" and launched_processes() < 2:
        raise InputError(
            f"--context-parallel {options.context_parallel} splits one video over the processes of a launch, and "
            "this is a single process; run it as `accelerate launch --num_processes 2 -m dynamictrl animate ...` "
            "(one process per GPU)"
        )
    plan = OutputPlan.of(options)
    check_outputs(plan.by_flag(), _inputs_by_flag(options))
    check_input_files(_inputs_by_flag(options))
    if options.lora is not None:
        from ..pipelines.loading import lora_weights_file

        lora_weights_file(options.lora)
    return plan


def check_model_fits(options: AnimateOptions, resolved: Any) -> None:
    """Sizes and step count against the model's own configs (read from JSON; no weights are loaded)."""
    multiple, max_side = size_limits(resolved.config("transformer"), resolved.config("vae"))
    validate_size(options.height, options.width, multiple, max_side, flags=("--height", "--width"))
    scheduler = resolved.components["scheduler"] / "scheduler_config.json"
    train_steps = int(_read_json(scheduler).get("num_train_timesteps", 1000))
    if options.steps > train_steps:
        raise InputError(
            f"--steps {options.steps} exceeds the scheduler's {train_steps} training timesteps; use at most "
            f"{train_steps} (the published setting is 25)"
        )
    trained_frames = resolved.config("transformer").get("sample_frames")
    if options.windowed and trained_frames and options.window > int(trained_frames):
        raise InputError(
            f"--window {options.window} exceeds the {trained_frames} frames this model's transformer was built for; "
            f"use at most {trained_frames} (the published clip length is 37)"
        )
    if options.context_parallel != "none":
        _check_context_parallel_fits(options, resolved.config("transformer"), multiple)


def _check_context_parallel_fits(options: AnimateOptions, transformer_config: dict[str, Any], multiple: int) -> None:
    """Heads, text tokens and the video tokens of one transformer call (a window when windowed) against the split."""
    from ..models.geometry import window_latent_frames
    from ..pipelines.context_parallel import config_problem

    patch = int(transformer_config.get("patch_size", 2))
    spatial = multiple // patch
    frames = options.window if options.windowed else options.num_frames
    latent = (
        window_latent_frames(frames, transformer_config.get("patch_size_t")),
        options.height // spatial,
        options.width // spatial,
    )
    problem = config_problem(transformer_config, **context_parallel_degrees(options), latent_shape=latent)
    if problem is not None:
        raise InputError(
            f"--context-parallel {options.context_parallel} over {launched_processes()} processes: {problem}; "
            "launch another number of processes or change the size"
        )


def _read_json(path: Path) -> dict[str, Any]:
    import json

    return json.loads(path.read_text())


def _fit_pose_frames(frames: npt.NDArray[np.uint8], height: int, width: int) -> npt.NDArray[np.uint8]:
    """Bring rendered pose frames to the output size with the same cover-crop as the reference image."""
    if frames.shape[1:3] == (height, width):
        return frames
    h, w = frames.shape[1:3]
    if not same_aspect(height, width, h, w):
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
    return cover_crop_frames(frames, height, width)


@dataclass
class PreparedInputs:
    """What generation needs besides the model; produced without loading any weights."""

    reference: npt.NDArray[np.uint8]  # [H, W, 3], cropped to the output size
    pose: npt.NDArray[np.uint8]  # [F, H, W, 3], frame 0 = the reference's own pose
    fps: float  # rate at which the pose frames play the motion at real speed
    warnings: list[str] = field(default_factory=list)
    pose_stage: Any = None  # the pose stage's `PreparedPose` with --driving-video


def prepare_inputs(options: AnimateOptions, style: Any = None) -> PreparedInputs:
    """Load and validate the reference image and the pose (rendered, or extracted from a driving video).

    style: the `PoseStyle` the model was trained with; None reads it from `options.model` (no weights read).
    """
    image = load_image(options.image)
    if options.pose_video is not None:
        info = probe_video(options.pose_video)
        if info.num_frames < options.num_frames:
            raise InputError(
                f"pose video {options.pose_video} has {info.num_frames} frames but --frames is {options.num_frames}; "
                f"lower --frames to {((info.num_frames - 1) // 4) * 4 + 1} or give a longer pose video"
            )
        pose, fps = read_video(options.pose_video, max_frames=options.num_frames)
        from ..pose.check import pose_video_warning

        warnings = [w for w in [pose_video_warning(pose)] if w]
        for message in warnings:
            logger.warning("pose check: %s", message)
        pose = _fit_pose_frames(pose, options.height, options.width)
        reference = mask_reference(options, cover_crop(image, options.height, options.width))
        return PreparedInputs(reference, pose, fps, warnings)

    from .pose import run_pose_stage

    if style is None:
        from ..pipelines.loading import model_settings

        style = model_settings(options.model).pose_style
    prepared = run_pose_stage(options, num_frames=options.num_frames, style=style)  # logs its check's warnings
    reference = mask_reference(options, prepared.reference_image)  # the pose is aligned on the unmasked photo
    return PreparedInputs(reference, prepared.frames, prepared.fps, list(prepared.warnings), prepared)


def mask_reference(options: AnimateOptions, reference: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    """The reference as the masked-reference models expect it: black outside the mask (`--mask`, `--mask-image`)."""
    if options.mask == "none" and options.mask_image is None:
        return reference
    from ..pose.segmentation import PersonSegmenter, apply_mask, binarise

    if options.mask_image is not None:
        mask = binarise(cover_crop(load_image(options.mask_image), options.height, options.width)[None])[0]
    else:
        segmenter = PersonSegmenter()
        try:
            mask = segmenter(reference[None])[0]
        finally:
            segmenter.close()
    kept = float((mask[..., 0] > 127).mean())
    if kept < 0.01:
        what = "--mask-image keeps" if options.mask_image is not None else "--mask background found a person in"
        raise InputError(f"{what} only {kept:.1%} of the reference; check the mask (white = keep)")
    return apply_mask(reference, mask)


@dataclass
class LoadedModel:
    """A configured pipeline and the record of what was loaded (reusable across runs, e.g. by the app)."""

    pipeline: Any
    info: Any
    speed: Any = None  # the `acceleration.ResolvedSpeed` of --speed / --cache (its cache is on the transformer)
    memory: Any = None  # the `memory.AppliedMemory` of --memory (with the memory model's estimate)
    guidance_schedule: Any = None  # the `acceleration.GuidanceSchedule` to pass to the pipeline, None: plain


# The options `load_configured_pipeline` reads: runs that agree on all of them can share one `LoadedModel`
# (steps and guidance too: the --speed preset's cache and guidance schedule are resolved from them).
LOAD_FIELDS = (
    "model", "base", "lora", "lora_scale", "device", "dtype", "offload", "vae_tiling", "vae_slicing", "speed",
    "steps", "guidance", "cache", "cache_threshold", "attention_backend", "cpu_threads", "quiet", "memory",
    "compile", "context_parallel",
)  # fmt: skip
AUTO_MEMORY_FIELDS = ("height", "width", "num_frames", "window", "overlap")  # what `--memory auto` plans for


def load_key(options: AnimateOptions) -> tuple:
    """What a loaded pipeline depends on: two runs with the same key can reuse one `LoadedModel`."""
    fields = LOAD_FIELDS + (AUTO_MEMORY_FIELDS if options.memory == "auto" else ())
    return tuple(str(v) if isinstance(v, Path) else v for v in (getattr(options, f) for f in fields))


def load_configured_pipeline(options: AnimateOptions, resolved: Any = None) -> LoadedModel:
    """Load the pipeline and apply the device, dtype, offload, VAE, cache and attention options."""
    import torch

    from ..io.devices import resolve_device, resolve_dtype
    from ..pipelines import acceleration, memory
    from ..pipelines.loading import load_lora, load_pipeline

    device = resolve_device(options.device)
    dtype = resolve_dtype(options.dtype, device)
    pipe, info = load_pipeline(options.model, options.base, torch_dtype=dtype, resolved=resolved)
    if options.lora is not None:
        load_lora(pipe, info, options.lora, options.lora_scale)
    plan = plan_memory(options, pipe, device, dtype)
    memory.apply_memory(pipe, plan, device, dtype)
    acceleration.place(pipe, device, options.offload, keep_on_cpu=memory.kept_on_cpu(plan))
    tiling = options.vae_tiling if plan.vae_tiling is None else plan.vae_tiling
    acceleration.configure_vae(pipe, tiling, options.vae_slicing)
    speed = acceleration.resolve_speed(options.speed, options.steps, options.cache, options.cache_threshold)
    guidance_schedule = acceleration.apply_speed(pipe, speed, options.guidance)
    acceleration.set_attention_backend(pipe, options.attention_backend)
    if options.context_parallel != "none":
        from ..pipelines.context_parallel import enable_context_parallel

        enable_context_parallel(pipe.transformer, **context_parallel_degrees(options))
    if options.compile:  # last: the graphs take in the hooks above
        hooked = speed.cache != "none" or "group_offload" in plan.applied or options.context_parallel != "none"
        acceleration.compile_blocks(pipe, fullgraph=not hooked)
    main = int(os.environ.get("RANK", "0")) == 0 or options.context_parallel == "none"
    pipe.set_progress_bar_config(disable=options.quiet or not main, desc="denoising")
    info.device = device
    if device.type == "cpu":
        # CPU reductions split work by thread: a fixed count makes the same seed give the same video bit for bit.
        torch.set_num_threads(options.cpu_threads or min(4, os.cpu_count() or 1))
    if device.type == "cpu" and dtype != torch.float32:
        logger.warning("%s on the CPU is slow; --dtype float32 is faster there", dtype)
    return LoadedModel(pipe, info, speed=speed, guidance_schedule=guidance_schedule, memory=plan)


def plan_memory(options: AnimateOptions, pipe: Any, device: Any, dtype: Any) -> Any:
    """`--memory` on this device: the memory model's estimate of every preset for this job (from the loaded
    pipeline), `auto` resolved, and which parts apply (`pipelines.memory.plan_memory`)."""
    from ..pipelines import memory

    sizes = memory.ModelSizes.from_modules(pipe.transformer, pipe.vae, pipe.text_encoder)
    job = dict(
        height=options.height,
        width=options.width,
        frames=options.num_frames,
        window=options.window if options.windowed else None,
        guidance=options.guidance > 1.0,
        dtype_bytes=dtype.itemsize,
        vae_tiling=options.vae_tiling,
        device_type=device.type,
    )
    estimates = memory.estimates_for(sizes, **job)
    if options.context_parallel != "none":  # `auto` keeps the transformer on the device (options.py says why)
        estimates = {k: v for k, v in estimates.items() if not memory.MEMORY_PRESETS[k].group_offload}
    return memory.plan_memory(options.memory, estimates, device)


def animate(options: AnimateOptions, model: LoadedModel | None = None) -> AnimateResult:
    """Run one animation job end to end; `model` lets callers reuse a loaded pipeline.

    With `--context-parallel` this is one of the launch's processes: they run the job together (module docstring),
    the main one returns what it wrote, the others a result with `written=False`."""
    plan = preflight(options)
    if options.context_parallel == "none":
        return _run(options, plan, model, state=None)
    from .processes import on_process_device, process_state

    state = process_state(cpu=options.device == "cpu")
    result = _run(on_process_device(options, state), plan, model, state)
    state.destroy_process_group()
    return result


def _run(options: AnimateOptions, plan: OutputPlan, model: LoadedModel | None, state: Any) -> AnimateResult:
    """Check the model, prepare, load, generate and (on the main process) write: `animate`'s steps."""
    timings: dict[str, float] = {}
    resolved = None
    if model is None:
        from ..pipelines.loading import resolve_model

        resolved = resolve_model(options.model, options.base)
        check_model_fits(options, resolved)

    start = time.perf_counter()
    settings = model.info.settings if model is not None else resolved.settings
    with state.main_process_first() if state is not None else contextlib.nullcontext():  # one pose extraction
        inputs = prepare_inputs(options, settings.pose_style)
    fps = options.fps or inputs.fps
    timings["prepare_s"] = time.perf_counter() - start

    start = time.perf_counter()
    if model is None:
        model = load_configured_pipeline(options, resolved)
    timings["load_s"] = time.perf_counter() - start

    start = time.perf_counter()
    frames_u8 = generate(model, options, inputs.reference, inputs.pose)
    timings["generate_s"] = time.perf_counter() - start

    if state is not None and not state.is_main_process:
        state.wait_for_everyone()  # until the main process has written the outputs
        return AnimateResult([], plan.sidecar, frames=frames_u8, warnings=inputs.warnings, written=False)
    result = write_outputs(options, plan, model, inputs, frames_u8, fps, timings)
    if state is not None:
        state.wait_for_everyone()
    return result


def write_outputs(
    options: AnimateOptions,
    plan: OutputPlan,
    model: LoadedModel,
    inputs: PreparedInputs,
    frames_u8: npt.NDArray[np.uint8],
    fps: float,
    timings: dict[str, float],
) -> AnimateResult:
    """Stage every output of `plan` and rename them into place together, the sidecar last."""
    start = time.perf_counter()
    reference, pose, prepared = inputs.reference, inputs.pose, inputs.pose_stage
    result = AnimateResult(videos=[], sidecar=plan.sidecar, frames=frames_u8, warnings=inputs.warnings)
    with StagedOutputs() as staged:
        for path, panel_path, video in zip(
            plan.videos, plan.side_by_side or [None] * len(plan.videos), frames_u8, strict=True
        ):
            write_video(staged.path(path), video, fps)
            result.videos.append(path)
            if panel_path is not None:
                panel = side_by_side(np.repeat(reference[None], len(video), axis=0), pose, video)
                write_video(staged.path(panel_path), panel, fps)
                result.side_by_side.append(panel_path)
        if prepared is not None:
            from ..pose.types import save_keypoints_json

            write_video(staged.path(plan.pose_video), pose, fps)
            save_keypoints_json(staged.path(plan.pose_keypoints), prepared.keypoints, prepared.metadata())
            result.pose_video, result.pose_keypoints = plan.pose_video, plan.pose_keypoints
        if plan.masked_reference is not None:
            save_image(staged.path(plan.masked_reference), reference)
            result.masked_reference = plan.masked_reference
        timings["write_s"] = time.perf_counter() - start
        write_json_atomic(staged.path(plan.sidecar), sidecar(options, model, result, fps, timings, prepared))
    return result


def image_latent_scale(options: AnimateOptions, model: LoadedModel) -> float:
    """The user's `--image-latent-scale`, else the model folder's trained value, else the published convention."""
    override = options.image_latent_scale
    if override is None:
        override = model.info.settings.image_latent_scale
    return model.pipeline.image_latent_scale(override)


def generation_kwargs(options: AnimateOptions, model: LoadedModel) -> dict[str, Any]:
    """The pipeline arguments every generation of `options` shares (everything but image, pose, prompt, seed)."""
    return {
        "negative_prompt": options.negative_prompt,
        "height": options.height,
        "width": options.width,
        "num_frames": options.num_frames,
        "num_inference_steps": options.steps,
        "guidance_scale": options.guidance,
        "output_type": "np",
        "image_latent_scale": image_latent_scale(options, model),
        "pose_control_function": model.info.settings.pose_control_function,
        "guidance_schedule": model.guidance_schedule,
        "window_frames": options.window,
        "overlap_frames": options.overlap,
        "long_video": options.long_video,
        "decode_alignment": options.decode_alignment,
    }


def to_uint8(frames: npt.NDArray[np.floating]) -> npt.NDArray[np.uint8]:
    """The pipeline's `np` output in [0, 1] → uint8 videos."""
    return (np.clip(frames, 0.0, 1.0) * 255.0).round().astype(np.uint8)


def generate(
    model: LoadedModel, options: AnimateOptions, reference: npt.NDArray[np.uint8], pose: npt.NDArray[np.uint8]
) -> npt.NDArray[np.uint8]:
    """Run the pipeline: uint8 videos `[num_videos, F, H, W, 3]`."""
    import torch

    generator = torch.Generator().manual_seed(options.seed)  # CPU generator: the same noise on every device
    kwargs = generation_kwargs(options, model)
    text: dict[str, Any] = {"prompt": options.prompt}
    if model.memory is not None and model.memory.free_text_encoder:  # T5 visits the GPU for this prompt only
        from ..pipelines.memory import encode_prompts

        embeds, negative = encode_prompts(
            model.pipeline, model.info.device, options.prompt, kwargs.pop("negative_prompt"), options.guidance
        )
        text = {"prompt_embeds": embeds, "negative_prompt_embeds": negative}
    frames = model.pipeline(
        image=reference,
        control_video=pose,
        num_videos_per_prompt=options.num_videos,
        generator=generator,
        **text,
        **kwargs,
    ).frames
    return to_uint8(frames)


def _torch_threads() -> int:
    import torch

    return torch.get_num_threads()


def sidecar(
    options: AnimateOptions,
    model: LoadedModel,
    result: AnimateResult,
    fps: float,
    timings: dict[str, float],
    prepared: Any,
) -> dict[str, Any]:
    """The JSON written beside the video: every setting, the seed, the model files, versions, timings."""
    frames = result.frames
    resolved = model.info.model
    data = {
        "dynamictrl_version": __version__,
        "note": options.note,
        "settings": options.to_json(),
        "seed": options.seed,
        "outputs": {
            "videos": [str(p) for p in result.videos],
            "side_by_side": [str(p) for p in result.side_by_side],
            "pose_video": str(result.pose_video) if result.pose_video else None,
            "pose_keypoints": str(result.pose_keypoints) if result.pose_keypoints else None,
            "masked_reference": str(result.masked_reference) if result.masked_reference else None,
            "num_frames": int(frames.shape[1]),
            "height": int(frames.shape[2]),
            "width": int(frames.shape[3]),
            "fps": fps,
        },
        "model": {
            "components": resolved.describe(),
            "sources": resolved.sources,
            "image_latent_scale": image_latent_scale(options, model),
            "lora": str(model.info.lora) if model.info.lora else None,
            "lora_scale": model.info.lora_scale,
        },
        "runtime": {
            "device": str(model.info.device),
            "dtype": str(model.info.dtype).replace("torch.", ""),
            "cpu_threads": _torch_threads(),
            # which of `accelerate launch`'s processes wrote this (`animate --jobs`); 0 of 1 for a plain run
            "process_index": int(os.environ.get("RANK", "0")),
            "num_processes": launched_processes(),
            # the transformer split over those processes (--context-parallel), None: each process its own job
            "context_parallel": (
                {"mode": options.context_parallel, **context_parallel_degrees(options)}
                if options.context_parallel != "none"
                else None
            ),
            "speed": model.speed.to_json() if model.speed is not None else None,
            "memory": model.memory.to_json() if model.memory is not None else None,
            "timings": {k: round(v, 3) for k, v in timings.items()},
        },
        "pose_warnings": result.warnings,
        "versions": package_versions(),
    }
    if prepared is not None:
        data["pose_stage"] = {**prepared.metadata(), "cache_hit": prepared.cache_hit, "timings": prepared.timings}
    return data
