"""Where outputs go: check the locations before any expensive work, then publish a run's files together.

`check_outputs` runs first, so a typo in `--out` fails in a second instead of after minutes of generation; it creates
nothing (the write test creates and deletes one hidden file in the nearest existing folder).

`StagedOutputs` holds the files of one run (videos, then their sidecar) in hidden temporary files next to their
final paths and renames them into place only when the run succeeds; a crash or Ctrl-C leaves no half-written file,
no temporary file and no folder it created behind.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import os
import tempfile
from pathlib import Path
from types import TracebackType

from ..errors import DynamiCtrlError, InputError
from .atomic import publish, temp_sibling

PathArg = str | os.PathLike | None


def check_outputs(outputs: dict[str, PathArg], inputs: dict[str, PathArg] | None = None) -> None:
    """Raise `InputError` (naming the flag and the fix) if an output path cannot or must not be written.

    `outputs` and `inputs` map the flag the user typed (`"--out"`) to its path; None values are skipped. Checked:
    an output that is an existing folder or ends in `/`; a file where a parent folder should be; an existing
    non-regular file (a device such as /dev/null would be replaced by the rename); a nearest existing folder that
    cannot be written (tested by creating a file: root ignores permission bits but not read-only mounts); an output
    that is one of the inputs (same resolved path, or the same file through a link); two outputs on the same path.

    Pass paths as the user typed them (strings) where possible: `pathlib.Path` drops a trailing `/`.
    """
    outs = {flag: value for flag, value in outputs.items() if value is not None}
    ins = {flag: value for flag, value in (inputs or {}).items() if value is not None}
    for flag, value in outs.items():
        _check_shape(flag, value)
    for (flag_a, a), (flag_b, b) in itertools.combinations(outs.items(), 2):
        if _same_file(Path(a), Path(b)):
            raise InputError(f"{flag_a} and {flag_b} both point to {Path(a)}; give them different file names")
    for out_flag, out in outs.items():
        for in_flag, src in ins.items():
            if _same_file(Path(out), Path(src)):
                raise InputError(
                    f"{out_flag} {Path(out)} is the input given to {in_flag} and would overwrite it; "
                    "write the output to another file"
                )
    probed: dict[Path, OSError | None] = {}
    for flag, value in outs.items():
        path = Path(value).expanduser()
        folder = _nearest_existing_ancestor(path)
        if folder not in probed:
            probed[folder] = _probe_writable(folder)
        exc = probed[folder]
        if exc is not None:
            reason = "read-only file system" if exc.errno == errno.EROFS else (exc.strerror or type(exc).__name__)
            raise InputError(f"{flag} {path}: cannot write in {folder} ({reason}); choose a folder you can write to")


def _check_shape(flag: str, value: str | os.PathLike) -> None:
    raw = os.fspath(value)
    path = Path(raw).expanduser()
    if raw.endswith(("/", os.sep)) or path.is_dir():
        example = path / f"output{path.suffix}" if path.suffix else path / "output.mp4"
        raise InputError(f"{flag} {raw} is a folder, not a file name; give a file path such as {example}")
    if path.exists() and not path.is_file():
        raise InputError(f"{flag} {path} exists and is not a regular file; give the path of a new or ordinary file")
    for parent in path.parents:
        if parent.is_dir():
            return
        if parent.exists():
            raise InputError(f"{flag} {path}: {parent} is a file, not a folder; choose another output path")


def _nearest_existing_ancestor(path: Path) -> Path:
    for parent in path.parents:
        if parent.is_dir():
            return parent
    return Path.cwd()  # only reached for a relative path whose first part does not exist yet


def _probe_writable(folder: Path) -> OSError | None:
    """Create and delete a hidden file in `folder`: the only test that is right for root and read-only mounts."""
    try:
        fd, name = tempfile.mkstemp(prefix=".dynamictrl-write-test-", dir=folder)
    except OSError as exc:
        return exc
    os.close(fd)
    with contextlib.suppress(OSError):
        os.unlink(name)
    return None


def _same_file(a: Path, b: Path) -> bool:
    a, b = a.expanduser(), b.expanduser()
    if a.resolve() == b.resolve():
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist (yet)
        return False


class StagedOutputs:
    """Context manager that publishes several files together when the block succeeds, and nothing when it fails.

    ```
    with StagedOutputs() as staged:
        write_video(staged.path(out), frames, fps)            # any writer, given the temporary path
        write_json_atomic(staged.path(sidecar), record)       # registered last, so renamed last
    ```

    `path(final)` returns a hidden temporary file in the final folder with the same suffix (creating missing folders
    and remembering them). On normal exit the files are renamed into place in registration order (register the
    sidecar last, so it never describes a video that is not there) with the usual mode for the umask. On any
    exception, KeyboardInterrupt and SystemExit included, every temporary file is removed, the folders it created
    are removed if empty, and the exception propagates. `completed` lists the finals already renamed into place;
    if a rename itself fails the error names them.
    """

    def __init__(self) -> None:
        self._staged: list[tuple[Path, Path]] = []
        self._created_dirs: list[Path] = []
        self._closed = False
        self.completed: list[Path] = []

    def __enter__(self) -> StagedOutputs:
        return self

    def path(self, final: str | os.PathLike) -> Path:
        """Temporary path to write `final` to; renamed to `final` when the `with` block ends without error."""
        if self._closed:
            raise RuntimeError("StagedOutputs.path() called after the with block ended")
        final = Path(final)
        if any(_same_file(final, known) for known, _ in self._staged):
            raise ValueError(f"{final} is already staged in this run")
        self._make_parents(final.parent)
        tmp = temp_sibling(final)
        self._staged.append((final, tmp))
        return tmp

    def _make_parents(self, folder: Path) -> None:
        missing = []
        while not folder.is_dir():
            missing.append(folder)
            if folder.parent == folder:
                break
            folder = folder.parent
        for created in reversed(missing):  # outermost first
            created.mkdir()
            self._created_dirs.append(created)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._closed = True
        if exc_type is not None:
            self._discard()
            return
        try:
            self._commit()
        except BaseException:
            self._discard()
            raise

    def _commit(self) -> None:
        for final, tmp in self._staged:
            try:
                publish(tmp, final)
            except OSError as exc:
                written = ", ".join(str(p) for p in self.completed) or "nothing"
                raise DynamiCtrlError(
                    f"Could not move the finished {final.name} into place at {final} ({exc.strerror or exc}); "
                    f"written: {written}; fix the output folder and run again"
                ) from exc
            self.completed.append(final)

    def _discard(self) -> None:
        done = set(self.completed)
        for final, tmp in self._staged:
            if final in done:
                continue
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
        for folder in reversed(self._created_dirs):  # innermost first
            with contextlib.suppress(OSError):
                folder.rmdir()  # only if empty: a published output or someone else's file keeps it
