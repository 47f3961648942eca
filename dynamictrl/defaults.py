"""The published generation settings, in one place: the pipeline, the animate job, the CLI (and later the app and
the trainer's validation) read them from here.

The published inference script recommends 37 frames of 768×1360 (portrait), 25 DPM steps, text guidance 3.0,
seed 42, an empty negative prompt, and writes 16 fps.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class GenerationPreset:
    """Sizes and sampler settings of one generation; `fps` is what the published script writes its videos at."""

    num_frames: int = 37
    height: int = 1360
    width: int = 768
    steps: int = 25
    guidance: float = 3.0
    seed: int = 42
    negative_prompt: str = ""
    fps: float = 16.0


PUBLISHED = GenerationPreset()
