"""simulate_particles against independent computations."""
import warnings

import numpy as np
import pytest

import diffimaging as di
from diffimaging import holography as H

LAM, PX = 532e-9, 2e-6


def _disk(n, cy, cx, r, ss=16):
    """Pixel-area coverage of a disk, computed independently (supersampled grid;
    pixel i centred on coordinate i, covering [i - 1/2, i + 1/2))."""
    s = (np.arange(n * ss) + 0.5) / ss - 0.5
    inside = ((s[:, None] - cy) ** 2 + (s[None, :] - cx) ** 2 <= r * r).astype(float)
    return inside.reshape(n, ss, n, ss).mean(axis=(1, 3))


def test_single_particle_equals_propagated_transmittance():
    n = 128
    pos = np.array([[60.3 * PX, 70.7 * PX, 2e-3]])
    h, truth, f = H.simulate_particles((n, n), (pos, [10e-6]), wavelength=LAM, pixel_size=PX,
                                       return_field=True)
    disk = _disk(n, 60.3, 70.7, 2.5)
    expected = 1 + di.propagate(-disk.astype(complex), 2e-3, wavelength=LAM, pixel_size=PX,
                                carrier=False)
    np.testing.assert_allclose(f, expected, atol=1e-12)
    np.testing.assert_allclose(h, np.abs(f) ** 2, atol=1e-12)
    # the same as propagating the full transmittance 1 - disk (periodic grid), away from the edges
    full = di.propagate(1 - disk, 2e-3, wavelength=LAM, pixel_size=PX, carrier=False, pad=False)
    assert np.abs(f - full)[40:88, 50:98].max() < 3e-3
    np.testing.assert_array_equal(truth.positions, pos)


def test_disk_is_centred_on_its_pixel():
    # CONVENTIONS: pixel (i, j) sits at (i dy, j dx); a particle at (40 dy, 50 dx) is a
    # disk centred on pixel (40, 50): its coverage is symmetric about that pixel and
    # its centroid is there (a half-pixel slip would put it at 40.5, 50.5)
    n = 96
    pos = np.array([[40 * PX, 50 * PX, 1e-3]])
    _, _, f = H.simulate_particles((n, n), (pos, [12e-6]), wavelength=LAM, pixel_size=PX,
                                   return_field=True)
    disk = -np.real(di.propagate(f - 1, -1e-3, wavelength=LAM, pixel_size=PX, carrier=False))
    win = disk[32:49, 42:59]
    w = np.clip(win - 0.5 * win.max(), 0, None)
    iy, ix = np.indices(w.shape)
    cy, cx = (w * iy).sum() / w.sum() + 32, (w * ix).sum() / w.sum() + 42
    assert abs(cy - 40) < 0.02 and abs(cx - 50) < 0.02, (cy, cx)
    from diffimaging.holography.simulate import _disk_patch

    patch, (i0, j0) = _disk_patch(40.0, 50.0, 3.0, 5)
    assert (i0 + 5, j0 + 5) == (40, 50)                      # the patch's centre pixel
    np.testing.assert_allclose(patch, patch[::-1, :], atol=1e-12)
    np.testing.assert_allclose(patch, patch[:, ::-1], atol=1e-12)
    assert patch[5, 5] == 1.0 and patch[5, 8] < 0.6 < patch[5, 7]


# measured: 4.1e-5 without the band limit, 1.6e-3 with it (the local windows are
# propagated on their own, smaller FFT grids: their kernels and band limits differ)
@pytest.mark.parametrize("band_limit,tol", [(False, 6e-5), (True, 2.5e-3)])
def test_particles_in_one_slab_match_per_particle_propagation(band_limit, tol):
    n = 128
    pos = np.array([[40 * PX, 50 * PX, 2.00e-3], [80.4 * PX, 90.2 * PX, 2.02e-3],
                    [30.7 * PX, 100.1 * PX, 1.985e-3]])
    dia = np.array([10e-6, 9e-6, 11e-6])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", di.SamplingWarning)
        _, _, f = H.simulate_particles((n, n), (pos, dia), wavelength=LAM, pixel_size=PX,
                                       return_field=True, band_limit=band_limit)
        ex = np.ones((n, n), complex)
        for (y, x, z), d in zip(pos, dia):
            disk = _disk(n, y / PX, x / PX, d / 2 / PX)
            ex += di.propagate(-disk.astype(complex), z, wavelength=LAM, pixel_size=PX,
                               carrier=False, band_limit=band_limit)
    err = np.abs(f - ex).max()
    assert err < tol, err
    # snapping to the slab depth instead would be far worse
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", di.SamplingWarning)
        snapped = np.ones((n, n), complex)
        for (y, x, z), d in zip(pos, dia):
            disk = _disk(n, y / PX, x / PX, d / 2 / PX)
            snapped += di.propagate(-disk.astype(complex), 2.0e-3, wavelength=LAM, pixel_size=PX,
                                    carrier=False, band_limit=band_limit)
    assert np.abs(snapped - ex).max() > 5 * err


def test_kinds_noise_binning_and_random_particles():
    tab = H.random_particles((64, 64), PX, ppp=2e-3, seed=0)
    assert len(tab) == round(2e-3 * 64 * 64)
    assert np.all((tab.positions[:, 2] >= 1e-3) & (tab.positions[:, 2] <= 5e-3))
    assert np.all((tab.diameters >= 8e-6) & (tab.diameters <= 12e-6))
    h0, _ = H.simulate_particles((64, 64), tab, wavelength=LAM, pixel_size=PX)
    hp, _ = H.simulate_particles((64, 64), tab, wavelength=LAM, pixel_size=PX, kind="phase", phase=0.3)
    assert np.std(hp) < np.std(h0)             # a weak phase object has less contrast
    hb, _ = H.simulate_particles((64, 64), tab, wavelength=LAM, pixel_size=PX, bin_factor=2)
    np.testing.assert_allclose(hb, di.bin(h0, factor=2, reduce="mean"), atol=1e-12)
    # Poisson: variance of (counts / photons) ~ mean / photons
    flat = (np.zeros((0, 3)), np.zeros(0))
    hn, _ = H.simulate_particles((128, 128), flat, wavelength=LAM, pixel_size=PX, photons=400, seed=3)
    assert np.var(hn) == pytest.approx(1 / 400, rel=0.1) and hn.mean() == pytest.approx(1, abs=0.01)
    hq, _ = H.simulate_particles((64, 64), tab, wavelength=LAM, pixel_size=PX, bits=4)
    full = 2 * hq.mean()
    assert len(np.unique(np.round(hq / (full / 15), 6))) <= 16
    hg, _ = H.simulate_particles((64, 64), tab, wavelength=LAM, pixel_size=PX, gaussian_noise=0.01, seed=1)
    assert np.std(hg - h0) == pytest.approx(0.01 * h0.mean(), rel=0.1)
    with pytest.raises(ValueError, match="kind"):
        H.simulate_particles((8, 8), tab, wavelength=LAM, pixel_size=PX, kind="glass")
    with pytest.raises(ValueError, match="ppp"):
        H.random_particles((8, 8), PX)
