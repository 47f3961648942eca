"""Writing a DynamiCtrl pipeline folder in the released layout, in one piece: what `loading.resolve_model` reads.

```
model_index.json        the pipeline and its components (as the released gulucaptain/DynamiCtrl lists them)
scheduler/              CogVideoX-1.5 I2V scheduler settings under the DPM class inference uses
tokenizer/ text_encoder/ vae/
transformer/            config.json, weights, dynamictrl.json (image_latent_scale, pose_render)
```

`write_pipeline_folder` copies the component folders into `<target>.tmp/`, writes the rest, checks the total size
against a limit, optionally runs a check on the finished folder (e.g. loading it), and only then renames it to
`target`: a reader never sees a half-assembled or oversized model.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..io.atomic import atomic_dir
from .loading import MODEL_SETTINGS_FILE

# CogVideoX-1.5 I2V scheduler settings (the base ships them under the DDIM class; inference uses DPM, trailing).
SCHEDULER_CONFIG: dict[str, Any] = dict(
    beta_start=0.00085,
    beta_end=0.012,
    beta_schedule="scaled_linear",
    num_train_timesteps=1000,
    prediction_type="v_prediction",
    rescale_betas_zero_snr=True,
    snr_shift_scale=1.0,
    set_alpha_to_one=True,
    steps_offset=0,
    clip_sample=False,
    timestep_spacing="trailing",
)
SCHEDULER_CLASS = "CogVideoXDPMScheduler"
PIPELINE_CLASS = "DynamiCtrlPipeline"  # dynamictrl.pipelines.pipeline_dynamictrl.DynamiCtrlPipeline
MODEL_INDEX: dict[str, Any] = {
    "_class_name": PIPELINE_CLASS,
    "_diffusers_version": "0.32.0",
    "scheduler": ["diffusers", SCHEDULER_CLASS],
    "text_encoder": ["transformers", "T5EncoderModel"],
    "tokenizer": ["transformers", "T5Tokenizer"],
    "transformer": ["dynamictrl", "DynamiCtrlTransformerModel"],
    "vae": ["diffusers", "AutoencoderKLCogVideoX"],
}
COPIED_COMPONENTS = ("transformer", "vae", "text_encoder", "tokenizer")
MB = 1_000_000  # sizes are reported and limited in decimal megabytes


@dataclass(frozen=True)
class FolderSize:
    """Bytes of a pipeline folder: in all and per top-level entry (`transformer`, `vae`, ..., `model_index.json`)."""

    path: Path
    total_bytes: int
    components: dict[str, int] = field(default_factory=dict)

    def describe(self) -> str:
        parts = ", ".join(f"{name} {size / MB:.2f}" for name, size in sorted(self.components.items()))
        return f"{self.total_bytes / MB:.2f} MB ({parts})"


def folder_bytes(path: str | Path) -> int:
    """Bytes of every file under `path` (links not followed)."""
    path = Path(path)
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def measure_folder(path: str | Path) -> FolderSize:
    path = Path(path)
    return FolderSize(path, folder_bytes(path), {child.name: folder_bytes(child) for child in path.iterdir()})


def write_scheduler(folder: str | Path, class_name: str = SCHEDULER_CLASS) -> Path:
    """`scheduler_config.json` with the CogVideoX-1.5 I2V settings under `class_name`."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    config = {"_class_name": class_name, "_diffusers_version": "0.32.0", **SCHEDULER_CONFIG}
    (folder / "scheduler_config.json").write_text(json.dumps(config, indent=2) + "\n")
    return folder


def _check_component(name: str, folder: Path) -> Path:
    """`folder` must hold a `name` component: `config.json` (models) or `spiece.model` / `tokenizer.json`."""
    needed = ("spiece.model", "tokenizer.json") if name == "tokenizer" else ("config.json",)
    if not folder.is_dir() or not any((folder / file).is_file() for file in needed):
        raise InputError(
            f"{name}: {folder} is not a {name} folder (no {' or '.join(needed)}); give the folder that holds it"
        )
    return folder


def _copy_files(source: Path, target: Path) -> None:
    """Copy a component folder without hidden, temporary or settings-only leftovers of other tools, and without
    `_name_or_path` in its `config.json`: diffusers writes where a model was loaded from, a path on the machine
    that built the folder, which means nothing where the folder is used."""
    shutil.copytree(source, target, ignore=shutil.ignore_patterns(".*", "*.tmp", "*.partial-*", "__pycache__"))
    config_file = target / "config.json"
    if config_file.is_file():
        config = json.loads(config_file.read_text())
        if config.pop("_name_or_path", None) is not None:
            config_file.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")


def write_pipeline_folder(
    target: str | Path,
    *,
    transformer: str | Path,
    vae: str | Path,
    text_encoder: str | Path,
    tokenizer: str | Path,
    settings: Mapping[str, Any] | None = None,
    max_bytes: int | None = None,
    check: Callable[[Path], None] | None = None,
) -> FolderSize:
    """Assemble the pipeline folder `target` from component folders; returns its size.

    `settings` are merged over the transformer's own `dynamictrl.json` (a `dynamictrl train` output has one with
    its image-latent scale) and written back there; `pose_render` is checked as a `PoseStyle`. Above `max_bytes`
    the folder is refused (`InputError` naming each component's size) and nothing is written. `check(folder)`
    runs on the complete temporary folder before it is renamed (e.g. `load_pipeline`); if it raises, nothing is
    published.
    """
    from ..pose.render import PoseStyle

    sources = {
        "transformer": _check_component("transformer", Path(transformer)),
        "vae": _check_component("vae", Path(vae)),
        "text_encoder": _check_component("text_encoder", Path(text_encoder)),
        "tokenizer": _check_component("tokenizer", Path(tokenizer)),
    }
    target = Path(target)
    for name, source in sources.items():
        if source.resolve() == target.resolve() or target.resolve() in source.resolve().parents:
            raise InputError(f"{name}: {source} is inside the output {target}; write the model somewhere else")
    with atomic_dir(target) as tmp:
        for name in COPIED_COMPONENTS:
            _copy_files(sources[name], tmp / name)
        write_scheduler(tmp / "scheduler")
        (tmp / "model_index.json").write_text(json.dumps(MODEL_INDEX, indent=2) + "\n")
        settings_file = tmp / "transformer" / MODEL_SETTINGS_FILE
        merged: dict[str, Any] = json.loads(settings_file.read_text()) if settings_file.is_file() else {}
        merged.update({k: v for k, v in (settings or {}).items() if v is not None})
        if merged.get("pose_render") is not None:
            merged["pose_render"] = PoseStyle.from_settings(merged["pose_render"]).to_json()
        if merged.get("image_latent_scale") is not None:
            merged["image_latent_scale"] = float(merged["image_latent_scale"])
        if merged:
            settings_file.write_text(json.dumps(merged, indent=2) + "\n")
        size = measure_folder(tmp)
        if max_bytes is not None and size.total_bytes > max_bytes:
            raise InputError(
                f"the pipeline folder would be {size.describe()}, above the limit of {max_bytes / MB:.2f} MB; "
                "use a smaller transformer or VAE, or raise the limit"
            )
        if check is not None:
            check(tmp)
    return FolderSize(target, size.total_bytes, size.components)


__all__ = [
    "MB",
    "MODEL_INDEX",
    "PIPELINE_CLASS",
    "SCHEDULER_CONFIG",
    "FolderSize",
    "folder_bytes",
    "measure_folder",
    "write_pipeline_folder",
    "write_scheduler",
]
