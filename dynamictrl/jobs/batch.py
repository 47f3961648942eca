"""`dynamictrl animate --jobs FILE`: many animations from one JSON-lines file, shared out over processes, resumable.

Each line of the file is one job: a JSON object whose keys are animate options, spelled as `AnimateOptions` fields
(`pose_video`), as flags with or without their dashes (`pose-video`, `--pose-video`, `frames`, the declared aliases,
`no-vae-tiling`, `loop`), with JSON values or strings, parsed and checked through the same `Option` declarations as
the command line. The flags given beside `--jobs` are every line's defaults; a line overrides them (a line's
`--pose-video` or `--driving-video` replaces the command line's choice of the two); `null` brings back the declared
default. Blank lines and lines starting with `#` are skipped. Relative paths are taken from the working folder,
like the flags'.

In order, `run_jobs`:

1. checks everything before any model is loaded, every process the same (so all refuse together): each line builds
   its `AnimateOptions` (errors name the file and line), no two jobs write one file or one job's output is another's
   input, the summary's location, then `preflight` and `check_model_fits` (configs only) of every job still to do;
2. gives job i (in file order, finished ones included, so a job keeps its process from run to run) to process
   i % num_processes (`accelerate.PartialState`), each process on its own device (`cuda:{local_process_index}`
   unless the job names a `--device`; the CPU under a CPU launch);
3. skips jobs whose outputs are all there, sidecar included (`jobs/animate.py` renames the sidecar into place last,
   so a sidecar means the job finished; a job interrupted before it is redone), runs the others with one model load
   per distinct `jobs.animate.load_key` (a process's jobs are grouped by key, in file order within a key), and
   records a failing job's one-line error without stopping the others;
4. after `wait_for_everyone()`, gathers every process's records (`accelerate.utils.gather_object`, see
   `_gather`) and the main process writes the summary JSON atomically.
"""

from __future__ import annotations

import difflib
import gc
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from ..errors import DynamiCtrlError, InputError
from ..io.atomic import write_json_atomic
from ..io.outputs import check_outputs
from ..options import AnimateOptions, Option, options_of
from .animate import (
    AnimateResult,
    LoadedModel,
    OutputPlan,
    _inputs_by_flag,
    animate,
    check_model_fits,
    load_configured_pipeline,
    load_key,
    preflight,
)
from .processes import on_process_device, process_state

logger = logging.getLogger(__name__)

STATUSES = ("done", "skipped", "failed")
# Settings that may differ from a finished job's sidecar without making it another job (where it ran, how quietly).
RUNTIME_FIELDS = frozenset({"quiet", "note", "device", "cpu_threads"})
_UNSET = object()  # a shortcut key given `false`: as if not given
_DEFAULT = object()  # a key given `null`: the declared default
T = TypeVar("T")


# ---------------------------------------------------------------------------------------------------- jobs file
@dataclass(frozen=True)
class _Key:
    """What one spelling of a key in a jobs line sets."""

    name: str  # the AnimateOptions field
    option: Option
    const: Any = _UNSET  # a shortcut flag (`loop`): `true` sets this value
    invert: bool = False  # a `--no-...` flag: `true` sets False


def _canonical(key: str) -> str:
    return key.strip().lstrip("-").replace("_", "-")


def _key_table() -> dict[str, _Key]:
    """Every accepted key spelling (canonical: no leading dashes, `-` for `_`) → what it sets."""
    table: dict[str, _Key] = {}

    def add(spelling: str, entry: _Key) -> None:
        key = _canonical(spelling)
        if table.get(key, entry) != entry:  # a declaration bug, not an input error
            raise RuntimeError(f"jobs key {key!r} would set both {table[key].name} and {entry.name}")
        table[key] = entry

    for name, option in options_of(AnimateOptions):
        add(name, _Key(name, option))
        for flag in option.flags:
            add(flag, _Key(name, option, invert=option.negate))
        for flag, value, _help in option.shortcuts:
            add(flag, _Key(name, option, const=value))
    return table


KEYS = _key_table()


def _as_bool(flag: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "yes", "1", "on", "false", "no", "0", "off"):
        return value.strip().lower() in ("true", "yes", "1", "on")
    raise InputError(f"{flag} must be true or false, got {value!r}")


def _line_value(key: _Key, spelling: str, value: Any) -> Any:
    """A JSON value (or a string, as typed on a command line) → the option's value; checks come later."""
    option = key.option
    flag = "--" + _canonical(spelling)
    if key.const is not _UNSET:
        return key.const if _as_bool(flag, value) else _UNSET
    if option.type is bool:
        given = _as_bool(flag, value)
        return not given if key.invert else given
    if isinstance(value, (bool, list, dict)):
        kind = {int: "an integer", float: "a number"}.get(option.type, "a string")
        raise InputError(f"{option.flag} must be {kind}, got {json.dumps(value)}")
    if option.type is int and isinstance(value, float):
        if not value.is_integer():
            raise InputError(f"{option.flag} must be an integer, got {value!r}")
        value = int(value)
    if option.type in (str, Path) and not isinstance(value, str):
        raise InputError(f"{option.flag} must be a string, got {json.dumps(value)}")
    return option.parse(value)


def _unknown_key(key: str) -> InputError:
    close = difflib.get_close_matches(_canonical(key), list(KEYS), n=1)
    hint = f" (did you mean {close[0]}?)" if close else " (keys are animate options, e.g. image, prompt, pose_video)"
    return InputError(f"unknown key {key!r}{hint}")


def _object_without_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise InputError(f"key {key!r} is given twice")
        seen[key] = value
    return seen


def command_line_defaults(values: dict[str, Any]) -> dict[str, Any]:
    """The animate flags given beside `--jobs` (field name → argparse text), parsed and checked one by one.

    Checked here so that a bad flag is named as a flag, not as an error of every line.
    """
    declared = dict(options_of(AnimateOptions))
    parsed = {}
    for name, text in values.items():
        option = declared[name]
        parsed[name] = option.parse(text)
        option.validate(parsed[name])
    return parsed


def job_values(text: str, defaults: dict[str, Any]) -> dict[str, Any]:
    """One line's JSON object over `defaults` (field name → value): the keyword arguments of its `AnimateOptions`."""
    try:
        obj = json.loads(text, object_pairs_hook=_object_without_duplicates)
    except json.JSONDecodeError as exc:
        raise InputError(f"not valid JSON ({exc.msg} at column {exc.colno}); each line is one JSON object") from None
    if not isinstance(obj, dict):
        raise InputError(f'must be a JSON object such as {{"image": ..., "prompt": ...}}, got {json.dumps(obj)}')
    given: dict[str, Any] = {}
    spelled: dict[str, str] = {}
    for spelling, raw in obj.items():
        key = KEYS.get(_canonical(spelling))
        if key is None:
            raise _unknown_key(spelling)
        if key.name in spelled:
            raise InputError(f"{spelled[key.name]!r} and {spelling!r} both set {key.option.flag}")
        spelled[key.name] = spelling
        value = _DEFAULT if raw is None else _line_value(key, spelling, raw)
        if value is not _UNSET:
            given[key.name] = value
    values = dict(defaults)
    declared = dict(options_of(AnimateOptions))
    for name in given:  # a line's --pose-video replaces the command line's --driving-video, and the other way round
        group = declared[name].exclusive
        for other, option in declared.items():
            if group and option.exclusive == group and other != name:
                values.pop(other, None)
    for name, value in given.items():
        if value is _DEFAULT:
            values.pop(name, None)
        else:
            values[name] = value
    return values


@dataclass(frozen=True)
class Job:
    """One line of the jobs file: its number (1-based, as an editor shows it), options and output files."""

    line: int
    options: AnimateOptions
    plan: OutputPlan

    @property
    def outputs(self) -> list[Path]:
        """Every file the job writes, its sidecar last."""
        return [path for path in self.plan.by_flag().values() if path is not None]


def read_jobs(path: str | os.PathLike, defaults: dict[str, Any] | None = None, quiet: bool = False) -> list[Job]:
    """Every job of a jobs file, each checked as `AnimateOptions`; errors name the file and the line.

    `defaults`: parsed command-line values (`command_line_defaults`), under every line.
    """
    path = Path(path)
    if not path.is_file():
        what = "a folder, not a file" if path.is_dir() else "not found"
        raise InputError(f"jobs file {path} is {what} (check the path given to --jobs)")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read the jobs file {path}: {exc}") from None
    jobs = []
    for number, line in enumerate(text.split("\n"), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        try:
            options = AnimateOptions(**job_values(stripped, defaults or {}), quiet=quiet)
        except DynamiCtrlError as exc:
            raise InputError(f"{path} line {number}: {exc}") from None
        jobs.append(Job(number, options, OutputPlan.of(options)))
    if not jobs:
        raise InputError(f"the jobs file {path} has no jobs: write one JSON object of animate options a line")
    return jobs


# ------------------------------------------------------------------------------------------------------- checks
def _resolved(path: str | os.PathLike) -> Path:
    return Path(path).expanduser().resolve()


def check_jobs(jobs: Sequence[Job], jobs_file: str | os.PathLike, summary: str | os.PathLike) -> None:
    """Refuse a job that asks for `--context-parallel`, and jobs that would write over each other: one file written by
    two jobs, a job's output that is another job's input, and a summary that is the jobs file or any job's input or
    output. (A job against itself: `preflight`.)"""
    for job in jobs:
        if job.options.context_parallel != "none":
            raise InputError(
                f"{jobs_file} line {job.line}: --context-parallel splits one video over the launch's processes, "
                "--jobs shares the jobs out over them; run such a job on its own, without --jobs"
            )
    writers: dict[Path, tuple[Job, str]] = {}
    for job in jobs:
        for label, path in job.plan.by_flag().items():
            if path is None:
                continue
            first = writers.setdefault(_resolved(path), (job, label))
            if first[0] is not job:
                raise InputError(
                    f"{jobs_file} line {job.line}: {label} {path} is also written by line {first[0].line} "
                    f"({first[1]}); give each job its own --out"
                )
    for job in jobs:
        for flag, path in _inputs_by_flag(job.options).items():
            writer = writers.get(_resolved(path)) if path is not None else None
            if writer is not None and writer[0] is not job:
                raise InputError(
                    f"{jobs_file} line {writer[0].line}: {writer[1]} {path} is the {flag} of line {job.line} and "
                    "would overwrite it; write the output to another file"
                )
    target = _resolved(summary)
    if target in writers:
        job, label = writers[target]
        raise InputError(f"--jobs-summary {summary} is also line {job.line}'s {label}; write the summary elsewhere")
    inputs = {f"line {job.line}'s {flag}": p for job in jobs for flag, p in _inputs_by_flag(job.options).items()}
    check_outputs({"--jobs-summary": summary}, {"--jobs": jobs_file, **inputs})


def is_complete(job: Job) -> bool:
    """Whether every output of `job` is there, sidecar included: the sidecar is renamed into place last, so it
    exists only once the job finished (a job stopped before that left no file, or an older one, to redo)."""
    return all(path.is_file() for path in job.outputs)


def changed_settings(job: Job) -> list[str]:
    """Settings of a finished job that its sidecar recorded differently (it is still skipped: we say so)."""
    try:
        recorded = json.loads(job.plan.sidecar.read_text()).get("settings", {})
    except (OSError, ValueError, AttributeError):
        return []
    current = job.options.to_json()
    return sorted(k for k in current if k not in RUNTIME_FIELDS and k in recorded and recorded[k] != current[k])


def check_pending(jobs: Sequence[Job], jobs_file: str | os.PathLike, check_models: bool = True) -> None:
    """`preflight` (outputs and input files) and, with `check_models`, `check_model_fits` (the model's configs, no
    weights: one `resolve_model` per model and base) of each job; errors name the line."""
    resolved: dict[tuple[str, str], Any] = {}
    for job in jobs:
        try:
            preflight(job.options)
            if check_models:
                from ..pipelines.loading import resolve_model

                where = (job.options.model, job.options.base)
                if where not in resolved:
                    resolved[where] = resolve_model(*where)
                check_model_fits(job.options, resolved[where])
        except DynamiCtrlError as exc:
            raise InputError(f"{jobs_file} line {job.line}: {exc}") from None


# --------------------------------------------------------------------------------------------------- processes
def shard(items: Sequence[T], index: int, count: int) -> list[T]:
    """Process `index` of `count`'s share: job i (in file order) goes to process i % count."""
    return [item for i, item in enumerate(items) if i % count == index]


def by_load_key(jobs: Sequence[Job]) -> list[Job]:
    """`jobs` grouped by `load_key` (groups in order of first appearance, file order within one): one load each."""
    groups: dict[tuple, list[Job]] = {}
    for job in jobs:
        groups.setdefault(load_key(job.options), []).append(job)
    return [job for group in groups.values() for job in group]


def _gather(records: list[dict[str, Any]], state: Any) -> list[dict[str, Any]]:
    """Every process's records, on every process.

    `gather_object` is `torch.distributed.all_gather_object` (pickled bytes in a tensor), which gloo runs on the CPU
    and NCCL on the GPUs; the records are a few hundred bytes a job. Chosen over per-process files: nothing to name,
    clean up or mistake for a previous run's.
    """
    if state.num_processes == 1:
        return list(records)
    from accelerate.utils import gather_object

    return gather_object(records)


def _free_memory() -> None:
    gc.collect()
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()


# ------------------------------------------------------------------------------------------------------ the run
@dataclass
class BatchResult:
    """What `run_jobs` did: one record a job (by line), the summary file, and whether this is the main process."""

    records: list[dict[str, Any]]
    summary: Path
    is_main: bool
    num_processes: int

    def count(self, status: str) -> int:
        return sum(record["status"] == status for record in self.records)

    @property
    def failed(self) -> list[dict[str, Any]]:
        return [record for record in self.records if record["status"] == "failed"]


Loader = Callable[[AnimateOptions], LoadedModel]
Runner = Callable[..., AnimateResult]


def run_share(
    jobs: Sequence[Job],
    complete: Sequence[bool],
    state: Any,
    quiet: bool = False,
    loader: Loader = load_configured_pipeline,
    runner: Runner = animate,
) -> list[dict[str, Any]]:
    """Run (or skip) this process's `jobs`; `complete[i]` says whether `jobs[i]` is finished already.

    A `DynamiCtrlError` fails its job only; a model that fails to load fails every job of its load key at once.
    """
    from tqdm.auto import tqdm

    finished = {id(job): done for job, done in zip(jobs, complete, strict=True)}
    records = []
    model: LoadedModel | None = None
    loaded: tuple | None = None
    load_errors: dict[tuple, str] = {}
    desc = f"jobs (process {state.process_index + 1}/{state.num_processes})" if state.num_processes > 1 else "jobs"
    with tqdm(total=len(jobs), desc=desc, unit="job", disable=quiet, position=state.process_index) as bar:
        for job in by_load_key(jobs):
            options = on_process_device(job.options, state)
            start = time.perf_counter()
            record: dict[str, Any] = {
                "line": job.line,
                "status": "skipped",
                "outputs": [str(p) for p in job.outputs],
                "process_index": state.process_index,
                "seconds": 0.0,
                "error": None,
            }
            if finished[id(job)]:
                changed = changed_settings(job)
                if changed:
                    record["note"] = f"finished with other settings ({', '.join(changed)}); delete it to redo"
                    logger.warning("line %d: %s was %s", job.line, job.options.out, record["note"])
            else:
                key = load_key(options)
                try:
                    if key in load_errors:
                        raise InputError(load_errors[key])
                    if key != loaded:
                        model = loaded = None
                        _free_memory()
                        try:
                            model = loader(options)
                        except DynamiCtrlError as exc:
                            load_errors[key] = str(exc)
                            raise
                        loaded = key
                    runner(options, model=model)
                    record["status"] = "done"
                except DynamiCtrlError as exc:
                    record.update(status="failed", error=str(exc))
                    logger.error("line %d failed: %s", job.line, exc)
                record["seconds"] = round(time.perf_counter() - start, 3)
            records.append(record)
            bar.update(1)
    return records


def write_summary(
    path: str | os.PathLike,
    jobs_file: str | os.PathLike,
    records: Sequence[dict[str, Any]],
    num_processes: int,
    seconds: float,
) -> dict[str, Any]:
    """The summary JSON (counts, then every job by line), written atomically."""
    ordered = sorted(records, key=lambda record: record["line"])
    data = {
        "jobs_file": str(jobs_file),
        "num_processes": num_processes,
        "seconds": round(seconds, 3),
        "counts": {status: sum(r["status"] == status for r in ordered) for status in STATUSES},
        "jobs": ordered,
    }
    write_json_atomic(path, data)
    return data


def run_jobs(
    jobs_file: str | os.PathLike,
    defaults: dict[str, Any] | None = None,
    summary: str | os.PathLike | None = None,
    quiet: bool = False,
    *,
    state: Any = None,
    loader: Loader = load_configured_pipeline,
    runner: Runner = animate,
    check_models: bool = True,
) -> BatchResult:
    """Run every job of `jobs_file` (see the module docstring); the main process writes the summary.

    defaults: the command line's animate values (field name → argparse text or value). summary: default
    `<jobs file stem>.summary.json` beside it. state: accelerate's `PartialState` (default: `process_state()`);
    loader, runner and check_models are for tests.
    """
    started = time.perf_counter()
    jobs_file = Path(jobs_file)
    summary = Path(summary) if summary is not None else jobs_file.with_name(f"{jobs_file.stem}.summary.json")
    parsed = command_line_defaults(defaults or {})
    jobs = read_jobs(jobs_file, parsed, quiet)
    check_jobs(jobs, jobs_file, summary)
    complete = [is_complete(job) for job in jobs]
    check_pending([job for job, done in zip(jobs, complete, strict=True) if not done], jobs_file, check_models)

    launched = state is None
    if launched:
        state = process_state(cpu=parsed.get("device") == "cpu")
    state.wait_for_everyone()  # every process has checked every job, and none has written anything yet
    mine = shard(range(len(jobs)), state.process_index, state.num_processes)
    records = run_share([jobs[i] for i in mine], [complete[i] for i in mine], state, quiet, loader, runner)

    state.wait_for_everyone()
    records = _gather(records, state)
    if state.is_main_process:
        write_summary(summary, jobs_file, records, state.num_processes, time.perf_counter() - started)
    state.wait_for_everyone()  # the summary is there before any process returns
    if launched and state.num_processes > 1:
        state.destroy_process_group()
    return BatchResult(sorted(records, key=lambda r: r["line"]), summary, state.is_main_process, state.num_processes)
