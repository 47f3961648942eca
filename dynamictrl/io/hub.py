"""Known model names → hub repos, and offline-aware fetching from the Hugging Face hub (models and DWPose alike).

Everything dynamictrl downloads goes through `fetch` (a folder: pipelines, transformers, the CogVideoX base) or
`fetch_files` (single files: the DWPose ONNX networks). Both use the standard Hugging Face cache, so
`dynamictrl download` and `from_pretrained` share files, and both turn "offline", "not found" and network
failures into one `ModelNotFoundError` line naming the `dynamictrl download` command that fixes it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import ModelNotFoundError

BASE_MODEL = "THUDM/CogVideoX1.5-5B-I2V"
DEFAULT_MODEL = "dynamictrl"
# Files a pipeline needs; everything else in a repo (demo videos, .bin duplicates) is not downloaded.
WEIGHT_PATTERNS = ("*.json", "*.safetensors", "*.model", "*.txt")


@dataclass(frozen=True)
class KnownModel:
    repo_id: str
    description: str
    allow_patterns: tuple[str, ...] = WEIGHT_PATTERNS
    kind: str = "pipeline"  # "pipeline" (usable as --model / --base) or "pose" (the pose stage's networks)


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
        kind="pose",
    ),
}


def model_names(kind: str = "pipeline") -> list[str]:
    """Known names of one kind: `pipeline` names are what `--model` takes, `pose` names the pose networks."""
    return [name for name, known in KNOWN_MODELS.items() if known.kind == kind]


def hub_offline() -> bool:
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


def canonical_repo(model: str) -> str:
    """Alias (`dynamictrl`, `dynamictrl-mask-b01`, `dwpose`, ...) → hub repo id; anything else unchanged."""
    known = KNOWN_MODELS.get(model.lower())
    return known.repo_id if known else model


def known_name(repo_id: str) -> str:
    """The short name of a known repo (for messages: `dynamictrl download <name>`), else the repo id itself."""
    return next((name for name, k in KNOWN_MODELS.items() if k.repo_id == repo_id), repo_id)


def looks_like_repo_id(model: str) -> bool:
    parts = model.split("/")
    return len(parts) == 2 and all(parts) and not model.startswith((".", "/", "~"))


def _not_cached_message(repo_id: str, what: str) -> str:
    how = "unset HF_HUB_OFFLINE and run" if hub_offline() else "run"
    return (
        f"{what} {repo_id} is not in the local hub cache and cannot be downloaded here; {how} "
        f"`dynamictrl download {known_name(repo_id)}` on a machine with internet, or pass a local folder"
    )


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
    if not looks_like_repo_id(repo_id):
        raise ModelNotFoundError(
            f"model {model!r} is neither a folder nor a hub id (org/name); known names: {', '.join(model_names())}"
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
        raise ModelNotFoundError(_not_cached_message(repo_id, "model")) from exc
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


def find_cached_files(
    repo_id: str, filenames: tuple[str, ...], cache_dir: str | os.PathLike | None = None
) -> list[Path] | None:
    """Paths of `filenames` of `repo_id` already in the hub cache, or None if any is missing. No network."""
    from huggingface_hub import try_to_load_from_cache

    paths = [try_to_load_from_cache(repo_id, name, cache_dir=cache_dir) for name in filenames]
    if all(isinstance(p, str) and Path(p).is_file() for p in paths):
        return [Path(p) for p in paths]
    return None


def fetch_files(
    model: str,
    filenames: tuple[str, ...] | None = None,
    *,
    cache_dir: str | os.PathLike | None = None,
    local_files_only: bool | None = None,
) -> list[Path]:
    """Local paths of single files of a hub repo (default: the known repo's file list), downloading if allowed."""
    repo_id = canonical_repo(model)
    known = next((k for k in KNOWN_MODELS.values() if k.repo_id == repo_id), None)
    names = filenames or (known.allow_patterns if known else ())
    if not names:
        raise ModelNotFoundError(f"no file names given for {repo_id}")
    cached = find_cached_files(repo_id, tuple(names), cache_dir)
    if cached is not None:
        return cached
    offline = hub_offline() if local_files_only is None else local_files_only
    if offline:
        raise ModelNotFoundError(_not_cached_message(repo_id, "weights"))
    from huggingface_hub import hf_hub_download

    try:
        return [Path(hf_hub_download(repo_id, name, cache_dir=cache_dir)) for name in names]
    except Exception as exc:  # no network, no such file, HTTP error: all mean "not available"
        raise ModelNotFoundError(
            f"could not download {', '.join(names)} from {repo_id} ({type(exc).__name__}); connect to the "
            f"internet and run `dynamictrl download {known_name(repo_id)}`, or pass a local folder"
        ) from exc
