"""Finding and loading weights: local folders, hub ids, and the released DynamiCtrl layouts.

The released DynamiCtrl weights come in two layouts:

- `gulucaptain/DynamiCtrl`: a full diffusers pipeline folder (`transformer/`, `vae/`, `text_encoder/`,
  `tokenizer/`, `scheduler/`);
- `gulucaptain/Dynamictrl-Mask_B01` / `Mask_C01`: a transformer only (the original README tells users to copy it
  over `DynamiCtrl/transformer` by hand).

`resolve_model` accepts either (or any local folder of either shape), takes whatever components the folder has
and fills the rest from the CogVideoX-1.5 I2V base (`THUDM/CogVideoX1.5-5B-I2V`). Hub ids resolve through the
standard Hugging Face cache, so `dynamictrl download` and `from_pretrained` share files. Offline, or when weights
are missing, the error names what is missing and the command that fetches it.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import CheckpointError, ModelNotFoundError

logger = logging.getLogger(__name__)

BASE_MODEL = "THUDM/CogVideoX1.5-5B-I2V"
WEIGHTS_INDEX_SUFFIX = ".safetensors.index.json"
COMPONENTS = ("vae", "text_encoder", "tokenizer", "scheduler")
# Files a pipeline needs; everything else in a repo (demo videos, .bin duplicates) is not downloaded.
WEIGHT_PATTERNS = ["*.json", "*.safetensors", "*.model", "*.txt"]


@dataclass(frozen=True)
class KnownModel:
    repo_id: str
    description: str
    allow_patterns: tuple[str, ...] = tuple(WEIGHT_PATTERNS)


KNOWN_MODELS: dict[str, KnownModel] = {
    "dynamictrl": KnownModel("gulucaptain/DynamiCtrl", "DynamiCtrl-5B, trained on whole reference images (default)"),
    "dynamictrl-mask-b01": KnownModel(
        "gulucaptain/Dynamictrl-Mask_B01", "masked-background variant: the prompt controls the background"
    ),
    "dynamictrl-mask-c01": KnownModel(
        "gulucaptain/Dynamictrl-Mask_C01", "masked-clothes variant: the prompt controls the clothes"
    ),
    "cogvideox1.5-i2v": KnownModel(
        BASE_MODEL, "CogVideoX-1.5 5B I2V base: VAE, T5 text encoder, tokenizer, scheduler"
    ),
    "dwpose": KnownModel(
        "yzd-v/DWPose",
        "DWPose ONNX pose networks (YOLOX-L detector + whole-body pose)",
        ("yolox_l.onnx", "dw-ll_ucoco_384.onnx"),
    ),
}
DEFAULT_MODEL = "dynamictrl"


# ------------------------------------------------------------------------------------------ checkpoint keys
def _safetensors_names(path: Path) -> set[str]:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        return set(f.keys())


def checkpoint_parameter_names(
    model_dir: str | os.PathLike, subfolder: str | None = None, kwargs: dict[str, Any] | None = None
) -> set[str] | None:
    """Parameter names stored in a diffusers model folder, read from safetensors headers (no tensor is loaded).

    Returns None when they cannot be read cheaply (hub id, `.bin` weights); callers then rely on the loader.
    """
    folder = Path(model_dir) / (subfolder or "")
    if not folder.is_dir():
        return None
    variant = (kwargs or {}).get("variant")
    stem = "diffusion_pytorch_model" + (f".{variant}" if variant else "")
    index = folder / f"{stem}{WEIGHTS_INDEX_SUFFIX}"
    if index.is_file():
        return set(json.loads(index.read_text())["weight_map"])
    single = folder / f"{stem}.safetensors"
    if single.is_file():
        return _safetensors_names(single)
    return None


# ------------------------------------------------------------------------------------------------ resolving
def hub_offline() -> bool:
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


def canonical_repo(model: str) -> str:
    """Alias (`dynamictrl`, `dynamictrl-mask-b01`, ...) → hub repo id; anything else unchanged."""
    known = KNOWN_MODELS.get(model.lower())
    return known.repo_id if known else model


def _looks_like_repo_id(model: str) -> bool:
    parts = model.split("/")
    return len(parts) == 2 and all(parts) and not model.startswith((".", "/", "~"))


def fetch(
    model: str,
    *,
    allow_patterns: list[str] | None = None,
    cache_dir: str | os.PathLike | None = None,
    revision: str | None = None,
    local_files_only: bool | None = None,
) -> Path:
    """A local folder for `model` (path, alias or hub id), downloading into the hub cache if allowed.

    Raises `ModelNotFoundError` naming the model and the command that fetches it.
    """
    path = Path(model).expanduser()
    # A known name is always the hub model, even if a folder of that name exists (the repo has `dynamictrl/`);
    # write ./dynamictrl for such a folder.
    if model.lower() not in KNOWN_MODELS and path.is_dir():
        return path
    repo_id = canonical_repo(model)
    if not _looks_like_repo_id(repo_id):
        raise ModelNotFoundError(
            f"model {model!r} is neither a folder nor a hub id (org/name); known names: {', '.join(KNOWN_MODELS)}"
        )
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    known = next((k for k in KNOWN_MODELS.values() if k.repo_id == repo_id), None)
    patterns = allow_patterns or list(known.allow_patterns if known else WEIGHT_PATTERNS)
    offline = hub_offline() if local_files_only is None else local_files_only
    try:
        folder = snapshot_download(
            repo_id,
            revision=revision,
            cache_dir=cache_dir,
            allow_patterns=patterns,
            local_files_only=offline,
        )
    except LocalEntryNotFoundError as exc:
        how = "unset HF_HUB_OFFLINE and run" if hub_offline() else "run"
        raise ModelNotFoundError(
            f"{repo_id} is not in the local hub cache and cannot be downloaded here; {how} "
            f"`dynamictrl download {model}` on a machine with internet (or pass --model /path/to/folder)"
        ) from exc
    except (RepositoryNotFoundError, GatedRepoError, RevisionNotFoundError) as exc:
        raise ModelNotFoundError(
            f"hub repo {repo_id} is not accessible ({type(exc).__name__}); check the id, or log in with "
            "`hf auth login` if it is gated"
        ) from exc
    except (HfHubHTTPError, OSError) as exc:
        raise ModelNotFoundError(
            f"could not download {repo_id}: {exc}; check the network or pass a local folder"
        ) from exc
    return Path(folder)


def _has_component(folder: Path, name: str) -> bool:
    sub = folder / name
    if not sub.is_dir():
        return False
    if name == "tokenizer":
        return any((sub / f).is_file() for f in ("tokenizer_config.json", "spiece.model", "tokenizer.json"))
    if name == "scheduler":
        return (sub / "scheduler_config.json").is_file()
    return (sub / "config.json").is_file()


def _transformer_dir(folder: Path) -> Path | None:
    if _has_component(folder, "transformer"):
        return folder / "transformer"
    config = folder / "config.json"
    if config.is_file():
        try:
            cls = json.loads(config.read_text()).get("_class_name", "")
        except json.JSONDecodeError as exc:
            raise CheckpointError(f"{config} is not valid JSON ({exc}); re-download the model") from exc
        if (
            "Transformer" in cls
            or (folder / "diffusion_pytorch_model.safetensors").exists()
            or any(folder.glob(f"*{WEIGHTS_INDEX_SUFFIX}"))
        ):
            return folder
    return None


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


def resolve_model(
    model: str = DEFAULT_MODEL,
    base: str = BASE_MODEL,
    *,
    cache_dir: str | os.PathLike | None = None,
    local_files_only: bool | None = None,
    need_text_encoder: bool = True,
) -> ResolvedModel:
    """Find the transformer in `model` and the other components in `model` or, failing that, in `base`."""
    folder = fetch(model, cache_dir=cache_dir, local_files_only=local_files_only)
    transformer = _transformer_dir(folder)
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
                    f"{name} is missing from both {model} and the base {base}; run `dynamictrl download {model}` "
                    "or pass --base with a complete CogVideoX-1.5 I2V folder"
                )
            resolved.components[name] = base_folder / name
            resolved.sources[name] = base
    return resolved


# ------------------------------------------------------------------------------------------------- loading
def load_pipeline(
    model: str = DEFAULT_MODEL,
    base: str = BASE_MODEL,
    *,
    torch_dtype: Any = None,
    cache_dir: str | os.PathLike | None = None,
    local_files_only: bool | None = None,
):
    """Build a `DynamiCtrlPipeline` from a local folder or hub id (see module docstring for the layouts).

    The scheduler is the CogVideoX DPM scheduler with trailing spacing, as the published inference script sets it,
    whatever scheduler class the folder's config names.
    """
    import torch
    from diffusers import AutoencoderKLCogVideoX, CogVideoXDPMScheduler
    from transformers import AutoTokenizer, T5EncoderModel

    from ..pipelines.pipeline_dynamictrl import DynamiCtrlPipeline
    from .transformer_dynamictrl import DynamiCtrlTransformer

    dtype = torch_dtype or torch.float32
    resolved = resolve_model(model, base, cache_dir=cache_dir, local_files_only=local_files_only)
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
    pipe.resolved_model = resolved
    return pipe
