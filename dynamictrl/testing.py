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
import socket
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .io.atomic import atomic_dir
from .pipelines.folder import SCHEDULER_CONFIG  # CogVideoX-1.5 I2V settings (DDIM in the base, DPM at inference)

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


# Qwen2-VL's special tokens (the released tokenizer's names) and chat template (chat_template.json of
# Qwen/Qwen2-VL-7B-Instruct): what its processor and `apply_chat_template` look for.
QWEN_SPECIAL_TOKENS = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
    "<|video_pad|>",
)
QWEN2_VL_CHAT_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}"
    "{% for message in messages %}{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "{% set image_count.value = image_count.value + 1 %}{% if add_vision_id %}Picture {{ image_count.value }}: "
    "{% endif %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' or 'video' in content %}{% set video_count.value = video_count.value + 1 %}"
    "{% if add_vision_id %}Video {{ video_count.value }}: {% endif %}<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def build_tiny_qwen_tokenizer(vocab_size: int = 400):
    """A byte-level BPE (as Qwen2's) trained with `tokenizers` on the generated corpus, as `Qwen2Tokenizer` with
    Qwen2-VL's special tokens; eos `<|im_end|>`, pad `<|endoftext|>`, as the released tokenizer."""
    from tokenizers import AddedToken, Tokenizer, models, pre_tokenizers, trainers
    from transformers import Qwen2Tokenizer

    rng = random.Random(0)
    corpus = [" ".join(rng.choice(_CORPUS_WORDS) for _ in range(rng.randint(4, 14))) for _ in range(2000)]
    corpus += ["system user assistant You are a helpful assistant. Describe the person and the background."] * 5
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(QWEN_SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(corpus, trainer)
    state = json.loads(bpe.to_str())["model"]
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in state["merges"]]
    tokenizer = Qwen2Tokenizer(
        vocab=state["vocab"], merges=merges, unk_token=None, eos_token="<|im_end|>", pad_token="<|endoftext|>"
    )
    tokenizer.add_tokens([AddedToken(token, special=True) for token in QWEN_SPECIAL_TOKENS])
    return tokenizer


def write_tiny_qwen2_vl(folder: str | Path, seed: int = 0) -> Path:
    """A tiny random `Qwen2VLForConditionalGeneration` in the layout of Qwen/Qwen2-VL-7B-Instruct: config and
    safetensors, generation_config.json (the released sampling settings, which a greedy captioner must override),
    tokenizer files, preprocessor_config.json (`Qwen2VLImageProcessor`, `processor_class` Qwen2VLProcessor) and
    chat_template.json. Written atomically; returns `folder`.

    Sizes: text 2 layers × 2 heads of 16 (M-RoPE sections 2+3+3 = head_dim / 2), vision tower 1 block of 16 channels
    with the released patch 14, temporal patch 2 and 2×2 merge (what the image processor computes its grid from);
    images at most 112×112 px (4×4 merged tokens) so a caption takes well under a second.
    """
    from transformers import GenerationConfig, Qwen2VLConfig, Qwen2VLForConditionalGeneration
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    tokenizer = build_tiny_qwen_tokenizer()
    ids = dict(zip(QWEN_SPECIAL_TOKENS, tokenizer.convert_tokens_to_ids(list(QWEN_SPECIAL_TOKENS)), strict=True))
    config = Qwen2VLConfig(
        text_config=dict(
            vocab_size=len(tokenizer),
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=2,
            num_key_value_heads=1,
            max_position_embeddings=2048,
            rope_parameters={"rope_type": "default", "mrope_section": [2, 3, 3], "rope_theta": 10000.0},
            bos_token_id=None,
            eos_token_id=ids["<|im_end|>"],
            pad_token_id=ids["<|endoftext|>"],
        ),
        vision_config=dict(
            depth=1, embed_dim=16, hidden_size=32, num_heads=2, mlp_ratio=2, patch_size=14, temporal_patch_size=2
        ),
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
    )
    torch.manual_seed(seed)
    model = perturb_(Qwen2VLForConditionalGeneration(config), torch.Generator().manual_seed(seed + 4)).eval()
    model.generation_config = GenerationConfig(
        bos_token_id=ids["<|endoftext|>"],
        pad_token_id=ids["<|endoftext|>"],
        eos_token_id=[ids["<|im_end|>"], ids["<|endoftext|>"]],
        do_sample=True,
        temperature=0.1,
        top_k=1,
        top_p=0.001,
        repetition_penalty=1.05,
    )
    image_processor = Qwen2VLImageProcessorPil(min_pixels=28 * 28, max_pixels=112 * 112)
    with atomic_dir(folder) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        image_processor.save_pretrained(tmp)
        preprocessor = json.loads((tmp / "preprocessor_config.json").read_text())
        preprocessor.update(image_processor_type="Qwen2VLImageProcessor", processor_class="Qwen2VLProcessor")
        (tmp / "preprocessor_config.json").write_text(json.dumps(preprocessor, indent=2))
        (tmp / "chat_template.json").write_text(json.dumps({"chat_template": QWEN2_VL_CHAT_TEMPLATE}, indent=2))
    return Path(folder)


# ------------------------------------------------------------------------------------------------ small layout
# The layout of a model trained here (`dynamictrl assemble-model`, docs/small_model.md) at toy sizes: a 3-level VAE
# (4x spatial: 64 px -> 16 latent px), a tokenizer trained on captions (T5 ids, no sentinels), a 2-layer random T5
# of 32, prompts of 16 tokens, `dynamictrl.json` with the image-latent scale and a thick pose drawing.
TINY_SMALL_TEXT_LEN = 16
TINY_SMALL_VAE_CONFIG: dict[str, Any] = {
    **TINY_VAE_CONFIG,
    "down_block_types": ("CogVideoXDownBlock3D",) * 3,
    "up_block_types": ("CogVideoXUpBlock3D",) * 3,
    "block_out_channels": (8, 8, 8),
    "scaling_factor": 0.8,  # stands in for the measured 1/std of a trained VAE's latents
    "invert_scale_latents": False,
}
# sample 32 latent px: the RoPE grid covers 32 // 2 = 16 patches = 128 px with the 4x VAE.
TINY_SMALL_TRANSFORMER_CONFIG: dict[str, Any] = {
    **TINY_TRANSFORMER_CONFIG,
    "sample_height": 32,
    "sample_width": 32,
    "sample_frames": 17,
    "max_text_seq_length": TINY_SMALL_TEXT_LEN,
}
TINY_SMALL_TEXT_ENCODER_CONFIG: dict[str, Any] = dict(
    d_model=TINY_TEXT_DIM, d_kv=16, d_ff=48, num_layers=2, num_heads=2, relative_attention_num_buckets=8
)
TINY_SMALL_POSE_RENDER: dict[str, int] = dict(
    canvas_short_side=256,
    stick_width=6,
    body_point_radius=6,
    hand_line_thickness=3,
    hand_point_radius=3,
    face_point_radius=2,
)


def tiny_captions(count: int = 200, seed: int = 0) -> list[str]:
    """Seeded captions from a small word list, like a synthetic data set's templated captions."""
    rng = random.Random(seed)
    return [" ".join(rng.choice(_CORPUS_WORDS) for _ in range(rng.randint(4, 12))) for _ in range(count)]


def write_tiny_small_model(folder: str | Path, seed: int = 0, captions: list[str] | None = None) -> Path:
    """A tiny pipeline folder in the layout `dynamictrl assemble-model` writes, loadable with `load_pipeline`.

    Written by the same writer (`pipelines.folder.write_pipeline_folder`), atomically; the tokenizer is trained on
    `captions` (default `tiny_captions()`) with `models.text.train_t5_tokenizer`, vocabulary at most 128.
    """
    from .models.text import build_t5_encoder, save_t5_encoder, train_t5_tokenizer
    from .pipelines.folder import write_pipeline_folder

    folder = Path(folder)
    with tempfile.TemporaryDirectory(
        prefix=".tiny-small-", dir=folder.parent if folder.parent.exists() else None
    ) as work:
        work = Path(work)
        tokenizer = train_t5_tokenizer(
            captions or tiny_captions(), work / "tokenizer", vocab_size=128, max_length=TINY_SMALL_TEXT_LEN
        )
        save_t5_encoder(build_t5_encoder(len(tokenizer), TINY_SMALL_TEXT_ENCODER_CONFIG, seed), work / "text_encoder")
        build_tiny_vae(seed, **TINY_SMALL_VAE_CONFIG).save_pretrained(work / "vae", safe_serialization=True)
        _save_transformer(build_tiny_transformer(seed, **TINY_SMALL_TRANSFORMER_CONFIG), work / "transformer")
        write_pipeline_folder(
            folder,
            transformer=work / "transformer",
            vae=work / "vae",
            text_encoder=work / "text_encoder",
            tokenizer=work / "tokenizer",
            settings={
                "image_latent_scale": TINY_SMALL_VAE_CONFIG["scaling_factor"],
                "pose_render": TINY_SMALL_POSE_RENDER,
            },
        )
    return folder


def _ephemeral_ports() -> tuple[int, int]:
    """The kernel's range for automatically assigned ports (Linux: /proc; elsewhere the IANA range)."""
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 49152, 65535


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now (for a test's process group or server).

    Drawn below the kernel's ephemeral range: a port the kernel hands out itself (bind to 0) is free again once
    returned, and under parallel tests another process group's own connections can take it in the seconds before
    `accelerate launch` binds it. A port outside that range is only taken by someone asking for it by number.
    """
    low, _ = _ephemeral_ports()
    candidates = list(range(max(1024, low - 12000), low)) or list(range(20000, 30000))
    for port in random.Random().sample(candidates, min(200, len(candidates))):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket() as s:  # every candidate taken: let the kernel choose
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_animate_inputs(folder: str | Path, height: int, width: int, frames: int = 9) -> None:
    """`person.png` (seeded noise) and `pose.mp4` (a red bar moving right, 8 fps) in `folder`: an animate job's
    inputs of `height`×`width`."""
    import numpy as np

    from .io.media import save_image, write_video

    folder = Path(folder)
    rng = np.random.default_rng(0)
    save_image(folder / "person.png", rng.integers(0, 256, (height, width, 3), dtype=np.uint8))
    pose = np.zeros((frames, height, width, 3), dtype=np.uint8)
    for i, frame in enumerate(pose):
        frame[10:50, 5 + 5 * i : 15 + 5 * i] = (255, 0, 0)
    write_video(folder / "pose.mp4", pose, fps=8)
