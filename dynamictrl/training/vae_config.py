"""VAE training options: one frozen dataclass, read from YAML, overridden by flags, checked before anything loads.

The same conventions as `training.config.TrainConfig` (help text in `metadata["help"]`, str-Enum choices, paths
relative to the YAML file, unknown keys refused): `dynamictrl train-vae CONFIG.yaml --max-steps 10`.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..models.configs import SMALL_VAE_CONFIG
from .config import LR_SCHEDULERS, MixedPrecision, _choice, _help, config_dict, read_config, save_config
from .config import describe_fields as config_fields

LATENT_CHANNELS = 16  # what the DynamiCtrl transformer takes (in_channels 32 = noise ‖ image)
TEMPORAL_COMPRESSION = 4  # the pipeline and both trainers take 4k + 1 frames
FRAME_CHUNK = 8  # diffusers' AutoencoderKLCogVideoX encodes the first frame + chunks of 8 frames


@dataclass(frozen=True)
class VaeTrainConfig:
    """A `AutoencoderKLCogVideoX` trained from scratch (or from `init`) on the clips of a manifest."""

    # ---- data
    output_dir: Path = field(metadata=_help("where checkpoints, logs, vae/ and vae_report.json go"))
    data_root: Path = field(metadata=_help("dataset folder holding the manifest (data/manifest.py format)"))
    manifest: str = field(
        default="manifest.jsonl",
        metadata=_help("manifest file name inside data_root; several, comma-separated, are read in order"),
    )
    frames: int = field(default=17, metadata=_help("frames per clip, 8k+1 (9, 17, 25...): the VAE's chunking"))
    height: int = field(default=64, metadata=_help("training height in px, multiple of 16"))
    width: int = field(default=64, metadata=_help("training width in px, multiple of 16"))
    flip: float = field(default=0.5, metadata=_help("probability of a horizontal flip of a clip (and its mask)"))
    held_out: int = field(default=4, metadata=_help("clips kept out of training for the PSNR report (seeded pick)"))
    num_workers: int = field(default=0, metadata=_help("DataLoader worker processes"))
    cache_frames: bool = field(
        default=True, metadata=_help("keep decoded clips in memory (12 KB a frame at 64x64; per worker process)")
    )
    # ---- architecture (ignored with init)
    init: str | None = field(default=None, metadata=_help("a VAE folder to start from (default: from scratch)"))
    block_out_channels: tuple[int, ...] = field(
        default=tuple(SMALL_VAE_CONFIG["block_out_channels"]),
        metadata=_help("channels per level, 3+ levels (3: 4x spatial compression); comma-separated as a flag"),
    )
    layers_per_block: int = field(default=SMALL_VAE_CONFIG["layers_per_block"], metadata=_help("ResNets per level"))
    norm_num_groups: int = field(
        default=SMALL_VAE_CONFIG["norm_num_groups"], metadata=_help("GroupNorm groups (must divide every level)")
    )
    # ---- loss
    l1_weight: float = field(default=1.0, metadata=_help("weight of the (mask-weighted) L1 reconstruction loss"))
    mse_weight: float = field(default=0.0, metadata=_help("weight of the (mask-weighted) MSE reconstruction loss"))
    kl_weight: float = field(default=1e-6, metadata=_help("weight of the KL term (mean over latent elements)"))
    foreground_weight: float = field(
        default=10.0, metadata=_help("loss weight of pixels in the dilated person mask (1: uniform)")
    )
    mask_dilation: int = field(default=3, metadata=_help("pixels the person mask is dilated by"))
    temporal_weight: float = field(
        default=0.0,
        metadata=_help(
            "weight of the (mask-weighted) mean square between the frame-to-frame differences of reconstruction and "
            "target (0: off); it penalises decoding each latent frame as a burst of near-repeated frames"
        ),
    )
    train_encoder: bool = field(
        default=True,
        metadata=_help(
            "train the encoder too; false (--no-train-encoder): the decoder of init only, so the latents, their "
            "scaling factor and any transformer trained on them stay valid"
        ),
    )
    # ---- optimisation
    learning_rate: float = field(default=1e-3, metadata=_help("peak learning rate", flags=("--lr",)))
    beta1: float = field(default=0.9, metadata=_help("AdamW beta1"))
    beta2: float = field(default=0.99, metadata=_help("AdamW beta2"))
    weight_decay: float = field(default=0.0, metadata=_help("AdamW weight decay"))
    epsilon: float = field(default=1e-8, metadata=_help("AdamW epsilon"))
    lr_scheduler: str = field(default="cosine", metadata=_help("diffusers get_scheduler name"))
    lr_warmup_steps: int = field(default=50, metadata=_help("linear warm-up steps"))
    max_steps: int = field(default=1000, metadata=_help("optimizer steps to train"))
    batch_size: int = field(default=2, metadata=_help("clips per process per micro-batch"))
    gradient_accumulation_steps: int = field(default=1, metadata=_help("micro-batches per optimizer step"))
    max_grad_norm: float = field(default=1.0, metadata=_help("gradient clipping norm (0: off)"))
    gradient_checkpointing: bool = field(default=False, metadata=_help("recompute VAE blocks in backward"))
    mixed_precision: MixedPrecision = field(default=MixedPrecision.NO, metadata=_help("no, fp16 or bf16"))
    seed: int = field(default=0, metadata=_help("seed of initialisation, data order, flips and posterior noise"))
    # ---- outputs
    scale_clips: int = field(
        default=32, metadata=_help("training clips encoded to measure the latent scaling factor (1/std)")
    )
    eval_every: int = field(
        default=0, metadata=_help("held-out PSNR every N steps into metrics.jsonl (0: at the end)")
    )
    checkpoint_every: int = field(default=250, metadata=_help("save a resumable checkpoint every N steps (0: off)"))
    checkpoints_keep: int | None = field(default=2, metadata=_help("keep the last K checkpoints (null: all)"))
    resume: str | None = field(default=None, metadata=_help("'latest' or a checkpoint folder to resume from"))
    log_every: int = field(default=10, metadata=_help("write metrics every N steps"))
    quiet: bool = field(default=False, metadata=_help("no progress bar"))

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "mixed_precision", _choice(MixedPrecision, self.mixed_precision, "mixed_precision"))
        set_(self, "output_dir", Path(self.output_dir))
        set_(self, "data_root", Path(self.data_root))
        channels = self.block_out_channels
        if isinstance(channels, str):
            try:
                channels = [int(c) for c in channels.split(",") if c.strip()]
            except ValueError:
                raise InputError(f"block_out_channels: {channels!r} is not a list of integers") from None
        if isinstance(channels, (list, tuple)) and all(
            isinstance(c, int) and not isinstance(c, bool) for c in channels
        ):
            set_(self, "block_out_channels", tuple(channels))
        else:
            raise InputError(f"block_out_channels must be a list of integers, got {channels!r}")
        if len(self.block_out_channels) < 3 or min(self.block_out_channels) < 1:
            raise InputError(
                f"block_out_channels needs 3 or more positive levels (two of them compress time 4x), got "
                f"{list(self.block_out_channels)}; try 32,64,64"
            )
        if self.norm_num_groups < 1 or any(c % self.norm_num_groups for c in self.block_out_channels):
            raise InputError(
                f"norm_num_groups {self.norm_num_groups} must divide every block_out_channels "
                f"{list(self.block_out_channels)}"
            )
        if self.frames < FRAME_CHUNK + 1 or (self.frames - 1) % FRAME_CHUNK:
            k = max(1, round((self.frames - 1) / FRAME_CHUNK))
            raise InputError(
                f"frames must be 8k+1 (9, 17, 25...): the VAE encodes the first frame and chunks of 8, as at "
                f"inference; got {self.frames}, try {FRAME_CHUNK * k + 1}"
            )
        for key in ("height", "width"):
            value = getattr(self, key)
            if value < 16 or value % 16:
                raise InputError(f"{key} must be a positive multiple of 16, got {value}")
        if not 0.0 <= self.flip <= 1.0:
            raise InputError(f"flip is a probability in [0, 1], got {self.flip}")
        if self.lr_scheduler not in LR_SCHEDULERS:
            raise InputError(
                f"lr_scheduler: unknown value {self.lr_scheduler!r}; choose one of {', '.join(LR_SCHEDULERS)}"
            )
        positive = (
            "max_steps",
            "batch_size",
            "gradient_accumulation_steps",
            "layers_per_block",
            "log_every",
            "scale_clips",
        )
        for key in positive:
            if getattr(self, key) < 1:
                raise InputError(f"{key} must be 1 or more, got {getattr(self, key)}")
        for key in ("lr_warmup_steps", "checkpoint_every", "num_workers", "held_out", "eval_every", "mask_dilation"):
            if getattr(self, key) < 0:
                raise InputError(f"{key} must be 0 or more, got {getattr(self, key)}")
        if self.checkpoints_keep is not None and self.checkpoints_keep < 1:
            raise InputError(f"checkpoints_keep must be 1 or more (or null for all), got {self.checkpoints_keep}")
        finite = (
            "learning_rate",
            "l1_weight",
            "mse_weight",
            "kl_weight",
            "foreground_weight",
            "max_grad_norm",
            "temporal_weight",
        )
        for key in finite:
            value = getattr(self, key)
            if not 0.0 <= value < float("inf"):
                raise InputError(f"{key} must be a finite number >= 0, got {value}")
        if self.learning_rate == 0:
            raise InputError("learning_rate must be > 0")
        if self.l1_weight + self.mse_weight == 0:
            raise InputError("l1_weight and mse_weight are both 0: nothing would teach the VAE to reconstruct")
        if not self.train_encoder and self.init is None:
            raise InputError("train_encoder: false fine-tunes the decoder of a trained VAE; give init (a VAE folder)")
        if self.foreground_weight < 1.0:
            raise InputError(f"foreground_weight must be >= 1 (1: uniform), got {self.foreground_weight}")

    # ------------------------------------------------------------------------------------------- files
    @property
    def manifest_paths(self) -> tuple[Path, ...]:
        """The manifest(s) to read, checked to exist (`data.manifest.manifest_paths`)."""
        from ..data.manifest import manifest_paths

        return manifest_paths(self.data_root, self.manifest)

    @property
    def vae_config(self) -> dict[str, Any]:
        """`AutoencoderKLCogVideoX` keywords of a VAE trained from scratch."""
        levels = len(self.block_out_channels)
        return {
            **SMALL_VAE_CONFIG,
            "down_block_types": ("CogVideoXDownBlock3D",) * levels,
            "up_block_types": ("CogVideoXUpBlock3D",) * levels,
            "block_out_channels": self.block_out_channels,
            "layers_per_block": self.layers_per_block,
            "norm_num_groups": self.norm_num_groups,
            "latent_channels": LATENT_CHANNELS,
            "temporal_compression_ratio": TEMPORAL_COMPRESSION,
        }

    def check_files(self) -> None:
        """What must exist before loading anything: data root, manifest, the VAE to start from, the checkpoint."""
        if not self.data_root.is_dir():
            raise InputError(f"data_root: {self.data_root} does not exist; give the dataset folder")
        _ = self.manifest_paths  # each named manifest must exist
        if self.init is not None and not (Path(self.init) / "config.json").is_file():
            raise InputError(f"init: {self.init} is not a VAE folder (no config.json); give one or drop init")
        if self.resume is not None:
            from .checkpoint import find_checkpoint

            find_checkpoint(self.output_dir, self.resume)

    def to_dict(self) -> dict[str, Any]:
        return config_dict(self)

    def save(self, path: str | Path) -> None:
        save_config(self, path)


PATH_KEYS = ("output_dir", "data_root", "init")


def field_types() -> dict[str, Any]:
    return typing.get_type_hints(VaeTrainConfig)


def load_vae_config(path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> VaeTrainConfig:
    """YAML file (may be None) + overrides (flag values, None = not given) → a checked `VaeTrainConfig`.

    Relative paths in the YAML are taken relative to its folder, those given as overrides relative to the working
    directory; unknown keys are errors that list the known ones.
    """
    return read_config(VaeTrainConfig, path, overrides, _resolve)


def _resolve(key: str, value: Any, base: Path) -> Any:
    if key in PATH_KEYS and isinstance(value, (str, Path)):
        p = Path(value).expanduser()
        return str(p if p.is_absolute() else base / p)
    return value


def describe_fields() -> list[tuple[str, str, str]]:
    """(key, default as JSON, help) for every field: the table in docs/small_model.md."""
    return config_fields(VaeTrainConfig)


__all__ = ["VaeTrainConfig", "load_vae_config"]
