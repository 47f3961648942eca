"""The bundled small model (issue 10): it loads through the released-model code and its character follows the pose."""

from __future__ import annotations

import numpy as np
import pytest

from dynamictrl.jobs.demo import bundled_model, demo_sample


def _silhouette(frames: np.ndarray, background: np.ndarray, threshold: float = 60.0) -> np.ndarray:
    """`[F, H, W]` bool: pixels far (RGB distance) from the known background."""
    return np.linalg.norm(frames.astype(float) - background.astype(float), axis=-1) > threshold


def _centroid_x(mask: np.ndarray) -> np.ndarray:
    cols = np.arange(mask.shape[-1])
    return np.array([(m.sum(axis=0) * cols).sum() / max(m.sum(), 1) for m in mask])


def model_folder():
    model = bundled_model()
    assert model is not None, "dynamictrl/assets/small_model is missing: run recipes/small_model.sh"
    return model


@pytest.fixture(scope="module")
def generated():
    """The bundled model on the held-out walking example: 13 frames, 10 steps (a few seconds)."""
    import torch

    from dynamictrl.pipelines.loading import load_pipeline

    pipe, info = load_pipeline(str(model_folder()))
    sample = demo_sample("synthetic", 13)
    frames = pipe(
        image=sample.frames[0],
        control_video=sample.pose,
        prompt=sample.caption,
        height=64,
        width=64,
        num_frames=13,
        num_inference_steps=10,
        generator=torch.Generator().manual_seed(0),
        output_type="np",
        image_latent_scale=pipe.image_latent_scale(info.settings.image_latent_scale),
    ).frames[0]
    return sample, frames, info


def test_bundled_model_generates_finite_varied_frames_with_its_own_pose_drawing(generated):
    sample, frames, info = generated
    assert frames.shape == (13, 64, 64, 3) and np.isfinite(frames).all()
    assert frames.std() > 0.05  # not constant
    assert info.settings.pose_render is not None  # drawn as trained (thick sticks at 64 px)
    assert info.model.transformer == model_folder() / "transformer"  # loaded by the code that loads the 5B model
    assert sum(f.stat().st_size for f in model_folder().rglob("*") if f.is_file()) < 40e6


def test_the_generated_character_follows_the_driving_keypoints(generated):
    """The walking example crosses the frame: the generated silhouette's centroid tracks the driving keypoints'."""
    from dynamictrl.synthetic.background import BackgroundSpec, render_background

    sample, frames, _ = generated
    background = render_background(BackgroundSpec.from_dict(sample.attributes["background"]), 64, 64)
    silhouette = _silhouette((frames * 255).round(), background)
    driven = np.array([p.people[0].body[:, 0][p.people[0].body_scores > 0.3].mean() * 64 for p in sample.keypoints])
    ours = _centroid_x(silhouette)
    assert np.ptp(driven) > 10, "the example should move across the frame"
    # The character's region goes the way the keypoints go, by at least a third of their travel, and stays near
    # the ground truth's. (Measured with the bundled 27,000-step model and its fine-tuned decoder: correlation 0.99,
    # 33 of 35 px travelled, 1.4 px from the ground truth's centroid on average; before the decoder fine-tune 0.99,
    # 32 px, 1.6 px; the 21,000-step one: 0.99, 31 px, 1.5 px; the 18,000-step
    # one: 0.98, 26 px, 2.2 px, and decoded as the published code decodes, 7.1 px: three frames late.)
    assert np.corrcoef(driven[1:], ours[1:])[0, 1] > 0.8, (driven.round(1), ours.round(1))
    assert (ours[-1] - ours[1]) * np.sign(driven[-1] - driven[1]) > abs(driven[-1] - driven[1]) / 3, ours.round(1)
    truth = _centroid_x(_silhouette(sample.frames.astype(float), background))
    assert np.abs(ours - truth)[1:].mean() < 6.0, (truth.round(1), ours.round(1))
