"""Training run options: one frozen dataclass, read from YAML, overridden by flags, checked before any model loads.

Every field carries its help text (`metadata["help"]`); the CLI builds its flags from them and docs/training.md
lists them all. Choices are tables (str-Enums) whose errors list the valid values. Defaults follow the published
recipe (the published code's `docs/finetune.md` and `accelerate_configs/`) where it is sound, with its bugs fixed
(docs/training.md): per-sample image dropout, fp32
v-prediction loss, flips applied to video, pose and reference together.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import re
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..models.configs import POSE_CONTROL_FUNCTIONS

VALIDATION_PATH_KEYS = ("validation_images", "validation_poses", "validation_videos")


class TrainMode(str, enum.Enum):
    FULL = "full"  # every transformer parameter
    LORA = "lora"  # LoRA on the attention projections + full-rank LoRA on control_norm1.linear


class Init(str, enum.Enum):
    DYNAMICTRL = "dynamictrl"  # `model` holds DynamiCtrl weights (control_norm1 included)
    COGVIDEOX = "cogvideox"  # `model` is a stock CogVideoX-1.5 I2V: PadaLN starts at default (or zero) init


class Optimizer(str, enum.Enum):
    ADAMW = "adamw"
    ADAM = "adam"


class MixedPrecision(str, enum.Enum):
    NO = "no"
    FP16 = "fp16"
    BF16 = "bf16"


# diffusers.optimization.get_scheduler names.
LR_SCHEDULERS = (
    "constant",
    "constant_with_warmup",
    "linear",
    "cosine",
    "cosine_with_restarts",
    "polynomial",
    "piecewise_constant",
)


def _choice(enum_cls: type[enum.Enum], value: Any, key: str) -> enum.Enum:
    try:
        return enum_cls(value.value if isinstance(value, enum.Enum) else value)
    except ValueError:
        valid = ", ".join(m.value for m in enum_cls)
        raise InputError(f"{key}: unknown value {value!r}; choose one of {valid}") from None


def _help(text: str, **extra: Any) -> dict[str, Any]:
    return {"help": text, **extra}


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run needs. Paths are resolved relative to the YAML file's folder."""

    # ---- model
    model: str = field(metadata=_help("local pipeline folder in the released layout (transformer/, vae/, ...)"))
    output_dir: Path = field(metadata=_help("where checkpoints, logs and the final weights go"))
    data_root: Path = field(metadata=_help("dataset folder holding the manifest (data/manifest.py format)"))
    init: Init = field(
        default=Init.DYNAMICTRL,
        metadata=_help("dynamictrl: model has DynamiCtrl weights; cogvideox: start from a stock CogVideoX-1.5 I2V"),
    )
    zero_init_pose: bool = field(
        default=False,
        metadata=_help(
            "zero every control_norm1 (linear and LayerNorm affine) so the model starts exactly as its base; "
            "only with init: cogvideox and mode: full"
        ),
    )
    # ---- data
    manifest: str = field(
        default="manifest.jsonl",
        metadata=_help("manifest file name inside data_root; several, comma-separated, are read in order"),
    )
    frames: int = field(default=37, metadata=_help("frames per clip, 8k+5 (13, 21, 29, 37, 45...)"))
    height: int = field(default=1360, metadata=_help("training height in px, multiple of 16"))
    width: int = field(default=768, metadata=_help("training width in px, multiple of 16"))
    buckets: tuple[str, ...] = field(
        default=(),
        metadata=_help(
            "training shapes: 'manifest' (each clip's own size, its frames cut to 8k+5) or FRAMESxHEIGHTxWIDTH,... "
            "(each clip at the nearest aspect it fills); empty: every clip at frames x height x width"
        ),
    )
    flip: float = field(default=0.0, metadata=_help("probability of a horizontal flip of video, pose and reference"))
    cache_dir: Path | None = field(
        default=None, metadata=_help("latent/T5 cache folder (VAE posterior moments, prompt embeddings); off if unset")
    )
    num_workers: int = field(default=0, metadata=_help("DataLoader worker processes"))
    encode_group: int = field(
        default=1,
        metadata=_help(
            "clips per VAE call when encoding uncached clips (padded to this many, so a clip's latents never depend "
            "on its batch companions or the process count); 4-8 is about 2.6x faster per clip on the CPU"
        ),
    )
    # ---- conditioning (published recipe)
    image_noise: bool = field(
        default=True,
        metadata=_help("pixel-noise augmentation of the reference (off: its latents can be cached too)"),
    )
    image_noise_mean: float = field(default=-3.0, metadata=_help("log-mean of the reference's pixel-noise sigma"))
    image_noise_std: float = field(default=0.5, metadata=_help("log-std of the reference's pixel-noise sigma"))
    image_dropout: float = field(default=0.05, metadata=_help("per-sample probability of a zero image latent"))
    caption_dropout: float = field(default=0.0, metadata=_help("per-sample probability of the empty prompt"))
    pose_dropout: float = field(default=0.0, metadata=_help("per-sample probability of a zero pose latent"))
    pose_control_function: str = field(
        default="padaln",
        metadata=_help(
            "how the pose enters: padaln (the published method) or direct (the paper's ablation: added once at the "
            "input; the model must then be run with the same setting)"
        ),
    )
    image_latent_scale: float | None = field(
        default=None,
        metadata=_help("scale of the image latent (default: the VAE scaling_factor, 0.7, as published training)"),
    )
    id_token: str = field(default="", metadata=_help("text prepended to every caption (the recipe's BW_STYLE)"))
    # ---- optimisation
    mode: TrainMode = field(default=TrainMode.FULL, metadata=_help("full or lora"))
    lora_rank: int = field(default=64, metadata=_help("LoRA rank of the attention projections"))
    lora_alpha: float = field(default=64.0, metadata=_help("LoRA alpha (scale = alpha / rank)"))
    lora_targets: tuple[str, ...] = field(
        default=("to_q", "to_k", "to_v", "to_out.0"), metadata=_help("module names LoRA is applied to")
    )
    optimizer: Optimizer = field(default=Optimizer.ADAMW, metadata=_help("adamw or adam"))
    learning_rate: float = field(default=5e-6, metadata=_help("peak learning rate", flags=("--lr",)))
    beta1: float = field(default=0.9, metadata=_help("Adam beta1"))
    beta2: float = field(default=0.95, metadata=_help("Adam beta2"))
    weight_decay: float = field(default=1e-3, metadata=_help("weight decay"))
    epsilon: float = field(default=1e-8, metadata=_help("Adam epsilon"))
    lr_scheduler: str = field(default="cosine_with_restarts", metadata=_help("diffusers get_scheduler name"))
    lr_warmup_steps: int = field(default=1000, metadata=_help("linear warm-up steps"))
    lr_num_cycles: int = field(default=1, metadata=_help("cycles of cosine_with_restarts"))
    lr_power: float = field(default=1.0, metadata=_help("power of the polynomial schedule"))
    max_steps: int = field(default=50000, metadata=_help("optimizer steps to train"))
    batch_size: int = field(default=1, metadata=_help("clips per process per micro-batch"))
    gradient_accumulation_steps: int = field(default=1, metadata=_help("micro-batches per optimizer step"))
    max_grad_norm: float = field(default=1.0, metadata=_help("gradient clipping norm (0: off)"))
    gradient_checkpointing: bool = field(default=False, metadata=_help("recompute blocks in backward"))
    mixed_precision: MixedPrecision = field(default=MixedPrecision.NO, metadata=_help("no, fp16 or bf16"))
    allow_tf32: bool = field(default=False, metadata=_help("TF32 matmuls on Ampere+ GPUs"))
    vae_tiling: bool = field(default=False, metadata=_help("encode videos with VAE tiling (less memory)"))
    seed: int = field(default=0, metadata=_help("seed of data order, augmentation and noise"))
    # ---- checkpoints and logs
    checkpoint_every: int = field(default=1000, metadata=_help("save a resumable checkpoint every N steps (0: off)"))
    checkpoints_keep: int | None = field(default=3, metadata=_help("keep the last K checkpoints (null: all)"))
    resume: str | None = field(default=None, metadata=_help("'latest' or a checkpoint folder to resume from"))
    log_every: int = field(default=1, metadata=_help("write metrics every N steps"))
    # ---- validation (training/validation.py)
    validation_steps: int = field(
        default=0, metadata=_help("generate and score the validation set every N steps (0: off)")
    )
    validation_count: int = field(
        default=2, metadata=_help("without validation_prompts: validate on the first N training clips")
    )
    validation_prompts: tuple[str, ...] = field(
        default=(), metadata=_help("fixed validation prompts (a YAML list; a flag gives one prompt)")
    )
    validation_images: tuple[str, ...] = field(
        default=(), metadata=_help("reference image of each validation prompt (comma-separated as a flag)")
    )
    validation_poses: tuple[str, ...] = field(
        default=(), metadata=_help("pose video of each validation prompt (cover-cropped to height x width)")
    )
    validation_videos: tuple[str, ...] = field(
        default=(), metadata=_help("optional ground-truth clip of each validation prompt (for PSNR/SSIM)")
    )
    validation_inference_steps: int = field(default=25, metadata=_help("denoising steps of validation videos"))
    validation_guidance_scale: float = field(default=3.0, metadata=_help("CFG scale of validation videos"))
    quiet: bool = field(default=False, metadata=_help("no progress bar"))

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "init", _choice(Init, self.init, "init"))
        set_(self, "mode", _choice(TrainMode, self.mode, "mode"))
        set_(self, "optimizer", _choice(Optimizer, self.optimizer, "optimizer"))
        set_(self, "mixed_precision", _choice(MixedPrecision, self.mixed_precision, "mixed_precision"))
        set_(self, "output_dir", Path(self.output_dir))
        set_(self, "data_root", Path(self.data_root))
        if self.cache_dir is not None:
            set_(self, "cache_dir", Path(self.cache_dir))
        for key in ("lora_targets", "buckets", *VALIDATION_PATH_KEYS):
            value = getattr(self, key)
            if isinstance(value, str):
                set_(self, key, tuple(t.strip() for t in value.split(",") if t.strip()))
            else:
                set_(self, key, tuple(str(v) for v in value))
        prompts = self.validation_prompts
        set_(self, "validation_prompts", (prompts,) if isinstance(prompts, str) else tuple(map(str, prompts)))
        if self.lr_scheduler not in LR_SCHEDULERS:
            raise InputError(
                f"lr_scheduler: unknown value {self.lr_scheduler!r}; choose one of {', '.join(LR_SCHEDULERS)}"
            )
        if self.frames < 5 or (self.frames - 1) % 4:
            k = max(1, round((self.frames - 1) / 8))
            raise InputError(
                f"frames must be 4k+1 for the VAE (and 8k+5 for training), got {self.frames}; try {8 * k + 5}"
            )
        if ((self.frames - 1) // 4 + 1) % 2:
            raise InputError(
                f"frames={self.frames} encodes to an odd number of latent frames, which the temporal patch size 2 "
                f"cannot split; use 8k+5 frames, e.g. {self.frames - 4} or {self.frames + 4}"
            )
        for key in ("height", "width"):
            value = getattr(self, key)
            if value < 16 or value % 16:
                raise InputError(f"{key} must be a positive multiple of 16, got {value}")
        if self.buckets:
            from ..data.buckets import parse_buckets

            parse_buckets(self.buckets)  # 'manifest' is checked against the manifest (Trainer.check)
        if self.pose_control_function not in POSE_CONTROL_FUNCTIONS:
            raise InputError(
                f"pose_control_function must be one of {', '.join(POSE_CONTROL_FUNCTIONS)}, got "
                f"{self.pose_control_function!r}"
            )
        for key in ("flip", "image_dropout", "caption_dropout", "pose_dropout"):
            value = getattr(self, key)
            if not 0.0 <= value <= 1.0:
                raise InputError(f"{key} is a probability in [0, 1], got {value}")
        positive = (
            "max_steps",
            "batch_size",
            "gradient_accumulation_steps",
            "lora_rank",
            "log_every",
            "encode_group",
            "validation_count",
            "validation_inference_steps",
        )
        for key in positive:
            if getattr(self, key) < 1:
                raise InputError(f"{key} must be 1 or more, got {getattr(self, key)}")
        for key in ("lr_warmup_steps", "checkpoint_every", "num_workers", "validation_steps"):
            if getattr(self, key) < 0:
                raise InputError(f"{key} must be 0 or more, got {getattr(self, key)}")
        if self.checkpoints_keep is not None and self.checkpoints_keep < 1:
            raise InputError(f"checkpoints_keep must be 1 or more (or null for all), got {self.checkpoints_keep}")
        if self.learning_rate <= 0 or self.max_grad_norm < 0 or self.image_noise_std < 0:
            raise InputError("learning_rate must be > 0, max_grad_norm and image_noise_std >= 0")
        if self.mode is TrainMode.LORA and not self.lora_targets:
            raise InputError("lora_targets is empty; give module names such as to_q,to_k,to_v,to_out.0")
        if self.zero_init_pose and (self.init is not Init.COGVIDEOX or self.mode is not TrainMode.FULL):
            raise InputError(
                "zero_init_pose needs init: cogvideox and mode: full (a zeroed PadaLN cannot learn the pose through "
                "LoRA, and released DynamiCtrl weights must not be zeroed)"
            )
        if self.image_latent_scale is not None and self.image_latent_scale <= 0:
            raise InputError(f"image_latent_scale must be > 0, got {self.image_latent_scale}")
        if not 0 <= self.validation_guidance_scale < float("inf"):
            raise InputError(f"validation_guidance_scale must be >= 0, got {self.validation_guidance_scale}")
        count = len(self.validation_prompts)
        for key in VALIDATION_PATH_KEYS:
            given = len(getattr(self, key))
            if given != count and not (key == "validation_videos" and given == 0):
                raise InputError(
                    f"{key} has {given} entries for {count} validation_prompts; give one per prompt"
                    + (" (or none)" if key == "validation_videos" else "")
                )

    # ------------------------------------------------------------------------------------------- files
    @property
    def manifest_paths(self) -> tuple[Path, ...]:
        """The manifest(s) to read, checked to exist (`data.manifest.manifest_paths`)."""
        from ..data.manifest import manifest_paths

        return manifest_paths(self.data_root, self.manifest)

    def check_files(self) -> None:
        """What must exist before loading anything: model folder, manifest, the checkpoint to resume from."""
        model = Path(self.model).expanduser()
        if not model.is_dir():
            raise InputError(
                f"model: {self.model} is not a folder; give a local pipeline folder (transformer/, vae/...)"
            )
        if not self.data_root.is_dir():
            raise InputError(f"data_root: {self.data_root} does not exist; give the dataset folder")
        _ = self.manifest_paths  # each named manifest must exist
        for key in VALIDATION_PATH_KEYS:
            for path in getattr(self, key):
                if not Path(path).is_file():
                    raise InputError(f"{key}: {path} does not exist")
        if self.resume is not None:
            from .checkpoint import find_checkpoint

            find_checkpoint(self.output_dir, self.resume)  # raises InputError when there is none

    def to_dict(self) -> dict[str, Any]:
        return config_dict(self)

    def save(self, path: str | Path) -> None:
        save_config(self, path)


PATH_KEYS = ("model", "output_dir", "data_root", "cache_dir")


def field_types() -> dict[str, Any]:
    return typing.get_type_hints(TrainConfig)


def load_config(path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> TrainConfig:
    """YAML file (may be None) + overrides (flag values, None = not given) → a checked `TrainConfig`.

    Relative paths in the YAML are taken relative to its folder; those given as overrides relative to the
    working directory. Unknown keys are errors that list the known ones.
    """
    return read_config(TrainConfig, path, overrides, _resolve)


def read_config(cls: type, path: str | Path | None, overrides: dict[str, Any] | None, resolve: Any) -> Any:
    """A config dataclass `cls` from a YAML file (may be None) and overrides, keys checked and values coerced.

    `resolve(key, value, base)` makes a path value absolute against `base` (the YAML's folder, or the working
    directory for overrides). Shared by `dynamictrl train` and `dynamictrl train-vae`.
    """
    import yaml

    data: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise InputError(f"config file {path} does not exist")
        try:
            loaded = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise InputError(f"{path} is not valid YAML: {str(exc).splitlines()[0]}") from None
        if not isinstance(loaded, dict):
            raise InputError(f"{path} must hold a mapping of keys to values")
        base = path.parent.resolve()
        data = {k: resolve(k, v, base) for k, v in loaded.items()}
    for key, value in (overrides or {}).items():
        if value is not None:
            data[key] = resolve(key, value, Path.cwd())
    fields = dataclasses.fields(cls)
    known = {f.name for f in fields}
    unknown = sorted(set(data) - known)
    if unknown:
        raise InputError(f"unknown config key(s) {', '.join(unknown)}; known keys: {', '.join(sorted(known))}")
    missing = [f.name for f in fields if f.default is dataclasses.MISSING and f.name not in data]
    if missing:
        raise InputError(f"missing config key(s) {', '.join(missing)} (in the YAML or as --flags)")
    types = typing.get_type_hints(cls)
    return cls(**{key: _coerce(key, value, types[key]) for key, value in data.items()})


def config_dict(config: Any) -> dict[str, Any]:
    """A config dataclass as JSON-ready values (enums by value, paths as strings, tuples as lists)."""
    out = {}
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if isinstance(value, enum.Enum):
            value = value.value
        elif isinstance(value, Path):
            value = str(value)
        elif isinstance(value, tuple):
            value = list(value)
        out[f.name] = value
    return out


def save_config(config: Any, path: str | Path) -> None:
    from ..io.atomic import write_json_atomic

    write_json_atomic(path, config_dict(config))


def _resolve(key: str, value: Any, base: Path) -> Any:
    if key in VALIDATION_PATH_KEYS:
        items = value.split(",") if isinstance(value, str) else (value or [])
        return [_resolve("model", item.strip() if isinstance(item, str) else item, base) for item in items]
    if key in PATH_KEYS and isinstance(value, (str, Path)):
        p = Path(value).expanduser()
        return str(p if p.is_absolute() else base / p)
    return value


def _coerce(key: str, value: Any, tp: Any) -> Any:
    """YAML scalars to the field's type, with an error that names the key."""
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    if value is None:
        if type(None) in typing.get_args(tp):
            return None
        raise InputError(f"{key} cannot be null")
    target = args[0] if args and typing.get_origin(tp) is not tuple else tp
    try:
        if target is bool:
            if isinstance(value, str):
                if value.lower() not in ("true", "false", "yes", "no", "1", "0"):
                    raise ValueError(value)
                return value.lower() in ("true", "yes", "1")
            return bool(value)
        if target in (int, float):
            if isinstance(value, bool):
                raise ValueError(value)
            number = target(value)
            if target is int and isinstance(value, float) and not value.is_integer():
                raise ValueError(value)
            return number
        if target is str and isinstance(value, (int, float)):
            return str(value)
    except (TypeError, ValueError):
        raise InputError(f"{key}: {value!r} is not a valid {getattr(target, '__name__', target)}") from None
    return value


def flag_name(key: str) -> str:
    return "--" + re.sub("_", "-", key)


def describe_fields(cls: type | None = None) -> list[tuple[str, str, str]]:
    """(key, default as YAML/JSON, help) for every field of `cls` (default `TrainConfig`): the key tables of
    docs/training.md and docs/small_model.md."""
    rows = []
    for f in dataclasses.fields(cls or TrainConfig):
        default = "required" if f.default is dataclasses.MISSING else f.default
        if isinstance(default, enum.Enum):
            default = default.value
        if isinstance(default, tuple):
            default = list(default)
        rows.append((f.name, default if default == "required" else json.dumps(default), f.metadata["help"]))
    return rows
