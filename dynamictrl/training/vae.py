"""Training the VAE of a small model from scratch: `dynamictrl train-vae CONFIG.yaml`, or `train_vae(config)`.

A `diffusers.AutoencoderKLCogVideoX` (3 levels for 64-px clips: 4× spatial, 4× temporal compression) learns to
reconstruct the clips of a manifest. What matters for the model trained on its latents, and how it is done:

- **The real encode and decode paths.** The CogVideoX VAE encodes the first frame plus chunks of 8 frames and
  decodes 2-latent chunks, with GroupNorm statistics per chunk and causal-convolution caches between chunks. Each
  step runs whole clips of `frames` (8k+1) frames through `vae.encode` → posterior sample → `vae.decode`, the
  calls inference makes, so training sees exactly the chunking generation will.
- **The person matters most.** The reconstruction loss (L1, optionally + MSE) is weighted ×`foreground_weight` on
  the person mask of the manifest (`mask`, white = person), dilated by `mask_dilation` px, and normalised by the
  total weight (a clip without a mask is weighted uniformly). A feasibility probe gained about 2 dB PSNR and kept
  the limbs with ×10.
- **A little KL** (`kl_weight`, on the mean over latent elements) keeps the posterior a Gaussian the transformer
  trainer and the pipeline can sample from.
- **Motion spread over every frame** (`temporal_weight`, off by default): the 4x temporal compression lets a
  decoder render each latent frame as a burst, a jump into its first frame and near-repeats after it (the small
  model's first VAE moved 0.024 into a latent frame's first frame and 0.002 into its last, where the ground truth
  moves 0.036 into every frame). A weighted mean square between the reconstruction's and the ground truth's
  frame-to-frame differences penalises it (a square, not L1: the median of an uncertain moving edge's difference
  is 0, so an L1 term rewards the bursts it should remove); `latent_start_ratio` in the report measures it (motion
  into latent-frame starts over motion into the other frames, beside the ground truth's own).
- **Decoder-only fine-tuning** (`train_encoder: false`, from `init`): the encoder is frozen, so the latents, the
  scaling factor (kept from init) and a transformer trained on them stay valid; only how they are drawn improves.
- **Exact resume**: data order and flips come from `(seed, epoch, index)`, the posterior noise of a clip from its
  own generator; checkpoints are `training.checkpoint`'s (`checkpoint-N/`, atomic, last K kept) with the
  optimizer, LR schedule and `TrainState`: N steps in one go equal N/2 + resume + N/2.

When training ends (with the encoder trained), the latent scaling factor is measured (1/std of the latents of
`scale_clips` training clips, computed exactly from the posterior moments: std² = Var(mean) + E[exp(logvar)]) and
stored as the VAE config's `scaling_factor` (with the encoder frozen, init's is kept), with `invert_scale_latents`
False. Training (`training.spec`: video and pose latents × scaling factor, the image latent × `image_latent_scale`,
default the scaling factor) and the pipeline (pose × scaling factor, image × `dynamictrl.json`'s `image_latent_scale`
or, without it and with `invert_scale_latents` False, × scaling factor, decode ÷ scaling factor) then agree. Held-out
clips (`held_out`, a seeded pick kept out of training) are reconstructed from their posterior means: PSNR over whole
frames and over the person mask goes to `vae_report.json`, side-by-side previews (clip | reconstruction) to
`vae_preview/`.

Outputs in `output_dir`: `vae/` (config + safetensors, float32), `vae_report.json`, `train_config.json`,
`metrics.jsonl` (+ tensorboard events when installed), `checkpoint-N/`, `vae_preview/NN.mp4`.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F

from ..data.manifest import ClipRecord
from ..errors import InputError
from . import checkpoint as ckpt
from .vae_config import LATENT_CHANNELS, TEMPORAL_COMPRESSION, VaeTrainConfig

logger = logging.getLogger(__name__)

HELD_OUT_STREAM = 7_919  # seeds the held-out pick apart from the data order
REPORT_FILE = "vae_report.json"


@dataclass
class VaeTrainResult:
    output: Path  # the vae/ folder
    global_step: int
    losses: list[float]  # per optimizer step of this invocation
    report: dict[str, Any]  # what vae_report.json holds
    seconds: float


def train_vae(config: VaeTrainConfig) -> VaeTrainResult:
    """Train as `config` says; returns the VAE folder and the report. Raises `InputError` before loading anything
    if the data, the VAE to start from or the checkpoint to resume from is wrong."""
    trainer = VaeTrainer(config)
    trainer.check()
    trainer.prepare_accelerator()
    trainer.prepare_model()
    trainer.prepare_for_training()
    trainer.prepare_dataset()
    trainer.prepare_checkpointing()
    trainer.train()
    return trainer.save_final()


# ------------------------------------------------------------------------------------------------------- data
def sample_generator(seed: int, epoch: int, index: int) -> torch.Generator:
    """The CPU generator of the posterior noise of clip `index` in `epoch`."""
    digest = hashlib.sha256(f"dynamictrl-vae/{seed}/{epoch}/{index}".encode()).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest[:8], "little") >> 1)


def dilate(mask: torch.Tensor, pixels: int) -> torch.Tensor:
    """Binary masks `[..., H, W]` grown by `pixels` in every direction (a square max filter)."""
    if pixels <= 0:
        return mask
    shape = mask.shape
    flat = mask.reshape(-1, 1, *shape[-2:]).float()
    return F.max_pool2d(flat, 2 * pixels + 1, stride=1, padding=pixels).reshape(shape)


def held_out_split(count: int, held_out: int, seed: int) -> tuple[list[int], list[int]]:
    """(training indices, held-out indices) of `count` records: a seeded pick of `held_out`, both sorted."""
    order = np.random.default_rng((seed, HELD_OUT_STREAM)).permutation(count)
    held = sorted(int(i) for i in order[:held_out])
    kept = set(range(count)) - set(held)
    return sorted(kept), held


class VaeClipDataset(torch.utils.data.Dataset):
    """Records → clips of `frames` frames at `height`×`width` (cover-cropped), with their person masks.

    Keyed by `(epoch, index)`: the start and the flip come from `(seed, epoch, index)`. A sample: `video
    [F, 3, H, W]` in [-1, 1] (float32), `mask [F, 1, H, W]` in {0, 1} (None without a mask video), `epoch`, `index`.
    """

    def __init__(
        self,
        records: list[ClipRecord],
        *,
        frames: int,
        height: int,
        width: int,
        seed: int = 0,
        flip: float = 0.0,
        cache_frames: bool = False,
    ) -> None:
        short = [r for r in records if r.frames < frames]
        if short:
            raise InputError(
                f"{len(short)} clip(s) have fewer than frames={frames} frames (e.g. {short[0].video}: "
                f"{short[0].frames}); lower frames or drop them from the manifest"
            )
        self.records, self.frames, self.height, self.width = records, frames, height, width
        self.seed, self.flip, self.cache_frames = seed, flip, cache_frames
        self._cache: dict[Path, npt.NDArray[np.uint8]] = {}

    def __len__(self) -> int:
        return len(self.records)

    def selection(self, epoch: int, index: int) -> tuple[int, bool]:
        """(clip start, flip) of sample `index` in `epoch`."""
        rng = np.random.default_rng((self.seed, epoch, index))
        start = int(rng.integers(0, self.records[index].frames - self.frames + 1))
        return start, bool(rng.random() < self.flip)

    def _decode(self, path: Path, start: int, count: int | None) -> npt.NDArray[np.uint8]:
        from ..io.images import cover_crop_frames
        from ..io.media import read_video

        frames, _ = read_video(path, start=start, max_frames=count)
        return cover_crop_frames(frames, self.height, self.width)

    def _read(self, path: Path, start: int, flip: bool) -> npt.NDArray[np.uint8]:
        """`frames` frames of `path` from `start`, cover-cropped (and flipped): from memory with `cache_frames`
        (the whole clip is decoded once; decoding costs more than a small VAE step's data)."""
        if self.cache_frames:
            if path not in self._cache:
                self._cache[path] = self._decode(path, 0, None)
            frames = self._cache[path][start : start + self.frames]
        else:
            frames = self._decode(path, start, self.frames)
        if len(frames) < self.frames:
            raise InputError(f"{path} has {start + len(frames)} frames, fewer than the manifest says")
        return np.ascontiguousarray(frames[:, :, ::-1]) if flip else frames

    def clip(self, index: int, start: int = 0, flip: bool = False) -> dict[str, Any]:
        """Record `index` from `start`: `video` uint8 `[F, H, W, 3]`, `video_tensor`, `mask` (see the class)."""
        from ..data.dataset import to_tensor

        record = self.records[index]
        video = self._read(record.video, start, flip)
        mask = None
        if record.mask is not None:
            mask = torch.from_numpy(self._read(record.mask, start, flip)[..., 0] > 127)[:, None].float()
        return {"video": video, "video_tensor": to_tensor(video), "mask": mask}

    def __getitem__(self, key: tuple[int, int]) -> dict[str, Any]:
        epoch, index = key
        start, flip = self.selection(epoch, index)
        clip = self.clip(index, start, flip)
        return {"video": clip["video_tensor"], "mask": clip["mask"], "epoch": epoch, "index": index}


def collate_clips(samples: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Samples stay a list (masks may be missing for some)."""
    return samples


def loss_weights(masks: list[torch.Tensor | None], shape: tuple[int, ...], foreground: float, dilation: int):
    """Per-pixel loss weights `[B, 1, F, H, W]`: `foreground` inside the dilated mask, 1 elsewhere and without one.

    `shape` is `(F, H, W)`; masks are `[F, 1, H, W]` in {0, 1}.
    """
    weights = []
    for mask in masks:
        if mask is None or foreground == 1.0:
            weights.append(torch.ones(1, *shape))
        else:
            weights.append(1.0 + (foreground - 1.0) * dilate(mask, dilation).permute(1, 0, 2, 3))
    return torch.stack(weights)


# ------------------------------------------------------------------------------------------------------ model
class VaeReconstruction(torch.nn.Module):
    """encode → posterior sample with the given noise → decode, through the VAE's own (chunked) `encode`/`decode`.

    A module of its own so that accelerate can wrap it (DDP synchronises gradients in `forward`).
    """

    def __init__(self, vae: torch.nn.Module) -> None:
        super().__init__()
        self.vae = vae

    def forward(self, video: torch.Tensor, noise: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """`video [B, 3, F, H, W]` in [-1, 1], `noise [B, 16, f, h, w]` → (reconstruction `[B, 3, F, H, W]`,
        posterior mean and logvar `[B, 16, f, h, w]`)."""
        posterior = self.vae.encode(video).latent_dist
        latents = posterior.mean + posterior.std * noise.to(posterior.mean.dtype)
        reconstruction = self.vae.decode(latents).sample[:, :, : video.shape[2]]
        return reconstruction, posterior.mean, posterior.logvar


def latent_shape(vae_config: Any, frames: int, height: int, width: int) -> tuple[int, int, int, int]:
    """`(16, f, h, w)` of a clip: f = (frames − 1) / 4 + 1, sides ÷ 2^(levels − 1)."""
    spatial = 2 ** (len(vae_config.block_out_channels) - 1)
    return (LATENT_CHANNELS, (frames - 1) // TEMPORAL_COMPRESSION + 1, height // spatial, width // spatial)


def reconstruction_loss(
    reconstruction: torch.Tensor,
    target: torch.Tensor,
    weights: torch.Tensor,
    mean: torch.Tensor,
    logvar: torch.Tensor,
    config: VaeTrainConfig,
) -> tuple[torch.Tensor, dict[str, float]]:
    """The loss (float32 scalar) and its parts: weighted L1 and MSE (Σ w·e / Σ w over pixels and channels) + KL.

    `reconstruction`, `target` `[B, 3, F, H, W]`, `weights [B, 1, F, H, W]`, `mean`/`logvar` the posterior's. KL
    against N(0, I) is the mean over latent elements of ½(μ² + σ² − 1 − log σ²).
    """
    error = reconstruction.float() - target.float()
    total = weights.sum() * error.shape[1]
    l1 = (weights * error.abs()).sum() / total
    mse = (weights * error.square()).sum() / total
    mean, logvar = mean.float(), logvar.float()
    kl = 0.5 * (mean.square() + logvar.exp() - 1.0 - logvar).mean()
    loss = config.l1_weight * l1 + config.mse_weight * mse + config.kl_weight * kl
    parts = {"l1": float(l1.detach()), "mse": float(mse.detach()), "kl": float(kl.detach())}
    if config.temporal_weight > 0:
        temporal = temporal_mse(error, weights)
        loss = loss + config.temporal_weight * temporal
        parts["temporal"] = float(temporal.detach())
    return loss, parts


def temporal_mse(error: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Weighted mean square between the frame-to-frame differences of reconstruction and target, from `error` = their
    difference `[B, 3, F, H, W]` (Δ_t reconstruction − Δ_t target = error_t − error_{t−1}); a transition weighs the
    larger of its two frames' `weights [B, 1, F, H, W]`. 0 for a single frame."""
    if error.shape[2] < 2:
        return error.new_zeros(())
    step = weights[:, :, 1:].maximum(weights[:, :, :-1])
    return (step * (error[:, :, 1:] - error[:, :, :-1]).square()).sum() / (step.sum() * error.shape[1])


def latent_start_ratio(video: torch.Tensor) -> float:
    """Mean |frame_t − frame_{t−1}| into the first frame of each latent frame (t = 1, 5, 9...) over the same into
    the other frames, of a video `[B, 3, F, H, W]` (F ≥ 3). About 1 for evenly spread motion; a VAE that decodes each
    latent frame as a burst (a jump, then near-repeats) scores well above the ground truth's own ratio."""
    steps = (video[:, :, 1:].float() - video[:, :, :-1].float()).abs().mean(dim=(0, 1, 3, 4))  # [F − 1]: t−1 → t
    starts = torch.zeros_like(steps, dtype=torch.bool)
    starts[::TEMPORAL_COMPRESSION] = True
    return float(steps[starts].mean() / steps[~starts].mean().clamp_min(1e-12))


def psnr(reconstruction: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> float | None:
    """PSNR in dB of videos in [-1, 1] (compared in [0, 1]) over all pixels or those where `mask` (broadcast) is 1.

    None for an empty mask; a perfect reconstruction gives inf.
    """
    error = ((reconstruction.float().clamp(-1, 1) - target.float()) / 2).square()
    if mask is not None:
        mask = mask.float().expand_as(error)
        if mask.sum() == 0:
            return None
        mse = float((error * mask).sum() / mask.sum())
    else:
        mse = float(error.mean())
    return math.inf if mse == 0 else 10 * math.log10(1.0 / mse)


@torch.no_grad()
def latent_statistics(vae: Any, clips: list[torch.Tensor]) -> tuple[float, float]:
    """(mean, std) of the posterior latents of clips `[F, 3, H, W]`, exactly from the moments (no sampling).

    std² = E[μ²] + E[σ²] − E[μ]²: the variance of a posterior sample over the data. Encoded with
    `data.encoders.encode_moments`, as the transformer trainer and its latent cache encode.
    """
    from ..data.encoders import encode_moments

    count = 0
    total = square = variance = 0.0
    for pixels in clips:
        moments = encode_moments(vae, pixels).double()  # [f, 32, h, w]
        mean, logvar = moments.chunk(2, dim=1)
        count += mean.numel()
        total += float(mean.sum())
        square += float(mean.square().sum())
        variance += float(logvar.clamp(-30.0, 20.0).exp().sum())
    average = total / count
    return average, math.sqrt(max(square / count + variance / count - average**2, 1e-12))


# ---------------------------------------------------------------------------------------------------- trainer
class VaeTrainer:
    def __init__(self, config: VaeTrainConfig) -> None:
        self.config = config
        self.losses: list[float] = []

    # ------------------------------------------------------------------------------------------ preparation
    def check(self) -> None:
        """Files (data, init, checkpoint), the held-out split and that a batch can be filled; nothing loaded."""
        from ..data.manifest import read_manifests

        c = self.config
        c.check_files()
        records = read_manifests(c.manifest_paths)
        if len(records) <= c.held_out:
            raise InputError(f"{c.manifest} has {len(records)} clip(s); held_out={c.held_out} leaves none to train on")
        train, held = held_out_split(len(records), c.held_out, c.seed)
        self.train_records = [records[i] for i in train]
        self.held_records = [records[i] for i in held]
        if len(self.train_records) < c.batch_size:
            raise InputError(
                f"{len(self.train_records)} training clip(s) cannot fill a batch of {c.batch_size}; lower batch_size"
            )

    def prepare_accelerator(self) -> None:
        from accelerate.utils import set_seed

        from .distributed import make_accelerator

        self.accelerator = make_accelerator(self.config)  # reads output_dir, mixed_precision, batch keys
        set_seed(self.config.seed)

    def prepare_model(self) -> None:
        from diffusers import AutoencoderKLCogVideoX

        c = self.config
        if c.init is not None:
            vae = AutoencoderKLCogVideoX.from_pretrained(c.init, torch_dtype=torch.float32)
        else:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(c.seed)
                vae = AutoencoderKLCogVideoX(**c.vae_config)
        if vae.config.latent_channels != LATENT_CHANNELS:
            raise InputError(f"init: {c.init} has {vae.config.latent_channels} latent channels; DynamiCtrl takes 16")
        if c.gradient_checkpointing:
            vae.enable_gradient_checkpointing()
        self.vae = vae.train().requires_grad_(True)
        if not c.train_encoder:  # the latents stay those of init: freeze what makes them
            for module in (vae.encoder, vae.quant_conv):
                if module is not None:
                    module.requires_grad_(False)
        self.latent_shape = latent_shape(vae.config, c.frames, c.height, c.width)
        count = sum(p.numel() for p in self.vae.parameters() if p.requires_grad)
        part = "VAE" if c.train_encoder else "VAE decoder"
        levels = len(vae.config.block_out_channels)
        logger.info("Training a %s of %s parameters (%s levels)", part, f"{count:,}", levels)

    def prepare_for_training(self) -> None:
        from diffusers.optimization import get_scheduler

        c = self.config
        self.params = [p for p in self.vae.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(
            self.params, lr=c.learning_rate, betas=(c.beta1, c.beta2), eps=c.epsilon, weight_decay=c.weight_decay
        )
        world = self.accelerator.num_processes
        lr_scheduler = get_scheduler(
            c.lr_scheduler,
            optimizer=optimizer,
            num_warmup_steps=c.lr_warmup_steps * world,
            num_training_steps=c.max_steps * world,
        )
        self.model, self.optimizer, self.lr_scheduler = self.accelerator.prepare(
            VaeReconstruction(self.vae), optimizer, lr_scheduler
        )

    def prepare_dataset(self) -> None:
        c = self.config
        options = dict(frames=c.frames, height=c.height, width=c.width, seed=c.seed, cache_frames=c.cache_frames)
        self.dataset = VaeClipDataset(self.train_records, flip=c.flip, **options)
        self.held_dataset = VaeClipDataset(self.held_records, flip=0.0, **options)
        if len(self.dataset) // self.accelerator.num_processes < c.batch_size:
            raise InputError(
                f"{len(self.dataset)} training clips cannot fill a batch of {c.batch_size} on "
                f"{self.accelerator.num_processes} process(es)"
            )

    def prepare_checkpointing(self) -> None:
        from .trainer import start_run

        self.state, self.metrics = start_run(self.accelerator, self.config)

    # ---------------------------------------------------------------------------------------------- train
    def loader(self) -> torch.utils.data.DataLoader:
        from ..data.dataset import ResumableSampler

        acc = self.accelerator
        sampler = ResumableSampler(
            len(self.dataset),
            self.config.seed,
            self.state.epoch,
            self.state.position,
            acc.process_index,
            acc.num_processes,
        )
        return torch.utils.data.DataLoader(
            self.dataset,
            batch_size=self.config.batch_size,
            sampler=sampler,
            collate_fn=collate_clips,
            num_workers=self.config.num_workers,
            drop_last=True,
        )

    def step(self, samples: list[dict[str, Any]]) -> tuple[torch.Tensor, dict[str, float]]:
        """One micro-batch: encode → sample → decode, weighted loss, backward (optimizer step at sync)."""
        c, acc = self.config, self.accelerator
        device = acc.device
        video = torch.stack([s["video"] for s in samples]).permute(0, 2, 1, 3, 4).to(device)  # [B, 3, F, H, W]
        noise = torch.stack(
            [
                torch.randn(self.latent_shape, generator=sample_generator(c.seed, s["epoch"], s["index"]))
                for s in samples
            ]
        ).to(device)
        weights = loss_weights(
            [s["mask"] for s in samples], (c.frames, c.height, c.width), c.foreground_weight, c.mask_dilation
        ).to(device)
        with acc.accumulate(self.model):
            reconstruction, mean, logvar = self.model(video, noise)
            loss, parts = reconstruction_loss(reconstruction, video, weights, mean, logvar, c)
            acc.backward(loss)
            if acc.sync_gradients and c.max_grad_norm > 0:
                self.grad_norm = acc.clip_grad_norm_(self.params, c.max_grad_norm)
            self.optimizer.step()
            self.lr_scheduler.step()
            self.optimizer.zero_grad(set_to_none=True)
        return loss.detach(), parts

    def train(self) -> None:
        from tqdm.auto import tqdm

        from .trainer import finish_step

        c, acc, state = self.config, self.accelerator, self.state
        self.started = time.perf_counter()
        progress = tqdm(
            total=c.max_steps, initial=state.global_step, desc="train-vae", disable=c.quiet or not acc.is_main_process
        )
        micro: list[torch.Tensor] = []
        self.grad_norm = None
        while state.global_step < c.max_steps:
            for samples in self.loader():
                loss, parts = self.step(samples)
                micro.append(loss)
                state.position += len(samples)
                if not acc.sync_gradients:
                    continue
                finish_step(self, micro, progress, "VAE loss", **parts)
                micro = []
                if c.checkpoint_every and state.global_step % c.checkpoint_every == 0:
                    ckpt.save_checkpoint(acc, c.output_dir, state.global_step, c.checkpoints_keep)
                if c.eval_every and state.global_step % c.eval_every == 0 and acc.is_main_process:
                    scores = self.evaluate(previews=False)
                    self.metrics.log(state.global_step, {k: v for k, v in scores.items() if isinstance(v, float)})
                if state.global_step >= c.max_steps:
                    break
            else:
                state.epoch += 1
                state.position = 0
        progress.close()
        self.metrics.close()

    # ------------------------------------------------------------------------------------------- outputs
    @torch.no_grad()
    def evaluate(self, previews: bool = False) -> dict[str, Any]:
        """Held-out clips (their first `frames` frames) reconstructed from the posterior mean: PSNR over the
        whole frames and over the person mask (undilated), per clip and averaged; optional preview videos."""
        from tqdm.auto import tqdm

        c = self.config
        vae = self.vae
        was_training = vae.training
        vae.eval()
        clips = []
        for i in tqdm(range(len(self.held_dataset)), desc="held-out", disable=c.quiet, leave=False):
            clip = self.held_dataset.clip(i)
            video = clip["video_tensor"].permute(1, 0, 2, 3)[None].to(self.accelerator.device)  # [1, 3, F, H, W]
            posterior = vae.encode(video).latent_dist
            reconstruction = vae.decode(posterior.mean).sample[:, :, : c.frames].float().cpu()
            target = video.float().cpu()
            mask = None if clip["mask"] is None else clip["mask"].permute(1, 0, 2, 3)[None]
            clips.append(
                {
                    "video": str(self.held_records[i].video),
                    "psnr": psnr(reconstruction, target),
                    "psnr_character": None if mask is None else psnr(reconstruction, target, mask),
                    "latent_start_ratio": latent_start_ratio(reconstruction.clamp(-1, 1)),
                    "ground_truth_latent_start_ratio": latent_start_ratio(target),
                }
            )
            if previews:
                self._write_preview(i, clip["video"], reconstruction)
        vae.train(was_training)

        def average(key: str) -> float | None:
            values = [clip[key] for clip in clips if clip[key] is not None]
            return float(np.mean(values)) if values else None

        keys = ("psnr", "psnr_character", "latent_start_ratio", "ground_truth_latent_start_ratio")
        return {**{key: average(key) for key in keys}, "held_out": clips}

    def _write_preview(self, index: int, video: npt.NDArray[np.uint8], reconstruction: torch.Tensor) -> None:
        from ..io.media import side_by_side, write_video

        frames = ((reconstruction[0].permute(1, 2, 3, 0).clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).numpy()
        fps = self.held_records[index].fps or 8.0
        write_video(self.config.output_dir / "vae_preview" / f"{index:02d}.mp4", side_by_side(video, frames), fps)

    def scaling_factor(self) -> tuple[float, float, float]:
        """(scaling factor = 1/std, latent mean, latent std) over the first `scale_clips` training clips (from
        frame 0, unflipped)."""
        from tqdm.auto import tqdm

        c = self.config
        count = min(c.scale_clips, len(self.dataset))
        clips = [
            self.dataset.clip(i)["video_tensor"] for i in tqdm(range(count), desc="latent scale", disable=c.quiet)
        ]
        was_training = self.vae.training
        self.vae.eval()
        mean, std = latent_statistics(self.vae, clips)
        self.vae.train(was_training)
        return 1.0 / std, mean, std

    def save_final(self) -> VaeTrainResult:
        from ..io.atomic import atomic_dir, write_json_atomic

        c, acc = self.config, self.accelerator
        acc.wait_for_everyone()
        output = c.output_dir / "vae"
        report: dict[str, Any] = {}
        if acc.is_main_process:
            if c.train_encoder:
                scale, mean, std = self.scaling_factor()
                self.vae.register_to_config(scaling_factor=scale, invert_scale_latents=False)
            else:  # init's encoder, so init's latents and scale (what a transformer was trained with)
                scale, mean, std = float(self.vae.config.scaling_factor), None, None
            with atomic_dir(output) as tmp:
                self.vae.save_pretrained(tmp, safe_serialization=True)
            scores = self.evaluate(previews=True)
            report = {
                "global_step": self.state.global_step,
                "scaling_factor": scale,
                "latent_mean": mean,
                "latent_std": std,
                **scores,  # PSNR (whole, person), latent-start ratios, per held-out clip
                "trained": "encoder and decoder" if c.train_encoder else "decoder",
                "parameters": sum(p.numel() for p in self.vae.parameters()),
                "frames": c.frames,
                "height": c.height,
                "width": c.width,
                "seconds": time.perf_counter() - self.started,
                "last_loss": self.losses[-1] if self.losses else None,
            }
            write_json_atomic(c.output_dir / REPORT_FILE, report)
            logger.info("VAE saved to %s: held-out PSNR %s dB, scaling factor %.4f", output, report["psnr"], scale)
        acc.wait_for_everyone()
        acc.end_training()
        return VaeTrainResult(output, self.state.global_step, self.losses, report, time.perf_counter() - self.started)


__all__ = ["VaeTrainResult", "VaeTrainer", "latent_statistics", "psnr", "reconstruction_loss", "train_vae"]
