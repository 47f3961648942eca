"""Fréchet distance: closed forms, identical sets, rank-deficient covariances; clip selection."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import linalg

from dynamictrl.evaluation.video_metrics import (
    clip_starts,
    frechet_distance,
    frechet_distance_from_features,
    trace_sqrt_product,
)


def _random_spd(rng: np.random.Generator, d: int) -> np.ndarray:
    a = rng.normal(size=(d, d))
    return a @ a.T + 0.1 * np.eye(d)


def test_closed_form_for_commuting_covariances():
    # Diagonal covariances commute: FD = |mu1 - mu2|^2 + sum (sqrt(a_i) - sqrt(b_i))^2.
    mu1, mu2 = np.array([0.0, 1.0, -2.0]), np.array([1.0, 1.0, 0.5])
    a, b = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 0.25])
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    assert frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(expected, rel=1e-12)


def test_closed_form_for_scaled_covariances_and_scipy_reference():
    rng = np.random.default_rng(0)
    sigma = _random_spd(rng, 6)
    mu1, mu2 = rng.normal(size=6), rng.normal(size=6)
    # S2 = c^2 S1: tr(S1 + S2 - 2 sqrt(S1 S2)) = (1 - c)^2 tr(S1).
    c = 3.0
    expected = np.sum((mu1 - mu2) ** 2) + (1 - c) ** 2 * np.trace(sigma)
    assert frechet_distance(mu1, sigma, mu2, c**2 * sigma) == pytest.approx(expected, rel=1e-10)
    # General non-commuting case against the textbook scipy.linalg.sqrtm formula.
    s1, s2 = _random_spd(rng, 6), _random_spd(rng, 6)
    reference = np.sum((mu1 - mu2) ** 2) + np.trace(s1 + s2 - 2 * linalg.sqrtm(s1 @ s2).real)
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(reference, rel=1e-9)


def test_identical_sets_give_zero():
    rng = np.random.default_rng(1)
    for n, d in ((50, 8), (5, 64)):  # full-rank path and sample-space path
        features = rng.normal(size=(n, d))
        assert frechet_distance_from_features(features, features.copy()) == pytest.approx(0.0, abs=1e-9)
        mu, sigma = features.mean(0), np.cov(features, rowvar=False)
        assert frechet_distance(mu, sigma, mu, sigma) == pytest.approx(0.0, abs=1e-9)


def test_samples_estimate_the_gaussian_distance():
    rng = np.random.default_rng(2)
    d = 4
    s1, s2 = _random_spd(rng, d), _random_spd(rng, d)
    mu1, mu2 = np.zeros(d), np.ones(d)
    exact = frechet_distance(mu1, s1, mu2, s2)
    x = rng.multivariate_normal(mu1, s1, size=200_000)
    y = rng.multivariate_normal(mu2, s2, size=200_000)
    assert frechet_distance_from_features(x, y) == pytest.approx(exact, rel=0.02)


def test_rank_deficient_covariances_are_stable_and_both_paths_agree():
    rng = np.random.default_rng(3)
    d = 40
    x, y = rng.normal(size=(6, d)), rng.normal(size=(9, d)) + 0.5  # fewer samples than dimensions
    fast = frechet_distance_from_features(x, y)  # sample-space (nuclear norm) path
    slow = frechet_distance(x.mean(0), np.cov(x, rowvar=False), y.mean(0), np.cov(y, rowvar=False))
    assert np.isfinite(fast) and fast > 0
    assert fast == pytest.approx(slow, rel=1e-8)
    # scipy's sqrtm on the singular product is the unstable reference; ours must not produce complex or NaN.
    s1, s2 = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    assert np.isfinite(trace_sqrt_product(s1, s2))
    # A zero covariance (all samples equal) is the extreme rank-deficient case.
    same = np.tile(rng.normal(size=(1, d)), (4, 1))
    assert frechet_distance_from_features(same, same) == 0.0


def test_frechet_rejects_bad_shapes():
    with pytest.raises(ValueError, match="same D"):
        frechet_distance_from_features(np.zeros((3, 4)), np.zeros((3, 5)))
    with pytest.raises(ValueError, match="at least 2"):
        frechet_distance_from_features(np.zeros((1, 4)), np.zeros((3, 4)))
    with pytest.raises(ValueError, match="Shapes"):
        frechet_distance(np.zeros(3), np.eye(3), np.zeros(4), np.eye(4))


def test_clip_starts():
    assert clip_starts(20, 16, 1) == [0, 1, 2, 3, 4]
    # DisCo's gen_gifs_for_fvd.py never starts at the last possible frame.
    assert clip_starts(20, 16, 1, disco_skip_last=True) == [0, 1, 2, 3]
    assert clip_starts(36, 16, 8) == [0, 8, 16]
    assert clip_starts(15, 16, 1) == []
    assert clip_starts(16, 16, 1, disco_skip_last=True) == []
