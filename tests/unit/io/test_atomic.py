"""Atomic writes publish files and folders with the mode a plain `open()`/`mkdir` gives under the umask."""

from __future__ import annotations

import os
import stat

import pytest

from dynamictrl.io.atomic import atomic_dir, atomic_path, current_umask, default_file_mode, write_json_atomic
from dynamictrl.io.media import write_video


@pytest.fixture(params=[0o022, 0o077, 0o002])
def umask(request):
    old = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(old)


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_current_umask_reads_without_changing_it(umask):
    assert current_umask() == umask
    assert current_umask() == umask
    assert default_file_mode() == 0o666 & ~umask


def test_atomic_files_get_the_mode_open_would_give(tmp_path, umask):
    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    with atomic_path(tmp_path / "a.bin") as tmp:
        assert _mode(tmp) == 0o600  # private while partial
        tmp.write_bytes(b"data")
    write_json_atomic(tmp_path / "b.json", {"k": 1})
    for name in ("a.bin", "b.json"):
        assert _mode(tmp_path / name) == _mode(plain) == 0o666 & ~umask


def test_atomic_replaces_an_existing_file_with_the_umask_mode(tmp_path, umask):
    target = tmp_path / "old.txt"
    target.write_text("old")
    os.chmod(target, 0o600)
    write_json_atomic(target, [1])
    assert _mode(target) == 0o666 & ~umask


def test_written_video_is_readable_by_others_under_umask_022(tmp_path):
    import numpy as np

    old = os.umask(0o022)
    try:
        out = write_video(tmp_path / "v.mp4", np.zeros((2, 16, 16, 3), np.uint8), fps=8)
    finally:
        os.umask(old)
    assert _mode(out) == 0o644


def test_failed_atomic_write_leaves_nothing(tmp_path):
    with pytest.raises(RuntimeError), atomic_path(tmp_path / "x.mp4") as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_atomic_dir_gets_the_mode_mkdir_would_give(tmp_path, umask):
    (tmp_path / "plain").mkdir()
    with atomic_dir(tmp_path / "ckpt") as tmp:
        (tmp / "weights.bin").write_bytes(b"w")
        write_json_atomic(tmp / "config.json", {})
    assert _mode(tmp_path / "ckpt") == _mode(tmp_path / "plain") == 0o777 & ~umask
    assert _mode(tmp_path / "ckpt" / "config.json") == 0o666 & ~umask
    assert not (tmp_path / "ckpt.tmp").exists()


def test_atomic_dir_publishes_private_weights_with_the_umask_mode(tmp_path, umask):
    """safetensors writes 0600 files; inside an atomic folder they come out as `open()` would have made them."""
    import torch
    from safetensors.torch import save_file

    with atomic_dir(tmp_path / "model") as tmp:
        (tmp / "vae").mkdir(mode=0o700)
        save_file({"w": torch.zeros(2)}, str(tmp / "vae" / "diffusion_pytorch_model.safetensors"))
    weights = tmp_path / "model" / "vae" / "diffusion_pytorch_model.safetensors"
    assert _mode(weights) == 0o666 & ~umask
    assert _mode(weights.parent) == 0o777 & ~umask


def test_umask_without_proc_is_read_by_set_and_restore(monkeypatch, umask):
    import dynamictrl.io.atomic as atomic

    def no_proc(*args, **kwargs):
        raise OSError("no /proc")

    monkeypatch.setattr(atomic, "open", no_proc, raising=False)
    assert current_umask() == umask
    assert os.umask(umask) == umask  # restored
