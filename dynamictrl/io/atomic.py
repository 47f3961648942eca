"""Atomic file and folder writes: a reader never sees a half-written output.

Everything is written to a temporary sibling in the target folder and renamed into place with `os.replace`, which
is atomic on POSIX and Windows when source and target are on the same file system (a sibling always is).

Temporary files come from `tempfile.mkstemp`, which creates them private (0600). Before the rename they get the mode
a plain `open()` would have given (`0o666 & ~umask`), so a web server or another user can read what we publish.
Folders (`atomic_dir`) get the same treatment for every file and folder inside them before they appear: the writers
we call there do not all honour the umask (safetensors' `save_file`, and so diffusers' and transformers'
`save_pretrained`, writes weights 0600; measured with safetensors 0.8), which would publish a model folder or a
checkpoint whose weights only their writer can read.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def current_umask() -> int:
    """The process umask, read without changing it where the OS allows (Linux `/proc`), else by set-and-restore.

    `os.umask` can only be read by setting it; in between, a file another thread creates would get the wrong mode.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def default_file_mode() -> int:
    """Mode a new file gets from `open()` under the current umask (0o644 under the usual 0o022)."""
    return 0o666 & ~current_umask()


def default_dir_mode() -> int:
    """Mode a new folder gets from `mkdir` under the current umask (0o755 under the usual 0o022)."""
    return 0o777 & ~current_umask()


def publish_tree(folder: str | os.PathLike) -> None:
    """Give every file and folder under `folder` (not `folder` itself) the mode `open()` / `mkdir` would give.

    Links are left alone (chmod would follow them out of the folder).
    """
    file_mode, dir_mode = default_file_mode(), default_dir_mode()
    for root, dirs, files in os.walk(folder):
        for name, mode in [(d, dir_mode) for d in dirs] + [(f, file_mode) for f in files]:
            path = os.path.join(root, name)
            if not os.path.islink(path):
                os.chmod(path, mode)


def temp_sibling(target: Path, suffix: str | None = None) -> Path:
    """Create an empty hidden temporary file next to `target` and return its path (the folder must exist).

    Hidden, unique, and ending in the real suffix (`suffix` defaults to the target's): writers that pick a format
    from the extension still work, and a folder listing or glob of `*.mp4` never shows a half-written file.
    """
    fd, tmp = tempfile.mkstemp(
        prefix=f".{target.name}.partial-", suffix=target.suffix if suffix is None else suffix, dir=target.parent
    )
    os.close(fd)
    return Path(tmp)


def publish(tmp: Path, target: Path) -> None:
    """Give `tmp` the mode of a freshly `open()`ed file and rename it to `target` (atomic, replaces it)."""
    os.chmod(tmp, default_file_mode())
    os.replace(tmp, target)


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path next to `target`; on success rename it to `target`, on error delete it.

    `suffix` defaults to the target's suffix. The final file has the usual mode for the umask (see `publish`).
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    real_tmp = temp_sibling(target, suffix)
    try:
        yield real_tmp
        publish(real_tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            real_tmp.unlink()
        raise


def write_bytes_atomic(target: str | os.PathLike, data: bytes) -> Path:
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)
    return Path(target)


def write_text_atomic(target: str | os.PathLike, text: str) -> Path:
    return write_bytes_atomic(target, text.encode("utf-8"))


def write_json_atomic(target: str | os.PathLike, obj: Any, indent: int = 2) -> Path:
    return write_text_atomic(target, json.dumps(obj, indent=indent, sort_keys=False, default=_json_default) + "\n")


def _json_default(obj: Any) -> Any:
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "tolist"):  # numpy / torch scalars and arrays
        return obj.tolist()
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serialisable")


@contextlib.contextmanager
def atomic_dir(target: str | os.PathLike) -> Iterator[Path]:
    """Yield `<target>.tmp/`; on success move it to `target` (replacing an old one), on error remove it.

    Used for checkpoints and model folders, which are many files that must appear together. The folder is made with
    `mkdir` (not `tempfile.mkdtemp`, which would make it 0700), so it gets the usual mode for the umask, and what was
    written inside gets it too (`publish_tree`) before the move.
    """
    target = Path(target)
    tmp = target.with_name(target.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    try:
        yield tmp
        publish_tree(tmp)
        if target.exists():
            old = target.with_name(target.name + ".old")
            if old.exists():
                shutil.rmtree(old)
            os.replace(target, old)
            os.replace(tmp, target)
            shutil.rmtree(old)
        else:
            os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
