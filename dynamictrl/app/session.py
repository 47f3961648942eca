"""What the web app does, without Gradio: upload checks, the form's fields, cached pipelines, per-session files.

`Studio` is the app's back end. It turns the form's values into `AnimateOptions` (every field is a declared option
from `options.OPTIONS`, so the web form checks values exactly as the CLI does), previews the pose stage
(`jobs.animate.prepare_inputs`: the aligned pose and the pose check's warnings, no weights) and runs
`jobs.animate.animate` with a pipeline from `PipelineCache`.

A diffusers pipeline keeps per-call state (its scheduler's timesteps, the guidance scale, the current step), so two
runs must never share one at the same time: `PipelineCache.use` loads each (model, dtype, offload, device) once and
holds that pipeline's lock for the whole run. Runs on different pipelines go in parallel up to the queue's
concurrency limit (`gradio_app.launch`). Each browser session writes into its own temporary folder, removed when
the session ends (`SessionFiles.close`) and, for whatever is left, when the app stops.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import shutil
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InputError, MediaError
from ..options import OPTIONS, AnimateOptions, DemoOptions, Option, options_of

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
VIDEO_SUFFIXES = (".mp4", ".mov", ".webm", ".mkv", ".avi", ".gif")
DEFAULT_MAX_UPLOAD_MB = 200.0
# The form, in order: what the brief of the app asks a user to choose. Every name is a declared option.
FORM_FIELDS = (
    "prompt",
    "negative_prompt",
    "model",
    "mask",
    "num_frames",
    "height",
    "width",
    "steps",
    "guidance",
    "seed",
    "dtype",
    "offload",
)
POSE_SOURCES = ("driving_video", "pose_video")  # the "pose source" options: which one the uploaded video fills

ProgressReport = Callable[[int, int], None]  # (steps done, steps in all)


@dataclass(frozen=True)
class Example:
    """A ready example the page offers with one click (`dynamictrl app` passes the demo's)."""

    image: Path
    pose_video: Path  # a rendered pose video
    settings: dict[str, Any] = field(default_factory=dict)  # form values by option name (prompt, height...)


@dataclass(frozen=True)
class AppConfig:
    """How the app is started (`dynamictrl app`).

    `label` is shown at the top of the page and written as the sidecar's note (the tiny random model says so);
    `defaults` replace declared defaults in the form (the demo's small sizes for the tiny model).
    """

    model: str
    label: str | None = None
    example: Example | None = None
    defaults: dict[str, Any] = field(default_factory=dict)
    max_upload_mb: float = DEFAULT_MAX_UPLOAD_MB
    concurrency: int = 2
    max_models: int = 1  # pipelines kept loaded; more than one only where memory allows
    device: str = "auto"
    temp_root: Path | None = None


# ------------------------------------------------------------------------------------------------ upload checks
def check_upload(path: str | Path | None, kind: str, max_bytes: int) -> Path:
    """An uploaded file that is there, of the right kind (`image` or `video`), under the size limit and decodable.

    Raises `InputError` with a message for the page: the file's own name (not its temp path) and what to upload.
    """
    what = {"image": "a photo of the person", "video": "a video"}[kind]
    if path is None or str(path) == "":
        raise InputError(f"No {kind} uploaded: upload {what}")
    p = Path(path)
    if not p.is_file():
        raise InputError(f"The uploaded {kind} {p.name} is gone; upload it again")
    suffixes = IMAGE_SUFFIXES if kind == "image" else VIDEO_SUFFIXES
    if p.suffix.lower() not in suffixes:
        raise InputError(
            f"{p.name} is not {'an image' if kind == 'image' else 'a video'} ({p.suffix or 'no extension'}); "
            f"upload {' / '.join(s.lstrip('.').upper() for s in suffixes)}"
        )
    size = p.stat().st_size
    if size > max_bytes:
        raise InputError(f"{p.name} is {_mb(size)}, over the upload limit of {_mb(max_bytes)}; upload a smaller file")
    from ..io.media import load_image, probe_video

    try:
        if kind == "image":
            load_image(p)
        else:
            probe_video(p)
    except MediaError as exc:
        hint = "a PNG, JPEG or WebP photo" if kind == "image" else "an MP4 or WebM video"
        raise InputError(
            f"{p.name} cannot be read as {'an image' if kind == 'image' else 'a video'}; upload {hint}"
        ) from exc
    return p


def _mb(size: float) -> str:
    return f"{size / 1e6:.1f} MB" if size >= 1e6 else f"{size / 1e3:.1f} kB" if size >= 1e3 else f"{int(size)} bytes"


# ---------------------------------------------------------------------------------------------------- the form
@dataclass(frozen=True)
class FormField:
    """One input of the form: its declared option and the default the app starts with."""

    name: str
    option: Option
    default: Any

    @property
    def label(self) -> str:
        return f"{self.name.replace('_', ' ')} ({self.option.flag})"


def form_fields(model: str, defaults: dict[str, Any] | None = None) -> list[FormField]:
    """The form's inputs from the declarations of `AnimateOptions`; `defaults` (by name) replace declared ones."""
    declared = dict(options_of(AnimateOptions))
    values = {**(defaults or {}), "model": model}
    return [FormField(name, declared[name], values.get(name, declared[name].default)) for name in FORM_FIELDS]


def small_run_defaults() -> dict[str, Any]:
    """The demo's frame and step counts (`DemoOptions`): a CPU-sized run, for the tiny model."""
    demo = dict(options_of(DemoOptions))
    return {name: demo[name].default for name in ("num_frames", "steps", "seed")}


# ------------------------------------------------------------------------------------------------- pipelines
@dataclass
class _Entry:
    lock: threading.Lock = field(default_factory=threading.Lock)
    model: Any = None


def load_model(options: AnimateOptions) -> Any:
    from ..jobs.animate import load_configured_pipeline

    return load_configured_pipeline(options)


class PipelineCache:
    """One loaded pipeline per (model, dtype, offload, device), reused by every run; runs on it take turns.

    `loader(options)` returns a `jobs.animate.LoadedModel` (`load_configured_pipeline`; tests pass a counting one).
    With `max_models` pipelines loaded, loading another first drops the least recently used idle one.
    """

    def __init__(self, loader: Callable[[AnimateOptions], Any] | None = None, max_models: int = 1) -> None:
        self._loader = loader or load_model
        self._max_models = max(1, max_models)
        self._lock = threading.Lock()
        self._entries: OrderedDict[tuple, _Entry] = OrderedDict()
        self.loads = 0

    @staticmethod
    def key(options: AnimateOptions) -> tuple[str, str, str, str]:
        return (options.model, options.dtype, options.offload, options.device)

    @contextmanager
    def use(self, options: AnimateOptions) -> Iterator[Any]:
        """The loaded pipeline for `options`, held (its lock) until the `with` block ends."""
        key = self.key(options)
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                entry = self._entries[key] = _Entry()
            self._entries.move_to_end(key)
        with entry.lock:
            if entry.model is None:
                self._evict(keep=key)
                logger.info("Loading %s (dtype %s, offload %s)", *key[:3])
                entry.model = self._loader(options)
                with self._lock:
                    self.loads += 1
            yield entry.model

    def _evict(self, keep: tuple) -> None:
        with self._lock:
            loaded = [k for k, e in self._entries.items() if e.model is not None and k != keep]
            for k in loaded[: max(0, len(loaded) - self._max_models + 1)]:
                entry = self._entries[k]
                if entry.lock.acquire(blocking=False):  # in use: kept (memory allowing), dropped later
                    try:
                        entry.model = None
                        logger.info("Unloaded %s", k[0])
                    finally:
                        entry.lock.release()

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


class _StepProgress:
    """The pipeline, reporting each denoising step (`callback_on_step_end`); one per run, so reports never mix."""

    def __init__(self, pipeline: Any, report: ProgressReport) -> None:
        self._pipeline = pipeline
        self._report = report

    def __getattr__(self, name: str) -> Any:
        return getattr(self._pipeline, name)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        total = int(kwargs.get("num_inference_steps") or 0)

        def on_step_end(pipe: Any, step: int, timestep: Any, tensors: dict) -> dict:
            self._report(step + 1, total)
            return {}

        return self._pipeline(*args, callback_on_step_end=on_step_end, **kwargs)


# ------------------------------------------------------------------------------------------------ session files
_SAFE = re.compile(r"[^A-Za-z0-9_-]")


class SessionFiles:
    """A temporary folder per browser session under one root, removed when the session ends or the app stops."""

    def __init__(self, parent: Path | None = None) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="dynamictrl-app-", dir=parent))
        self._counter = 0
        self._lock = threading.Lock()

    def folder(self, session_id: str | None) -> Path:
        path = self.root / (_SAFE.sub("_", session_id or "") or "anonymous")
        path.mkdir(parents=True, exist_ok=True)
        return path

    def new_run(self, session_id: str | None, kind: str) -> Path:
        """A fresh folder for one preview or run, so outputs of a session never overwrite each other."""
        with self._lock:
            self._counter += 1
            number = self._counter
        path = self.folder(session_id) / f"{kind}-{number:04d}"
        path.mkdir()
        return path

    def close(self, session_id: str | None) -> None:
        shutil.rmtree(self.root / (_SAFE.sub("_", session_id or "") or "anonymous"), ignore_errors=True)

    def close_all(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


# ---------------------------------------------------------------------------------------------------- back end
@dataclass
class Preview:
    pose_video: Path
    reference: Path
    warnings: list[str]


@dataclass
class RunOutputs:
    video: Path
    side_by_side: Path | None
    sidecar: Path
    warnings: list[str]


class Studio:
    """The app's back end: one per server, shared by every session (see the module docstring)."""

    def __init__(
        self,
        config: AppConfig,
        loader: Callable[[AnimateOptions], Any] | None = None,
        runner: Callable[..., Any] | None = None,
    ) -> None:
        self.config = config
        self.model = config.model
        self.models = PipelineCache(loader, self.config.max_models)
        self.files = SessionFiles(self.config.temp_root)
        self._runner = runner
        self.fields = form_fields(self.model, config.defaults)

    @property
    def max_upload_bytes(self) -> int:
        return int(self.config.max_upload_mb * 1e6)

    @property
    def allowed_paths(self) -> list[str]:
        """Folders the server may send files from: session outputs and the bundled example."""
        example = self.config.example
        extra = {str(Path(p).parent) for p in (example.image, example.pose_video)} if example else set()
        return [str(self.files.root), *sorted(extra)]

    def options(
        self, session_dir: Path, image: Any, video: Any, pose_source: str, values: dict[str, Any]
    ) -> AnimateOptions:
        """`AnimateOptions` from the form: uploads checked first, then every value as the CLI checks it."""
        if pose_source not in POSE_SOURCES:
            raise InputError(f"pose source must be one of {', '.join(POSE_SOURCES)}, got {pose_source!r}")
        image_path = check_upload(image, "image", self.max_upload_bytes)
        video_path = check_upload(video, "video", self.max_upload_bytes)
        parsed = {}
        for name, value in values.items():
            option = OPTIONS[name]
            if isinstance(value, str) and option.type is not str:
                value = value.strip() or None
            if value is None and option.default is not None:
                raise InputError(f"{option.flag} is empty; give a value (default: {option.default})")
            parsed[name] = option.parse(value)
        return AnimateOptions(
            image=image_path,
            **{pose_source: video_path},
            **parsed,
            out=session_dir / "result.mp4",
            side_by_side=True,
            device=self.config.device,
            note=self.config.label if parsed.get("model", self.model) == self.model else None,
            quiet=True,
        )

    def preview(
        self, session_id: str | None, image: Any, video: Any, pose_source: str, values: dict[str, Any]
    ) -> Preview:
        """The aligned pose video and the pose check's warnings, as generation will use them (no weights)."""
        from ..io.media import save_image, write_video
        from ..jobs.animate import prepare_inputs

        folder = self.files.new_run(session_id, "preview")
        options = self.options(folder, image, video, pose_source, values)
        inputs = prepare_inputs(options)
        pose_path = write_video(folder / "pose_preview.mp4", inputs.pose, inputs.fps)
        reference_path = folder / "reference.png"
        save_image(reference_path, inputs.reference)
        return Preview(pose_path, reference_path, list(inputs.warnings))

    def generate(
        self,
        session_id: str | None,
        image: Any,
        video: Any,
        pose_source: str,
        values: dict[str, Any],
        progress: ProgressReport | None = None,
    ) -> RunOutputs:
        """Run the animate job with the cached pipeline; returns the video, side-by-side and sidecar paths."""
        from ..jobs.animate import animate, check_model_fits, preflight
        from ..pipelines.loading import resolve_model

        folder = self.files.new_run(session_id, "run")
        options = self.options(folder, image, video, pose_source, values)
        preflight(options)
        check_model_fits(options, resolve_model(options.model, options.base))  # sizes vs. configs; no weights
        runner = self._runner or animate
        with self.models.use(options) as model:
            if progress is not None:
                model = dataclasses.replace(model, pipeline=_StepProgress(model.pipeline, progress))
            result = runner(options, model=model)
        return RunOutputs(
            video=result.videos[0],
            side_by_side=result.side_by_side[0] if result.side_by_side else None,
            sidecar=result.sidecar,
            warnings=list(result.warnings),
        )

    def end_session(self, session_id: str | None) -> None:
        self.files.close(session_id)

    def close(self) -> None:
        self.models.clear()
        self.files.close_all()
