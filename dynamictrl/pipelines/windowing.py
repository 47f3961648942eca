"""Long videos on `DynamiCtrlPipeline.denoise_step`: overlapping latent windows, fused at every step.

A clip longer than the window the model was trained on (37 frames published) is generated as one long latent
`[B, L, 16, h, w]` (noise drawn once from the generator, the pose video encoded once, whole, by the causal VAE:
latent frame 0 is pixel frame 0, the reference's own pose, every later latent frame covers 4 pixel frames). At every
denoising step each window runs through `denoise_step` on its slice of the current latents, one window at a time
(peak memory is that of one window), and the windows' results are fused over the overlaps with linear weights that
sum to 1 on every latent frame (1 outside the overlaps). Odd steps use the windows moved forward by half their
stride (`shifted_plan`), so no border stays in one place through the denoising (with the 3,600-step small model: seam
ratio 2.07 → 1.82 and +0.2 to +0.4 dB in every quarter, `benchmarks/bench_long_video.py`). The DPM-scheduler state (its
previous x0 estimate, `old_pred_original_sample`) is kept for the long latent, fused with the same weights; the DPM
step is linear in the sample and the x0 estimates with coefficients set by the timestep alone, so fusing the
stepped latents equals stepping the fused estimates, whichever windows made them.

**How later windows see the reference: a reference slot.** Every window is `[frame 0 | its own video latents]`:
latent frame 0 of the long latent (the reference frame, with the reference's own pose latent and the reference
latent in frame 0 of `image_latents`, zeros elsewhere) followed by `window − 1` consecutive latent frames from
later in the video. Only the first window keeps its output for frame 0; later windows discard theirs. This is what
the model saw in training: latent frame 0 is the reference and its pose is the reference's pose, the image latent
conditions frame 0 only, and the frames after it follow the pose. The alternative, putting the reference latent in
the window's own first frame, tells the model that a 4-frame latent from mid-video is a single still frame showing
the reference, which pulls every window start back to the reference pose (visible as a jump at each seam). The cost
of the slot is a temporal jump between frame 0 and the window's first frame, like a fast motion in training.

The window given to the transformer has the latent length of a `window`-frame clip, rounded up to the temporal
patch of 2 (as `prepare_latents` pads the whole-clip path): 37 frames → 10 latent frames, 1 reference slot + 9
video latents (36 frames); its RoPE is that of 10 frames, the same for every window. Overlaps are whole latent
frames (4 pixel frames each); the last window is moved back to end on the last frame, so its overlap can be larger.

**Segment chaining** (`strategy="chain"`) generates consecutive segments one after another, each fully denoised
before the next: every segment is again `[reference slot | video latents]`, its first `overlap` video latents are
the previous segment's last ones, held to them at every step by re-noising the clean latents to the current
timestep with the same initial noise (inpainting by replacement), and only its new frames are kept.

Quality against ground truth (seams, drift over long clips): `benchmarks/bench_long_video.py`, numbers in the
README ("Long videos").
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from ..errors import InputError
from ..models.geometry import (
    LONG_VIDEO_STRATEGIES,
    MIN_WINDOW_FRAMES,
    TEMPORAL_COMPRESSION,
    latent_frame_count,
    validate_num_frames,
    window_latent_frames,
)

STRATEGIES = LONG_VIDEO_STRATEGIES


@dataclass(frozen=True)
class WindowPlan:
    """Which latent frames of the long latent each window covers.

    `latent_frames`: L of the long latent `[B, L, C, h, w]` (frame 0 = the reference frame); `window_latents`: the
    frames each window gives the transformer (reference slot included); `starts[k]`: the first long-latent frame of
    window k's video latents (1 for the first window). Window k covers `[0, starts[k], ..., starts[k] + window − 2]`.
    """

    latent_frames: int
    window_latents: int
    starts: tuple[int, ...]

    @property
    def num_windows(self) -> int:
        return len(self.starts)

    @property
    def video_latents(self) -> int:
        """Video latents per window: all but the reference slot."""
        return self.window_latents - 1

    def indices(self, k: int) -> list[int]:
        """The long-latent frames window k covers, reference slot first (length `window_latents`)."""
        return [0, *range(self.starts[k], self.starts[k] + self.video_latents)]

    def overlap(self, k: int) -> int:
        """Latent frames window k shares with window k − 1 (0 for the first)."""
        return 0 if k == 0 else self.starts[k - 1] + self.video_latents - self.starts[k]


def plan_windows(latent_frames: int, window_latents: int, overlap_latents: int) -> WindowPlan:
    """Windows of `window_latents` (slot included) over `latent_frames`, consecutive ones sharing at least
    `overlap_latents` video latents; the last one ends on the last frame. A clip within one window is one window."""
    if window_latents < 2:
        raise InputError(f"a window needs at least 2 latent frames, got {window_latents}")
    video = min(window_latents, latent_frames) - 1
    if latent_frames > window_latents and not 1 <= overlap_latents < video:
        raise InputError(f"overlap must be 1 to {video - 1} latent frames for this window, got {overlap_latents}")
    starts = [1]
    while starts[-1] + video < latent_frames:
        starts.append(min(starts[-1] + video - overlap_latents, latent_frames - video))
    return WindowPlan(latent_frames, video + 1, tuple(starts))


def plan_for_frames(
    num_frames: int,
    window_frames: int,
    overlap_frames: int,
    temporal_compression: int = TEMPORAL_COMPRESSION,
    temporal_patch: int | None = 2,
) -> WindowPlan:
    """`plan_windows` from pixel frame counts: `num_frames` and `window_frames` are 4k+1, `overlap_frames` a
    multiple of 4 (whole latent frames). One-line `InputError`s name the pipeline arguments."""
    validate_num_frames(window_frames, temporal_compression, flag="window_frames")
    if window_frames < MIN_WINDOW_FRAMES:
        raise InputError(f"window_frames must be >= {MIN_WINDOW_FRAMES}, got {window_frames}")
    if overlap_frames < temporal_compression or overlap_frames % temporal_compression:
        raise InputError(
            f"overlap_frames must be a positive multiple of {temporal_compression} (whole latent frames), "
            f"got {overlap_frames}"
        )
    window = window_latent_frames(window_frames, temporal_patch, temporal_compression)
    overlap = overlap_frames // temporal_compression
    if overlap > window - 2:
        raise InputError(
            f"overlap_frames {overlap_frames} leaves no new frames in a window of {window_frames}; use at most "
            f"{(window - 2) * temporal_compression}"
        )
    return plan_windows(latent_frame_count(num_frames, temporal_compression), window, overlap)


def fusion_weights(plan: WindowPlan) -> torch.Tensor:
    """Weights `[K, L]` (float32) of window k's output on long-latent frame f: 0 where k does not write f.

    Linear ramps across each overlap (window k rises over its overlap with k − 1, falls over the one with k + 1),
    normalised so that every frame's weights sum to 1; 1 outside the overlaps. Frame 0 (the reference frame) is
    written by the first window alone: later windows discard their reference slot.
    """
    weights = torch.zeros(plan.num_windows, plan.latent_frames, dtype=torch.float64)
    weights[0, 0] = 1.0
    for k, start in enumerate(plan.starts):
        rise = plan.overlap(k)
        fall = plan.overlap(k + 1) if k + 1 < plan.num_windows else 0
        for j in range(plan.video_latents):
            w = 1.0
            if j < rise:
                w = min(w, (j + 1) / (rise + 1))
            if plan.video_latents - 1 - j < fall:
                w = min(w, (plan.video_latents - j) / (fall + 1))
            weights[k, start + j] = w
    return (weights / weights.sum(0, keepdim=True)).float()


def _window_inputs(inputs: Any, control_latents: torch.Tensor, index: torch.Tensor) -> Any:
    """`inputs` (a `DenoiseInputs` for one window's length) with the window's slice of the pose latents."""
    return dataclasses.replace(inputs, control_latents=control_latents.index_select(1, index))


def shifted_plan(plan: WindowPlan) -> WindowPlan:
    """`plan` with every window after the first moved forward by half the stride between window starts (the last
    still ending on the last frame), so that its borders fall midway between `plan`'s; `plan` itself when the
    stride is a single latent frame or there is one window."""
    if plan.num_windows < 2 or plan.starts[1] - plan.starts[0] < 2:
        return plan
    stride = plan.starts[1] - plan.starts[0]
    last = plan.latent_frames - plan.video_latents
    starts = [1]
    start = 1 + stride // 2
    while starts[-1] < last:
        starts.append(min(start, last))
        start += stride
    return WindowPlan(plan.latent_frames, plan.window_latents, tuple(starts))


def window_steps(plan: WindowPlan, steps: int, strategy: str) -> int:
    """Window evaluations of a long video (the progress bar's total): `windows` alternates `plan` and its shifted
    plan from step 0; `chain` runs every window through all steps."""
    if strategy == "chain":
        return steps * plan.num_windows
    return (steps + 1) // 2 * plan.num_windows + steps // 2 * shifted_plan(plan).num_windows


def denoise_windows(
    pipe: Any,
    latents: torch.Tensor,
    timesteps: torch.Tensor,
    inputs: Any,
    control_latents: torch.Tensor,
    plan: WindowPlan,
    guidance_scale: Callable[[int], float],
    progress_bar: Any,
    on_step_end: Callable[[int, torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
) -> torch.Tensor:
    """Denoise the long latent `[B, L, C, h, w]` window by window at every step; returns it denoised.

    Odd steps use `shifted_plan(plan)`, so no window border stays at one place through the whole denoising. The
    scheduler's state (its previous x0 estimate) is kept for the long latent, fused with the same weights as the
    latents, and each window steps from its slice of it.

    `inputs`: a `DenoiseInputs` whose `image_latents` and `image_rotary_emb` are for `plan.window_latents` frames
    (the reference in frame 0); `control_latents [B, L, C, h, w]`: the whole pose latent. `guidance_scale(i)` gives
    step i's scale; `progress_bar` is updated once per window and step (total: `window_steps`); `on_step_end(i, t,
    latents)` may replace the fused latents after each step.
    """
    layouts = []
    for p in (plan, shifted_plan(plan)):
        weights = fusion_weights(p).to(latents.device)
        indices = [torch.tensor(p.indices(k), device=latents.device) for k in range(p.num_windows)]
        frame_weights = []
        for k, index in enumerate(indices):
            w = weights[k].index_select(0, index)
            if k > 0:  # later windows' reference slot is discarded
                w = torch.cat([w.new_zeros(1), w[1:]])
            frame_weights.append(w.view(1, -1, 1, 1, 1))
        window_inputs = [_window_inputs(inputs, control_latents, index) for index in indices]
        layouts.append(list(zip(indices, frame_weights, window_inputs, strict=True)))
    state: torch.Tensor | None = None
    for i, t in enumerate(timesteps):
        if pipe.interrupt:
            continue
        pipe._current_timestep = t
        previous_t = timesteps[i - 1] if i > 0 else None
        fused = torch.zeros_like(latents, dtype=torch.float32)
        fused_state: torch.Tensor | None = torch.zeros_like(fused)
        for index, w, window_inputs in layouts[i % 2]:
            window_state = None if state is None else state.index_select(1, index).to(latents.dtype)
            stepped, new_state = pipe.denoise_step(
                latents.index_select(1, index), t, previous_t, window_inputs, guidance_scale(i), window_state
            )
            fused.index_add_(1, index, stepped.float() * w)
            if new_state is None or fused_state is None:
                fused_state = None
            else:
                fused_state.index_add_(1, index, new_state.float() * w)
            progress_bar.update()
        latents = fused.to(latents.dtype)
        state = fused_state
        if on_step_end is not None:
            latents = on_step_end(i, t, latents)
    return latents


def denoise_chain(
    pipe: Any,
    latents: torch.Tensor,
    timesteps: torch.Tensor,
    inputs: Any,
    control_latents: torch.Tensor,
    plan: WindowPlan,
    guidance_scale: Callable[[int], float],
    progress_bar: Any,
) -> torch.Tensor:
    """Segment chaining: the windows of `plan` denoised one after another, each over all steps.

    Segment k's video latents shared with segment k − 1 are held to that segment's result: before every step they
    are set to the clean latents noised to timestep t with this clip's initial noise (`latents` at entry,
    `[B, L, C, h, w]`), and they are kept from segment k − 1 at the end. Frame 0 comes from the first segment.
    """
    noise = latents
    result = latents.clone()
    for k in range(plan.num_windows):
        index = torch.tensor(plan.indices(k), device=latents.device)
        window_inputs = _window_inputs(inputs, control_latents, index)
        held = plan.overlap(k) + 1 if k > 0 else 0  # the slot and the shared video latents
        clean = result.index_select(1, index[:held])
        initial = noise.index_select(1, index)
        window = initial
        state = None
        for i, t in enumerate(timesteps):
            if pipe.interrupt:
                continue
            pipe._current_timestep = t
            if held:
                noised = pipe.scheduler.add_noise(clean, initial[:, :held], t.reshape(1))
                window = torch.cat([noised.to(window.dtype), window[:, held:]], dim=1)
            window, state = pipe.denoise_step(
                window, t, timesteps[i - 1] if i > 0 else None, window_inputs, guidance_scale(i), state
            )
            progress_bar.update()
        result[:, index[held:]] = window[:, held:]
    return result
