"""The report: the per-video table scrolls inside the page, unreliable FID is marked, and the report folder is
checked before anything is computed."""

from __future__ import annotations

import tempfile

import pytest

from dynamictrl.errors import InputError
from dynamictrl.evaluation.protocols import PROTOCOLS
from dynamictrl.evaluation.report import check_report_dir, render_html


def _data(aggregate: dict, columns: int = 3) -> dict:
    metrics = {f"metric_with_a_long_name_{i}": float(i) for i in range(columns)}
    return {
        "protocol": PROTOCOLS["disco"].to_dict(),
        "generated_dir": "gen",
        "reference_dir": "gt",
        "created": "now",
        "aggregate": aggregate,
        "unavailable": {},
        "problems": [],
        "videos": {"clip": {"status": "ok", "metrics": metrics}},
        "weights": {},
        "versions": {},
    }


def test_the_per_video_table_scrolls_inside_its_box():
    page = render_html(_data({"psnr": 30.0}, columns=40), {})
    assert ".scroll{overflow-x:auto" in page
    table_start = page.index("<th class='l'>video</th>")
    assert page.rindex("<div class='scroll'>", 0, table_start) > page.index("<h2>Aggregate</h2>")
    assert page.index("</table></div>", table_start) < page.index("<h2>Protocol</h2>")
    assert "Ground truth: <code>gt</code>" in page


def test_unreliable_fid_is_marked():
    note = "FID on 24 frames per set, fewer than 2048"
    page = render_html(_data({"fid": 12.5, "fid_samples": 24, "fid_reliable": False, "fid_note": note}), {})
    assert "(unreliable" in page and note in page
    reliable = render_html(_data({"fid": 12.5, "fid_samples": 4096, "fid_reliable": True}), {})
    assert "unreliable" not in reliable


def test_report_dir_may_be_new_or_an_existing_folder(tmp_path):
    check_report_dir(tmp_path / "new" / "deeper", {"--generated": tmp_path / "gen"})
    check_report_dir(tmp_path, {"--generated": tmp_path / "gen"})
    assert list(tmp_path.iterdir()) == []  # the write test leaves nothing behind and creates no folder


def test_report_dir_refusals(tmp_path):
    (tmp_path / "gen").mkdir()
    (tmp_path / "file.txt").write_text("x")
    inputs = {"--generated": tmp_path / "gen", "--ground-truth": tmp_path / "gt"}
    with pytest.raises(InputError, match="is a file; give a folder"):
        check_report_dir(tmp_path / "file.txt", inputs)
    with pytest.raises(InputError, match="file.txt is a file, not a folder"):
        check_report_dir(tmp_path / "file.txt" / "report", inputs)
    with pytest.raises(InputError, match="is the --generated folder"):
        check_report_dir(tmp_path / "gen", inputs)
    with pytest.raises(InputError, match="is inside the --generated folder"):
        check_report_dir(tmp_path / "gen" / "report", inputs)
    with pytest.raises(InputError, match="is the --ground-truth folder"):
        check_report_dir(tmp_path / "x" / ".." / "gt", inputs)


def test_an_unwritable_parent_is_found_by_trying(tmp_path, monkeypatch):
    def refuse(*args, **kwargs):
        raise PermissionError(13, "Read-only file system")

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    with pytest.raises(
        InputError, match=r"cannot write in .* \(Read-only file system\); choose a folder you can write to"
    ):
        check_report_dir(tmp_path / "report", {})
    assert not (tmp_path / "report").exists()
