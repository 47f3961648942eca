"""`dynamictrl app` in a real (headless) Chromium: the bundled example end to end, bad uploads, two runs at once.

The screenshot in docs/app.md comes from `test_bundled_example_previews_the_pose_and_plays_the_result`: set
DYNAMICTRL_UPDATE_SCREENSHOT=1 to write it to docs/images/app.png (otherwise it goes to the test's temp folder).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from dynamictrl.io.media import write_video

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOT = ROOT / "docs" / "images" / "app.png"
SMALL_RUN = {"num_frames": 9, "steps": 2, "height": 96, "width": 64}  # the tiny model in a few seconds
TIMEOUT_MS = 90_000


def _open(app, browser):
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(app.url)
    page.locator("#run-button").wait_for()
    return page


def _fill(page, values: dict) -> None:
    for name, value in values.items():
        field = page.locator(f"#field-{name} input")
        field.fill(str(value))
        field.press("Tab")  # Gradio takes the value on blur


def _status(page, text: str) -> str:
    status = page.locator("#status")
    status.get_by_text(text, exact=False).wait_for()
    return status.inner_text()


def _load_example(page) -> None:
    page.locator("#example-button").click()
    _status(page, "Bundled example loaded")
    page.locator("#video-input").get_by_text("demo_pose").wait_for()


def _wait_playable(page, selector: str) -> float:
    """The `<video>` under `selector` has decoded frames (readyState >= 2) and a duration; returns the duration."""
    page.wait_for_function(
        "s => { const v = document.querySelector(s); return v && v.readyState >= 2 && v.duration > 0; }",
        arg=f"{selector} video",
        timeout=TIMEOUT_MS,
    )
    return page.evaluate("s => document.querySelector(s).duration", f"{selector} video")


def _save_screenshot(page, tmp_path: Path) -> Path:
    """A small PNG (palette, 256 colours) of the page; into docs/images/ with DYNAMICTRL_UPDATE_SCREENSHOT=1."""
    from PIL import Image

    raw = tmp_path / "app_raw.png"
    page.screenshot(path=str(raw), full_page=True)
    target = SCREENSHOT if os.environ.get("DYNAMICTRL_UPDATE_SCREENSHOT") == "1" else tmp_path / "app.png"
    target.parent.mkdir(parents=True, exist_ok=True)
    with Image.open(raw) as image:
        image.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(target, optimize=True)
    return target


def test_bundled_example_previews_the_pose_and_plays_the_result(app, browser, tmp_path):
    page = _open(app, browser)
    assert "TINY RANDOM MODEL" in page.locator("#model-label").inner_text()
    _load_example(page)
    _fill(page, SMALL_RUN)

    page.locator("#preview-button").click()
    _status(page, "Inputs checked")
    assert _wait_playable(page, "#pose-preview") > 0
    assert "Pose check" in page.locator("#pose-warnings").inner_text()

    page.locator("#run-button").click()
    _status(page, "Done")
    duration = _wait_playable(page, "#result-video")
    assert duration == pytest.approx(9 / 8.0, abs=0.3)  # 9 frames at the bundled pose video's 8 fps
    downloads = page.locator("#downloads").inner_text().replace("\n", "")
    assert "result.mp4" in downloads and "result_side_by_side.mp4" in downloads and "result.json" in downloads
    sidecar = next(app.studio.files.root.rglob("result.json"))
    settings = json.loads(sidecar.read_text())["settings"]
    assert {k: settings[k] for k in SMALL_RUN} == SMALL_RUN
    assert "TINY RANDOM MODEL" in json.loads(sidecar.read_text())["note"]
    page.mouse.move(0, 0)
    shot = _save_screenshot(page, tmp_path)
    assert shot.stat().st_size < 400_000
    page.close()


def test_bad_uploads_show_a_message_and_the_app_keeps_serving(app, browser, tmp_path):
    from dynamictrl.cli.app import reference_image

    text = tmp_path / "notes.txt"
    text.write_text("this is not a photo\n")
    big = tmp_path / "huge.png"
    big.write_bytes(b"\0" * int(1.5e6))  # over the test server's 1 MB limit
    nobody = write_video(tmp_path / "empty_room.mp4", np.full((12, 96, 64, 3), 120, np.uint8), fps=8.0)

    page = _open(app, browser)
    image_input = page.locator("#image-input input[type=file]")
    image_input.set_input_files(str(text))
    message = _status(page, "is not an image")
    assert "notes.txt is not an image (.txt)" in message and "Traceback" not in page.content()

    image_input = page.locator("#image-input input[type=file]")
    if image_input.count() == 0:  # a file is shown: clear it first
        page.locator("#image-input button[aria-label='Clear']").first.click()
    page.locator("#image-input input[type=file]").set_input_files(str(big))
    # Gradio refuses it while uploading (`max_file_size`, from the app's limit) and says so in a toast.
    page.get_by_text("exceed the maximum allowed size", exact=False).wait_for()
    assert "huge.png" in page.get_by_text("exceed the maximum allowed size", exact=False).first.inner_text()

    # A video with no one in it: the pose stage refuses, and the page says why.
    page.reload()
    page.locator("#image-input input[type=file]").set_input_files(str(reference_image()))
    page.locator("#video-input input[type=file]").set_input_files(str(nobody))
    page.locator("#video-input").get_by_text("empty_room").wait_for()
    _fill(page, SMALL_RUN)
    page.locator("#preview-button").click()
    message = _status(page, "No person found")
    assert "driving video" in message and "Traceback" not in page.content()

    # The same page, the next request: the bundled example previews fine.
    _load_example(page)
    _fill(page, SMALL_RUN)
    page.locator("#preview-button").click()
    _status(page, "Inputs checked")
    page.close()


def test_two_requests_at_once_both_complete_with_one_pipeline(app, browser):
    pages = [_open(app, browser) for _ in range(2)]
    for page, seed in zip(pages, (1, 2), strict=True):
        _load_example(page)
        _fill(page, {**SMALL_RUN, "seed": seed})
    for page in pages:
        page.locator("#run-button").click()
    for page in pages:
        _status(page, "Done")
        assert _wait_playable(page, "#result-video") > 0
        page.close()
    assert app.studio.models.loads == 1  # one (model, dtype, offload, device): loaded once, shared by all runs
