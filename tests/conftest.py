"""Shared test set-up: offline hub, deterministic torch, and the fixture folder of ../shared/fixtures."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

# Any accidental hub call must fail at once instead of retrying for half a minute.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TQDM_DISABLE", "1")
# Caches (pose results, the demo model) go to a throw-away folder, never the user's ~/.cache.
os.environ.setdefault("DYNAMICTRL_CACHE_DIR", tempfile.mkdtemp(prefix="dynamictrl-test-cache-"))
# Under pytest-xdist (`./dev test` runs one worker per core) each worker and the processes it starts use one thread,
# so workers do not fight over the cores. Set before torch is imported.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.setdefault("OMP_NUM_THREADS", "1")

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(os.environ.get("DYNAMICTRL_FIXTURES", ROOT.parent / "shared" / "fixtures"))


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    """`../shared/fixtures` (override with DYNAMICTRL_FIXTURES). Missing fixtures fail the test, never skip it."""
    if not FIXTURES.is_dir():
        raise FileNotFoundError(f"Test fixtures not found at {FIXTURES}; set DYNAMICTRL_FIXTURES to their folder")
    return FIXTURES


@pytest.fixture(scope="session")
def media_dir(fixtures_dir: Path) -> Path:
    return fixtures_dir / "media"


@pytest.fixture(autouse=True)
def _torch_threads():
    try:
        import torch
    except ImportError:  # pragma: no cover
        yield
        return
    torch.manual_seed(0)
    yield


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory):
    """Tiny random models in the three released layouts (pipeline, transformer-only, CogVideoX base)."""
    from dynamictrl.testing import write_tiny_model_folders

    return write_tiny_model_folders(tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="session")
def reference_tiny(fixtures_dir: Path) -> Path:
    return fixtures_dir / "reference-tiny"
