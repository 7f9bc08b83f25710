"""The classical baseline (interpolation super-resolution, multi-height
Gerchberg-Saxton) and the metrics."""
import numpy as np
import pytest

from diffimaging.lensless import Reconstruction, classical, simulate, upsample
from diffimaging.lensless import metrics as M


@pytest.fixture(scope="module")
def caps():
    return simulate(seed=21, shift_error=0.0, z_error=0.0, n_window=64, pad=32, K=8,
                    photons=None)


def test_classical_recovers_the_sample(caps):
    r = classical(caps, iterations=20)
    assert isinstance(r, Reconstruction)
    assert r.field.shape == (64, 64) and r.field.dtype == np.complex64
    np.testing.assert_array_equal(r.shifts, caps.shifts)
    clear = np.ones((64, 64), complex)
    assert M.psnr(r.field, caps.truth["field"]) > M.psnr(clear, caps.truth["field"]) + 3.0
    with pytest.raises(TypeError, match="Captures"):
        classical(caps.images)


def test_upsample_places_pixels_at_their_positions():
    """A capture of one bright pixel lands at that sensor pixel's centre, moved by the shift."""
    img = np.zeros((1, 6, 6))
    img[0, 2, 3] = 1.0
    P, f, pad = 2e-6, 2, 4
    for s in ((0.0, 0.0), (0.0, 1e-6), (2e-6, -1e-6)):
        hr, seen = upsample(img, np.array([s]), factor=f, pixel_size=P, pad=pad, order=1)
        assert hr.shape == (1, 20, 20) and seen.shape == (1, 20, 20)
        i, j = np.unravel_index(np.argmax(hr[0]), hr[0].shape)
        # the pixel's centre: window coordinates (2.5 P + sy, 3.5 P + sx), in hr pixels of P/2
        cy, cx = (2.5 * P + s[0]) / (P / f) + pad, (3.5 * P + s[1]) / (P / f) + pad
        assert abs(i + 0.5 - cy) <= 0.5 and abs(j + 0.5 - cx) <= 0.5
        assert seen[0].sum() == 12 * 12


def test_metrics():
    rng = np.random.default_rng(0)
    t = np.exp(1j * rng.uniform(0, 1, (16, 16))) * rng.uniform(0.5, 1.0, (16, 16))
    assert M.psnr(t, t) == np.inf
    assert M.psnr(t * np.exp(0.7j), t) > 250                           # global phase unseen
    noisy = t + 0.01
    assert 30 < M.psnr(noisy, t) < 50
    assert M.psnr(noisy, t, border=2) != M.psnr(noisy, t)
    with pytest.raises(ValueError, match="same shape"):
        M.psnr(t, t[:8])
    s = rng.normal(size=(6, 2)) * 1e-6
    assert M.shift_rmse(s + 3e-6, s, 1e-6) == pytest.approx(0.0, abs=1e-12)  # common move removed
    d = np.array([[1, 0], [-1, 0], [0, 1], [0, -1]]) * 0.5e-6
    assert M.shift_rmse(d, np.zeros((4, 2)), 1e-6) == pytest.approx(np.sqrt(0.125))
    with pytest.raises(ValueError, match=r"\(K, 2\)"):
        M.shift_rmse(np.zeros(4), np.zeros(4), 1e-6)
    assert M.height_rmse([1e-4, 2e-4], [1e-4 + 3e-6, 2e-4 - 4e-6]) == pytest.approx(
        np.sqrt(12.5) * 1e-6)
    with pytest.raises(ValueError, match="targets is empty"):
        M.resolution_gain(t, [])
