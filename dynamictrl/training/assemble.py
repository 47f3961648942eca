"""One pipeline folder from the pieces trained here: `dynamictrl assemble-model OUT ...` or `assemble_model(...)`.

The folder is the released layout (`pipelines.folder`), so `dynamictrl animate --model OUT` loads it through the
same code as the 5B model. Components come from explicit folders, from an earlier assembled folder (`source`), or
are made here:

- `tokenizer/`: trained on `captions` (a manifest or a text file; `training.tokenizer.train_tokenizer`);
- `text_encoder/`: a seeded random frozen T5 of the tokenizer's vocabulary (`write_text_encoder`);
- `transformer/`: a seeded random `DynamiCtrlTransformer` of `transformer_config` (a named size such as
  "small", a JSON file or a dict), its `text_embed_dim` the T5's `d_model` and `max_text_seq_length` the
  tokenizer's `model_max_length`: the folder a `dynamictrl train` run starts from.

A recipe assembles twice: once before training the transformer (VAE trained, text made, transformer random), once
after (`source` = the first folder, `transformer` = the run's `transformer/`). `transformer/dynamictrl.json` gets
`image_latent_scale` (given, else the trained transformer's, else the VAE's `scaling_factor`, which is what
`dynamictrl train` uses by default) and `pose_render` (a `PoseStyle`; "synthetic" is how `dynamictrl synth` draws).
Before the folder is published it must fit `max_mb` (decimal MB) and, with `check`, every component must load with
no missing or unexpected weights and the whole folder through `pipelines.loading.load_pipeline`.
"""

from __future__ import annotations

import json
import logging
import math
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import CheckpointError, InputError
from ..models.configs import SMALL_TEXT_ENCODER_CONFIG, SMALL_TEXT_LENGTH, SMALL_VOCAB_SIZE, TRANSFORMER_SIZES
from ..pipelines.folder import MB, FolderSize, write_pipeline_folder
from .tokenizer import TokenizerReport, train_tokenizer, write_text_encoder

if TYPE_CHECKING:
    from ..pose.render import PoseStyle

logger = logging.getLogger(__name__)

DEFAULT_MAX_MB = 40.0
COMPONENTS = ("transformer", "vae", "text_encoder", "tokenizer")


@dataclass(frozen=True)
class AssembledModel:
    """The published folder, its size, its `dynamictrl.json` settings, and which components were made here."""

    path: Path
    size: FolderSize
    settings: dict[str, Any]
    made: tuple[str, ...] = ()
    tokenizer: TokenizerReport | None = None  # when the tokenizer was trained here
    sources: dict[str, str] = field(default_factory=dict)  # component → the folder it was copied from


def _read_json_object(value: str | Path | Mapping[str, Any], what: str) -> dict[str, Any]:
    if isinstance(value, Mapping):
        return dict(value)
    path = Path(value)
    if not path.is_file():
        raise InputError(f"{what}: {path} does not exist; give a JSON file")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise InputError(f"{what}: {path} is not valid JSON ({exc.msg})") from None
    if not isinstance(data, dict):
        raise InputError(f"{what}: {path} must hold a JSON object")
    return data


def resolve_transformer_config(value: str | Path | Mapping[str, Any]) -> dict[str, Any]:
    """A named size (`models.configs.TRANSFORMER_SIZES`: "small"), a JSON file or a dict → `DynamiCtrlTransformer`
    keywords (a `config.json` of a transformer works: its `_`-keys are dropped)."""
    if isinstance(value, str) and value in TRANSFORMER_SIZES:
        return dict(TRANSFORMER_SIZES[value])
    if isinstance(value, str) and not value.endswith(".json") and not Path(value).exists():
        raise InputError(
            f"transformer_config: unknown size {value!r}; give one of {sorted(TRANSFORMER_SIZES)} or a JSON file"
        )
    config = _read_json_object(value, "transformer_config")
    return {k: v for k, v in config.items() if not k.startswith("_")}


def pose_style(value: str | Path | Mapping[str, Any]) -> PoseStyle:
    """A named drawing ("published", or "synthetic": what `dynamictrl synth` renders its poses with), a JSON file
    of `PoseStyle` keys, or a dict of them."""
    from ..pose.render import PUBLISHED_STYLE, PoseStyle

    if value == "published":
        return PUBLISHED_STYLE
    if value == "synthetic":
        from ..synthetic.world import SYNTH_POSE_STYLE

        return SYNTH_POSE_STYLE
    return PoseStyle.from_settings(_read_json_object(value, "pose_render"))


def _config(folder: Path) -> dict[str, Any]:
    return json.loads((folder / "config.json").read_text())


def _pick(name: str, given: str | Path | None, source: Path | None) -> Path | None:
    if given is not None:
        path = Path(given)
        if not path.is_dir():
            raise InputError(f"{name}: {path} is not a folder")
        return path
    if source is not None and (source / name).is_dir():
        return source / name
    return None


def check_compatible(transformer: Path, vae: Path, text_encoder: Path, tokenizer_size: int) -> None:
    """The components' configs must fit together (read from JSON; no weights): latent channels, text width,
    vocabulary, a CogVideoX-1.5 transformer (temporal patches)."""
    t, v, te = _config(transformer), _config(vae), _config(text_encoder)
    latent = int(v.get("latent_channels", 16))
    if t.get("in_channels") != 2 * latent or t.get("out_channels") != latent:
        raise InputError(
            f"the transformer takes {t.get('in_channels')} → {t.get('out_channels')} channels but the VAE has "
            f"{latent} latent channels (expected {2 * latent} → {latent})"
        )
    if t.get("text_embed_dim") != te.get("d_model"):
        raise InputError(
            f"the transformer's text_embed_dim {t.get('text_embed_dim')} is not the text encoder's d_model "
            f"{te.get('d_model')}; build them together (leave out --transformer to make a matching one)"
        )
    if int(te.get("vocab_size", 0)) < tokenizer_size:
        raise InputError(
            f"the text encoder has {te.get('vocab_size')} token embeddings for a tokenizer of {tokenizer_size}; "
            "build the text encoder from this tokenizer"
        )
    if t.get("patch_size_t") is None:
        raise InputError("the transformer has no temporal patch (patch_size_t): DynamiCtrl is CogVideoX-1.5 based")


def missing_weights(folder: Path) -> dict[str, list[str]]:
    """`component → missing and unexpected weight names` when each model component of `folder` is loaded alone
    (empty when everything fits)."""
    from diffusers import AutoencoderKLCogVideoX
    from transformers import T5EncoderModel

    from ..models.transformer_dynamictrl import DynamiCtrlTransformer

    problems: dict[str, list[str]] = {}
    loaders = {
        "transformer": DynamiCtrlTransformer.from_pretrained,
        "vae": AutoencoderKLCogVideoX.from_pretrained,
        "text_encoder": T5EncoderModel.from_pretrained,
    }
    for name, load in loaders.items():
        _, info = load(folder / name, output_loading_info=True)
        bad = [f"missing {k}" for k in info.get("missing_keys", [])]
        bad += [f"unexpected {k}" for k in info.get("unexpected_keys", [])]
        bad += [f"mismatched {k[0] if isinstance(k, tuple) else k}" for k in info.get("mismatched_keys", [])]
        if bad:
            problems[name] = bad
    return problems


def check_loads(folder: Path) -> None:
    """Every weight in place (`missing_weights`), then the whole folder through `load_pipeline`, as `animate`."""
    from ..pipelines.loading import load_pipeline

    problems = missing_weights(folder)
    if problems:
        listed = "; ".join(f"{name}: {', '.join(items[:3])}" for name, items in problems.items())
        raise CheckpointError(f"the assembled model does not load cleanly ({listed})")
    load_pipeline(str(folder), local_files_only=True)


def assemble_model(
    out: str | Path,
    *,
    vae: str | Path | None = None,
    transformer: str | Path | None = None,
    tokenizer: str | Path | None = None,
    text_encoder: str | Path | None = None,
    source: str | Path | None = None,
    captions: str | Path | list[str] | None = None,
    transformer_config: str | Path | Mapping[str, Any] | None = None,
    text_encoder_config: Mapping[str, Any] | None = None,
    text_previous_token_bias: float | None = None,
    vocab_size: int = SMALL_VOCAB_SIZE,
    text_length: int | None = None,
    pose_render: str | Path | Mapping[str, Any] | None = None,
    image_latent_scale: float | None = None,
    seed: int = 0,
    max_mb: float | None = DEFAULT_MAX_MB,
    overwrite: bool = False,
    check: bool = True,
) -> AssembledModel:
    """Write the pipeline folder `out` (see the module docstring); returns what was written.

    Components: `vae`, `transformer`, `tokenizer`, `text_encoder` folders, else `source/<name>`, else made here
    (the tokenizer from `captions`, the T5 from the tokenizer with `text_encoder_config`, `seed` and
    `text_previous_token_bias` (None: the default; given, a new T5 of the source T5's sizes replaces it), the
    transformer from `transformer_config` (default "small") with `seed`; `text_length` overrides its
    `max_text_seq_length`, default the tokenizer's `model_max_length`). The arguments are checked before any work,
    the components' fit (`check_compatible`), size and loading before anything is published; an existing `out` is
    replaced only with `overwrite`.
    """
    out = Path(out)
    if out.exists() and not overwrite and (out.is_file() or any(out.iterdir())):
        raise InputError(f"{out} already exists; pass --overwrite to replace it")
    if max_mb is not None and not 0 < max_mb < float("inf"):
        raise InputError(f"max_mb must be a positive number, got {max_mb}")
    if image_latent_scale is not None and not 0 < image_latent_scale < float("inf"):
        raise InputError(f"image_latent_scale must be > 0, got {image_latent_scale}")
    if text_length is not None and (
        isinstance(text_length, bool) or not isinstance(text_length, int) or text_length < 2
    ):
        raise InputError(f"text_length must be an integer of 2 or more, got {text_length!r}")
    source_dir = None if source is None else Path(source)
    if source_dir is not None and not (source_dir / "model_index.json").is_file():
        raise InputError(f"source: {source_dir} is not a pipeline folder (no model_index.json)")
    folders = {
        "vae": _pick("vae", vae, source_dir),
        "transformer": _pick("transformer", transformer, source_dir),
        "tokenizer": _pick("tokenizer", tokenizer, source_dir),
        "text_encoder": _pick("text_encoder", text_encoder, source_dir),
    }
    if folders["vae"] is None:
        raise InputError("no VAE: give --vae (a `dynamictrl train-vae` output's vae/ folder) or --from")
    if captions is not None and tokenizer is not None:
        raise InputError("give --tokenizer or --captions (to train one), not both")
    if captions is not None:
        folders["tokenizer"] = None  # trained here, replacing the source's
        if text_encoder is None:
            folders["text_encoder"] = None  # a new vocabulary needs a new text encoder
    if text_previous_token_bias is not None:
        if text_encoder is not None:
            raise InputError("give --text-encoder or --text-previous-token-bias (a new T5), not both")
        if not math.isfinite(text_previous_token_bias):
            raise InputError(f"text_previous_token_bias must be a finite number, got {text_previous_token_bias}")
        if text_encoder_config is None and folders["text_encoder"] is not None:  # the source's sizes
            source_config = _config(folders["text_encoder"])
            text_encoder_config = {k: source_config[k] for k in SMALL_TEXT_ENCODER_CONFIG if k in source_config}
        folders["text_encoder"] = None  # made here, replacing the source's
    if folders["tokenizer"] is None and captions is None:
        raise InputError("no tokenizer: give --tokenizer, --captions (a manifest to train one on) or --from")
    if transformer is not None and transformer_config is not None:
        raise InputError("give --transformer (trained weights) or --transformer-config (a new one), not both")
    new_transformer = None
    if folders["transformer"] is None or transformer_config is not None:
        new_transformer = resolve_transformer_config(transformer_config or "small")
        folders["transformer"] = None
    style = None if pose_render is None else pose_style(pose_render).to_json()

    out.parent.mkdir(parents=True, exist_ok=True)
    made: list[str] = []
    report = None
    with tempfile.TemporaryDirectory(prefix=f".{out.name}.assemble-", dir=out.parent) as work_dir:
        work = Path(work_dir)
        if folders["tokenizer"] is None:
            report = train_tokenizer(
                captions, work / "tokenizer", vocab_size=vocab_size, max_length=text_length or SMALL_TEXT_LENGTH
            )
            folders["tokenizer"] = report.folder
            made.append("tokenizer")
        from transformers import AutoTokenizer

        loaded_tokenizer = AutoTokenizer.from_pretrained(folders["tokenizer"])
        if folders["text_encoder"] is None:
            folders["text_encoder"] = write_text_encoder(
                folders["tokenizer"],
                work / "text_encoder",
                config=text_encoder_config,
                seed=seed,
                previous_token_bias=text_previous_token_bias,
            )
            made.append("text_encoder")
        # Settings: given, else the transformer's own (a `dynamictrl train` output has its image-latent scale),
        # else the source's (its pose drawing), else the VAE's scaling factor (what training uses by default).
        own = _read_settings(folders["transformer"])
        inherited = _read_settings(None if source_dir is None else source_dir / "transformer")
        scale = (
            image_latent_scale
            or own.get("image_latent_scale")
            or inherited.get("image_latent_scale")
            or _config(folders["vae"]).get("scaling_factor")
        )
        style = style or own.get("pose_render") or inherited.get("pose_render")
        if new_transformer is not None:
            length = text_length or int(loaded_tokenizer.model_max_length)
            if length > 10_000:  # a tokenizer without model_max_length reports a huge sentinel
                length = int(new_transformer.get("max_text_seq_length", 226))
            new_transformer.update(
                text_embed_dim=_config(folders["text_encoder"])["d_model"], max_text_seq_length=length
            )
            folders["transformer"] = _write_random_transformer(
                new_transformer, work / "transformer", float(scale), seed
            )
            made.append("transformer")
        check_compatible(folders["transformer"], folders["vae"], folders["text_encoder"], len(loaded_tokenizer))
        settings = {"image_latent_scale": float(scale), "pose_render": style}
        size = write_pipeline_folder(
            out,
            transformer=folders["transformer"],
            vae=folders["vae"],
            text_encoder=folders["text_encoder"],
            tokenizer=folders["tokenizer"],
            settings=settings,
            max_bytes=None if max_mb is None else int(max_mb * MB),
            check=check_loads if check else None,
        )
    written = _read_settings(out / "transformer")
    logger.info("Assembled %s: %s", out, size.describe())
    sources = {name: str(folders[name]) for name in COMPONENTS if name not in made}
    return AssembledModel(out, size, written, tuple(made), report, sources)


def _read_settings(transformer: Path | None) -> dict[str, Any]:
    from ..pipelines.loading import MODEL_SETTINGS_FILE

    path = None if transformer is None else transformer / MODEL_SETTINGS_FILE
    return json.loads(path.read_text()) if path is not None and path.is_file() else {}


def _write_random_transformer(config: dict[str, Any], folder: Path, image_latent_scale: float, seed: int) -> Path:
    """A seeded random `DynamiCtrlTransformer` of `config`, saved in the released layout."""
    import torch

    from ..models.transformer_dynamictrl import DynamiCtrlTransformer
    from .checkpoint import save_transformer

    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = DynamiCtrlTransformer(**config)
    except TypeError as exc:
        raise InputError(f"transformer_config has a key DynamiCtrlTransformer does not take ({exc})") from None
    return save_transformer(model.eval(), folder, image_latent_scale)


__all__ = [
    "DEFAULT_MAX_MB",
    "AssembledModel",
    "assemble_model",
    "check_compatible",
    "check_loads",
    "resolve_transformer_config",
]
