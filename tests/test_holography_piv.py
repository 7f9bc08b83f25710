"""3-D PIV on known displacements."""
import numpy as np
import pytest
from scipy.ndimage import gaussian_filter
from scipy.ndimage import shift as ndshift

from diffimaging import holography as H


def _particles(rng, shape, n):
    a = np.zeros(shape)
    idx = rng.integers(0, shape, (n, 3))
    a[tuple(idx.T)] = 1.0
    return gaussian_filter(a, 1.0)


def test_piv_recovers_a_uniform_shift():
    rng = np.random.default_rng(0)
    a = _particles(rng, (32, 64, 64), 600)
    d = np.array([0.7, -1.3, 2.4])
    b = ndshift(a, d, order=3, mode="grid-wrap")
    r = H.piv(a, b, (16, 16, 16), 0.5)
    assert r.displacement.shape == (3, 7, 7, 3) and r.centers.shape == (3, 7, 7, 3)
    rmse = np.sqrt(np.mean((r.displacement - d) ** 2, axis=(0, 1, 2)))
    assert np.all(rmse < 0.25), rmse
    assert np.all(r.peak_ratio > 1.2)
    np.testing.assert_allclose(r.centers[0, 0, 0], [7.5, 7.5, 7.5])
    np.testing.assert_allclose(r.velocity((2e-6, 1e-6, 1e-6), dt=0.5)[1, 3, 3],
                               r.displacement[1, 3, 3] * [4e-6, 2e-6, 2e-6])


def test_outliers_are_detected_and_replaced():
    rng = np.random.default_rng(1)
    a = _particles(rng, (32, 64, 64), 600)
    d = np.array([0.0, 1.0, -2.0])
    b = ndshift(a, d, order=3, mode="grid-wrap")
    b[8:24, 24:40, 24:40] = _particles(rng, (16, 16, 16), 40)  # one window decorrelated
    r = H.piv(a, b, (16, 16, 16), 0.5)
    assert r.outlier.any()
    np.testing.assert_allclose(r.displacement[1, 3, 3], d, atol=0.5)  # replaced by the median
    r2 = H.piv(a, b, (16, 16, 16), 0.5, replace_outliers=False)
    assert np.linalg.norm(r2.displacement[1, 3, 3] - d) > 1.0


def test_normalized_median_test():
    grid = np.zeros((3, 3, 3, 3))
    grid[..., 1] = 1.0
    grid[1, 1, 1] = [0.0, 5.0, 0.0]
    out = H.normalized_median_test(grid)
    assert out[1, 1, 1] and out.sum() == 1


def test_piv_bad_input():
    a = np.zeros((8, 8, 8))
    with pytest.raises(ValueError, match="one shape"):
        H.piv(a, np.zeros((8, 8, 9)))
    with pytest.raises(ValueError, match="window"):
        H.piv(a, a, window=(16, 4, 4))
    with pytest.raises(ValueError, match="overlap"):
        H.piv(a, a, window=(4, 4, 4), overlap=1.0)
