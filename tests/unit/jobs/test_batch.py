"""`animate --jobs`: the jobs file (key spellings, command-line defaults, comments), its line-numbered errors before
any load, output collisions between jobs, sharding, and the resume rule (outputs + sidecar = done), in process with
a fake loader and runner (the real model runs in tests/e2e/test_cli_animate_jobs.py)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from types import SimpleNamespace

import pytest

from dynamictrl.cli import main
from dynamictrl.errors import InputError
from dynamictrl.io.atomic import write_json_atomic
from dynamictrl.jobs.batch import read_jobs, run_jobs, shard
from dynamictrl.options import OPTIONS


def one_process() -> SimpleNamespace:
    """What `run_jobs` reads of accelerate's `PartialState`, for a single process (no accelerate import)."""
    return SimpleNamespace(
        num_processes=1, process_index=0, local_process_index=0, is_main_process=True, device=None,
        wait_for_everyone=lambda: None,
    )  # fmt: skip


def write_jobs(path: Path, *lines: object) -> Path:
    path.write_text("\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines) + "\n")
    return path


def test_keys_as_fields_or_flags_over_command_line_defaults_comments_skipped(tmp_path):
    jobs_file = write_jobs(
        tmp_path / "jobs.jsonl",
        "# a comment, then a blank line",
        "",
        {"image": "a.png", "prompt": "a dancer", "num_frames": 13, "out": "o/a.mp4", "side_by_side": True},
        {"--reference-image": "b.png", "pose-video": "q.mp4", "--prompt": "b", "frames": "17", "no-vae-tiling": True,
         "loop": True, "guidance": 4, "seed": 7.0},
        {"image": "c.png", "driving_video": "d.mp4", "prompt": "c", "steps": None, "strict": "yes", "out": "o/c.mp4"},
    )  # fmt: skip
    from dynamictrl.jobs.batch import command_line_defaults

    defaults = command_line_defaults({"pose_video": "p.mp4", "steps": "2", "height": "64", "width": "96"})
    a, b, c = read_jobs(jobs_file, defaults, quiet=True)
    assert [job.line for job in (a, b, c)] == [3, 4, 5]
    assert a.options.pose_video == Path("p.mp4") and a.options.num_frames == 13 and a.options.steps == 2
    assert a.options.side_by_side and a.options.height == 64 and a.options.quiet
    assert a.plan.side_by_side == [Path("o/a_side_by_side.mp4")] and a.plan.sidecar == Path("o/a.json")
    assert b.options.image == Path("b.png") and b.options.pose_video == Path("q.mp4") and b.options.num_frames == 17
    assert b.options.vae_tiling is False and b.options.on_short == "loop" and b.options.guidance == 4.0
    assert b.options.seed == 7 and b.options.out == Path("outputs/b_q_seed7.mp4")
    # The line's --driving-video replaces the command line's --pose-video; null brings back the declared default.
    assert c.options.driving_video == Path("d.mp4") and c.options.pose_video is None
    assert c.options.steps == OPTIONS["steps"].default and c.options.strict_pose is True


GOOD = {"image": "a.png", "pose_video": "p.mp4", "prompt": "x"}
BAD_LINES = [
    ("frames not 4k+1", {**GOOD, "frames": 12}, r"--frames must be 4k\+1"),
    ("unknown key", {**GOOD, "frame": 9}, r"unknown key 'frame' \(did you mean frames\?\)"),
    ("not JSON", '{"image": "a.png",', "not valid JSON"),
    ("not an object", "[1, 2]", "must be a JSON object"),
    ("no image", {"pose_video": "p.mp4", "prompt": "x"}, "--image is required"),
    ("both pose sources", {**GOOD, "driving_video": "d.mp4"}, "exactly one of --pose-video"),
    ("steps not whole", {**GOOD, "steps": 2.5}, "--steps must be an integer"),
    ("prompt not text", {**GOOD, "prompt": 5}, "--prompt must be a string"),
    ("bool not bool", {**GOOD, "side_by_side": "maybe"}, "--side-by-side must be true or false"),
    ("one option twice", {**GOOD, "frames": 9, "num_frames": 9}, "'frames' and 'num_frames' both set --frames"),
    ("out not mp4", {**GOOD, "out": "a.gif"}, "--out must end in .mp4"),
    ("one video split", {**GOOD, "context_parallel": "ulysses"}, "--context-parallel splits one video over"),
]


@pytest.mark.parametrize("name, line, message", BAD_LINES, ids=[b[0] for b in BAD_LINES])
def test_bad_lines_are_named_by_file_and_line_before_any_load(tmp_path, name, line, message):
    jobs_file = write_jobs(tmp_path / "jobs.jsonl", "# header", GOOD, line)

    def no_load(options):
        raise AssertionError("a model was loaded before every line was checked")

    with pytest.raises(InputError) as caught:
        run_jobs(jobs_file, state=one_process(), loader=no_load, runner=no_load, check_models=False)
    assert str(caught.value).startswith(f"{jobs_file} line 3: "), caught.value
    assert re.search(message, str(caught.value)), caught.value


def test_a_bad_command_line_default_is_named_as_a_flag(tmp_path):
    jobs_file = write_jobs(tmp_path / "jobs.jsonl", GOOD)
    with pytest.raises(InputError, match=r"^--frames must be 4k\+1"):
        run_jobs(jobs_file, {"num_frames": "12"}, state=one_process(), check_models=False)


def test_jobs_that_write_the_same_file_or_each_others_inputs_are_refused(tmp_path):
    same = write_jobs(tmp_path / "same.jsonl", {**GOOD, "out": "o/x.mp4"}, "", {**GOOD, "out": "o/x.mp4"})
    with pytest.raises(InputError, match=r"same.jsonl line 3: --out o/x.mp4 is also written by line 1 \(--out\)"):
        run_jobs(same, state=one_process(), check_models=False)
    crossed = write_jobs(tmp_path / "crossed.jsonl", {**GOOD, "out": "o/a.mp4"}, {**GOOD, "out": "p.mp4"})
    with pytest.raises(InputError, match=r"crossed.jsonl line 2: --out p.mp4 is the --pose-video of line 1"):
        run_jobs(crossed, state=one_process(), check_models=False)
    clash = write_jobs(tmp_path / "clash.jsonl", {**GOOD, "out": str(tmp_path / "clash.summary.mp4")})
    with pytest.raises(InputError, match=r"--jobs-summary .* is also line 1's --out \(sidecar\)"):
        run_jobs(clash, summary=tmp_path / "clash.summary.json", state=one_process(), check_models=False)


def test_job_i_goes_to_process_i_mod_n():
    jobs = list(range(5))
    assert shard(jobs, 0, 2) == [0, 2, 4] and shard(jobs, 1, 2) == [1, 3]
    assert sorted(shard(jobs, 0, 2) + shard(jobs, 1, 2)) == jobs
    assert shard(jobs, 0, 1) == jobs


def test_each_process_takes_its_own_device_unless_the_job_names_one(monkeypatch):
    from dynamictrl.jobs.processes import on_process_device
    from dynamictrl.options import AnimateOptions

    monkeypatch.delenv("ACCELERATE_USE_CPU", raising=False)
    options = AnimateOptions(image=Path("a.png"), pose_video=Path("p.mp4"), prompt="x")

    def rank(count: int, local: int, device: str) -> SimpleNamespace:
        kind, _, index = device.partition(":")
        where = SimpleNamespace(type=kind, index=int(index) if index else None)
        return SimpleNamespace(num_processes=count, local_process_index=local, device=where)

    assert on_process_device(options, rank(2, 1, "cuda:1")).device == "cuda:1"
    assert on_process_device(options, rank(2, 1, "cpu")).device == "cpu"
    assert on_process_device(options, rank(1, 0, "cuda:0")).device == "auto"  # one process: as a plain run
    monkeypatch.setenv("ACCELERATE_USE_CPU", "True")  # accelerate launch --cpu
    assert on_process_device(options, rank(1, 0, "cpu")).device == "cpu"
    named = AnimateOptions(image=Path("a.png"), pose_video=Path("p.mp4"), prompt="x", device="cuda:0")
    assert on_process_device(named, rank(2, 1, "cuda:1")).device == "cuda:0"


class FakeModel:
    """A loader counting loads and a runner writing the video, then the sidecar (last, as jobs/animate.py does)."""

    def __init__(self, fail_seed: int | None = None) -> None:
        self.loads: list[int] = []
        self.runs: list[str] = []
        self.fail_seed = fail_seed

    def load(self, options):
        self.loads.append(options.steps)
        return SimpleNamespace(steps=options.steps)

    def run(self, options, model):
        assert model.steps == options.steps  # the model of this job's load key
        if options.seed == self.fail_seed:
            raise InputError(f"pose check failed for {options.out}")
        self.runs.append(Path(options.out).name)
        Path(options.out).parent.mkdir(parents=True, exist_ok=True)
        Path(options.out).write_bytes(b"video")
        write_json_atomic(Path(options.out).with_suffix(".json"), {"settings": options.to_json()})


def test_finished_jobs_are_skipped_half_written_ones_redone_failures_recorded(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("a.png").write_bytes(b"image")
    Path("p.mp4").write_bytes(b"pose")
    done, half, new, other_steps, failing = (f"o/{name}.mp4" for name in ("done", "half", "new", "steps", "failing"))
    jobs_file = write_jobs(
        tmp_path / "jobs.jsonl",
        {**GOOD, "out": done},
        {**GOOD, "out": half},
        {**GOOD, "out": other_steps, "steps": 3},
        {**GOOD, "out": new},
        {**GOOD, "out": failing, "seed": 13},
    )
    fake = FakeModel(fail_seed=13)
    Path("o").mkdir()
    fake.run(read_jobs(jobs_file)[0].options, SimpleNamespace(steps=25))  # finished by an earlier run
    Path(half).write_bytes(b"half")  # a video without its sidecar: the run stopped before publishing it
    fake.runs.clear()

    result = run_jobs(jobs_file, {"steps": "2"}, state=one_process(), loader=fake.load, runner=fake.run,
                      check_models=False)  # fmt: skip
    # Grouped by load key: one load for steps 2 (lines 2, 4, 5), one for steps 3; nothing loaded for the skip.
    assert fake.loads == [2, 3] and fake.runs == ["half.mp4", "new.mp4", "steps.mp4"]
    statuses = {r["line"]: r["status"] for r in result.records}
    assert statuses == {1: "skipped", 2: "done", 3: "done", 4: "done", 5: "failed"}
    assert result.failed[0]["error"] == "pose check failed for o/failing.mp4"
    summary = json.loads((tmp_path / "jobs.summary.json").read_text())
    assert summary["counts"] == {"done": 3, "skipped": 1, "failed": 1} and summary["num_processes"] == 1
    assert [r["line"] for r in summary["jobs"]] == [1, 2, 3, 4, 5]
    assert summary["jobs"][1]["outputs"] == [half, "o/half.json"] and summary["jobs"][1]["process_index"] == 0
    # The skipped job ran with --steps 25 and this file's default is 2: skipped all the same, and said so.
    assert "other settings (steps)" in summary["jobs"][0]["note"]

    again = run_jobs(jobs_file, {"steps": "2"}, state=one_process(), loader=fake.load, runner=fake.run,
                     check_models=False)  # fmt: skip
    assert [r["status"] for r in again.records] == ["skipped"] * 4 + ["failed"] and fake.loads == [2, 3, 2]


def test_the_command_line_dispatches_and_errors_stay_one_line(tmp_path, capsys):
    jobs_file = write_jobs(tmp_path / "jobs.jsonl", GOOD, {**GOOD, "frames": 10})
    assert main(["animate", "--jobs", str(jobs_file), "--steps", "2"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: {jobs_file} line 2: --frames must be 4k+1, e.g. 13, 25, 37 or 49 (try 9), got 10"]
    # Without --jobs the pose source and prompt are still required, in one line (argparse no longer enforces it).
    assert main(["animate", "--pose-video", "p.mp4", "--prompt", "x"]) == 1
    assert capsys.readouterr().err.strip().splitlines() == ["error: --image is required"]
    assert main(["animate", "--jobs-summary", "s.json"]) == 1
    assert capsys.readouterr().err.strip() == "error: --jobs is required"
    assert main(["animate", "--jobs", str(tmp_path / "jobs.txt")]) == 1
    assert "--jobs must end in .jsonl" in capsys.readouterr().err
