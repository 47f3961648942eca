"""Pose stage cost on this CPU: extraction fps per backend at 720p, drawing, and `dynamictrl pose` end to end.

1. Extraction, frames per second, on motion1.mp4 resized to 720x1280 (720p, portrait like the video):
   MediaPipe Holistic (the default offline backend: body, hands, face) against MediaPipe Pose (body only), each in
   tracking mode (what `dynamictrl pose` uses on videos) and in still-image mode (detection on every frame).
   DWPose is measured only when its real weights are on disk: the small test ONNX models say nothing about speed.
2. Drawing one 1360x768 pose frame (3825x2160 canvas).
3. `dynamictrl pose` on all of motion1.mp4 with human2.jpg at 1360x768 (84 frames), as a user runs it (a new
   process): cold (empty cache) and warm (cached extraction), plus the in-process split by stage.

Writes benchmarks/results/pose.json atomically. Run: `python benchmarks/bench_pose.py [--rounds 2]`.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "pose.json"
MEDIA = Path(os.environ.get("DYNAMICTRL_FIXTURES", ROOT.parent / "shared" / "fixtures")) / "media"
EXTRACT_FRAMES = 40


def _frames_720p() -> np.ndarray:
    from dynamictrl.io.media import read_video

    frames, _ = read_video(MEDIA / "motion1.mp4", max_frames=EXTRACT_FRAMES)
    return np.stack([cv2.resize(f, (720, 1280), interpolation=cv2.INTER_AREA) for f in frames])


def bench_extraction(rounds: int) -> dict:
    from dynamictrl.pose.backends.dwpose import find_dwpose_weights
    from dynamictrl.pose.extract import get_extractor

    frames = _frames_720p()
    out: dict = {"input": f"motion1.mp4, first {len(frames)} frames resized to 720x1280", "backends": {}}
    backends = ["mediapipe", "mediapipe-body"] + (["dwpose"] if find_dwpose_weights() else [])
    for name in backends:
        extractor = get_extractor(name)
        extractor(frames[0])  # load models outside the timing
        modes = {"tracking": lambda ex=extractor: list(ex.extract_sequence(frames))}
        modes["still_images"] = lambda ex=extractor: [ex(f) for f in frames]
        result = {}
        for mode, run in modes.items():
            times = []
            for _ in range(rounds):
                start = time.perf_counter()
                poses = run()
                times.append(time.perf_counter() - start)
            found = sum(len(p.people) > 0 for p in poses)
            result[mode] = {
                "fps": round(len(frames) / statistics.median(times), 2),
                "ms_per_frame": round(1000 * statistics.median(times) / len(frames), 1),
                "frames_with_a_person": f"{found}/{len(frames)}",
            }
        out["backends"][name] = result
        extractor.close()
    if "dwpose" not in out["backends"]:
        out["backends"]["dwpose"] = "not measured: real weights not on disk (offline machine)"
    tracking = {name: out["backends"][name]["tracking"]["fps"] for name in ("mediapipe", "mediapipe-body")}
    out["holistic_cost_vs_body"] = round(tracking["mediapipe-body"] / tracking["mediapipe"], 2)
    return out


def bench_drawing(rounds: int) -> dict:
    """ms to draw one 1360x768 frame (one person with hands and face, on a 3825x2160 canvas)."""
    import json

    from dynamictrl.pose.render import draw_pose
    from dynamictrl.pose.types import FramePose

    cases = json.loads((MEDIA.parent / "pose-reference" / "cases.json").read_text())
    case = next(c for c in cases if c["name"] == "render_2")
    pose = FramePose.from_wholebody(np.float32(case["raw_keypoints"]), np.float32(case["raw_scores"]), 1360, 768)
    draw_pose(pose, 1360, 768)
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(20):
            draw_pose(pose, 1360, 768)
        times.append((time.perf_counter() - start) / 20)
    return {"size": "1360x768 (canvas 3825x2160)", "ms_per_frame": round(1000 * statistics.median(times), 2)}


def bench_end_to_end() -> dict:
    from dynamictrl.pose.prepare import prepare_pose_video

    out: dict = {"input": "motion1.mp4 (83 frames, 1080x1920) + human2.jpg -> 1360x768, 84 pose frames"}
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, DYNAMICTRL_CACHE_DIR=tmp, TQDM_DISABLE="1", HF_HUB_OFFLINE="1")
        cmd = [
            sys.executable, "-m", "dynamictrl", "-q", "pose",
            "--driving-video", str(MEDIA / "motion1.mp4"),
            "--reference-image", str(MEDIA / "human2.jpg"),
            "--out", str(Path(tmp) / "pose.mp4"),
        ]  # fmt: skip
        for label in ("cold_cache_s", "warm_cache_s"):
            start = time.perf_counter()
            subprocess.run(cmd, env=env, check=True, capture_output=True)
            out[label] = round(time.perf_counter() - start, 2)
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import dynamictrl.cli.pose, torch"], env=env, check=True)
        out["process_start_and_imports_s"] = round(time.perf_counter() - start, 2)

        prepared = prepare_pose_video(
            MEDIA / "human2.jpg", MEDIA / "motion1.mp4", 1360, 768, use_cache=False, progress=False
        )
        from dynamictrl.io.media import write_video
        from dynamictrl.pose.types import save_keypoints_json

        stages = dict(prepared.timings)
        start = time.perf_counter()
        write_video(Path(tmp) / "inproc.mp4", prepared.frames, fps=prepared.fps)
        stages["write_video"] = time.perf_counter() - start
        start = time.perf_counter()
        save_keypoints_json(Path(tmp) / "inproc.json", prepared.keypoints, prepared.metadata())
        stages["write_keypoints_json"] = time.perf_counter() - start
        out["stages_s"] = {k: round(v, 3) for k, v in stages.items()}
        out["backend"] = prepared.backend
        out["note"] = (
            "load_inputs includes hashing both files and importing torch for the reference crop; extract is "
            "MediaPipe Holistic in tracking mode on 1080x1920 frames; decode is PyAV"
        )
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TQDM_DISABLE", "1")

    from dynamictrl.io.atomic import write_json_atomic

    results = {
        "benchmark": "pose stage: extraction fps per backend, drawing, dynamictrl pose end to end",
        "machine": {"cpu_count": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "rounds": args.rounds,
        "extraction_720p": bench_extraction(args.rounds),
        "drawing": bench_drawing(args.rounds),
        "dynamictrl_pose_end_to_end": bench_end_to_end(),
    }
    write_json_atomic(RESULTS, results)
    print(f"wrote {RESULTS}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
