"""Mask videos for the masked-reference variants (published Mask_B01 / Mask_C01); the masks themselves come from
`dynamictrl.pose.segmentation`.

A mask video is frame-aligned with its clip, white where the reference keeps its pixels (the dataset keeps
`mask > 127`; the published code `> 200`, so masks are written as pure black and white). Only the reference frame
is masked in training.

- `background` (Mask_B01): the person region, from MediaPipe's selfie segmentation (it ships in the mediapipe wheel,
  no download). The published repository does not say how its masks were made.
- user masks (Mask_C01, masked clothes, or any other): mask videos of the same names in `--mask-dir`, cut and
  cropped exactly as their clips.
"""

from __future__ import annotations

from pathlib import Path

MASK_MODES = ("none", "background")


def find_user_mask(mask_dir: Path, video: Path, raw_dir: Path) -> Path | None:
    """The user's mask video for `video`: same relative path in `mask_dir`, or the same stem with any extension."""
    relative = video.relative_to(raw_dir) if video.is_relative_to(raw_dir) else Path(video.name)
    candidate = mask_dir / relative
    if candidate.is_file():
        return candidate
    matches = sorted(p for p in (mask_dir / relative.parent).glob(f"{video.stem}.*") if p.suffix != ".txt")
    return matches[0] if matches else None
