"""Frame metrics: agreement with scikit-image, DisCo's legacy PSNR overflow, DisCo's L1, input checks."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from dynamictrl.errors import InputError
from dynamictrl.evaluation import metrics as fm
from dynamictrl.io.media import load_image, read_video


def _noisy(rng: np.random.Generator, frames: np.ndarray, amplitude: int) -> np.ndarray:
    noise = rng.integers(-amplitude, amplitude + 1, frames.shape)
    return np.clip(frames.astype(np.int32) + noise, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def real_pair(media_dir):
    """Two real photographs (downscaled) and a real video's frames against a re-encoded, shifted copy."""
    import cv2

    images = np.stack(
        [
            cv2.resize(load_image(media_dir / n), (120, 212), interpolation=cv2.INTER_AREA)
            for n in ("human1.jpg", "human2.jpg")
        ]
    )
    video, _ = read_video(media_dir / "motion1.mp4", max_frames=4)
    video = np.stack([cv2.resize(f, (90, 160), interpolation=cv2.INTER_AREA) for f in video])
    return images, video


def test_psnr_and_ssim_match_scikit_image_on_random_images():
    rng = np.random.default_rng(0)
    ground_truth = rng.integers(0, 256, (3, 40, 56, 3), dtype=np.uint8)
    generated = _noisy(rng, ground_truth, 30)
    ours_psnr = fm.psnr(generated, ground_truth)
    ours_gray = fm.ssim(generated, ground_truth, "gray")
    ours_rgb = fm.ssim(generated, ground_truth, "rgb")
    gray_g, gray_r = fm.to_gray(generated), fm.to_gray(ground_truth)
    for i in range(3):
        assert ours_psnr[i] == pytest.approx(
            peak_signal_noise_ratio(ground_truth[i], generated[i], data_range=255), abs=1e-9
        )
        assert ours_gray[i] == pytest.approx(structural_similarity(gray_g[i], gray_r[i]), abs=1e-9)
        assert ours_rgb[i] == pytest.approx(
            structural_similarity(generated[i], ground_truth[i], channel_axis=-1), abs=1e-9
        )


def test_psnr_and_ssim_match_scikit_image_on_real_images(real_pair):
    rng = np.random.default_rng(1)
    images, video = real_pair
    for ground_truth, generated in (
        (images, _noisy(rng, images, 12)),
        (video[1:], video[:-1]),
        (images, images[::-1]),
    ):
        ours_psnr = fm.psnr(generated, ground_truth)
        ours_rgb = fm.ssim(generated, ground_truth, "rgb")
        ours_gray = fm.ssim(generated, ground_truth, "gray")
        for i in range(len(ground_truth)):
            expected = peak_signal_noise_ratio(ground_truth[i], generated[i], data_range=255)
            assert ours_psnr[i] == pytest.approx(expected, abs=1e-9)
            expected_rgb = structural_similarity(generated[i], ground_truth[i], channel_axis=-1, data_range=255)
            assert ours_rgb[i] == pytest.approx(expected_rgb, abs=1e-9)
            gray = structural_similarity(fm.to_gray(generated[i : i + 1])[0], fm.to_gray(ground_truth[i : i + 1])[0])
            assert ours_gray[i] == pytest.approx(gray, abs=1e-9)
    # A real, different pair is far from perfect, so the comparison above is not between trivial values.
    assert fm.ssim(images[::-1], images, "rgb").max() < 0.9


def test_identical_frames_give_100_db_and_ssim_1():
    frames = np.random.default_rng(2).integers(0, 256, (2, 16, 16, 3), dtype=np.uint8)
    assert fm.psnr(frames, frames).tolist() == [100.0, 100.0]
    assert fm.psnr_disco_legacy(frames, frames).tolist() == [100.0, 100.0]
    np.testing.assert_allclose(fm.ssim(frames, frames, "rgb"), 1.0)
    assert fm.mae(frames, frames).tolist() == [0.0, 0.0]


def test_legacy_psnr_reproduces_the_uint8_overflow():
    ground_truth = np.full((1, 8, 8, 3), 100, np.uint8)
    # |difference| 16: the true MSE is 256, but 16 * 16 = 256 wraps to 0 in uint8, so DisCo saw a perfect frame.
    brighter = ground_truth + np.uint8(16)
    assert fm.psnr(brighter, ground_truth)[0] == pytest.approx(20 * np.log10(255 / 16))
    assert fm.psnr_disco_legacy(brighter, ground_truth)[0] == 100.0
    # A darker generated frame: 84 - 100 wraps to 240 in uint8; 240^2 = 57600 = 0 (mod 256) again.
    assert fm.psnr_disco_legacy(ground_truth - np.uint8(16), ground_truth)[0] == 100.0
    # |difference| 20: 400 wraps to 144, so the legacy MSE is 144 instead of 400 and the PSNR too high.
    brighter20 = ground_truth + np.uint8(20)
    assert fm.psnr(brighter20, ground_truth)[0] == pytest.approx(10 * np.log10(255**2 / 400))
    assert fm.psnr_disco_legacy(brighter20, ground_truth)[0] == pytest.approx(10 * np.log10(255**2 / 144))
    # Differences below 16 never wrap after squaring: both definitions agree.
    brighter5 = ground_truth + np.uint8(5)
    assert fm.psnr_disco_legacy(brighter5, ground_truth)[0] == pytest.approx(fm.psnr(brighter5, ground_truth)[0])


def test_legacy_psnr_is_inflated_on_real_images(real_pair):
    images, _ = real_pair
    real = fm.psnr(images[::-1], images)
    legacy = fm.psnr_disco_legacy(images[::-1], images)
    # The "MSE" of the legacy code is a mean of values mod 256, so it can never exceed 255 (PSNR >= ~24 dB).
    assert np.all(legacy >= 20 * np.log10(255 / np.sqrt(255)) - 1e-9)
    assert np.all(legacy > real + 5)


def test_disco_l1_divides_by_the_pixel_count():
    ground_truth = np.zeros((1, 4, 5, 3), np.uint8)
    generated = np.full((1, 4, 5, 3), 10, np.uint8)
    assert fm.l1_disco(generated, ground_truth)[0] == pytest.approx(10 / 20)
    assert fm.mae(generated, ground_truth)[0] == pytest.approx(10 / 255)


def test_bad_inputs_raise_input_error():
    frames = np.zeros((1, 8, 8, 3), np.uint8)
    with pytest.raises(InputError, match="equal shapes"):
        fm.psnr(frames, np.zeros((1, 8, 9, 3), np.uint8))
    with pytest.raises(InputError, match="uint8"):
        fm.ssim(frames.astype(np.float32), frames.astype(np.float32))
    with pytest.raises(InputError, match="at least 7x7"):
        fm.ssim(np.zeros((1, 5, 5, 3), np.uint8), np.zeros((1, 5, 5, 3), np.uint8))
