"""The clip manifest: one JSON object per line, each a training clip and its frame-aligned pose video.

```
{"video": "videos/0001.mp4", "pose": "poses/0001.mp4", "caption": "a woman in a red dress ...",
 "frames": 120, "height": 1920, "width": 1080, "fps": 30.0, "mask": null, "reference": null}
```

`video`, `pose` and `caption` are required; paths are relative to the manifest's folder (absolute ones work).
`frames`, `height`, `width`, `fps` describe the clip (probed when missing); `mask` is an optional mask video
(white = keep, as the published Mask_B01/C01 variants: only the reference frame is masked); `reference` an
optional reference image used instead of the clip's first frame. Captions are matched to videos by record, not
by line order as in the published `prompts.txt`/`video.txt` pair.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..errors import InputError

REQUIRED = ("video", "pose", "caption")


@dataclass(frozen=True)
class ClipRecord:
    video: Path
    pose: Path
    caption: str
    frames: int
    height: int
    width: int
    fps: float
    mask: Path | None = None
    reference: Path | None = None

    def to_json(self, root: Path | None = None) -> dict:
        """The record's JSON line; with `root` (a resolved folder), paths under it relative to it and the others
        absolute, so the line reads back from a manifest in `root` whatever the working directory."""
        out = asdict(self)
        for key in ("video", "pose", "mask", "reference"):
            if out[key] is not None and root is not None:
                path = Path(out[key]).resolve()
                out[key] = str(path.relative_to(root) if path.is_relative_to(root) else path)
            elif out[key] is not None:
                out[key] = str(out[key])
        return out


def _path(root: Path, value: str | None) -> Path | None:
    if value is None:
        return None
    p = Path(value).expanduser()
    return p if p.is_absolute() else root / p


def json_lines(path: Path) -> Iterator[tuple[int, Any]]:
    """(line number, parsed value) of each non-empty line of a JSONL file; a line that is not JSON is named."""
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            yield number, json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"{path}:{number} is not JSON ({exc.msg})") from None


def read_manifest(path: str | Path, *, check_files: bool = True) -> list[ClipRecord]:
    """Parse and check a manifest; errors name the line and the fix."""
    from ..io.media import probe_video

    path = Path(path)
    root = path.parent
    records = []
    for number, raw in json_lines(path):
        if not isinstance(raw, dict):
            raise InputError(f"{path}:{number} must be a JSON object")
        missing = [k for k in REQUIRED if not raw.get(k)]
        if missing:
            raise InputError(f"{path}:{number} lacks {', '.join(missing)}")
        video, pose = _path(root, raw["video"]), _path(root, raw["pose"])
        mask, reference = _path(root, raw.get("mask")), _path(root, raw.get("reference"))
        if check_files:
            for what, p in (("video", video), ("pose", pose), ("mask", mask), ("reference", reference)):
                if p is not None and not p.is_file():
                    raise InputError(f"{path}:{number}: {what} file {p} does not exist")
        meta = {k: raw.get(k) for k in ("frames", "height", "width", "fps")}
        if any(v is None for v in meta.values()):
            info = probe_video(video)
            meta = {
                "frames": meta["frames"] or info.num_frames,
                "height": meta["height"] or info.height,
                "width": meta["width"] or info.width,
                "fps": meta["fps"] or info.fps,
            }
        records.append(
            ClipRecord(
                video=video,
                pose=pose,
                caption=str(raw["caption"]),
                frames=int(meta["frames"]),
                height=int(meta["height"]),
                width=int(meta["width"]),
                fps=float(meta["fps"]),
                mask=mask,
                reference=reference,
            )
        )
    if not records:
        raise InputError(f"{path} has no records; add one JSON line per clip")
    return records


def manifest_paths(data_root: Path, names: str) -> tuple[Path, ...]:
    """`names` (a manifest file name inside `data_root`, or several, comma-separated) → their paths, checked to
    exist: the trainers read them in order into one list of records."""
    paths = tuple(Path(data_root) / n.strip() for n in str(names).split(",") if n.strip())
    if not paths:
        raise InputError("manifest is empty; name one or more manifest files inside data_root")
    for path in paths:
        if not path.is_file():
            raise InputError(f"no manifest at {path}; write one (docs/training.md, 'Data')")
    return paths


def read_manifests(paths: tuple[Path, ...] | list[Path], *, check_files: bool = True) -> list[ClipRecord]:
    """The records of several manifests, in order (each read and checked by `read_manifest`)."""
    return [record for path in paths for record in read_manifest(path, check_files=check_files)]


def write_manifest(path: str | Path, records: list[ClipRecord]) -> Path:
    """Write records (paths relative to the manifest's folder where possible), atomically."""
    from ..io.atomic import write_text_atomic

    path = Path(path)
    root = path.parent.resolve()
    lines = [json.dumps(r.to_json(root)) for r in records]
    return write_text_atomic(path, "\n".join(lines) + "\n")
