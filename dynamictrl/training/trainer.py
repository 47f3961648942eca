"""The training loop, on `accelerate.Accelerator` (launch several processes with `accelerate launch`).

`run(config)` reads as the table of contents. Everything model-specific (latents, conditions, loss) is in
`training.spec`; resumable state in `training.state`; files in `training.checkpoint`.
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..data.encoders import encode_moments_batch, encode_prompts
from ..errors import InputError
from . import checkpoint as ckpt
from . import distributed, spec
from .config import Init, MixedPrecision, Optimizer, TrainConfig, TrainMode
from .state import TrainState

logger = logging.getLogger(__name__)

CONTROL_NORM_LORA_TARGET = "control_norm1.linear"


@dataclass
class TrainResult:
    output: Path  # transformer/ (full) or lora/ folder
    global_step: int
    losses: list[float]  # per optimizer step of this invocation (main-process view, averaged over ranks)
    seconds: float


def run(config: TrainConfig) -> TrainResult:
    """Train as `config` says; returns where the final weights are. Raises `InputError` before loading anything
    if the config, the data or the checkpoint to resume from is wrong."""
    trainer = Trainer(config)
    trainer.check()
    trainer.prepare_accelerator()
    trainer.prepare_models()
    trainer.prepare_trainable_parameters()
    trainer.prepare_for_training()
    trainer.prepare_dataset()
    trainer.prepare_checkpointing()
    trainer.prepare_validation()
    trainer.train()
    return trainer.save_final()


class MetricsLog:
    """`metrics.jsonl` (always; one JSON object per logged step) and tensorboard when it is installed."""

    def __init__(self, folder: Path, enabled: bool) -> None:
        self.enabled = enabled
        self.path = folder / "metrics.jsonl"
        self.writer = None
        if enabled:
            folder.mkdir(parents=True, exist_ok=True)
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.writer = SummaryWriter(str(folder / "tensorboard"))
            except ImportError:
                logger.info("tensorboard is not installed; metrics go to %s only", self.path)

    def log(self, step: int, values: dict[str, float]) -> None:
        if not self.enabled:
            return
        with open(self.path, "a") as f:
            f.write(json.dumps({"step": step, **values}) + "\n")
        if self.writer is not None:
            for key, value in values.items():
                self.writer.add_scalar(f"train/{key}", value, step)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def start_run(accelerator: Any, config: Any) -> tuple[TrainState, MetricsLog]:
    """The run's state (registered with accelerate's checkpoint hooks), its metrics log and saved config, restored
    from `config.resume` when set. Shared by `dynamictrl train` and `dynamictrl train-vae`."""
    state = TrainState(seed=config.seed)
    ckpt.register_hooks(accelerator, state)
    metrics = MetricsLog(config.output_dir, accelerator.is_main_process)
    if accelerator.is_main_process:
        config.output_dir.mkdir(parents=True, exist_ok=True)
        config.save(config.output_dir / "train_config.json")
    if config.resume is not None:
        path = ckpt.find_checkpoint(config.output_dir, config.resume)
        accelerator.load_state(str(path))
        logger.info("Resumed from %s at step %d", path, state.global_step)
    return state, metrics


def finish_step(trainer: Any, micro_losses: list[torch.Tensor], progress: Any, what: str, **parts: float) -> float:
    """After an optimizer step: count it, average the micro-batch losses over ranks, refuse a non-finite loss,
    advance the progress bar and log every `log_every` steps (loss, `parts`, LR, epoch, grad norm).

    `trainer` has `accelerator`, `state`, `config`, `losses`, `lr_scheduler`, `grad_norm` and `metrics` (the
    diffusion trainer and the VAE trainer alike)."""
    state, c = trainer.state, trainer.config
    state.global_step += 1
    loss = trainer.accelerator.gather(torch.stack(micro_losses).mean()[None]).mean().item()
    if not math.isfinite(loss):
        raise FloatingPointError(f"{what} is {loss} at step {state.global_step}; lower learning_rate")
    trainer.losses.append(loss)
    progress.update(1)
    progress.set_postfix(loss=f"{loss:.4f}")
    if state.global_step % c.log_every == 0:
        values = {"loss": loss, **parts, "lr": trainer.lr_scheduler.get_last_lr()[0], "epoch": state.epoch}
        if trainer.grad_norm is not None:
            values["grad_norm"] = float(trainer.grad_norm)
        trainer.metrics.log(state.global_step, values)
    return loss


class Trainer:
    def __init__(self, config: TrainConfig) -> None:
        self.config = config
        self.losses: list[float] = []

    # ------------------------------------------------------------------------------------------ preparation
    def check(self) -> None:
        """Config values are checked by `TrainConfig`; here the files (model, manifest, checkpoint to resume) and
        each clip's training bucket against the model's size limits (from its config.json files, no weights)."""
        c = self.config
        c.check_files()
        from ..data.buckets import Bucket, clip_buckets
        from ..data.manifest import read_manifests
        from ..models.geometry import size_limits

        self.records = read_manifests(c.manifest_paths)
        configs = [Path(c.model) / name / "config.json" for name in ("transformer", "vae")]
        transformer_config, vae_config = (json.loads(p.read_text()) if p.is_file() else None for p in configs)
        multiple, max_side = size_limits(transformer_config or {}, vae_config)
        self.buckets = clip_buckets(
            [(str(r.video), r.frames, r.height, r.width) for r in self.records],
            c.buckets,
            Bucket(c.frames, c.height, c.width),
            multiple=multiple,
            max_side=max_side if transformer_config else None,
        )

    def prepare_accelerator(self) -> None:
        """The accelerator for whichever launch config started us: one process, DDP, DeepSpeed or FSDP, on GPUs or
        CPU processes (`training.distributed`)."""
        from accelerate.utils import set_seed

        c = self.config
        self.accelerator = distributed.make_accelerator(c)
        self.model_dtype = distributed.model_dtype(self.accelerator, c)
        if c.allow_tf32 and torch.cuda.is_available():
            torch.backends.cuda.matmul.allow_tf32 = True
        set_seed(c.seed)

    def prepare_models(self) -> None:
        c = self.config
        frozen_dtype = {MixedPrecision.BF16: torch.bfloat16, MixedPrecision.FP16: torch.float16}.get(
            c.mixed_precision, torch.float32
        )
        self.components = spec.load_components(
            c.model, init=c.init.value, zero_init_pose=c.zero_init_pose, dtype=frozen_dtype
        )
        comp = self.components
        for frames in sorted({c.frames, *(b.frames for b in self.buckets)}):
            spec.check_frames(comp.transformer.config, frames)
        device = self.accelerator.device
        comp.vae.to(device)
        if c.vae_tiling:
            comp.vae.enable_tiling()
        if comp.text_encoder is not None:
            comp.text_encoder.to(device)
        elif c.cache_dir is None:
            raise InputError(f"{c.model} has no text_encoder/ and no cache_dir is set: prompts cannot be encoded")
        self.image_latent_scale = c.image_latent_scale if c.image_latent_scale is not None else comp.vae_scaling_factor
        self.conditioning = spec.Conditioning(
            image_noise=c.image_noise,
            image_noise_mean=c.image_noise_mean,
            image_noise_std=c.image_noise_std,
            image_dropout=c.image_dropout,
            caption_dropout=c.caption_dropout,
            pose_dropout=c.pose_dropout,
            image_latent_scale=self.image_latent_scale,
        )

    def prepare_trainable_parameters(self) -> None:
        """Full: every transformer parameter. LoRA: adapters on `lora_targets` and a full-rank LoRA on every
        `control_norm1.linear` (rank = its input size, so it can reach any weight, and adapter scale 0 still
        gives the base model back); the PadaLN LayerNorm affine stays frozen in LoRA runs."""
        c = self.config
        transformer = self.components.transformer
        transformer.train()
        if c.mode is TrainMode.FULL:
            transformer.requires_grad_(True)
        else:
            from peft import LoraConfig

            transformer.requires_grad_(False)
            full_rank = transformer.config.time_embed_dim
            transformer.add_adapter(
                LoraConfig(
                    r=c.lora_rank,
                    lora_alpha=c.lora_alpha,
                    init_lora_weights=True,
                    target_modules=[*c.lora_targets, CONTROL_NORM_LORA_TARGET],
                    rank_pattern={CONTROL_NORM_LORA_TARGET: full_rank},
                    alpha_pattern={CONTROL_NORM_LORA_TARGET: full_rank},
                )
            )
        if c.gradient_checkpointing:
            transformer.enable_gradient_checkpointing()
        self.params = [p for p in transformer.parameters() if p.requires_grad]
        count = sum(p.numel() for p in self.params)
        logger.info("Training %s parameters (%s)", f"{count:,}", c.mode.value)

    def prepare_for_training(self) -> None:
        from diffusers.optimization import get_scheduler

        c = self.config
        optimizer_cls = {Optimizer.ADAMW: torch.optim.AdamW, Optimizer.ADAM: torch.optim.Adam}[c.optimizer]
        optimizer = optimizer_cls(
            self.params, lr=c.learning_rate, betas=(c.beta1, c.beta2), eps=c.epsilon, weight_decay=c.weight_decay
        )
        # accelerate steps a prepared scheduler once per process per optimizer step.
        world = self.accelerator.num_processes
        lr_scheduler = get_scheduler(
            c.lr_scheduler,
            optimizer=optimizer,
            num_warmup_steps=c.lr_warmup_steps * world,
            num_training_steps=c.max_steps * world,
            num_cycles=c.lr_num_cycles,
            power=c.lr_power,
        )
        self.model, self.optimizer, self.lr_scheduler = self.accelerator.prepare(
            self.components.transformer, optimizer, lr_scheduler
        )
        # FSDP2 replaces the parameters by sharded ones: clip those.
        self.params = [p for p in self.model.parameters() if p.requires_grad]

    def prepare_dataset(self) -> None:
        from ..data.dataset import ClipDataset, LatentCache

        c = self.config
        comp = self.components
        self.cache = None
        if c.cache_dir is not None:
            # Grouped encoding gives other moments (float rounding) than one clip at a time: other cache entries.
            vae_id = comp.encoders.vae_id + (f"|group{c.encode_group}" if c.encode_group > 1 else "")
            self.cache = LatentCache(c.cache_dir, vae_id, comp.encoders.text_id)
        self.dataset = ClipDataset(
            self.records,
            buckets=self.buckets,
            seed=c.seed,
            flip=c.flip,
            id_token=c.id_token,
            cache=self.cache,
            cached_reference=not c.image_noise,
        )
        self.max_text_length = comp.transformer.config.max_text_seq_length
        self.empty_prompt_embeds = self.prompt_embeds("")[0] if c.caption_dropout > 0 else None

    def prepare_checkpointing(self) -> None:
        self.state, self.metrics = start_run(self.accelerator, self.config)

    def prepare_validation(self) -> None:
        """The fixed validation set (`training.validation`), when `validation_steps` is set."""
        self.validator = None
        if not self.config.validation_steps:
            return
        from .validation import Validator, build_cases

        self.validator = Validator(
            self.config,
            build_cases(self.config, self.dataset),
            accelerator=self.accelerator,
            vae=self.components.vae,
            scheduler=self.components.scheduler,
            prompt_embeds=self.prompt_embeds,
            image_latent_scale=self.image_latent_scale,
        )

    # ------------------------------------------------------------------------------------------- encoding
    def prompt_embeds(self, prompt: str) -> torch.Tensor:
        """`[1, L, D]` T5 embedding of one prompt, from the cache when it has it."""
        comp = self.components
        key = self.cache.prompt_key(prompt, self.max_text_length) if self.cache is not None else None
        if key is not None and (cached := self.cache.get(key)) is not None:
            return cached[None]
        if comp.text_encoder is None:
            raise InputError(f"prompt {prompt[:40]!r} is not in the cache and the model has no text encoder")
        embeds = encode_prompts(comp.tokenizer, comp.text_encoder, [prompt], self.max_text_length)
        if key is not None:
            self.cache.put(key, embeds[0])
        return embeds

    def encode_samples(self, samples: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Fill in the VAE moments and T5 embedding of a micro-batch's samples: the cache first, then the encoders,
        a micro-batch's missing clips `encode_group` at a time (they share a bucket, so a shape)."""
        vae = self.components.vae
        wanted = [("video", "video"), ("control", "control_video")]
        if not self.config.image_noise:  # with image noise the reference is encoded with fresh noise each step
            wanted.append(("image", "image"))
        for name, pixels in wanted:
            missing = [s for s in samples if s.get(f"{name}_moments") is None]
            if not missing:
                continue
            clips = [s[pixels] if name != "image" else s[pixels][None] for s in missing]
            encoded = encode_moments_batch(vae, clips, self.config.encode_group)
            for sample, moments in zip(missing, encoded, strict=True):
                if self.cache is not None:
                    self.cache.put(sample[f"{name}_key"], moments)
                sample[f"{name}_moments"] = moments
        for sample in samples:
            sample["prompt_embeds"] = self.prompt_embeds(sample["prompt"])[0]
        return samples

    # ---------------------------------------------------------------------------------------------- train
    def loader(self):
        """This rank's micro-batches of the current epoch from its position on, each of one bucket; all ranks take
        the same bucket in a step (`data.buckets.BucketBatchSampler`)."""
        from ..data.buckets import BucketBatchSampler
        from ..data.dataset import collate_samples

        sampler = BucketBatchSampler(
            self.buckets,
            self.config.batch_size,
            self.config.seed,
            self.state.epoch,
            self.state.position,
            self.accelerator.process_index,
            self.accelerator.num_processes,
        )
        return torch.utils.data.DataLoader(
            self.dataset,
            batch_sampler=sampler,
            collate_fn=collate_samples,
            num_workers=self.config.num_workers,
        )

    def check_batches(self) -> None:
        """Every bucket needs a global batch (`batch_size` × processes) of clips to train: none is an error, a
        bucket with fewer clips is never trained (a warning)."""
        from ..data.buckets import starved_buckets

        c, world = self.config, self.accelerator.num_processes
        global_batch = c.batch_size * world
        starved = starved_buckets(self.buckets, global_batch)
        if len(starved) == len(set(self.buckets)):
            raise InputError(
                f"no bucket has {global_batch} clips to fill a batch of {c.batch_size} on {world} process(es) "
                f"({', '.join(f'{b}: {n}' for b, n in starved.items())}); lower batch_size or add clips"
            )
        for bucket, count in starved.items():
            logger.warning(
                "bucket %s has %d clip(s), fewer than a batch of %d: they never train", bucket, count, global_batch
            )

    def step(self, samples: list[dict[str, Any]]) -> torch.Tensor:
        """One micro-batch: encode, draw the step's randomness, loss, backward (and optimizer step at sync)."""
        batch = spec.prepare_batch(
            self.encode_samples(samples),
            vae=self.components.vae,
            scheduler=self.components.scheduler,
            conditioning=self.conditioning,
            generators=[spec.sample_generator(self.config.seed, s["epoch"], s["index"]) for s in samples],
            empty_prompt_embeds=self.empty_prompt_embeds,
        )
        batch = spec.to_device(batch, self.accelerator.device, self.model_dtype)
        with self.accelerator.accumulate(self.model):
            loss = spec.diffusion_loss(
                self.model,
                self.components.scheduler,
                pose_control_function=self.config.pose_control_function,
                **batch,
            )
            self.accelerator.backward(loss)
            if self.accelerator.sync_gradients and self.config.max_grad_norm > 0:
                self.grad_norm = self.accelerator.clip_grad_norm_(self.params, self.config.max_grad_norm)
            self.optimizer.step()
            self.lr_scheduler.step()
            self.optimizer.zero_grad(set_to_none=True)
        return loss.detach()

    def train(self) -> None:
        from tqdm.auto import tqdm

        c, acc, state = self.config, self.accelerator, self.state
        self.started = time.perf_counter()
        progress = tqdm(
            total=c.max_steps,
            initial=state.global_step,
            desc="train",
            disable=c.quiet or not acc.is_main_process,
        )
        micro_losses: list[torch.Tensor] = []
        self.grad_norm = None
        self.check_batches()
        while state.global_step < c.max_steps:
            for samples in self.loader():
                micro_losses.append(self.step(samples))
                state.position += len(samples)
                if not acc.sync_gradients:
                    continue
                finish_step(self, micro_losses, progress, "loss")
                micro_losses = []
                if c.checkpoint_every and state.global_step % c.checkpoint_every == 0:
                    ckpt.save_checkpoint(acc, c.output_dir, state.global_step, c.checkpoints_keep)
                if self.validator is not None and state.global_step % c.validation_steps == 0:
                    self.validator.run(self.model, state.global_step)
                if state.global_step >= c.max_steps:
                    break
            else:
                state.epoch += 1
                state.position = 0
        progress.close()
        self.metrics.close()

    def save_final(self) -> TrainResult:
        c, acc = self.config, self.accelerator
        acc.wait_for_everyone()
        model = acc.unwrap_model(self.model)
        # Every process takes part: under FSDP this gathers the shards (the main process gets the weights).
        weights = distributed.full_state_dict(acc, self.model, trainable_only=c.mode is TrainMode.LORA)
        if c.mode is TrainMode.FULL:
            output = c.output_dir / "transformer"
            dtype = torch.bfloat16 if c.mixed_precision is MixedPrecision.BF16 else None
            if acc.is_main_process:
                ckpt.save_transformer(
                    model,
                    output,
                    self.image_latent_scale,
                    dtype=dtype,
                    state_dict=weights,
                    pose_control_function=c.pose_control_function,
                )
        else:
            output = c.output_dir / "lora"
            if acc.is_main_process:
                ckpt.save_lora(
                    model,
                    output,
                    self.image_latent_scale,
                    state_dict=weights,
                    pose_control_function=c.pose_control_function,
                )
        acc.wait_for_everyone()
        seconds = time.perf_counter() - self.started
        trainable = {n for n, p in model.named_parameters() if p.requires_grad}
        self.check_ranks_agree({k: v for k, v in weights.items() if k in trainable}, seconds)
        acc.end_training()
        return TrainResult(output, self.state.global_step, self.losses, seconds)

    def check_ranks_agree(self, weights: dict[str, torch.Tensor], seconds: float) -> None:
        """Every rank must end with the same trainable weights (only rank 0's are saved): compare their digests and
        write them to `train_result.json` (step, processes, digests, seconds, last loss). A sharded model (FSDP)
        has one copy of each weight by construction: one digest, of the gathered weights."""
        from accelerate.utils import gather_object

        acc = self.accelerator
        digest = ckpt.trainable_digest(weights)
        sharded = distributed.is_sharded(acc)
        digests = gather_object([digest]) if acc.num_processes > 1 and not sharded else [digest]
        if acc.is_main_process:
            from ..io.atomic import write_json_atomic

            write_json_atomic(
                self.config.output_dir / "train_result.json",
                {
                    "global_step": self.state.global_step,
                    "processes": acc.num_processes,
                    "distributed_type": acc.distributed_type.value,
                    "weights_digest": digests,
                    "seconds": seconds,
                    "last_loss": self.losses[-1] if self.losses else None,
                },
            )
        if len(set(digests)) > 1:
            raise RuntimeError(f"the {acc.num_processes} processes ended with different weights: {digests}")


__all__ = ["Init", "TrainResult", "Trainer", "run"]
