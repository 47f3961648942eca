"""Captions for prepared clips: the ones a user gives, or a pluggable captioner.

Given captions come from a sidecar `<name>.txt` next to a video, or from one mapping file in the raw folder:
`captions.csv` (columns `file,caption`, a header row optional) or `captions.jsonl` (`{"file": ..., "caption": ...}`
per line). A sidecar wins over the mapping file. Keys match the video's file name (`clip.mp4`), its stem (`clip`)
or its path relative to the raw folder (`dance/clip.mp4`).

Without a given caption a `Captioner` writes one from the clip's frames. `TemplateCaptioner` returns a fixed text
("a person dancing"). The published recipe captioned one frame per video with Qwen2-VL; a
vision-language backend is not implemented yet: plug one in by giving any object with `caption(frames) -> str`
and `identity() -> str` (the identity is part of the resume key, so another captioner re-captions).
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from ..errors import InputError
from .manifest import json_lines

MAPPING_FILES = ("captions.csv", "captions.jsonl")
DEFAULT_TEMPLATE = "a person dancing"


@runtime_checkable
class Captioner(Protocol):
    """Frames of one clip (RGB uint8 `[F, H, W, 3]`) → one caption."""

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
