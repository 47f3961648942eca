"""The page of `dynamictrl app`: Gradio layout and wiring only; every decision is `session.Studio`'s.

Inputs come from the option declarations (`session.form_fields`: label from the name and flag, help as the info
line, choices, defaults); values are checked by `AnimateOptions` like the CLI's. A `DynamiCtrlError` (a bad upload,
a wrong value, a video without a person, a model that is not there) becomes a message in the page (the status box
and a toast), never a traceback, and the app keeps serving.
"""

from __future__ import annotations

import html
import logging
from typing import Any

import gradio as gr

from ..errors import DynamiCtrlError
from ..options import OPTIONS
from .session import POSE_SOURCES, FormField, Studio, check_upload

logger = logging.getLogger(__name__)

CSS = """
#model-label { background: #fff3cd; border: 2px solid #d39e00; border-radius: 6px; padding: 6px 12px; }
#status .error { color: #b00020; font-weight: 600; }
"""


def _component(spec: FormField) -> gr.components.Component:
    """A form input for one declared option: a dropdown for choices, a number for int/float, else a textbox."""
    option = spec.option
    common = {"label": spec.label, "info": option.help, "value": spec.default, "elem_id": f"field-{spec.name}"}
    if option.choices:
        return gr.Dropdown(choices=list(option.choices), **common)
    if option.type is bool:
        return gr.Checkbox(**common)
    if option.type in (int, float):
        return gr.Number(precision=0 if option.type is int else None, **common)
    lines = 2 if spec.name in ("prompt", "negative_prompt") else 1
    return gr.Textbox(lines=lines, **common)


def _error(message: str) -> str:
    return f'<p class="error">Error: {html.escape(message)}</p>'


def _warnings_text(warnings: list[str]) -> str:
    if not warnings:
        return "Pose check: no warnings."
    return "Pose check warnings:\n" + "\n".join(f"- {w}" for w in warnings)


def build(studio: Studio) -> gr.Blocks:
    """The page for `studio` (not launched; see `launch`)."""
    config = studio.config
    with gr.Blocks(title="DynamiCtrl", analytics_enabled=False, delete_cache=(3600, 3600)) as demo:
        if config.label:
            gr.Markdown(f"**{html.escape(config.label)}**", elem_id="model-label")
        gr.Markdown(
            "# DynamiCtrl: animate a photo\n"
            "Upload a photo of a person and a video of the motion (or use the bundled example), check the aligned "
            "pose, then generate."
        )
        with gr.Row():
            with gr.Column():
                image = gr.File(label=f"photo ({OPTIONS['image'].help})", elem_id="image-input")
                video = gr.File(label="video: a driving video or a rendered pose video", elem_id="video-input")
                pose_source = gr.Radio(
                    choices=[(f"{OPTIONS[n].flag}: {OPTIONS[n].help}", n) for n in POSE_SOURCES],
                    value=POSE_SOURCES[0],
                    label="the video is",
                    elem_id="pose-source",
                )
                example_button = (
                    gr.Button("Use the bundled example", elem_id="example-button") if config.example else None
                )
                fields = {spec.name: _component(spec) for spec in studio.fields}
                with gr.Row():
                    preview_button = gr.Button("Check inputs and preview pose", elem_id="preview-button")
                    run_button = gr.Button("Generate", variant="primary", elem_id="run-button")
            with gr.Column():
                status = gr.HTML(elem_id="status")
                with gr.Row():
                    reference_view = gr.Image(
                        label="reference (as generation crops it)", type="filepath", interactive=False
                    )
                    pose_view = gr.Video(
                        label="aligned pose preview", interactive=False, height=260, elem_id="pose-preview"
                    )
                pose_warnings = gr.Markdown(elem_id="pose-warnings")
                result = gr.Video(label="result", interactive=False, height=360, elem_id="result-video")
                downloads = gr.File(
                    label="downloads: video, side-by-side, sidecar JSON",
                    file_count="multiple",
                    interactive=False,
                    elem_id="downloads",
                )

        form = [image, video, pose_source, *fields.values()]

        def unpack(data: dict) -> tuple[Any, Any, str, dict[str, Any]]:
            return data[image], data[video], data[pose_source], {name: data[c] for name, c in fields.items()}

        def on_upload(path: str | None, kind: str) -> dict:
            try:
                check_upload(path, kind, studio.max_upload_bytes)
            except DynamiCtrlError as exc:
                gr.Warning(str(exc))
                return {status: _error(str(exc))}
            return {status: ""}

        image.upload(lambda p: on_upload(p, "image"), image, [status])
        video.upload(lambda p: on_upload(p, "video"), video, [status])

        def on_preview(data: dict, request: gr.Request) -> dict:
            try:
                found = studio.preview(_session(request), *unpack(data))
            except DynamiCtrlError as exc:
                gr.Warning(str(exc))
                return {status: _error(str(exc)), pose_view: None, reference_view: None, pose_warnings: ""}
            for warning in found.warnings:
                gr.Warning(warning)
            return {
                status: "Inputs checked: the pose below is what generation will follow.",
                pose_view: str(found.pose_video),
                reference_view: str(found.reference),
                pose_warnings: _warnings_text(found.warnings),
            }

        preview_button.click(
            on_preview, set(form), [status, pose_view, reference_view, pose_warnings], api_name="preview"
        )

        def on_run(data: dict, request: gr.Request, progress: gr.Progress = gr.Progress()) -> dict:  # noqa: B008
            progress(0, desc="checking inputs")

            def report(done: int, total: int) -> None:
                progress((done, total), desc="denoising", unit="steps")

            try:
                outputs = studio.generate(_session(request), *unpack(data), progress=report)
            except DynamiCtrlError as exc:
                gr.Warning(str(exc))
                return {status: _error(str(exc)), result: None, downloads: None}
            files = [str(p) for p in (outputs.video, outputs.side_by_side, outputs.sidecar) if p is not None]
            return {
                status: "Done: the video, the side-by-side and the sidecar JSON are ready to download.",
                result: str(outputs.video),
                downloads: files,
                pose_warnings: _warnings_text(outputs.warnings),
            }

        run_button.click(on_run, set(form), [status, result, downloads, pose_warnings], api_name="generate")

        if example_button is not None:
            example = config.example
            settings = {fields[name]: value for name, value in example.settings.items() if name in fields}

            def on_example() -> dict:
                return {
                    image: str(example.image),
                    video: str(example.pose_video),
                    pose_source: "pose_video",
                    status: "Bundled example loaded: the NASA astronaut and the bundled pose video.",
                    **settings,
                }

            example_button.click(on_example, None, [image, video, pose_source, status, *settings])

        def on_unload(request: gr.Request) -> None:
            studio.end_session(_session(request))

        demo.unload(on_unload)
    return demo


def _session(request: gr.Request | None) -> str | None:
    return getattr(request, "session_hash", None)


def launch(
    demo: gr.Blocks, studio: Studio, host: str = "127.0.0.1", port: int | None = 7860, **kwargs: Any
) -> tuple[Any, str, str]:
    """Queue (at most `studio.config.concurrency` runs at once) and serve on `host:port` (this machine by default)."""
    demo.queue(default_concurrency_limit=studio.config.concurrency)
    return demo.launch(
        server_name=host,
        server_port=port,
        allowed_paths=studio.allowed_paths,
        max_file_size=studio.max_upload_bytes,
        ssr_mode=False,
        css=CSS,
        footer_links=[],
        **kwargs,
    )
