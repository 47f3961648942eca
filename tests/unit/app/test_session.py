"""The app's back end without Gradio: upload checks, the form from the declarations, the pipeline cache, sessions."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from dynamictrl.app import session
from dynamictrl.app.session import AppConfig, PipelineCache, SessionFiles, Studio, check_upload, form_fields
from dynamictrl.errors import InputError
from dynamictrl.io.media import save_image, write_video
from dynamictrl.jobs.animate import LoadedModel
from dynamictrl.options import OPTIONS, AnimateOptions


@pytest.fixture
def media(tmp_path: Path) -> SimpleNamespace:
    image = save_image(tmp_path / "person.png", np.full((64, 48, 3), 200, np.uint8))
    video = write_video(tmp_path / "pose.mp4", np.zeros((9, 64, 48, 3), np.uint8), fps=8.0)
    text = tmp_path / "notes.txt"
    text.write_text("not an image\n")
    disguised = tmp_path / "photo.png"
    disguised.write_text("not an image either\n")
    return SimpleNamespace(image=image, video=video, text=text, disguised=disguised)


# ------------------------------------------------------------------------------------------------ uploads
def test_uploads_of_the_wrong_kind_or_size_get_a_message_naming_the_file(media):
    assert check_upload(media.image, "image", 10**6) == media.image
    assert check_upload(media.video, "video", 10**6) == media.video
    with pytest.raises(InputError, match=r"notes\.txt is not an image \(\.txt\); upload PNG"):
        check_upload(media.text, "image", 10**6)
    with pytest.raises(InputError, match=r"photo\.png cannot be read as an image; upload a PNG"):
        check_upload(media.disguised, "image", 10**6)
    with pytest.raises(InputError, match=r"person\.png is .* over the upload limit of 100 bytes"):
        check_upload(media.image, "image", 100)
    with pytest.raises(InputError, match="No video uploaded"):
        check_upload(None, "video", 10**6)
    with pytest.raises(InputError, match=r"person\.png is not a video"):
        check_upload(media.image, "video", 10**6)
    # The page shows the file's own name, not the server's temp folder.
    with pytest.raises(InputError) as caught:
        check_upload(media.disguised, "image", 10**6)
    assert str(media.disguised.parent) not in str(caught.value)


# --------------------------------------------------------------------------------------------------- form
def test_form_fields_come_from_the_declarations():
    fields = {f.name: f for f in form_fields("some/model", {"num_frames": 9})}
    assert list(fields) == list(session.FORM_FIELDS)
    for name, spec in fields.items():
        assert spec.option.help == OPTIONS[name].help and spec.option.choices == OPTIONS[name].choices
        assert spec.option.flag in spec.label
    assert fields["model"].default == "some/model"
    assert fields["num_frames"].default == 9  # the override
    assert fields["steps"].default == OPTIONS["steps"].default  # declared default
    assert fields["offload"].option.choices == OPTIONS["offload"].choices


def _studio(tmp_path: Path, **kwargs) -> Studio:
    config = AppConfig(model="tiny-model", temp_root=tmp_path, device="cpu", label="TINY RANDOM MODEL")
    return Studio(config, **kwargs)


def _values(studio: Studio, **changes) -> dict:
    values = {f.name: f.default for f in studio.fields}
    values.update(prompt="a person", num_frames=9, height=64, width=48, steps=2)
    values.update(changes)
    return values


def test_form_values_are_checked_like_the_cli_flags(tmp_path, media):
    studio = _studio(tmp_path)
    folder = studio.files.new_run("s1", "run")
    options = studio.options(folder, media.image, media.video, "pose_video", _values(studio, num_frames=9.0))
    assert isinstance(options, AnimateOptions)
    assert options.num_frames == 9 and options.pose_video == media.video and options.driving_video is None
    assert options.out.parent == folder and options.side_by_side and options.note == "TINY RANDOM MODEL"
    with pytest.raises(InputError, match=r"--frames must be 4k\+1"):
        studio.options(folder, media.image, media.video, "pose_video", _values(studio, num_frames=10))
    with pytest.raises(InputError, match="--offload must be one of"):
        studio.options(folder, media.image, media.video, "pose_video", _values(studio, offload="most"))
    with pytest.raises(InputError, match="--seed is empty"):
        studio.options(folder, media.image, media.video, "pose_video", _values(studio, seed=None))
    with pytest.raises(InputError, match="--prompt is required"):
        studio.options(folder, media.image, media.video, "pose_video", _values(studio, prompt=None))
    with pytest.raises(InputError, match="notes.txt is not an image"):
        studio.options(folder, media.text, media.video, "driving_video", _values(studio))
    studio.close()


# ------------------------------------------------------------------------------------------------ pipelines
class CountingLoader:
    def __init__(self, delay: float = 0.2) -> None:
        self.calls: list[tuple] = []
        self.delay = delay

    def __call__(self, options):
        self.calls.append(PipelineCache.key(options))
        time.sleep(self.delay)  # a slow load: a second request arriving meanwhile must wait, not load again
        return LoadedModel(pipeline=object(), info=SimpleNamespace(key=PipelineCache.key(options)))


def _opts(tmp_path: Path, **kwargs) -> AnimateOptions:
    return AnimateOptions(image=tmp_path / "a.png", pose_video=tmp_path / "p.mp4", prompt="x", **kwargs)


def test_two_requests_at_once_load_the_pipeline_once_and_take_turns(tmp_path):
    loader = CountingLoader()
    cache = PipelineCache(loader)
    inside, most, seen = [0], [0], []
    guard = threading.Lock()

    def request():
        with cache.use(_opts(tmp_path)) as model:
            with guard:
                inside[0] += 1
                most[0] = max(most[0], inside[0])
            seen.append(model)
            time.sleep(0.05)
            with guard:
                inside[0] -= 1

    threads = [threading.Thread(target=request) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(seen) == 2 and seen[0] is seen[1]
    assert len(loader.calls) == 1 and cache.loads == 1
    assert most[0] == 1  # one pipeline is never used by two runs at once (its scheduler keeps per-call state)


def test_each_model_dtype_offload_device_has_its_own_pipeline_and_the_idle_one_is_dropped(tmp_path):
    loader = CountingLoader(delay=0)
    cache = PipelineCache(loader, max_models=1)
    with cache.use(_opts(tmp_path)) as first:
        pass
    with cache.use(_opts(tmp_path, dtype="float32")) as second:
        pass
    with cache.use(_opts(tmp_path, dtype="float32")) as again:
        pass
    assert again is second and first is not second
    assert loader.calls == [("dynamictrl", "auto", "none", "auto"), ("dynamictrl", "float32", "none", "auto")]
    with cache.use(_opts(tmp_path)):
        pass
    assert len(loader.calls) == 3  # the first was unloaded to make room (max_models=1)


def test_progress_reports_every_denoising_step():
    calls = []

    def pipeline(**kwargs):
        for i in range(kwargs["num_inference_steps"]):
            assert kwargs["callback_on_step_end"](None, i, 999 - i, {"latents": 0}) == {}
        return "frames"

    wrapped = session._StepProgress(pipeline, lambda done, total: calls.append((done, total)))
    assert wrapped(num_inference_steps=3) == "frames"
    assert calls == [(1, 3), (2, 3), (3, 3)]


def test_studio_runs_two_requests_at_once_with_one_load(tmp_path, media, monkeypatch):
    import dynamictrl.jobs.animate as job
    import dynamictrl.pipelines.loading as loading

    monkeypatch.setattr(loading, "resolve_model", lambda model, base: None)  # no model folder: checked elsewhere
    monkeypatch.setattr(job, "check_model_fits", lambda options, resolved: None)
    loader = CountingLoader()
    runs = []

    def runner(options, model):
        model.pipeline(num_inference_steps=options.steps)
        runs.append(options.out)
        return job.AnimateResult(videos=[options.out], sidecar=options.out.with_suffix(".json"), side_by_side=[])

    class Pipe:
        def __call__(self, **kwargs):
            for i in range(kwargs["num_inference_steps"]):
                kwargs["callback_on_step_end"](self, i, 0, {})

    loader_with_pipe = lambda options: LoadedModel(pipeline=Pipe(), info=loader(options).info)  # noqa: E731
    studio = _studio(tmp_path, loader=loader_with_pipe, runner=runner)
    reports: dict[str, list] = {"a": [], "b": []}
    results = {}

    def request(sid):
        results[sid] = studio.generate(
            sid, media.image, media.video, "pose_video", _values(studio), progress=lambda d, n: reports[sid].append(d)
        )

    threads = [threading.Thread(target=request, args=(sid,)) for sid in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert set(results) == {"a", "b"} and len(loader.calls) == 1
    assert reports == {"a": [1, 2], "b": [1, 2]}  # each request sees its own steps only
    assert results["a"].video.parent != results["b"].video.parent
    assert results["a"].video.is_relative_to(studio.files.root / "a")


# ------------------------------------------------------------------------------------------------ sessions
def test_session_folders_are_removed_when_the_session_ends(tmp_path):
    files = SessionFiles(tmp_path)
    one, two = files.new_run("abc", "run"), files.new_run("../evil", "run")
    assert one != files.new_run("abc", "run")
    assert two.parent.parent == files.root  # a session id never escapes the root
    (one / "result.mp4").write_bytes(b"x")
    files.close("abc")
    assert not (files.root / "abc").exists() and two.exists()
    files.close_all()
    assert not files.root.exists()
