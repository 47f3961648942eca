"""Output checks fail fast with the flag and the fix, create nothing; staged outputs appear together or not at all."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from dynamictrl.errors import DynamiCtrlError, InputError
from dynamictrl.io import outputs as outputs_module
from dynamictrl.io.atomic import write_json_atomic
from dynamictrl.io.outputs import StagedOutputs, check_outputs


def _tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


# ------------------------------------------------------------------------------------------------ check_outputs
def test_fine_outputs_pass_and_create_nothing(tmp_path):
    (tmp_path / "exists.mp4").write_bytes(b"old")  # overwriting a file is fine
    check_outputs(
        {"--out": tmp_path / "new" / "deeper" / "o.mp4", "--keypoints": tmp_path / "o.json", "--x": None},
        {"--image": tmp_path / "exists.mp4.png", "--pose-video": None},
    )
    check_outputs({"--out": str(tmp_path / "exists.mp4")})
    assert _tree(tmp_path) == ["exists.mp4"]


@pytest.mark.parametrize("trailing_slash", [False, True])
def test_existing_folder_is_refused(tmp_path, trailing_slash):
    folder = tmp_path / "existing_dir.mp4"
    folder.mkdir()
    with pytest.raises(InputError, match=r"--out .*existing_dir\.mp4/? is a folder, not a file name; give a file"):
        check_outputs({"--out": str(folder) + ("/" if trailing_slash else "")})


def test_trailing_slash_is_refused_even_if_the_folder_does_not_exist(tmp_path):
    with pytest.raises(InputError, match="--out .*new/ is a folder"):
        check_outputs({"--out": f"{tmp_path}/new/"})
    assert _tree(tmp_path) == []


def test_file_in_the_parent_chain_is_refused(tmp_path):
    (tmp_path / "some_file.jpg").write_bytes(b"jpg")
    with pytest.raises(InputError, match=r"--out .*: .*some_file\.jpg is a file, not a folder"):
        check_outputs({"--out": tmp_path / "some_file.jpg" / "sub" / "o.mp4"})
    assert _tree(tmp_path) == ["some_file.jpg"]


def test_device_output_is_refused():
    with pytest.raises(InputError, match="/dev/null exists and is not a regular file"):
        check_outputs({"--out": "/dev/null"})


def test_output_equal_to_an_input_is_refused(tmp_path, monkeypatch):
    video = tmp_path / "X.mp4"
    video.write_bytes(b"v")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InputError, match=r"--out .*X\.mp4 is the input given to --pose-video and would overwrite"):
        check_outputs({"--out": Path("sub/../X.mp4")}, {"--pose-video": video})


def test_output_hard_linked_to_an_input_is_refused(tmp_path):
    video = tmp_path / "X.mp4"
    video.write_bytes(b"v")
    os.link(video, tmp_path / "link.mp4")
    with pytest.raises(InputError, match="is the input given to --pose-video"):
        check_outputs({"--out": tmp_path / "link.mp4"}, {"--pose-video": video})
    (tmp_path / "sym.mp4").symlink_to(video)
    with pytest.raises(InputError, match="is the input given to --pose-video"):
        check_outputs({"--out": tmp_path / "sym.mp4"}, {"--pose-video": video})


def test_two_outputs_on_one_path_are_refused(tmp_path):
    with pytest.raises(InputError, match=r"--out and --keypoints both point to .*p\.mp4; give them different"):
        check_outputs({"--out": tmp_path / "p.mp4", "--keypoints": tmp_path / "." / "p.mp4"})


@pytest.mark.parametrize(
    ("error", "reason"),
    [(errno.EROFS, "read-only file system"), (errno.EACCES, "Permission denied")],
)
def test_unwritable_folder_is_refused(tmp_path, monkeypatch, error, reason):
    def refuse(*args, **kwargs):
        raise OSError(error, os.strerror(error))

    monkeypatch.setattr(outputs_module.tempfile, "mkstemp", refuse)
    with pytest.raises(InputError, match=rf"--out .*o\.mp4: cannot write in {tmp_path} \({reason}\); choose a folder"):
        check_outputs({"--out": tmp_path / "not" / "yet" / "o.mp4"})
    assert _tree(tmp_path) == []


def test_write_probe_leaves_no_file(tmp_path):
    check_outputs({"--out": tmp_path / "o.mp4"})
    assert _tree(tmp_path) == []


@contextlib.contextmanager
def _as_nobody():
    """Drop to an unprivileged effective user (root ignores permission bits); restored afterwards."""
    if os.geteuid() != 0:
        yield
        return
    os.setegid(65534)
    os.seteuid(65534)
    try:
        yield
    finally:
        os.seteuid(0)
        os.setegid(0)


def test_permission_bits_are_honoured_for_ordinary_users():
    root = Path(tempfile.mkdtemp(prefix="dynamictrl-perm-"))  # under /tmp so an unprivileged user can traverse it
    try:
        os.chmod(root, 0o755)
        (root / "ro").mkdir(mode=0o555)
        (root / "rw").mkdir(mode=0o777)
        os.chmod(root / "ro", 0o555)
        os.chmod(root / "rw", 0o777)
        with _as_nobody():
            check_outputs({"--out": root / "rw" / "o.mp4"})
            with pytest.raises(InputError, match=r"cannot write in .*ro \(Permission denied\)"):
                check_outputs({"--out": root / "ro" / "new" / "o.mp4"})
        assert _tree(root) == ["ro", "rw"]
    finally:
        shutil.rmtree(root)


def test_read_only_mount_is_refused_even_for_root(tmp_path):
    """A real read-only bind mount in a private mount namespace; only where `unshare -m` is allowed."""
    if shutil.which("unshare") is None or subprocess.run(["unshare", "-m", "true"], capture_output=True).returncode:
        pytest.skip("unshare -m is not allowed here; the EROFS message is tested with a monkeypatched probe")
    target = tmp_path / "ro"
    target.mkdir()
    code = (
        "from pathlib import Path; from dynamictrl.io.outputs import check_outputs\n"
        f"check_outputs({{'--out': Path({str(target / 'o.mp4')!r})}})"
    )
    script = f'mount --bind {target} {target} && mount -o remount,bind,ro {target} && {sys.executable} -c "{code}"'
    result = subprocess.run(["unshare", "-m", "sh", "-c", script], capture_output=True, text=True)
    if "mount:" in result.stderr:
        pytest.skip(f"bind mounts are not allowed here: {result.stderr.strip()}")
    assert result.returncode == 1
    assert "cannot write in" in result.stderr and "(read-only file system); choose a folder" in result.stderr


# ------------------------------------------------------------------------------------------------ StagedOutputs
def test_staged_outputs_appear_together_in_order(tmp_path, monkeypatch):
    old = os.umask(0o022)
    try:
        order = []
        real_replace = os.replace
        monkeypatch.setattr(os, "replace", lambda a, b: (order.append(Path(b).name), real_replace(a, b)))
        with StagedOutputs() as staged:
            video = staged.path(tmp_path / "new" / "o.mp4")
            assert video.parent == tmp_path / "new" and video.suffix == ".mp4" and video.name.startswith(".")
            video.write_bytes(b"video")
            side = staged.path(tmp_path / "new" / "o.json")
            write_json_atomic(side, {"ok": True})  # any writer, even one that is itself atomic
            assert not (tmp_path / "new" / "o.mp4").exists()
        assert order[-2:] == ["o.mp4", "o.json"]
    finally:
        os.umask(old)
    assert staged.completed == [tmp_path / "new" / "o.mp4", tmp_path / "new" / "o.json"]
    assert _tree(tmp_path) == ["new", "new/o.json", "new/o.mp4"]
    assert (tmp_path / "new" / "o.mp4").read_bytes() == b"video"
    assert stat.S_IMODE(os.stat(tmp_path / "new" / "o.mp4").st_mode) == 0o644


@pytest.mark.parametrize("exc_type", [RuntimeError, KeyboardInterrupt, SystemExit])
def test_failure_midway_leaves_nothing(tmp_path, exc_type):
    (tmp_path / "keep.txt").write_text("not ours")
    (tmp_path / "o.mp4").write_bytes(b"previous run")
    with pytest.raises(exc_type), StagedOutputs() as staged:
        staged.path(tmp_path / "o.mp4").write_bytes(b"new")
        staged.path(tmp_path / "a" / "b" / "o_side_by_side.mp4").write_bytes(b"half")
        raise exc_type()
    assert staged.completed == []
    assert _tree(tmp_path) == ["keep.txt", "o.mp4"]
    assert (tmp_path / "o.mp4").read_bytes() == b"previous run"


def test_failed_rename_says_what_was_written(tmp_path):
    with pytest.raises(DynamiCtrlError, match=r"Could not move .*o\.json.*; written: .*o\.mp4; fix") as info:
        with StagedOutputs() as staged:
            staged.path(tmp_path / "out" / "o.mp4").write_bytes(b"video")
            staged.path(tmp_path / "out" / "o.json").write_text("{}")
            (tmp_path / "out" / "o.json").mkdir()  # something takes the sidecar's place meanwhile
            (tmp_path / "out" / "o.json" / "blocker").write_text("x")
    assert not isinstance(info.value, InputError)
    assert staged.completed == [tmp_path / "out" / "o.mp4"]
    assert _tree(tmp_path) == ["out", "out/o.json", "out/o.json/blocker", "out/o.mp4"]


def test_staging_the_same_final_twice_is_a_bug(tmp_path):
    with pytest.raises(ValueError, match="already staged"), StagedOutputs() as staged:
        staged.path(tmp_path / "o.mp4")
        staged.path(tmp_path / "o.mp4")
    assert _tree(tmp_path) == []
