"""Ground-truth metrics of the synthetic world: region PSNR/SSIM against the frame metrics, silhouettes, IoU,
centroids, frame quarters, mean colours."""

from __future__ import annotations

import numpy as np
import pytest

from dynamictrl.errors import InputError
from dynamictrl.evaluation import metrics as fm
from dynamictrl.evaluation import synthetic_metrics as sm


def _pair(seed: int = 0, shape=(3, 24, 32, 3), amplitude: int = 40) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 256, shape, dtype=np.uint8)
    noise = rng.integers(-amplitude, amplitude + 1, shape)
    return np.clip(truth.astype(np.int32) + noise, 0, 255).astype(np.uint8), truth


def test_masked_psnr_over_the_whole_frame_is_psnr():
    generated, truth = _pair()
    full = np.ones(truth.shape[:3], bool)
    np.testing.assert_allclose(sm.masked_psnr(generated, truth, full), fm.psnr(generated, truth), rtol=0, atol=1e-12)


def test_masked_psnr_sees_only_the_region():
    generated, truth = _pair()
    region = np.zeros(truth.shape[:3], bool)
    region[:, 4:10, 5:12] = True
    spoiled = generated.copy()
    spoiled[~region] = 0  # outside the region: no effect
    np.testing.assert_array_equal(sm.masked_psnr(spoiled, truth, region), sm.masked_psnr(generated, truth, region))
    exact = truth.copy()
    exact[~region] = 255 - exact[~region]
    assert np.all(sm.masked_psnr(exact, truth, region) == fm.IDENTICAL_PSNR)
    region[1] = False
    values = sm.masked_psnr(generated, truth, region)
    assert np.isnan(values[1]) and np.isfinite(values[[0, 2]]).all()


@pytest.mark.parametrize("mode", ["rgb", "gray"])
def test_ssim_map_mean_over_the_valid_crop_is_ssim(mode):
    generated, truth = _pair(1)
    pad = (fm.SSIM_WINDOW - 1) // 2
    values = sm.ssim_map(generated, truth, mode)
    assert values.shape == truth.shape[:3]
    np.testing.assert_allclose(
        values[:, pad:-pad, pad:-pad].mean(axis=(1, 2)), fm.ssim(generated, truth, mode), rtol=0, atol=1e-12
    )


def test_masked_ssim_is_one_on_an_exact_region_and_lower_on_noise():
    generated, truth = _pair(2)
    region = np.zeros(truth.shape[:3], bool)
    region[:, 8:16, 8:20] = True
    np.testing.assert_allclose(sm.masked_ssim(truth, truth, region), 1.0, atol=1e-12)
    noisy = sm.masked_ssim(generated, truth, region)
    assert np.all(noisy < 0.99)
    far = ~sm.dilate(region, 5)  # a disc of 5 px covers every 7x7 window that touches the region
    spoiled = generated.copy()
    spoiled[far] = 0
    np.testing.assert_allclose(sm.masked_ssim(spoiled, truth, region), noisy, rtol=0, atol=1e-12)
    region[0] = False
    assert np.isnan(sm.masked_ssim(generated, truth, region)[0])


def test_dilate_grows_by_the_radius():
    masks = np.zeros((1, 15, 15), bool)
    masks[0, 7, 7] = True
    grown = sm.dilate(masks, 2)
    assert grown[0, 7, 5] and grown[0, 5, 7] and not grown[0, 7, 4] and not grown[0, 5, 5]
    np.testing.assert_array_equal(sm.dilate(masks, 0), masks)


def test_iou_and_centroid_error():
    a = np.zeros((3, 10, 10), bool)
    b = np.zeros((3, 10, 10), bool)
    a[0, 2:4, 2:4] = True  # 4 px
    b[0, 2:4, 3:5] = True  # 4 px, 2 shared, centroid 1 px to the right
    a[1, 0:2, 0:2] = True  # frame 1: b empty
    values = sm.iou(a, b)
    np.testing.assert_allclose(values, [2 / 6, 0.0, 1.0])  # frame 2: both empty
    errors = sm.centroid_error(a, b)
    assert errors[0] == pytest.approx(1.0) and np.isnan(errors[1:]).all()
    np.testing.assert_allclose(sm.centroids(a)[0], [2.5, 2.5])


def test_silhouette_finds_what_differs_from_the_background():
    background = np.full((8, 8, 3), (35, 165, 60), np.uint8)
    frames = np.repeat(background[None], 2, axis=0).copy()
    frames[0, 2:5, 3:6] = (215, 35, 35)  # a red square
    frames[1, 0, 0] = (45, 170, 70)  # within the threshold: compression-sized error
    found = sm.silhouette(frames, background)
    expected = np.zeros((2, 8, 8), bool)
    expected[0, 2:5, 3:6] = True
    np.testing.assert_array_equal(found, expected)
    with pytest.raises(InputError):
        sm.silhouette(frames, background[:4])


def test_silhouette_of_a_synthetic_sample_matches_its_person_mask():
    from dynamictrl.synthetic.background import render_background
    from dynamictrl.synthetic.world import make_sample

    for index in range(3):
        sample = make_sample(1000, index, frames=5)
        background = render_background(sample.background, *sample.frames.shape[1:3])
        found = sm.silhouette(sample.frames, background)
        assert sm.iou(found, sample.person_mask > 127).min() > 0.85
        assert np.nanmax(sm.centroid_error(found, sample.person_mask > 127)) < 1.0


def test_frame_quarters():
    runs = sm.frame_quarters(21)
    assert [r.tolist() for r in runs] == [list(range(1 + 5 * q, 6 + 5 * q)) for q in range(4)]
    assert [len(r) for r in sm.frame_quarters(19)] == [5, 5, 4, 4]
    with pytest.raises(InputError):
        sm.frame_quarters(4)


def test_mean_colour_and_distance():
    frames = np.zeros((2, 4, 4, 3), np.uint8)
    frames[..., 0] = 200
    frames[:, 0, 0] = (0, 0, 0)
    region = np.ones((2, 4, 4), bool)
    region[:, 0, 0] = False
    np.testing.assert_allclose(sm.mean_colour(frames, region), [200, 0, 0])
    assert np.isnan(sm.mean_colour(frames, np.zeros_like(region))).all()
    assert sm.colour_distance((0, 0, 0), (3, 4, 0)) == pytest.approx(5.0)
