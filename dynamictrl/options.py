"""Every run option declared once (flag, type, default, help, choices, check): the CLI, the app and sidecars read it.

An `Option` is declared in `OPTIONS`. A job's options object (`AnimateOptions`, `PoseOptions`) is a frozen dataclass
whose fields name the options they hold with `use(name)`, so the same thing is spelled the same way everywhere
(`--frames` in `animate` and `pose`, `--strict`, `--pose-backend`...). From a dataclass, `add_arguments(parser, cls)`
builds the argparse flags and `from_args(cls, args)` the object; the object checks every value in `__post_init__`
(NaN and inf included) with messages that name the flag the user typed. Nothing here imports torch: a typo is
refused before any heavy import.

Field names are the keys of the JSON sidecar and stay stable; old flag spellings live on as aliases.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .defaults import PUBLISHED
from .errors import InputError
from .io.devices import DTYPES, parse_device
from .io.hub import BASE_MODEL, DEFAULT_MODEL, KNOWN_MODELS, model_names
from .models.geometry import (
    DECODE_ALIGNMENTS,
    LONG_VIDEO_STRATEGIES,
    MIN_WINDOW_FRAMES,
    TEMPORAL_COMPRESSION,
    default_overlap_frames,
    max_overlap_frames,
    nearest_valid_frames,
)
from .pipelines.acceleration import CACHE_METHODS, OFFLOAD_MODES, SPEED_NAMES, SPEED_PRESETS
from .pipelines.context_parallel import CONTEXT_PARALLEL_MODES
from .pipelines.memory import MEMORY_NAMES, MEMORY_PRESETS
from .pose.align import ALIGN_MODES, PEOPLE_MODES
from .pose.driving import ON_SHORT
from .pose.extract import BACKENDS

Check = Callable[[Any], "str | None"]  # returns what is wrong with a value ("must be > 0"), or None


# ------------------------------------------------------------------------------------------------------ checks
def positive(value: Any) -> str | None:
    return None if value > 0 else "must be > 0"


def non_negative(value: Any) -> str | None:
    return None if value >= 0 else "must be >= 0"


def at_least(low: int) -> Check:
    return lambda value: None if value >= low else f"must be >= {low}"


def multiple_of(step: int) -> Check:
    def check(value: int) -> str | None:
        if value > 0 and value % step == 0:
            return None
        return f"must be a positive multiple of {step} (try {max(step, round(value / step) * step)})"

    return check


def frame_count(value: int) -> str | None:
    if value >= 1 and (value - 1) % TEMPORAL_COMPRESSION == 0:
        return None
    return f"must be {TEMPORAL_COMPRESSION}k+1, e.g. 13, 25, 37 or 49 (try {nearest_valid_frames(value)})"


def window_frame_count(value: int) -> str | None:
    if value < MIN_WINDOW_FRAMES:
        return f"must be at least {MIN_WINDOW_FRAMES}"
    return frame_count(value)


def latent_frame_multiple(value: int) -> str | None:
    if value >= TEMPORAL_COMPRESSION and value % TEMPORAL_COMPRESSION == 0:
        return None
    near = TEMPORAL_COMPRESSION * max(1, round(value / TEMPORAL_COMPRESSION))
    return f"must be a positive multiple of {TEMPORAL_COMPRESSION} (whole latent frames; try {near})"


def device_name(value: str) -> str | None:
    try:
        parse_device(value)
    except InputError:
        return "must be auto, cpu, cuda or cuda:N"
    return None


# ----------------------------------------------------------------------------------------------- declaration
@dataclass(frozen=True)
class Option:
    """One run option. `type` is what a flag's text becomes (int, float, str, Path or bool)."""

    name: str
    flag: str
    type: type
    help: str
    group: str
    default: Any = None
    aliases: tuple[str, ...] = ()
    choices: tuple[str, ...] | None = None
    check: Check | None = None
    required: bool = False
    negate: bool = False  # a True-by-default bool shown as `--no-...` (its `flag`)
    shortcuts: tuple[tuple[str, Any, str], ...] = ()  # (flag, value, help): flags that set a fixed value
    exclusive: str | None = None  # options with the same name here are mutually exclusive
    metavar: str | None = None

    @property
    def flags(self) -> tuple[str, ...]:
        return (self.flag, *self.aliases)

    def parse(self, text: Any) -> Any:
        """A flag's text → a value of `type` (values that already have the type pass through)."""
        if text is None or self.type is bool or isinstance(text, self.type) and not isinstance(text, bool):
            return text
        try:
            return self.type(text)
        except (TypeError, ValueError):
            kind = {int: "an integer", float: "a number"}.get(self.type, self.type.__name__)
            raise InputError(f"{self.flag} must be {kind}, got {text!r}") from None

    def validate(self, value: Any) -> None:
        """Type, finiteness, choices and the option's own check; one-line `InputError` naming the flag."""
        if value is None:
            if self.required and not self.exclusive:  # an exclusive group's own rule says which one is needed
                raise InputError(f"{self.flag} is required")
            return
        if self.type is bool:
            ok = isinstance(value, bool)
        elif self.type is float:
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        elif self.type is Path:
            ok = isinstance(value, (str, Path))
        else:
            ok = isinstance(value, self.type) and not isinstance(value, bool)
        if not ok:
            raise InputError(f"{self.flag} must be {self.type.__name__}, got {value!r}")
        if isinstance(value, float) and not math.isfinite(value):
            raise InputError(f"{self.flag} must be a finite number, got {value}")
        if self.choices is not None and value not in self.choices:
            raise InputError(f"{self.flag} must be one of {', '.join(self.choices)}, got {value!r}")
        problem = self.check(value) if self.check else None
        if problem:
            raise InputError(f"{self.flag} {problem}, got {value!r}")


def _models_help() -> str:
    return "; ".join(f"{name}: {KNOWN_MODELS[name].description}" for name in model_names())


IO, GEN, MEM, POSE = "inputs and outputs", "generation", "memory and speed", "pose extraction (with --driving-video)"
JOBS = "many jobs (--jobs)"

_DECLARED = [
    # inputs and outputs
    Option("image", "--image", Path, "reference image: a photo of the person", IO, aliases=("--reference-image",)),
    Option(
        "pose_video",
        "--pose-video",
        Path,
        "rendered pose video (frame 0 = the reference's pose)",
        IO,
        exclusive="pose source",
    ),
    Option(
        "driving_video", "--driving-video", Path, "video of a person whose motion to copy", IO, exclusive="pose source"
    ),
    Option("prompt", "--prompt", str, "describe the person's appearance AND the background", IO),
    Option(
        "negative_prompt",
        "--negative-prompt",
        str,
        'negative prompt ("" as published)',
        IO,
        default=PUBLISHED.negative_prompt,
    ),
    Option("out", "--out", Path, "output .mp4 (default: outputs/<image>_<pose>_seed<seed>.mp4)", IO),
    Option("out_dir", "--out-dir", Path, "folder for the demo's outputs", IO, default=Path("outputs") / "demo"),
    Option(
        "example",
        "--example",
        str,
        "synthetic: a held-out character and motion; real: a held-out character driven by the motion of a real "
        "dance video",
        IO,
        default="synthetic",
        choices=("synthetic", "real"),
    ),
    Option(
        "mask",
        "--mask",
        str,
        "background: black out the reference's background (for dynamictrl-mask-b01; the "
        "prompt then names the new background)",
        IO,
        default="none",
        choices=("none", "background"),
    ),
    Option(
        "mask_image",
        "--mask-image",
        Path,
        "a mask for the reference (white = keep), e.g. everything but the clothes for dynamictrl-mask-c01",
        IO,
    ),
    Option("side_by_side", "--side-by-side", bool, "also write OUT_side_by_side.mp4", IO, default=False),
    Option("keypoints", "--keypoints", Path, "keypoints JSON to write (default: --out with .json)", IO),
    Option(
        "reference_out",
        "--reference-out",
        Path,
        "also save the cropped reference image that generation uses (.png)",
        IO,
    ),
    # generation
    Option("model", "--model", str, f"local folder, hub id or name ({_models_help()})", GEN, default=DEFAULT_MODEL),
    Option("base", "--base", str, "where missing VAE/T5/tokenizer/scheduler come from", GEN, default=BASE_MODEL),
    Option("lora", "--lora", Path, "a LoRA folder written by `dynamictrl train` (or any diffusers-format LoRA)", GEN),
    Option("lora_scale", "--lora-scale", float, "LoRA strength (0: the base model)", GEN, default=1.0),
    Option(
        "num_frames",
        "--frames",
        int,
        "frames, 4k+1; frame 0 is the reference pose",
        GEN,
        default=PUBLISHED.num_frames,
        aliases=("--num-frames",),
        check=frame_count,
    ),
    Option("height", "--height", int, "output height, multiple of 16", GEN, PUBLISHED.height, check=multiple_of(16)),
    Option("width", "--width", int, "output width, multiple of 16", GEN, PUBLISHED.width, check=multiple_of(16)),
    Option("steps", "--steps", int, "denoising steps", GEN, PUBLISHED.steps, check=at_least(1)),
    Option("guidance", "--guidance", float, "text guidance scale", GEN, PUBLISHED.guidance, check=non_negative),
    Option("seed", "--seed", int, "random seed", GEN, PUBLISHED.seed, check=non_negative),
    Option(
        "fps",
        "--fps",
        float,
        "frame rate of the written video (default: the pose/driving video's, so the motion "
        f"plays at real speed; the published script always wrote {PUBLISHED.fps:g})",
        GEN,
        check=positive,
    ),
    Option("num_videos", "--num-videos", int, "videos per run, different noise", GEN, 1, check=at_least(1)),
    Option(
        "image_latent_scale",
        "--image-latent-scale",
        float,
        "scale of the reference-image latent (default: the "
        "model folder's dynamictrl.json, else the published pipeline's: 1.0 for the 1.5 VAE; training used 0.7, "
        "stock diffusers 1/0.7)",
        GEN,
        check=positive,
    ),
    Option(
        "window",
        "--window",
        int,
        "long videos: --frames beyond this many are generated in overlapping windows of this many frames, 4k+1 "
        "(the clip length the model was trained on)",
        GEN,
        default=PUBLISHED.num_frames,
        check=window_frame_count,
    ),
    Option(
        "overlap",
        "--overlap",
        int,
        "long videos: frames shared by consecutive windows, a multiple of 4 (default: about a quarter of --window, "
        f"{default_overlap_frames(PUBLISHED.num_frames)} of {PUBLISHED.num_frames})",
        GEN,
        check=latent_frame_multiple,
    ),
    Option(
        "long_video",
        "--long-video",
        str,
        "long videos: windows (denoised together, fused over the overlaps at every step) or chain (segment after "
        "segment, each continuing from the last frames of the one before)",
        GEN,
        default="windows",
        choices=LONG_VIDEO_STRATEGIES,
    ),
    Option(
        "decode_alignment",
        "--decode-alignment",
        str,
        "aligned: frame t of the video follows pose t; published: decode as the published code does (for "
        "8k+5 frames it holds the reference for 4 frames and shows every later pose 3 frames late)",
        GEN,
        default="aligned",
        choices=DECODE_ALIGNMENTS,
    ),
    # memory and speed
    Option("device", "--device", str, "auto, cpu, cuda or cuda:N", MEM, default="auto", check=device_name),
    Option(
        "cpu_threads",
        "--cpu-threads",
        int,
        "torch threads on the CPU (default: min(4, cores)); the same count gives the same video bit for bit",
        MEM,
        check=at_least(1),
    ),
    Option("dtype", "--dtype", str, "auto: bfloat16 on GPU, float32 on CPU", MEM, default="auto", choices=DTYPES),
    Option(
        "offload",
        "--offload",
        str,
        "CPU offload: model (one model on the GPU at a time) or sequential (least memory, slowest)",
        MEM,
        default="none",
        choices=OFFLOAD_MODES,
    ),
    Option(
        "memory",
        "--memory",
        str,
        "memory preset: "
        + "; ".join(f"{p.name}: {p.description}" for p in MEMORY_PRESETS.values())
        + "; auto: the first of 80gb..12gb the memory model predicts to fit (parts a device cannot use are skipped, "
        "with one line)",
        MEM,
        default="none",
        choices=MEMORY_NAMES,
    ),
    Option("vae_tiling", "--no-vae-tiling", bool, "decode in one piece", MEM, default=True, negate=True),
    Option("vae_slicing", "--no-vae-slicing", bool, "decode the batch at once", MEM, default=True, negate=True),
    Option(
        "speed",
        "--speed",
        str,
        "speed preset: " + "; ".join(f"{p.name}: {p.description}" for p in SPEED_PRESETS.values()),
        MEM,
        default="exact",
        choices=SPEED_NAMES,
    ),
    Option(
        "cache",
        "--cache",
        str,
        "diffusers step cache; given, it replaces the --speed preset's (default: the preset's, none for exact)",
        MEM,
        choices=CACHE_METHODS,
    ),
    Option("cache_threshold", "--cache-threshold", float, "first-block cache threshold (0.1)", MEM, check=positive),
    Option("attention_backend", "--attention-backend", str, "diffusers attention backend, e.g. flash, sage", MEM),
    Option(
        "compile",
        "--compile",
        bool,
        "torch.compile the transformer blocks (regional: one block's graph serves all; the first step pays the "
        "compile, about a minute for the small model on the CPU, which needs a C++ compiler)",
        MEM,
        default=False,
    ),
    Option(
        "context_parallel",
        "--context-parallel",
        str,
        "split one video's transformer over the processes of `accelerate launch --num_processes N` (N GPUs): "
        "ulysses (attention heads exchanged; N must divide the heads) or ring (key/value blocks passed round; needs "
        "an attention backend with log-sum-exp, e.g. flash); every process runs the same job, the main one writes",
        MEM,
        default="none",
        choices=CONTEXT_PARALLEL_MODES,
    ),
    # pose stage
    Option(
        "pose_backend",
        "--pose-backend",
        str,
        "; ".join(f"{k}: {v}" for k, v in BACKENDS.items()),
        POSE,
        default="auto",
        aliases=("--backend",),
        choices=tuple(BACKENDS),
    ),
    Option(
        "pose_model_dir", "--pose-model-dir", Path, "folder with the DWPose ONNX files (default: the hub cache)", POSE
    ),
    Option(
        "driving_fps",
        "--driving-fps",
        float,
        "resample the driving video to this rate first (default: its own)",
        POSE,
        check=positive,
    ),
    Option("start", "--start", int, "first driving frame, after resampling", POSE, 0, check=non_negative),
    Option("stride", "--stride", int, "take every N-th driving frame, after resampling", POSE, 1, check=at_least(1)),
    Option(
        "on_short",
        "--on-short",
        str,
        "when the driving video is too short",
        POSE,
        default="error",
        choices=ON_SHORT,
        shortcuts=(
            ("--loop", "loop", "too few driving frames: repeat them from the start"),
            ("--hold-last", "hold-last", "too few driving frames: repeat the last one"),
        ),
    ),
    Option(
        "align",
        "--align",
        str,
        "linear: the published global rescale; none: draw the driving pose as it is",
        POSE,
        default="linear",
        choices=ALIGN_MODES,
    ),
    Option("people", "--people", str, "draw every person or the main one", POSE, "all", choices=PEOPLE_MODES),
    Option("smooth", "--smooth", float, "temporal smoothing sigma in frames (0: off)", POSE, 0.0, check=non_negative),
    Option("retarget", "--retarget", bool, "rescale each limb to the reference person's proportions", POSE, False),
    Option("strict_pose", "--strict", bool, "refuse to go on when the pose check warns", POSE, default=False),
    Option(
        "pose_cache_dir",
        "--pose-cache-dir",
        Path,
        "pose cache folder (default: ~/.cache/dynamictrl/pose)",
        POSE,
        aliases=("--cache-dir",),
    ),
    Option(
        "pose_cache",
        "--no-pose-cache",
        bool,
        "extract again and do not store the result",
        POSE,
        default=True,
        negate=True,
        aliases=("--no-cache",),
    ),
    # many jobs
    Option(
        "jobs",
        "--jobs",
        Path,
        "run every job of this .jsonl file (one JSON object of animate options a line; the flags given here are "
        "every line's defaults), sharded over the processes of `accelerate launch`; finished jobs are skipped",
        JOBS,
        metavar="FILE",
    ),
    Option(
        "jobs_summary",
        "--jobs-summary",
        Path,
        "where --jobs writes its JSON summary (default: the jobs file with .summary.json)",
        JOBS,
        metavar="PATH",
    ),
]
OPTIONS: dict[str, Option] = {option.name: option for option in _DECLARED}


def use(name: str, **overrides: Any) -> Any:
    """A dataclass field holding option `name` (with per-job `overrides`, e.g. `required=True`, `default=None`)."""
    option = dataclasses.replace(OPTIONS[name], **overrides) if overrides else OPTIONS[name]
    return dataclasses.field(default=option.default, metadata={"option": option})


def internal(default: Any = None) -> Any:
    """A field with no flag (set by the program: the demo's note, `--quiet` of the main parser)."""
    return dataclasses.field(default=default)


def options_of(cls: type) -> list[tuple[str, Option]]:
    """(field name, option) for every field of a job's options class that has a flag."""
    return [(f.name, f.metadata["option"]) for f in dataclasses.fields(cls) if "option" in f.metadata]


class JobOptions:
    """Base of the job option dataclasses: checks every declared field, then the job's own rules."""

    def __post_init__(self) -> None:
        for name, option in options_of(type(self)):
            option.validate(getattr(self, name))
        self.check()

    def check(self) -> None:
        """Rules between fields (subclasses)."""

    def to_json(self) -> dict[str, Any]:
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in dataclasses.asdict(self).items()}


# --------------------------------------------------------------------------------------------------- argparse
def _help(option: Option) -> str:
    if option.type is bool or option.default in (None, ""):
        return option.help
    return f"{option.help} (default: {option.default})"


def add_arguments(
    parser: argparse.ArgumentParser,
    cls: type,
    extra_aliases: dict[str, Sequence[str]] | None = None,
    enforce_required: bool = True,
) -> None:
    """Add a flag for every option field of `cls`, in declaration order, grouped as declared.

    Values are parsed and checked by the options object, not by argparse (whose errors are a usage dump), and
    flags the user did not give are left out of the namespace so that the dataclass defaults apply.
    `enforce_required=False` leaves required flags to the options object ("--image is required", one line), for a
    command where another flag can supply them (`animate --jobs`).
    """
    groups: dict[str, Any] = {}
    exclusive: dict[str, Any] = {}
    order = list(dict.fromkeys(option.group for option in _DECLARED))
    for name, option in sorted(options_of(cls), key=lambda item: order.index(item[1].group)):
        group = groups.get(option.group) or groups.setdefault(option.group, parser.add_argument_group(option.group))
        if option.exclusive:
            target = exclusive.get(option.exclusive)
            if target is None:
                required = enforce_required and any(
                    o.required for _, o in options_of(cls) if o.exclusive == option.exclusive
                )
                target = exclusive.setdefault(option.exclusive, group.add_mutually_exclusive_group(required=required))
        elif option.shortcuts:
            target = group.add_mutually_exclusive_group()
        else:
            target = group
        flags = [*option.flags, *(extra_aliases or {}).get(name, ())]
        common = {"dest": name, "default": argparse.SUPPRESS, "help": _help(option)}
        if option.type is bool:
            target.add_argument(*flags, action="store_false" if option.negate else "store_true", **common)
        else:
            metavar = option.metavar or ("{" + ",".join(option.choices) + "}" if option.choices else None)
            required = enforce_required and option.required and not option.exclusive
            target.add_argument(*flags, required=required, metavar=metavar or name.upper(), **common)
        for flag, value, text in option.shortcuts:
            target.add_argument(
                flag, dest=name, action="store_const", const=value, default=argparse.SUPPRESS, help=text
            )


def from_args(cls: type, args: argparse.Namespace, **extra: Any) -> Any:
    """The options object for the flags in `args` (as `add_arguments` declared them) plus `extra` fields."""
    values = {name: option.parse(getattr(args, name)) for name, option in options_of(cls) if hasattr(args, name)}
    return cls(**values, **extra)


# ------------------------------------------------------------------------------------------------ job options
def _suffix(options: Any, name: str, suffixes: tuple[str, ...]) -> None:
    value = getattr(options, name)
    if value is not None and Path(value).suffix.lower() not in suffixes:
        raise InputError(f"{OPTIONS[name].flag} must end in {' or '.join(suffixes)}, got {value}")


@dataclass(frozen=True, kw_only=True)
class PoseStageOptions(JobOptions):
    """The pose-stage fields `animate --driving-video` and `pose` share (`jobs.pose.run_pose_stage` reads them)."""

    pose_backend: str = use("pose_backend")
    pose_model_dir: Path | None = use("pose_model_dir")
    driving_fps: float | None = use("driving_fps")
    start: int = use("start")
    stride: int = use("stride")
    on_short: str = use("on_short")
    align: str = use("align")
    people: str = use("people")
    smooth: float = use("smooth")
    retarget: bool = use("retarget")
    strict_pose: bool = use("strict_pose")
    pose_cache_dir: Path | None = use("pose_cache_dir")
    pose_cache: bool = use("pose_cache")


@dataclass(frozen=True, kw_only=True)
class AnimateOptions(PoseStageOptions):
    """Every setting of one animation run (`dynamictrl animate`); saved verbatim in the JSON sidecar.

    Defaults are the published recommendation (`dynamictrl.defaults.PUBLISHED`). The pose-stage fields apply with
    `driving_video` only.
    """

    image: Path = use("image", required=True)
    pose_video: Path | None = use("pose_video", required=True)
    driving_video: Path | None = use("driving_video")
    prompt: str = use("prompt", required=True)
    negative_prompt: str = use("negative_prompt")
    out: Path | None = use("out")
    mask: str = use("mask")
    mask_image: Path | None = use("mask_image")
    side_by_side: bool = use("side_by_side")
    model: str = use("model")
    base: str = use("base")
    lora: Path | None = use("lora")
    lora_scale: float = use("lora_scale")
    num_frames: int = use("num_frames")
    height: int = use("height")
    width: int = use("width")
    steps: int = use("steps")
    guidance: float = use("guidance")
    seed: int = use("seed")
    fps: float | None = use("fps")  # None: the pose/driving video's rate, so the motion plays at real speed
    num_videos: int = use("num_videos")
    image_latent_scale: float | None = use("image_latent_scale")
    window: int = use("window")
    overlap: int | None = use("overlap")  # None: about a quarter of the window, set by check()
    long_video: str = use("long_video")
    decode_alignment: str = use("decode_alignment")
    device: str = use("device")
    cpu_threads: int | None = use("cpu_threads")
    dtype: str = use("dtype")
    offload: str = use("offload")
    vae_tiling: bool = use("vae_tiling")
    vae_slicing: bool = use("vae_slicing")
    memory: str = use("memory")
    speed: str = use("speed")
    cache: str | None = use("cache")  # None: the --speed preset's cache
    cache_threshold: float | None = use("cache_threshold")
    attention_backend: str | None = use("attention_backend")
    compile: bool = use("compile")
    context_parallel: str = use("context_parallel")
    note: str | None = internal()  # shown in the sidecar, e.g. "tiny random model" for the demo
    quiet: bool = internal(False)

    def check(self) -> None:
        if (self.pose_video is None) == (self.driving_video is None):
            raise InputError("give exactly one of --pose-video (a rendered pose video) or --driving-video")
        if self.mask != "none" and self.mask_image is not None:
            raise InputError("give --mask background or --mask-image, not both")
        if self.out is None:  # frozen: the derived default is set once, here
            pose = self.pose_video or self.driving_video
            name = f"{Path(self.image).stem}_{Path(pose).stem}_seed{self.seed}.mp4"
            object.__setattr__(self, "out", Path("outputs") / name)
        _suffix(self, "out", (".mp4",))
        if self.overlap is None:  # frozen: resolved once, so the sidecar records the overlap used
            object.__setattr__(self, "overlap", default_overlap_frames(self.window))
        if self.overlap > max_overlap_frames(self.window):
            raise InputError(
                f"--overlap {self.overlap} leaves no new frames in a --window of {self.window}; use at most "
                f"{max_overlap_frames(self.window)}"
            )
        if self.context_parallel != "none":
            self._check_context_parallel()

    def _check_context_parallel(self) -> None:
        """What cannot share one video between processes: offloading moves weights between devices under the
        split, and the first-block cache decides on each process's own shard (they would disagree and hang)."""
        flag = f"--context-parallel {self.context_parallel}"
        if self.offload != "none":
            raise InputError(f"{flag} cannot run with --offload {self.offload}; drop --offload")
        if MEMORY_PRESETS.get(self.memory) is not None and MEMORY_PRESETS[self.memory].group_offload:
            raise InputError(
                f"{flag} cannot run with --memory {self.memory}, which streams the transformer from the CPU "
                "(group offload); use --memory 24gb or more, or split the video over more processes instead"
            )
        cache = self.cache if self.cache is not None else SPEED_PRESETS[self.speed].cache
        if cache == "first-block":
            raise InputError(
                f"{flag} cannot run with the first-block cache: each process would decide to skip on its own shard; "
                "use --speed fast or --cache taylorseer"
            )

    @property
    def windowed(self) -> bool:
        """Whether `num_frames` is beyond one window (generated as a long video, `--long-video`)."""
        return self.num_frames > self.window

    def output_paths(self) -> list[Path]:
        """The generated videos: OUT, or OUT_0, OUT_1, ... with `num_videos` > 1."""
        out = Path(self.out)
        if self.num_videos == 1:
            return [out]
        return [out.with_name(f"{out.stem}_{i}{out.suffix}") for i in range(self.num_videos)]


@dataclass(frozen=True, kw_only=True)
class JobsOptions(JobOptions):
    """`dynamictrl animate --jobs FILE`: many animations from a JSON-lines file (`jobs.batch.run_jobs`).

    The animate flags given beside `--jobs` are not here: they are every line's defaults, read by the batch.
    """

    jobs: Path = use("jobs", required=True)
    jobs_summary: Path | None = use("jobs_summary")

    def check(self) -> None:
        _suffix(self, "jobs", (".jsonl",))
        if self.jobs_summary is None:  # frozen: the derived default is set once, here
            jobs = Path(self.jobs)
            object.__setattr__(self, "jobs_summary", jobs.with_name(f"{jobs.stem}.summary.json"))
        _suffix(self, "jobs_summary", (".json",))


@dataclass(frozen=True, kw_only=True)
class PoseOptions(PoseStageOptions):
    """Every setting of `dynamictrl pose` (driving video + reference image → aligned pose video and keypoints)."""

    image: Path = use("image", required=True)
    driving_video: Path = use("driving_video", required=True, exclusive=None)
    out: Path = use("out", required=True, help="pose video to write (.mp4)")
    keypoints: Path | None = use("keypoints")
    reference_out: Path | None = use("reference_out")
    height: int = use("height")
    width: int = use("width")
    num_frames: int | None = use(
        "num_frames",
        default=None,
        help="frames of the pose video, reference pose included, 4k+1 for generation "
        "(default: every selected driving frame + 1)",
        check=at_least(1),
    )
    device: str = use("device")
    model: str | None = use(
        "model",
        default=None,
        help="draw the skeletons as this model was trained to see them (its dynamictrl.json pose_render; no weights "
        "are read); default: the published drawing",
    )
    quiet: bool = internal(False)

    def check(self) -> None:
        _suffix(self, "out", (".mp4",))
        if self.keypoints is None:
            object.__setattr__(self, "keypoints", Path(self.out).with_suffix(".json"))
        _suffix(self, "keypoints", (".json",))
        _suffix(self, "reference_out", (".png", ".jpg", ".jpeg", ".webp"))


@dataclass(frozen=True, kw_only=True)
class DemoOptions(JobOptions):
    """`dynamictrl demo`: the bundled small model animates a held-out synthetic character (docs/small_model.md)."""

    out_dir: Path = use("out_dir")
    example: str = use("example")
    model: str | None = use(
        "model", default=None, help="pipeline folder to animate with (default: the bundled small model)"
    )
    num_frames: int = use("num_frames", default=21, help="frames, 4k+1 (default 21: the small model's training clips)")
    steps: int = use("steps")
    guidance: float = use("guidance")
    seed: int = use("seed")
    quiet: bool = internal(False)
