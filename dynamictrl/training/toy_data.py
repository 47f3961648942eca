"""A tiny generated training set (a coloured square moving; its "pose" video draws the square's centre).

For tests, benchmarks and trying the trainer without data: `write_toy_dataset(root)` writes `videos/`, `poses/`
and `manifest.jsonl` in the manifest format of `dynamictrl.data.manifest`; with `masks=True` also `mask_video/`
(white where the square is: the "person" mask the VAE trainer weights).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt

from ..data.manifest import ClipRecord, write_manifest

COLOURS = ((230, 40, 40), (40, 200, 60), (50, 80, 230), (230, 200, 30))


def toy_clip(
    index: int, frames: int, height: int, width: int, seed: int = 0
) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint8]]:
    """(video, pose) uint8 `[F, H, W, 3]`: a square on grey moving on a straight line; a dot at its centre on black."""
    rng = np.random.default_rng((seed, index))
    side = max(4, min(height, width) // 3)
    start = rng.uniform([0, 0], [height - side, width - side])
    end = rng.uniform([0, 0], [height - side, width - side])
    colour = np.array(COLOURS[index % len(COLOURS)], np.uint8)
    video = np.full((frames, height, width, 3), 128, np.uint8)
    pose = np.zeros((frames, height, width, 3), np.uint8)
    dot = max(2, side // 4)
    for f in range(frames):
        y, x = (start + (end - start) * f / max(1, frames - 1)).astype(int)
        video[f, y : y + side, x : x + side] = colour
        cy, cx = y + side // 2, x + side // 2
        pose[f, cy - dot // 2 : cy + dot // 2 + 1, cx - dot // 2 : cx + dot // 2 + 1] = (255, 255, 255)
    return video, pose


def toy_mask(video: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    """White where a toy clip is not the grey background: the square."""
    square = np.any(video != 128, axis=-1, keepdims=True)
    return np.repeat(square, 3, axis=-1).astype(np.uint8) * 255


def write_toy_dataset(
    root: str | Path,
    clips: int = 4,
    frames: int = 17,
    height: int = 32,
    width: int = 32,
    seed: int = 0,
    masks: bool = False,
) -> Path:
    """Write the toy set under `root`; returns the manifest path."""
    from ..io.media import write_video

    root = Path(root)
    records = []
    for i in range(clips):
        video, pose = toy_clip(i, frames, height, width, seed)
        video_path = write_video(root / "videos" / f"{i:04d}.mp4", video, fps=8.0)
        pose_path = write_video(root / "poses" / f"{i:04d}.mp4", pose, fps=8.0)
        mask_path = write_video(root / "mask_video" / f"{i:04d}.mp4", toy_mask(video), fps=8.0) if masks else None
        name = ("red", "green", "blue", "yellow")[i % 4]
        caption = f"a {name} square moving"
        records.append(ClipRecord(video_path, pose_path, caption, frames, height, width, 8.0, mask=mask_path))
    return write_manifest(root / "manifest.jsonl", records)


def sharpen_vae_(vae, log_variance: float = -12.0):
    """Make a random tiny VAE's posterior almost deterministic (logvar ≈ `log_variance`), in place.

    A random VAE's posterior std is about 1, as large as its means, so the x0 a tiny model is asked to learn
    would be mostly sampling noise; real VAEs have std ≪ 1. Zeroes the logvar half of `encoder.conv_out`.
    """
    import torch

    conv = vae.encoder.conv_out.conv
    half = conv.out_channels // 2
    with torch.no_grad():
        conv.weight[half:].zero_()
        conv.bias[half:].fill_(log_variance)
    return vae


def write_toy_model(source: str | Path, target: str | Path) -> Path:
    """Copy a tiny pipeline folder (`dynamictrl.testing.write_tiny_model_folders`) with a sharpened VAE."""
    import shutil

    from diffusers import AutoencoderKLCogVideoX

    source, target = Path(source), Path(target)
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("vae"))
    vae = sharpen_vae_(AutoencoderKLCogVideoX.from_pretrained(source / "vae"))
    vae.save_pretrained(target / "vae", safe_serialization=True)
    return target
