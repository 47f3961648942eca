"""Tiny, seeded DynamiCtrl models in the released folder layouts, for tests, benchmarks and the demo.

The real 5B model cannot run on a CPU test machine, so everything is exercised end to end with models of the
same classes and configuration keys at toy sizes, written to disk exactly as the released weights are laid out
and loaded back through the same code (`dynamictrl.pipelines.loading`). Weights are random (seeded) and perturbed
away from their default initialisation so that a mis-wired parameter changes the output.
"""

from __future__ import annotations

import json
import random
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .io.atomic import atomic_dir

TINY_TEXT_DIM = 32
TINY_TEXT_LEN = 32

# Sizes chosen so that a 25-frame 320x192 video runs in seconds on a CPU:
# - sample 64 latent px: the 3-D RoPE grid covers up to 512 px per side (sample // patch_size = 32 patches);
# - max_text_seq_length 32: prompts are padded to 32 tokens instead of 226;
# - 2 layers of 2 heads x 16: the smallest that still has joint attention, qk-norm and two PadaLN links.
TINY_TRANSFORMER_CONFIG: dict[str, Any] = dict(
    num_attention_heads=2,
    attention_head_dim=16,
    in_channels=32,
    out_channels=16,
    time_embed_dim=24,
    ofs_embed_dim=24,
    text_embed_dim=TINY_TEXT_DIM,
    num_layers=2,
    sample_width=64,
    sample_height=64,
    sample_frames=49,
    patch_size=2,
    patch_size_t=2,
    max_text_seq_length=TINY_TEXT_LEN,
    use_rotary_positional_embeddings=True,
    patch_bias=False,
)

# The 8-channel VAE is the smallest that keeps the CogVideoX structure (4 levels: 8x spatial, 4x temporal).
# sample_height/width 1024 make its tile size 512 px, so tiling never splits these small videos into tiles
# smaller than the network can take.
TINY_VAE_CONFIG: dict[str, Any] = dict(
    down_block_types=("CogVideoXDownBlock3D",) * 4,
    up_block_types=("CogVideoXUpBlock3D",) * 4,
    block_out_channels=(8, 8, 8, 8),
    latent_channels=16,
    layers_per_block=1,
    norm_num_groups=2,
    temporal_compression_ratio=4,
    sample_height=1024,
    sample_width=1024,
    scaling_factor=0.7,
    invert_scale_latents=True,
)

# CogVideoX-1.5 I2V scheduler settings (the base ships them under the DDIM class; inference uses DPM).
SCHEDULER_CONFIG: dict[str, Any] = dict(
    beta_start=0.00085,
    beta_end=0.012,
    beta_schedule="scaled_linear",
    num_train_timesteps=1000,
    prediction_type="v_prediction",
    rescale_betas_zero_snr=True,
    snr_shift_scale=1.0,
    set_alpha_to_one=True,
    steps_offset=0,
    clip_sample=False,
    timestep_spacing="trailing",
)

_CORPUS_WORDS = (
    "a an the person woman man girl boy dancer model astronaut wearing red blue green black white orange dress "
    "shirt jacket suit pants skirt shoes hair long short curly blonde dark standing dancing walking turning "
    "raising arms legs in on with and studio street stage room background wall floor light bright warm city "
    "beach night smiling looking at camera left right hands head body moves slowly waves"
).split()


def perturb_(module: torch.nn.Module, generator: torch.Generator, scale: float = 0.05) -> torch.nn.Module:
    """Add seeded noise to every parameter (in place): zero-initialised gates and biases stop hiding bugs."""
    with torch.no_grad():
        for param in module.parameters():
            param.add_(torch.randn(param.shape, generator=generator, dtype=param.dtype) * scale)
    return module


def build_tiny_transformer(seed: int = 0, **overrides: Any):
    from .models.transformer_dynamictrl import DynamiCtrlTransformer

    torch.manual_seed(seed)
    model = DynamiCtrlTransformer(**{**TINY_TRANSFORMER_CONFIG, **overrides})
    return perturb_(model, torch.Generator().manual_seed(seed)).eval()


def build_tiny_vae(seed: int = 0, **overrides: Any):
    from diffusers import AutoencoderKLCogVideoX

    torch.manual_seed(seed)
    return perturb_(
        AutoencoderKLCogVideoX(**{**TINY_VAE_CONFIG, **overrides}), torch.Generator().manual_seed(seed + 1)
    ).eval()


def build_tiny_tokenizer(folder: str | Path, *, fast: bool = True):
    """A real T5 SentencePiece tokenizer trained on a small generated corpus (T5's ids: pad 0, eos 1, unk 2).

    With `fast=False` only `spiece.model` + `tokenizer_config.json` are written, as in the CogVideoX base repo,
    so loading exercises the same spiece → fast-tokenizer conversion as the real weights.
    """
    import sentencepiece as spm
    from transformers import T5Tokenizer

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(0)
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "corpus.txt"
        corpus.write_text(
            "\n".join(" ".join(rng.choice(_CORPUS_WORDS) for _ in range(rng.randint(4, 14))) for _ in range(3000))
        )
        spm.SentencePieceTrainer.train(
            input=str(corpus),
            model_prefix=str(Path(tmp) / "spiece"),
            vocab_size=256,
            hard_vocab_limit=False,
            model_type="unigram",
            pad_id=0,
            eos_id=1,
            unk_id=2,
            bos_id=-1,
            pad_piece="<pad>",
            eos_piece="</s>",
            unk_piece="<unk>",
            minloglevel=2,
        )
        shutil.copy(Path(tmp) / "spiece.model", folder / "spiece.model")
    config = {"tokenizer_class": "T5Tokenizer", "model_max_length": TINY_TEXT_LEN, "extra_ids": 100}
    (folder / "tokenizer_config.json").write_text(json.dumps(config, indent=2))
    tokenizer = T5Tokenizer.from_pretrained(folder)
    if fast:
        (folder / "spiece.model").unlink()
        tokenizer.save_pretrained(folder)
    return tokenizer


def build_tiny_text_encoder(vocab_size: int, seed: int = 0):
    from transformers import T5Config, T5EncoderModel

    torch.manual_seed(seed)
    config = T5Config(
        vocab_size=vocab_size,
        d_model=TINY_TEXT_DIM,
        d_kv=8,
        d_ff=37,
        num_layers=2,
        num_heads=4,
        relative_attention_num_buckets=8,
        decoder_start_token_id=0,
    )
    return perturb_(T5EncoderModel(config), torch.Generator().manual_seed(seed + 2)).eval()


def _write_scheduler(folder: Path, class_name: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    config = {"_class_name": class_name, "_diffusers_version": "0.32.0", **SCHEDULER_CONFIG}
    (folder / "scheduler_config.json").write_text(json.dumps(config, indent=2))


def _save_transformer(model, folder: Path, class_name: str = "DynamiCtrlTransformerModel") -> None:
    """Save like the released checkpoint: stock config keys, `_class_name` of the published module."""
    model.save_pretrained(folder, safe_serialization=True)
    config_path = folder / "config.json"
    config = json.loads(config_path.read_text())
    config["_class_name"] = class_name
    config["_diffusers_version"] = "0.32.0"
    config_path.write_text(json.dumps(config, indent=2))


@dataclass(frozen=True)
class TinyModelFolders:
    """Tiny stand-ins for the three hub repos, laid out as they are published."""

    dynamictrl: Path  # like gulucaptain/DynamiCtrl: full pipeline folder
    transformer_only: Path  # like gulucaptain/Dynamictrl-Mask_B01: config.json + weights at the root
    base: Path  # like THUDM/CogVideoX1.5-5B-I2V: vae, text_encoder, tokenizer (spiece only), scheduler (DDIM)


def write_tiny_model_folders(root: str | Path, seed: int = 0) -> TinyModelFolders:
    """Write the three layouts under `root` (`DynamiCtrl/`, `Dynamictrl-Mask_B01/`, `CogVideoX1.5-5B-I2V/`)."""
    from diffusers import CogVideoXTransformer3DModel

    root = Path(root)
    folders = TinyModelFolders(root / "DynamiCtrl", root / "Dynamictrl-Mask_B01", root / "CogVideoX1.5-5B-I2V")

    # Full DynamiCtrl pipeline folder.
    pipe_dir = folders.dynamictrl
    transformer = build_tiny_transformer(seed)
    _save_transformer(transformer, pipe_dir / "transformer")
    build_tiny_vae(seed).save_pretrained(pipe_dir / "vae", safe_serialization=True)
    tokenizer = build_tiny_tokenizer(pipe_dir / "tokenizer", fast=True)
    build_tiny_text_encoder(len(tokenizer), seed).save_pretrained(pipe_dir / "text_encoder")
    _write_scheduler(pipe_dir / "scheduler", "CogVideoXDPMScheduler")
    model_index = {
        "_class_name": "DynamiCtrlAnimationPipeline",
        "_diffusers_version": "0.32.0",
        "scheduler": ["diffusers", "CogVideoXDPMScheduler"],
        "text_encoder": ["transformers", "T5EncoderModel"],
        "tokenizer": ["transformers", "T5Tokenizer"],
        "transformer": ["dynamictrl", "DynamiCtrlTransformerModel"],
        "vae": ["diffusers", "AutoencoderKLCogVideoX"],
    }
    (pipe_dir / "model_index.json").write_text(json.dumps(model_index, indent=2))

    # Transformer-only variant (a differently seeded transformer, as a fine-tune would be).
    _save_transformer(build_tiny_transformer(seed + 100), folders.transformer_only)

    # Base: stock CogVideoX transformer + the shared components; tokenizer as spiece.model only.
    base = folders.base
    torch.manual_seed(seed)
    stock = perturb_(CogVideoXTransformer3DModel(**TINY_TRANSFORMER_CONFIG), torch.Generator().manual_seed(seed + 3))
    stock.save_pretrained(base / "transformer", safe_serialization=True)
    shutil.copytree(pipe_dir / "vae", base / "vae")
    shutil.copytree(pipe_dir / "text_encoder", base / "text_encoder")
    build_tiny_tokenizer(base / "tokenizer", fast=False)
    _write_scheduler(base / "scheduler", "CogVideoXDDIMScheduler")
    return folders


def ensure_tiny_model(cache_root: str | Path, seed: int = 0) -> Path:
    """The tiny DynamiCtrl pipeline folder under `cache_root`, built once (atomically) and reused."""
    import hashlib

    # The folder name changes with the builders' settings, so an old cached model is never reused by mistake.
    settings = json.dumps([TINY_TRANSFORMER_CONFIG, TINY_VAE_CONFIG, SCHEDULER_CONFIG, _CORPUS_WORDS], default=str)
    target = (
        Path(cache_root) / f"tiny-random-dynamictrl-{hashlib.sha256(settings.encode()).hexdigest()[:10]}-seed{seed}"
    )
    if (target / "model_index.json").is_file():
        return target
    with atomic_dir(target) as tmp:
        folders = write_tiny_model_folders(tmp / "_work", seed)
        for item in folders.dynamictrl.iterdir():
            shutil.move(str(item), tmp / item.name)
        shutil.rmtree(tmp / "_work")
    return target


def populate_hub_cache(cache_dir: str | Path, repo_id: str, folder: str | Path, commit: str = "0" * 40) -> Path:
    """Copy `folder` into the Hugging Face cache layout (`models--org--name/snapshots/<commit>`, `refs/main`).

    Lets offline tests resolve hub ids through the real `snapshot_download(local_files_only=True)` path.
    """
    repo_dir = Path(cache_dir) / ("models--" + repo_id.replace("/", "--"))
    snapshot = repo_dir / "snapshots" / commit
    shutil.copytree(folder, snapshot, dirs_exist_ok=True)
    (repo_dir / "refs").mkdir(parents=True, exist_ok=True)
    (repo_dir / "refs" / "main").write_text(commit)
    return snapshot


def write_tiny_lora(folder: str | Path, transformer_dir: str | Path, seed: int = 0, rank: int = 4) -> Path:
    """A diffusers-format LoRA for the tiny transformer in `transformer_dir`, with non-zero (seeded) up-projections
    so that it changes the output: what `dynamictrl train` writes for a LoRA run, without the training."""
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    from .models.transformer_dynamictrl import DynamiCtrlTransformer
    from .pipelines.pipeline_dynamictrl import DynamiCtrlPipeline

    transformer = DynamiCtrlTransformer.from_pretrained(transformer_dir)
    transformer.add_adapter(LoraConfig(r=rank, lora_alpha=rank, target_modules=["to_q", "to_k", "to_v", "to_out.0"]))
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in transformer.named_parameters():
            if "lora_B" in name:
                param.copy_(torch.randn(param.shape, generator=generator) * 0.5)
    with atomic_dir(folder) as tmp:
        DynamiCtrlPipeline.save_lora_weights(tmp, transformer_lora_layers=get_peft_model_state_dict(transformer))
    return Path(folder)
