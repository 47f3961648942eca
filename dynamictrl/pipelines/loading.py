"""Finding and loading weights: local folders, hub ids, and the released DynamiCtrl layouts → a pipeline.

The released DynamiCtrl weights come in two layouts:

- `gulucaptain/DynamiCtrl`: a full diffusers pipeline folder (`transformer/`, `vae/`, `text_encoder/`,
  `tokenizer/`, `scheduler/`);
- `gulucaptain/Dynamictrl-Mask_B01` / `Mask_C01`: a transformer only (the published README tells users to copy it
  over `DynamiCtrl/transformer` by hand).

`resolve_model` accepts either (or any local folder of either shape), takes whatever components the folder has
and fills the rest from the CogVideoX-1.5 I2V base (`THUDM/CogVideoX1.5-5B-I2V`). Hub ids resolve through
`dynamictrl.io.hub` and the standard Hugging Face cache. `load_pipeline` returns the pipeline and a `LoadInfo`
record of what was loaded (files, dtype, device, the model's own settings), so nothing is attached to the diffusers
object. A model folder may carry `dynamictrl.json` beside its transformer's `config.json` with settings the model
was trained with (the image-latent scale); generation uses them as its defaults.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import CheckpointError, InputError, ModelNotFoundError
from ..io.hub import (
    BASE_MODEL,
    DEFAULT_MODEL,
    KNOWN_MODELS,
    canonical_repo,
    fetch,
    find_cached_files,
    known_name,
    looks_like_repo_id,
    model_names,
)
from ..models.checkpoint import WEIGHTS_INDEX_SUFFIX, safetensors_names
from ..models.configs import POSE_CONTROL_FUNCTIONS

if TYPE_CHECKING:
    import torch

    from ..pose.render import PoseStyle
    from .pipeline_dynamictrl import DynamiCtrlPipeline

logger = logging.getLogger(__name__)

COMPONENTS = ("vae", "text_encoder", "tokenizer", "scheduler")
MODEL_SETTINGS_FILE = "dynamictrl.json"  # beside transformer/config.json: settings the model was trained with


def _has_component(folder: Path, name: str) -> bool:
    sub = folder / name
    if not sub.is_dir():
        return False
    if name == "tokenizer":
        return any((sub / f).is_file() for f in ("tokenizer_config.json", "spiece.model", "tokenizer.json"))
    if name == "scheduler":
        return (sub / "scheduler_config.json").is_file()
    return (sub / "config.json").is_file()


def _read_json(path: Path, model: str) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(
            f"{path} is not valid JSON ({exc}); re-download the model (`dynamictrl download {model}`)"
        ) from exc


def _transformer_dir(folder: Path, model: str) -> Path | None:
    if _has_component(folder, "transformer"):
        return folder / "transformer"
    config = folder / "config.json"
    if config.is_file():
        cls = _read_json(config, model).get("_class_name", "")
        if (
            "Transformer" in cls
            or (folder / "diffusion_pytorch_model.safetensors").exists()
            or any(folder.glob(f"*{WEIGHTS_INDEX_SUFFIX}"))
        ):
            return folder
    return None


@dataclass(frozen=True)
class ModelSettings:
    """What a model folder says about how it was trained (`dynamictrl.json`); None: the published conventions."""

    image_latent_scale: float | None = None
    pose_render: dict[str, Any] | None = None  # drawing settings of the pose stage (a small model draws thicker)
    pose_control_function: str = "padaln"  # how the pose enters the transformer ("direct": a trained ablation)

    @property
    def pose_style(self) -> PoseStyle:
        """How the pose stage draws for this model (the published drawing unless the folder says otherwise)."""
        from ..pose.render import PoseStyle

        return PoseStyle.from_settings(self.pose_render)

    @classmethod
    def read(cls, transformer_dir: Path, model: str) -> ModelSettings:
        path = transformer_dir / MODEL_SETTINGS_FILE
        if not path.is_file():
            return cls()
        data = _read_json(path, model)
        scale = data.get("image_latent_scale")
        function = data.get("pose_control_function", "padaln")
        if function not in POSE_CONTROL_FUNCTIONS:
            raise CheckpointError(
                f"{path}: pose_control_function {function!r} is not one of {', '.join(POSE_CONTROL_FUNCTIONS)}; "
                "fix the file or re-download the model"
            )
        return cls(
            image_latent_scale=None if scale is None else float(scale),
            pose_render=data.get("pose_render"),
            pose_control_function=function,
        )


@dataclass
class ResolvedModel:
    """Where each component of a DynamiCtrl pipeline comes from (local folders)."""

    transformer: Path
    components: dict[str, Path] = field(default_factory=dict)  # vae/text_encoder/tokenizer/scheduler → folder
    sources: dict[str, str] = field(default_factory=dict)  # component → the model name or path it came from

    def describe(self) -> dict[str, str]:
        out = {"transformer": str(self.transformer)}
        out.update({k: str(v) for k, v in self.components.items()})
        return out

    def config(self, component: str = "transformer") -> dict[str, Any]:
        """A component's `config.json` (no weights read): sizes can be checked before anything loads."""
        folder = self.transformer if component == "transformer" else self.components[component]
        return _read_json(folder / "config.json", self.sources.get(component, str(folder)))

    @property
    def settings(self) -> ModelSettings:
        return ModelSettings.read(self.transformer, self.sources.get("transformer", str(self.transformer)))


def resolve_model(
    model: str = DEFAULT_MODEL,
    base: str = BASE_MODEL,
    *,
    cache_dir: str | os.PathLike | None = None,
    local_files_only: bool | None = None,
    need_text_encoder: bool = True,
) -> ResolvedModel:
    """Find the transformer in `model` and the other components in `model` or, failing that, in `base`."""
    known = KNOWN_MODELS.get(model.lower())
    if known is not None and known.kind != "pipeline":
        raise InputError(f"{model!r} is not an animation model; give one of {', '.join(model_names())}")
    folder = fetch(model, cache_dir=cache_dir, local_files_only=local_files_only)
    transformer = _transformer_dir(folder, model)
    if transformer is None:
        raise CheckpointError(
            f"no transformer found in {folder}: expected transformer/config.json (pipeline layout) or config.json "
            "with weights (transformer-only layout)"
        )
    wanted = [c for c in COMPONENTS if need_text_encoder or c not in ("text_encoder", "tokenizer")]
    resolved = ResolvedModel(transformer=transformer, sources={"transformer": model})
    missing = []
    for name in wanted:
        if _has_component(folder, name):
            resolved.components[name] = folder / name
            resolved.sources[name] = model
        else:
            missing.append(name)
    if missing:
        logger.info("Taking %s from the base model %s", ", ".join(missing), base)
        base_folder = fetch(
            base,
            allow_patterns=[f"{name}/*" for name in missing],
            cache_dir=cache_dir,
            local_files_only=local_files_only,
        )
        for name in missing:
            if not _has_component(base_folder, name):
                raise ModelNotFoundError(
                    f"{name} is missing from both {model} and the base {base}; run `dynamictrl download "
                    f"{known_name(model)}` or pass --base with a complete CogVideoX-1.5 I2V folder"
                )
            resolved.components[name] = base_folder / name
            resolved.sources[name] = base
    return resolved


def model_settings(model: str, cache_dir: str | os.PathLike | None = None) -> ModelSettings:
    """A model's `dynamictrl.json` settings without fetching any weights: from its local folder or the hub cache.

    A model neither local nor cached (e.g. the released DynamiCtrl before `dynamictrl download`) has the published
    conventions, as the released folders, which have no settings file, do.
    """
    folder = Path(model).expanduser()
    if folder.is_dir():
        transformer = _transformer_dir(folder, model)
        return ModelSettings() if transformer is None else ModelSettings.read(transformer, model)
    if model.lower() in KNOWN_MODELS or looks_like_repo_id(model):
        repo = canonical_repo(model)
        for name in (f"transformer/{MODEL_SETTINGS_FILE}", MODEL_SETTINGS_FILE):
            found = find_cached_files(repo, (name,), cache_dir)
            if found:
                return ModelSettings.read(found[0].parent, model)
    return ModelSettings()


def _refetch_hint(model: str) -> str:
    if model.lower() in KNOWN_MODELS or looks_like_repo_id(model):
        return f"delete it and re-download (`dynamictrl download {known_name(model)}`)"
    return "replace it with an intact copy"


def check_weight_files(resolved: ResolvedModel) -> None:
    """Read every safetensors header of every component (cheap, before anything loads): a truncated or random file
    is named in one line, not a `SafetensorError` traceback after the other components have loaded."""
    folders = {"transformer": resolved.transformer, **resolved.components}
    for component, folder in folders.items():
        for path in sorted(folder.glob("*.safetensors")):
            try:
                safetensors_names(path)
            except Exception as exc:  # SafetensorError, OSError: a header that cannot be parsed
                model = resolved.sources.get(component, str(folder))
                raise CheckpointError(
                    f"{path} is corrupt or incomplete ({type(exc).__name__}); {_refetch_hint(model)}"
                ) from exc


@dataclass
class LoadInfo:
    """What `load_pipeline` loaded: the files, the dtype, and (once placed) the device it runs on."""

    model: ResolvedModel
    dtype: torch.dtype
    settings: ModelSettings = field(default_factory=ModelSettings)
    device: torch.device | None = None
    lora: Path | None = None
    lora_scale: float | None = None


LORA_WEIGHTS = "pytorch_lora_weights.safetensors"
LORA_ADAPTER = "lora"


def lora_weights_file(path: str | os.PathLike) -> Path:
    """The weights of a LoRA given as a folder (with `pytorch_lora_weights.safetensors`) or as the file itself."""
    path = Path(path).expanduser()
    weights = path / LORA_WEIGHTS if path.is_dir() else path
    if not weights.is_file() or weights.suffix != ".safetensors":
        raise InputError(f"--lora {path}: no {LORA_WEIGHTS} there; give the LoRA folder `dynamictrl train` wrote")
    return weights


def load_lora(pipe: DynamiCtrlPipeline, info: LoadInfo, path: str | os.PathLike, scale: float = 1.0) -> None:
    """Load a diffusers-format LoRA into `pipe` at `scale`; its folder's `dynamictrl.json` (the image-latent scale
    it was trained with) overrides the base model's settings."""
    weights = lora_weights_file(path)
    try:
        safetensors_names(weights)
    except Exception as exc:
        raise CheckpointError(
            f"{weights} is corrupt or incomplete ({type(exc).__name__}); train or copy it again"
        ) from exc
    try:
        pipe.load_lora_weights(str(weights.parent), weight_name=weights.name, adapter_name=LORA_ADAPTER)
    except (ValueError, KeyError, RuntimeError) as exc:
        raise CheckpointError(f"{weights} does not fit this model ({str(exc).splitlines()[0][:200]})") from exc
    pipe.set_adapters([LORA_ADAPTER], [scale])
    trained = ModelSettings.read(weights.parent, str(path))
    if trained.image_latent_scale is not None:
        info.settings = trained
    info.lora, info.lora_scale = weights, scale


def load_pipeline(
    model: str = DEFAULT_MODEL,
    base: str = BASE_MODEL,
    *,
    torch_dtype: torch.dtype | None = None,
    cache_dir: str | os.PathLike | None = None,
    local_files_only: bool | None = None,
    resolved: ResolvedModel | None = None,
) -> tuple[DynamiCtrlPipeline, LoadInfo]:
    """Build a `DynamiCtrlPipeline` from a local folder or hub id (see the module docstring for the layouts).

    Returns `(pipeline, info)`. The scheduler is the CogVideoX DPM scheduler with trailing spacing, as the published
    inference script sets it, whatever scheduler class the folder's config names. Pass `resolved` to reuse a
    `resolve_model` result (the animate job resolves first, to check sizes before loading any weights).
    """
    import torch
    from diffusers import AutoencoderKLCogVideoX, CogVideoXDPMScheduler
    from transformers import AutoTokenizer, T5EncoderModel

    from ..models.transformer_dynamictrl import DynamiCtrlTransformer
    from .pipeline_dynamictrl import DynamiCtrlPipeline

    dtype = torch_dtype or torch.float32
    if resolved is None:
        resolved = resolve_model(model, base, cache_dir=cache_dir, local_files_only=local_files_only)
    check_weight_files(resolved)
    c = resolved.components
    logger.info("Loading DynamiCtrl transformer from %s", resolved.transformer)
    transformer = DynamiCtrlTransformer.from_pretrained(resolved.transformer, torch_dtype=dtype)
    vae = AutoencoderKLCogVideoX.from_pretrained(c["vae"], torch_dtype=dtype)
    text_encoder = T5EncoderModel.from_pretrained(c["text_encoder"], dtype=dtype)
    tokenizer = AutoTokenizer.from_pretrained(c["tokenizer"])
    scheduler_config = CogVideoXDPMScheduler.load_config(c["scheduler"])
    scheduler = CogVideoXDPMScheduler.from_config(scheduler_config, timestep_spacing="trailing")
    for module in (transformer, vae, text_encoder):
        module.eval()
    pipe = DynamiCtrlPipeline(
        tokenizer=tokenizer, text_encoder=text_encoder, vae=vae, transformer=transformer, scheduler=scheduler
    )
    return pipe, LoadInfo(model=resolved, dtype=dtype, settings=resolved.settings)
