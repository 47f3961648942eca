"""Captions for prepared clips: the ones a user gives, or a pluggable captioner.

Given captions come from a sidecar `<name>.txt` next to a video, or from one mapping file in the raw folder:
`captions.csv` (columns `file,caption`, a header row optional) or `captions.jsonl` (`{"file": ..., "caption": ...}`
per line). A sidecar wins over the mapping file. Keys match the video's file name (`clip.mp4`), its stem (`clip`)
or its path relative to the raw folder (`dance/clip.mp4`).

Without a given caption a `Captioner` writes one from the clip's frames: `TemplateCaptioner` returns a fixed text
("a person dancing"); `QwenVLCaptioner` asks a Qwen2-VL model (transformers, a local folder or hub id) to describe
the person's appearance and the background from a few frames, as the published recipe's captions do (its
`tools/qwen.py` asked Qwen2-VL "Describe the person and the background." about one frame per video). Any object
with `caption(frames) -> str` and `identity() -> str` plugs in; the identity is part of the resume key, so another
captioner or setting re-captions.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import unicodedata
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from ..errors import CheckpointError, InputError
from .manifest import json_lines

logger = logging.getLogger(__name__)

MAPPING_FILES = ("captions.csv", "captions.jsonl")
DEFAULT_TEMPLATE = "a person dancing"
CAPTIONERS = ("template", "qwen2-vl")
DEFAULT_VLM_PROMPT = (
    "Describe the person in this video, their appearance (clothes, hair, build) and the background, in one paragraph."
)


@runtime_checkable
class Captioner(Protocol):
    """Frames of one clip (RGB uint8 `[F, H, W, 3]`) → one caption.

    `identity()` names the captioner and every setting that changes its captions (part of each clip's resume key).
    Optional: `settings() -> dict` (written to report.json instead of the identity) and `close()` (called when
    prepare-data ends, to free a model).
    """

    def caption(self, frames: npt.NDArray[np.uint8]) -> str: ...

    def identity(self) -> str: ...


class TemplateCaptioner:
    """The same caption for every clip (`--caption-template`), for data whose prompt hardly matters."""

    def __init__(self, template: str = DEFAULT_TEMPLATE) -> None:
        if not template.strip():
            raise InputError("--caption-template is empty; give a caption such as 'a person dancing'")
        self.template = template.strip()

    def caption(self, frames: npt.NDArray[np.uint8]) -> str:
        return self.template

    def identity(self) -> str:
        return f"template:{self.template}"

    def settings(self) -> dict[str, Any]:
        return {"backend": "template", "template": self.template}


# Files a Qwen2-VL folder needs (config, weights, tokenizer, processor, chat template); nothing else is fetched.
QWEN_VL_FILES = ("*.json", "*.safetensors", "*.txt", "*.jinja")
IMAGE_TOKEN = "<|image_pad|>"  # Qwen2-VL's image placeholder, one per image before expansion


def _model_revision(folder: Path) -> str:
    """What identifies a model folder's weights cheaply: its config files' bytes and its weight files' names,
    sizes and times (hashing 16 GB of Qwen2-VL-7B every run would cost more than it saves)."""
    h = hashlib.sha256()
    for path in sorted(folder.iterdir()):
        if path.suffix in (".json", ".jinja"):
            h.update(path.name.encode() + path.read_bytes())
        elif path.suffix == ".safetensors":
            stat = path.stat()
            h.update(f"{path.name}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return h.hexdigest()[:16]


def sample_frame_indices(num_frames: int, count: int) -> list[int]:
    """`count` frame indices spread evenly over a clip, first and last included (fewer for a shorter clip)."""
    return sorted({int(round(i)) for i in np.linspace(0, num_frames - 1, min(count, num_frames))})


def fit_pixels(frame: npt.NDArray[np.uint8], max_pixels: int) -> npt.NDArray[np.uint8]:
    """Shrink an RGB frame `[H, W, 3]` (area-averaged, aspect kept) to at most `max_pixels` pixels."""
    import cv2

    height, width = frame.shape[:2]
    if height * width <= max_pixels:
        return frame
    scale = (max_pixels / (height * width)) ** 0.5
    size = (max(1, int(width * scale)), max(1, int(height * scale)))
    return cv2.resize(frame, size, interpolation=cv2.INTER_AREA)


class QwenVLCaptioner:
    """Captions from a Qwen2-VL model (`transformers.Qwen2VLForConditionalGeneration`), loaded once, on first use.

    `model`: a local folder or a hub id (fetched through `io.hub.fetch`, offline-aware, when the captioner is
    made, so a missing model fails before any video is decoded). Each clip: `frames` frames spread over it
    (RGB uint8 `[F, H, W, 3]`, shrunk to at most `max_pixels` pixels each), one user turn holding those images and
    `prompt`, greedy decoding (`do_sample=False`, one beam; the model's `repetition_penalty` is kept) of at most
    `max_new_tokens` tokens. `dtype` "auto" is bfloat16 on a GPU and float32 on the CPU.

    Inputs come from the model's `AutoProcessor` (`Qwen2VLProcessor`) when torchvision is installed. transformers 5
    builds that processor only with torchvision (for its video processor, even for images), which this project
    keeps out of its requirements; without it the captioner does the processor's two image steps itself with the
    folder's image processor (`Qwen2VLImageProcessorPil`) and tokenizer: the chat template, then each image
    placeholder repeated once per merged patch (`image_grid_thw.prod() // merge_size**2`), as the processor does.
    """

    def __init__(
        self,
        model: str,
        *,
        device: str = "cpu",
        dtype: str = "auto",
        prompt: str = DEFAULT_VLM_PROMPT,
        frames: int = 3,
        max_new_tokens: int = 128,
        max_pixels: int = 448 * 448,
    ) -> None:
        from ..io.devices import resolve_device, resolve_dtype
        from ..io.hub import fetch

        self.device = resolve_device(device)  # a CUDA device that is not there fails here, before the work
        self.dtype = resolve_dtype(dtype, self.device, "--captioner-dtype")
        if not prompt.strip():
            raise InputError("--captioner-prompt is empty; ask for the person's appearance and the background")
        for flag, value, least in (
            ("--captioner-frames", frames, 1),
            ("--captioner-max-new-tokens", max_new_tokens, 1),
            ("--captioner-max-pixels", max_pixels, 28 * 28),
        ):
            if value < least:
                raise InputError(f"{flag} must be at least {least}, got {value}")
        self.model_name, self.prompt, self.frames = model, prompt.strip(), frames
        self.max_new_tokens, self.max_pixels = max_new_tokens, max_pixels
        self.folder = fetch(model, allow_patterns=list(QWEN_VL_FILES))
        if not (self.folder / "config.json").is_file():
            raise InputError(f"--captioner-model {model}: {self.folder} has no config.json; give a Qwen2-VL folder")
        self.revision = _model_revision(self.folder)
        self._model: Any = None
        self._processor: Any = None

    def settings(self) -> dict[str, Any]:
        """Everything that changes a caption (report.json; hashed into the resume key)."""
        return {
            "backend": "qwen2-vl",
            "model": self.model_name,
            "revision": self.revision,
            "dtype": str(self.dtype).removeprefix("torch."),
            "prompt": self.prompt,
            "frames": self.frames,
            "max_new_tokens": self.max_new_tokens,
            "max_pixels": self.max_pixels,
            "decoding": "greedy",
        }

    def identity(self) -> str:
        return "qwen2-vl:" + json.dumps(self.settings(), sort_keys=True)

    # ------------------------------------------------------------------------------------------- loading
    def load(self) -> None:
        """Load model and processor (once); later calls do nothing."""
        if self._model is not None:
            return
        from transformers import Qwen2VLForConditionalGeneration
        from transformers.utils import is_torchvision_available

        model = Qwen2VLForConditionalGeneration.from_pretrained(self.folder, dtype=self.dtype)
        self._model = model.to(self.device).eval()
        if is_torchvision_available():
            from transformers import AutoProcessor

            self._processor = AutoProcessor.from_pretrained(self.folder)
        else:
            self._processor = _ImageTextProcessor(self.folder)
        logger.info("Loaded the captioner %s (%s, %s)", self.model_name, self.device, self.dtype)

    def close(self) -> None:
        """Free the model (a later caption loads it again)."""
        self._model = self._processor = None

    # ------------------------------------------------------------------------------------------ captioning
    def inputs(self, frames: npt.NDArray[np.uint8]) -> dict[str, Any]:
        """The model inputs (tensors on the captioner's device) for a clip `[F, H, W, 3]`."""
        self.load()
        images = [fit_pixels(frames[i], self.max_pixels) for i in sample_frame_indices(len(frames), self.frames)]
        content = [*({"type": "image"} for _ in images), {"type": "text", "text": self.prompt}]
        messages = [{"role": "user", "content": content}]
        text = self._processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        batch = self._processor(text=[text], images=images, return_tensors="pt")
        return {
            k: v.to(self.device, self.dtype) if v.is_floating_point() else v.to(self.device) for k, v in batch.items()
        }

    def caption(self, frames: npt.NDArray[np.uint8]) -> str:
        import torch

        inputs = self.inputs(frames)
        with torch.inference_mode():
            output = self._model.generate(
                **inputs,
                max_new_tokens=self.max_new_tokens,
                do_sample=False,
                num_beams=1,
                top_k=None,
                top_p=None,
                temperature=None,
            )
        new_tokens = output[:, inputs["input_ids"].shape[1] :]
        text = self._processor.batch_decode(new_tokens, skip_special_tokens=True)[0]
        # Control characters (a byte-level tokenizer may decode to them) have no place in a prompt file.
        return " ".join("".join(c for c in text if unicodedata.category(c)[0] != "C" or c.isspace()).split())


class _ImageTextProcessor:
    """`Qwen2VLProcessor`'s image path without torchvision: chat template, image placeholders expanded to one per
    merged patch, tokens, `mm_token_type_ids` (1 at image tokens, for M-RoPE), pixel values and `image_grid_thw`."""

    def __init__(self, folder: Path) -> None:
        from transformers import AutoImageProcessor, AutoTokenizer

        self.image_processor = AutoImageProcessor.from_pretrained(folder)
        self.tokenizer = AutoTokenizer.from_pretrained(folder)
        self.image_token = getattr(self.tokenizer, "image_token", None) or IMAGE_TOKEN
        self.image_token_id = self.tokenizer.convert_tokens_to_ids(self.image_token)
        self.chat_template = _chat_template(folder, self.tokenizer)

    def apply_chat_template(self, messages: list[dict[str, Any]], **kwargs: Any) -> str:
        return self.tokenizer.apply_chat_template(messages, chat_template=self.chat_template, **kwargs)

    def __call__(self, *, text: list[str], images: list[npt.NDArray[np.uint8]], return_tensors: str) -> dict:
        (prompt,) = text
        vision = self.image_processor(images=images, return_tensors=return_tensors)
        pieces = prompt.split(self.image_token)
        if len(pieces) != len(images) + 1:
            raise CheckpointError(
                f"the chat template wrote {len(pieces) - 1} image placeholders for {len(images)} images"
            )
        counts = (vision["image_grid_thw"].prod(-1) // self.image_processor.merge_size**2).tolist()
        prompt = pieces[0] + "".join(
            self.image_token * int(n) + piece for n, piece in zip(counts, pieces[1:], strict=True)
        )
        tokens = self.tokenizer([prompt], return_tensors=return_tensors)
        tokens["mm_token_type_ids"] = (tokens["input_ids"] == self.image_token_id).long()
        return {**tokens, **vision}

    def batch_decode(self, ids: Any, **kwargs: Any) -> list[str]:
        return self.tokenizer.batch_decode(ids, **kwargs)


def _chat_template(folder: Path, tokenizer: Any) -> str:
    """The processor's chat template: `chat_template.jinja`, else `chat_template.json`, else the tokenizer's."""
    if (folder / "chat_template.jinja").is_file():
        return (folder / "chat_template.jinja").read_text(encoding="utf-8")
    if (folder / "chat_template.json").is_file():
        return json.loads((folder / "chat_template.json").read_text(encoding="utf-8"))["chat_template"]
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.chat_template
    raise CheckpointError(f"{folder} has no chat template (chat_template.jinja or chat_template.json)")


def _clean(text: str) -> str:
    # prompts.txt is one line per clip, split on "#####": neither may occur inside a caption.
    return " ".join(text.replace("#####", " ").split())


def _read_csv(path: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    with open(path, newline="", encoding="utf-8") as f:
        for number, row in enumerate(csv.reader(f), start=1):
            if not row or not any(cell.strip() for cell in row):
                continue
            if len(row) < 2:
                raise InputError(f"{path}:{number} needs two columns, file and caption; got {row!r}")
            if number == 1 and row[0].strip().lower() in ("file", "video", "name", "path"):
                continue  # header
            out[row[0].strip()] = _clean(",".join(row[1:]))
    return out


def _read_jsonl(path: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    for number, raw in json_lines(path):
        name = raw.get("file", raw.get("video")) if isinstance(raw, dict) else None
        if not isinstance(name, str) or not isinstance(raw.get("caption"), str):
            raise InputError(f'{path}:{number} must be {{"file": "<video name>", "caption": "<text>"}}')
        out[name.strip()] = _clean(raw["caption"])
    return out


def read_caption_mapping(raw_dir: str | Path) -> dict[str, str]:
    """The captions of `raw_dir/captions.csv` or `captions.jsonl` (empty when neither exists; both is an error)."""
    raw_dir = Path(raw_dir)
    found = [raw_dir / name for name in MAPPING_FILES if (raw_dir / name).is_file()]
    if len(found) > 1:
        raise InputError(f"{raw_dir} has both {MAPPING_FILES[0]} and {MAPPING_FILES[1]}; keep one")
    if not found:
        return {}
    return _read_csv(found[0]) if found[0].suffix == ".csv" else _read_jsonl(found[0])


def given_caption(video: Path, raw_dir: Path, mapping: dict[str, str]) -> str | None:
    """The user's caption of `video`: its sidecar `.txt`, else its entry in the mapping file; None when neither."""
    sidecar = video.with_suffix(".txt")
    if sidecar.is_file():
        text = _clean(sidecar.read_text(encoding="utf-8"))
        if text:
            return text
    relative = video.relative_to(raw_dir).as_posix() if video.is_relative_to(raw_dir) else video.name
    for key in (relative, video.name, video.stem):
        if mapping.get(key):
            return mapping[key]
    return None
