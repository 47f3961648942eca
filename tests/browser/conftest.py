"""The app served in this process on a free 127.0.0.1 port, and a headless Chromium (Debian's) driven by Playwright.

Skips, with the reason, where gradio, playwright or chromium is missing; CI installs all three (docs/app.md).
Set DYNAMICTRL_CHROMIUM to use another Chromium binary.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest

from dynamictrl.testing import free_port

MAX_UPLOAD_MB = 1.0  # tiny, so that a test can go over it; the bundled example (a 0.8 MB photo) fits


def _chromium() -> str | None:
    found = os.environ.get("DYNAMICTRL_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    return found if found and Path(found).is_file() else None


@pytest.fixture(scope="session")
def browser():
    pytest.importorskip("gradio", reason="gradio is not installed (see docs/app.md)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (see docs/app.md)")
    executable = _chromium()
    if executable is None:
        pytest.skip("chromium not found (apt-get install chromium, or set DYNAMICTRL_CHROMIUM)")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=executable, headless=True, args=["--no-sandbox", "--disable-dev-shm-usage"]
        )
        yield browser
        browser.close()


@pytest.fixture(scope="session")
def app(browser, tmp_path_factory):
    """The app as `dynamictrl app` builds it (tiny random model, bundled example), with a 1 MB upload limit."""
    from dynamictrl.app.gradio_app import build, launch
    from dynamictrl.cli.app import AppOptions, build_studio

    studio = build_studio(
        AppOptions(device="cpu"), max_upload_mb=MAX_UPLOAD_MB, temp_root=tmp_path_factory.mktemp("app")
    )
    demo = build(studio)
    port = free_port()
    launch(demo, studio, host="127.0.0.1", port=port, prevent_thread_lock=True, quiet=True)
    yield SimpleNamespace(url=f"http://127.0.0.1:{port}/", studio=studio)
    demo.close()
    studio.close()
