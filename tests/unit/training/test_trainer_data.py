"""The trainer on data of several shapes and on data prepared by prepare-data: bucketed batches (one shape each,
resumed exactly) and the latent cache of `prepare-data --cache-latents` with the real tiny VAE and T5."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from dynamictrl.training import load_config, run, spec

SHAPES = {(2, 4, 16, 4, 4): "13x32x32", (2, 6, 16, 6, 4): "21x48x32"}  # batch latents [B, f, 16, h, w] → bucket


@pytest.fixture(scope="module")
def toy(tiny_models, tmp_path_factory):
    """4 clips of 13 frames at 32x32 and 4 of 21 frames at 48x32 (height x width) in one manifest."""
    from dynamictrl.data.manifest import read_manifest, write_manifest
    from dynamictrl.training.toy_data import write_toy_dataset, write_toy_model

    root = tmp_path_factory.mktemp("toy")
    model = write_toy_model(tiny_models.dynamictrl, root / "model")
    small = write_toy_dataset(root / "data" / "small", clips=4, frames=13, height=32, width=32)
    tall = write_toy_dataset(root / "data" / "tall", clips=4, frames=21, height=48, width=32, seed=1)
    write_manifest(root / "data" / "manifest.jsonl", read_manifest(small) + read_manifest(tall))
    return model, root / "data"


def _config(toy, out: Path, **overrides):
    model, data = toy
    settings = dict(
        model=str(model),
        output_dir=str(out),
        data_root=str(data),
        buckets="manifest",
        frames=13,
        height=32,
        width=32,
        batch_size=2,
        learning_rate=1e-3,
        lr_scheduler="constant",
        lr_warmup_steps=0,
        checkpoint_every=0,
        quiet=True,
    )
    settings.update(overrides)
    return load_config(None, settings)


def _record_shapes(monkeypatch) -> list[tuple[int, ...]]:
    shapes: list[tuple[int, ...]] = []
    loss = spec.diffusion_loss

    def recording(transformer, scheduler, **batch):
        shapes.append(tuple(batch["video_latents"].shape))
        assert batch["control_latents"].shape == batch["image_latents"].shape == batch["video_latents"].shape
        return loss(transformer, scheduler, **batch)

    monkeypatch.setattr(spec, "diffusion_loss", recording)
    return shapes


def test_two_buckets_train_in_batches_of_one_shape_and_resume_exactly(toy, tmp_path, monkeypatch):
    """5 steps of batch 2 on 4 + 4 clips (an epoch is 4 batches, so an epoch boundary) vs 2 + resume + 3, with
    flips and dropouts on: every batch is one bucket, both buckets train, and the losses and weights match."""
    from safetensors.torch import load_file

    shapes = _record_shapes(monkeypatch)
    knobs = dict(max_steps=5, flip=0.5, image_dropout=0.3, pose_dropout=0.3, cache_dir=str(tmp_path / "cache"))
    straight = run(_config(toy, tmp_path / "a", **knobs))
    assert set(shapes) == set(SHAPES) and len(shapes) == 5  # each batch one shape ([B, f, 16, h, w]), both trained
    order = [SHAPES[s] for s in shapes]

    shapes.clear()
    first = run(_config(toy, tmp_path / "b", **{**knobs, "max_steps": 2}, checkpoint_every=2))
    resumed = run(_config(toy, tmp_path / "b", resume="latest", **knobs))
    assert [SHAPES[s] for s in shapes] == order
    assert first.losses + resumed.losses == straight.losses
    a, b = (load_file(next((tmp_path / x / "transformer").glob("*.safetensors"))) for x in "ab")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_several_manifests_train_as_their_merge(toy, tmp_path):
    """`manifest: a.jsonl,b.jsonl` reads the two sets' manifests in order: the same clips, batches and losses as the
    one manifest that merges them (the toy's data/manifest.jsonl); a missing one is a one-line error first."""
    from dynamictrl.errors import InputError

    knobs = dict(max_steps=2, flip=0.0)
    merged = run(_config(toy, tmp_path / "merged", **knobs)).losses
    several = run(_config(toy, tmp_path / "several", manifest="small/manifest.jsonl, tall/manifest.jsonl", **knobs))
    assert several.losses == merged
    with pytest.raises(InputError, match=r"no manifest at .*missing.jsonl; write one"):
        run(_config(toy, tmp_path / "bad", manifest="small/manifest.jsonl,missing.jsonl", **knobs))
    with pytest.raises(InputError, match="manifest is empty"):
        run(_config(toy, tmp_path / "bad", manifest=" , ", **knobs))


def test_bucket_errors_are_one_line(toy, tmp_path):
    from dynamictrl.errors import InputError

    with pytest.raises(InputError, match="frames must be 8k\\+5"):
        _config(toy, tmp_path / "out", buckets="17x32x32")
    with pytest.raises(InputError, match="no bucket has 8 clips"):
        run(_config(toy, tmp_path / "out", batch_size=8, max_steps=1))


MOTION = Path(__file__).resolve().parents[3] / ".." / "shared" / "fixtures" / "media" / "motion1.mp4"


def test_latents_cached_by_prepare_data_give_the_losses_of_encoding_on_the_fly(toy, tmp_path, monkeypatch):
    """prepare-data (real pose stage) with `--cache-latents` through the tiny VAE and T5 as the CLI loads them,
    then 3 steps from that cache (any encoder call would fail) and 3 steps encoding on the fly, same seed:
    identical losses (tolerance 0 on this CPU; both encode the same pixels with the same float32 weights)."""
    import shutil

    from dynamictrl.data.encoders import load_encoders
    from dynamictrl.data.prepare import PrepareOptions, prepare_data
    from dynamictrl.io.media import read_video, write_video
    from dynamictrl.training import trainer

    model, _ = toy
    raw = tmp_path / "raw"
    raw.mkdir()
    shutil.copy(MOTION, raw / "a.mp4")
    frames, fps = read_video(MOTION, start=8, max_frames=14)
    write_video(raw / "b.mp4", np.ascontiguousarray(frames[:, ::4, ::-4]), fps)  # another clip: mirrored, smaller
    for name in ("a", "b"):
        (raw / f"{name}.txt").write_text(f"a woman dancing in a studio, take {name}")
    options = PrepareOptions(frame_buckets=(13,), size_buckets=((48, 32),), start=0, quiet=True)
    report = prepare_data(raw, tmp_path / "data", options, latent_encoder=load_encoders(model))
    assert len(report.records) == 2 and report.encoded_latents == 8  # video, pose, reference, prompt per clip

    knobs = dict(data_root=str(tmp_path / "data"), max_steps=3, batch_size=1, image_noise=False, flip=0.0)
    on_the_fly = run(_config(toy, tmp_path / "fly", **knobs)).losses

    def no_encoding(*args, **kwargs):
        raise AssertionError("the trainer encoded although prepare-data cached everything")

    for module, name in ((trainer, "encode_moments_batch"), (trainer, "encode_prompts"), (spec, "encode_moments")):
        monkeypatch.setattr(module, name, no_encoding)
    cached = run(_config(toy, tmp_path / "cached", cache_dir=str(tmp_path / "data" / "latents"), **knobs)).losses
    assert cached == on_the_fly


def test_vae_tiling_is_part_of_the_vae_fingerprint(toy):
    """Tiled encoding blends tiles (other moments), so a tiled VAE names other cache entries than an untiled one;
    untiled keys are those of earlier versions (nothing is added to the hash when tiling is off)."""
    from dynamictrl.data.encoders import fingerprint, load_encoders

    vae = load_encoders(toy[0], text_encoder=False).vae
    plain = fingerprint(vae)
    vae.enable_tiling()
    tiled = fingerprint(vae)
    vae.enable_tiling(tile_sample_min_height=256)
    assert len({plain, tiled, fingerprint(vae)}) == 3
    vae.disable_tiling()
    assert fingerprint(vae) == plain
