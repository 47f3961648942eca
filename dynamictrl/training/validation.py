"""Validation during training: generate a fixed set of videos every `validation_steps` steps and score them.

The videos come from `DynamiCtrlPipeline` (the same `denoise_step` loop inference runs) built around the
transformer being trained and the frozen VAE / T5, with the image-latent scale of training, so what is written is
what `dynamictrl animate` would make of the weights at that step. The set is fixed for the whole run:
`validation_prompts` with their `validation_images` / `validation_poses` (and optional `validation_videos`, the
ground truth), or else the first `validation_count` training clips (their first frames, reference, pose and
caption, at the clip's training bucket; the clip itself is the ground truth). Each case is generated at its own
size and frame count (the prompts' cases at `frames`×`height`×`width`) and uses the generator `seed + case`, so
steps compare.

Cases are split across ranks (`accelerator.split_between_processes`; under FSDP padded to equal shares). Output,
per step:
`output_dir/validation/step-N/NN.mp4` and `NN_side_by_side.mp4` (reference | pose | generated | ground truth),
and one line per case in `output_dir/validation/validation.jsonl` with PSNR and SSIM (`evaluation.metrics`, mean
over frames) against the ground truth.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from .config import TrainConfig

logger = logging.getLogger(__name__)

VALIDATION_FPS = 8.0  # custom cases without a ground-truth clip to take the rate from


@dataclass
class ValidationCase:
    """One fixed validation input, generated at its own shape: uint8 `reference [H, W, 3]`, `pose [F, H, W, 3]`,
    `ground_truth [F, H, W, 3]` or None."""

    prompt: str
    reference: npt.NDArray[np.uint8]
    pose: npt.NDArray[np.uint8]
    ground_truth: npt.NDArray[np.uint8] | None
    fps: float


def build_cases(config: TrainConfig, dataset: Any) -> list[ValidationCase]:
    """The run's validation set (see the module docstring); `dataset` is the training `ClipDataset`."""
    if not config.validation_prompts:
        count = min(config.validation_count, len(dataset))
        cases = []
        for index in range(count):
            clip = dataset.clip_frames(index)
            cases.append(ValidationCase(clip["prompt"], clip["reference"], clip["pose"], clip["video"], clip["fps"]))
        return cases
    from ..io.images import cover_crop, cover_crop_frames
    from ..io.media import load_image, read_video

    h, w, f = config.height, config.width, config.frames
    videos = config.validation_videos or (None,) * len(config.validation_prompts)
    cases = []
    for prompt, image, pose_path, video_path in zip(
        config.validation_prompts, config.validation_images, config.validation_poses, videos, strict=True
    ):
        pose, fps = read_video(pose_path, max_frames=f)
        if len(pose) < f:
            from ..errors import InputError

            raise InputError(f"validation pose {pose_path} has {len(pose)} frames, fewer than frames={f}")
        truth = None
        if video_path is not None:
            truth, fps = read_video(video_path, max_frames=f)
            truth = cover_crop_frames(truth, h, w) if len(truth) == f else None
            if truth is None:
                logger.warning("validation video %s has fewer than %d frames; no metrics for it", video_path, f)
        reference = cover_crop(load_image(image), h, w)
        cases.append(ValidationCase(prompt, reference, cover_crop_frames(pose, h, w), truth, fps or VALIDATION_FPS))
    return cases


class Validator:
    """Generates and scores the validation set with the live transformer (see the module docstring)."""

    def __init__(
        self,
        config: TrainConfig,
        cases: list[ValidationCase],
        *,
        accelerator: Any,
        vae: Any,
        scheduler: Any,
        prompt_embeds: Callable[[str], torch.Tensor],
        image_latent_scale: float,
    ) -> None:
        self.config, self.cases, self.accelerator = config, cases, accelerator
        self.vae, self.prompt_embeds, self.image_latent_scale = vae, prompt_embeds, image_latent_scale
        from diffusers import CogVideoXDPMScheduler

        # Inference's scheduler (pipelines.loading.load_pipeline): the DPM scheduler with trailing spacing.
        self.scheduler = CogVideoXDPMScheduler.from_config(scheduler.config, timestep_spacing="trailing")
        self.folder = config.output_dir / "validation"

    def pipeline(self, transformer: torch.nn.Module):
        from ..pipelines.pipeline_dynamictrl import DynamiCtrlPipeline

        pipe = DynamiCtrlPipeline(
            tokenizer=None, text_encoder=None, vae=self.vae, transformer=transformer, scheduler=self.scheduler
        )
        pipe.set_progress_bar_config(disable=True)
        return pipe

    @torch.no_grad()
    def run(self, model: torch.nn.Module, step: int) -> list[dict[str, Any]]:
        """Generate this rank's share of the cases at `step`, write them; returns every case's metrics (rank 0)."""
        from accelerate.utils import gather_object

        from .distributed import is_sharded

        acc = self.accelerator
        transformer = acc.unwrap_model(model)
        was_training = transformer.training
        transformer.eval()
        out = self.folder / f"step-{step}"
        out.mkdir(parents=True, exist_ok=True)
        pipe = self.pipeline(transformer)
        rows = []
        try:
            # A sharded model (FSDP) gathers its weights in every forward, so every rank must run as many: pad the
            # last rank's share with a repeat of its last case (generated again, reported once).
            sharded = is_sharded(acc)
            with acc.split_between_processes(list(range(len(self.cases))), apply_padding=sharded) as mine:
                for index in mine:
                    rows.append(self.generate(pipe, index, out, step))
        finally:
            transformer.train(was_training)
        rows = gather_object(rows) if acc.num_processes > 1 else rows
        rows = sorted({r["case"]: r for r in rows}.values(), key=lambda r: r["case"])
        if acc.is_main_process:
            with open(self.folder / "validation.jsonl", "a") as f:
                for row in rows:
                    f.write(json.dumps(row) + "\n")
        acc.wait_for_everyone()
        return rows

    def generate(self, pipe: Any, index: int, out: Path, step: int) -> dict[str, Any]:
        from ..evaluation.metrics import psnr, ssim
        from ..io.media import side_by_side, write_video
        from .distributed import autocast

        c, case = self.config, self.cases[index]
        started = time.perf_counter()
        device = self.accelerator.device
        guidance = c.validation_guidance_scale
        embeds = self.prompt_embeds(case.prompt).to(device, torch.float32)
        negative = self.prompt_embeds("").to(device, torch.float32) if guidance > 1.0 else None
        with autocast(self.accelerator, c):
            frames = pipe(
                image=case.reference,
                control_video=case.pose,
                prompt_embeds=embeds,
                negative_prompt_embeds=negative,
                height=case.reference.shape[0],
                width=case.reference.shape[1],
                num_frames=len(case.pose),
                num_inference_steps=c.validation_inference_steps,
                guidance_scale=guidance,
                generator=torch.Generator().manual_seed(c.seed + index),
                image_latent_scale=self.image_latent_scale,
                pose_control_function=c.pose_control_function,
                output_type="np",
            ).frames[0]
        video = (np.clip(np.asarray(frames, np.float32), 0.0, 1.0) * 255.0).round().astype(np.uint8)
        name = f"{index:02d}"
        path = write_video(out / f"{name}.mp4", video, case.fps)
        panels = [np.repeat(case.reference[None], len(video), axis=0), case.pose[: len(video)], video]
        row: dict[str, Any] = {"step": step, "case": index, "prompt": case.prompt, "video": str(path)}
        if case.ground_truth is not None:
            truth = case.ground_truth[: len(video)]
            panels.append(truth)
            row["psnr"] = float(psnr(video, truth).mean())
            row["ssim"] = float(ssim(video, truth).mean())
        row["side_by_side"] = str(write_video(out / f"{name}_side_by_side.mp4", side_by_side(*panels), case.fps))
        row["seconds"] = round(time.perf_counter() - started, 3)
        return row


__all__ = ["ValidationCase", "Validator", "build_cases"]
