"""`dynamictrl app`: the web app (Gradio): upload a photo and a video, check the pose, animate, download.

Without --model it runs the tiny random model of `dynamictrl demo` (untrained: the output is noise, the page says
so). It binds to 127.0.0.1, this machine only, unless --host says otherwise. Needs `gradio` (see docs/app.md).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from ..errors import InputError
from ..options import OPTIONS, JobOptions, add_arguments, at_least, from_args, positive, use


@dataclass(frozen=True, kw_only=True)
class AppOptions(JobOptions):
    """The flags of `dynamictrl app` that are run options (the rest are the server's own)."""

    model: str | None = use(
        "model", default=None, help=f"{OPTIONS['model'].help}; default: the tiny random model of `dynamictrl demo`"
    )
    device: str = use("device")


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "app",
        help="web app: animate from the browser, with a pose preview",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(p, AppOptions)
    server = p.add_argument_group("server")
    server.add_argument("--host", default="127.0.0.1", help="address to bind; 0.0.0.0 serves every network")
    server.add_argument("--port", type=int, default=7860, help="port (default: 7860)")
    server.add_argument("--max-upload-mb", type=float, default=None, help="largest upload in MB (default: 200)")
    server.add_argument("--concurrency", type=int, default=2, help="runs at once; one per loaded pipeline")
    return p


# The app's bundled example (until it offers the small model): the NASA portrait with the bundled pose video, on
# the tiny random model. Lower case: the tiny model's tokenizer was trained on a small lower-case corpus.
DEMO_PROMPT = "a smiling woman with short blonde hair in an orange suit raising her arms"
LABEL = "TINY RANDOM MODEL (untrained weights): the output shows the pipeline working, not DynamiCtrl quality"
DEMO_SIZE = (320, 240)  # (height, width): the bundled pose video's size


def reference_image() -> Path:
    """The public-domain NASA astronaut portrait that scikit-image ships."""
    from skimage import data

    return Path(data.__file__).parent / "astronaut.png"


def build_studio(options: AppOptions, **config: object):
    """The app's back end for `options`: the tiny random model and the demo's settings when no model is given."""
    from ..app.session import AppConfig, Example, Studio, small_run_defaults

    pose_video = Path(str(resources.files("dynamictrl") / "assets" / "demo_pose.mp4"))
    if options.model is None:
        from ..io.cache import cache_root
        from ..testing import ensure_tiny_model

        model, label = str(ensure_tiny_model(cache_root())), LABEL
        defaults = {**small_run_defaults(), "height": DEMO_SIZE[0], "width": DEMO_SIZE[1]}
        example = Example(reference_image(), pose_video, {"prompt": DEMO_PROMPT, **defaults})
    else:
        model, label, defaults = options.model, None, {}
        example = Example(reference_image(), pose_video, {"prompt": DEMO_PROMPT})
    return Studio(
        AppConfig(model=model, label=label, example=example, defaults=defaults, device=options.device, **config)
    )


def run(args: argparse.Namespace) -> int:
    options = from_args(AppOptions, args)
    for flag, value, check in (("--port", args.port, at_least(1)), ("--concurrency", args.concurrency, at_least(1))):
        if problem := check(value):
            raise InputError(f"{flag} {problem}, got {value}")
    config = {"concurrency": args.concurrency}
    if args.max_upload_mb is not None:
        if problem := positive(args.max_upload_mb):
            raise InputError(f"--max-upload-mb {problem}, got {args.max_upload_mb}")
        config["max_upload_mb"] = args.max_upload_mb
    try:
        from ..app.gradio_app import build, launch
    except ModuleNotFoundError as exc:
        if exc.name != "gradio":
            raise
        raise InputError("the app needs gradio: pip install --no-deps gradio==6.31.0 (see docs/app.md)") from None

    studio = build_studio(options, **config)
    if studio.config.label:
        print(studio.config.label)
    demo = build(studio)
    try:
        launch(demo, studio, host=args.host, port=args.port)  # blocks until Ctrl-C
    finally:
        demo.close()
        studio.close()
    return 0
