"""Lorenz-Mie scattering (holography.mie) against independent checks: Bohren &
Huffman's tabulated BHMIE example, the optical theorem, the Rayleigh limit, the
extinction paradox, the far-field limit of the near field, and the hologram's symmetry
and background."""
import numpy as np
import pytest

from diffimaging.holography import mie
from diffimaging.holography.mie import (mie_amplitudes, mie_coefficients, mie_efficiencies, mie_field,
                                        mie_hologram)


def test_bohren_huffman_tabulated_example():
    # B&H appendix A (BHMIE): radius 0.525 um, lambda 0.6328 um, m = 1.55 in air:
    # Q_sca = Q_ext = 3.1054, Q_back = 2.9253 (printed to 5 digits)
    x = 2 * np.pi * 0.525 / 0.6328
    qext, qsca, qback = mie_efficiencies(x, 1.55)
    assert qext == pytest.approx(3.1054, abs=6e-5)
    assert qsca == pytest.approx(3.1054, abs=6e-5)
    assert qback == pytest.approx(2.9253, abs=6e-5)


@pytest.mark.parametrize("x,m", [(0.3, 1.33), (3.0, 1.33), (12.0, 1.59 / 1.33), (20.0, 1.45 / 1.33),
                                 (5.0, 1.5 + 0.2j), (40.0, 2.0 + 1.0j)])
def test_optical_theorem_and_energy(x, m):
    qext, qsca, _ = mie_efficiencies(x, m)
    s1, s2 = mie_amplitudes(x, m, np.array([0.0]))
    assert s1[0] == pytest.approx(s2[0], rel=1e-12)                  # forward: S1(0) = S2(0)
    assert qext == pytest.approx(4 / x ** 2 * s1[0].real, rel=1e-10)  # optical theorem
    if complex(m).imag == 0:
        assert qsca == pytest.approx(qext, rel=1e-10)                 # no absorption
    else:
        assert 0 < qsca < qext


def test_rayleigh_limit_and_extinction_paradox():
    x, m = 0.01, 1.5 + 0.1j
    lorentz = (m * m - 1) / (m * m + 2)
    qext, qsca, _ = mie_efficiencies(x, m)
    assert qsca == pytest.approx(8 / 3 * x ** 4 * abs(lorentz) ** 2, rel=1e-3)
    assert qext == pytest.approx(4 * x * lorentz.imag, rel=1e-3)
    # large spheres remove twice their geometric cross-section
    assert mie_efficiencies(2000.0, 1.33)[0] == pytest.approx(2.0, abs=0.02)
    # downward recurrence of D_n: finite coefficients for a large absorbing sphere
    a, b = mie_coefficients(500.0, 1.5 + 2.0j)
    assert np.all(np.isfinite(a)) and np.all(np.isfinite(b)) and a.size == 534


def test_near_field_tends_to_far_field_amplitudes():
    lam, a, nm, m = 0.5e-6, 1e-6, 1.33, 1.59 / 1.33
    k = 2 * np.pi * nm / lam
    theta = 0.2
    s1, s2 = mie_amplitudes(k * a, m, theta)
    errs = []
    for r in (2e-3, 2e-1):
        far = np.exp(1j * k * r) / (-1j * k * r)
        # in the x-z plane (phi = 0) E_theta = E_x cos(theta) - E_z sin(theta) ~ far S2
        e = mie._scattered(np.array([r * np.sin(theta)]), np.array([0.0]), np.array([r * np.cos(theta)]),
                           a, m, k)
        e_theta = e[0, 0] * np.cos(theta) - e[2, 0] * np.sin(theta)
        # in the y-z plane (phi = 90 deg) E_phi = -E_x ~ -far S1
        e = mie._scattered(np.array([0.0]), np.array([r * np.sin(theta)]), np.array([r * np.cos(theta)]),
                           a, m, k)
        errs.append((abs(e_theta / (far * s2) - 1), abs(-e[0, 0] / (-far * s1) - 1)))
    assert max(errs[1]) < 1e-4                       # (kr = 3.3e6)
    assert max(errs[0]) / max(errs[1]) > 50          # the near-field terms decay as 1/r


def test_hologram_background_symmetry_and_counts():
    n, px = 128, 0.1e-6
    c = 64 * px
    kw = dict(radius=0.5e-6, n_medium=1.33, wavelength=532e-9, pixel_size=px)
    h = mie_hologram((n, n), (c, c, 10e-6), n_particle=1.59, **kw)
    assert h.shape == (n, n) and h.dtype == np.float64
    # x-polarised illumination: mirror symmetric about the centre along y and along x
    np.testing.assert_allclose(h[64 - 20:64 + 21, 64][::-1], h[64 - 20:64 + 21, 64], rtol=1e-10)
    np.testing.assert_allclose(h[64, 64 - 20:64 + 21][::-1], h[64, 64 - 20:64 + 21], rtol=1e-10)
    assert abs(h[64, 64] - 1) > 0.2                                   # the particle is seen
    weak = mie_hologram((n, n), (c, c, 10e-6), n_particle=1.45, **kw)  # silica in water
    strong_contrast, weak_contrast = np.ptp(h), np.ptp(weak)
    assert 0.05 < weak_contrast < strong_contrast
    # the vector field is not a scalar: the z component is present off axis
    e = mie_field((n, n), (c, c, 10e-6), n_particle=1.59, **kw)
    assert e.shape == (3, n, n) and np.max(np.abs(e[2])) > 1e-3
    counts = mie_hologram((n, n), (c, c, 10e-6), n_particle=1.59, bits=12, gaussian_noise=0.01, seed=0,
                          illumination=np.full((n, n), 2.0), **kw)
    assert counts.dtype == np.uint16 and abs(counts.mean() / 4095 - 0.25) < 0.01


def test_two_spheres_superpose():
    kw = dict(n_medium=1.33, wavelength=532e-9, pixel_size=0.1e-6)
    p1, p2 = (3e-6, 3e-6, 8e-6), (6e-6, 5e-6, 12e-6)
    both = mie_field((64, 96), np.array([p1, p2]), radius=[0.5e-6, 0.7e-6], n_particle=[1.59, 1.45], **kw)
    one = mie_field((64, 96), p1, radius=0.5e-6, n_particle=1.59, **kw)
    two = mie_field((64, 96), p2, radius=0.7e-6, n_particle=1.45, **kw)
    np.testing.assert_allclose(both, one + two, atol=1e-14)


@pytest.mark.parametrize("kwargs,name", [
    (dict(position=(1e-6, 1e-6, 0.4e-6)), "radius"),      # plane inside the sphere
    (dict(n_medium=0.5), "n_medium"),
    (dict(n_medium=float("nan")), "n_medium"),
    (dict(n_particle=1.5 - 0.1j), "n_particle"),
    (dict(radius=-1e-6), "radius"),
    (dict(wavelength=532), "wavelength"),
    (dict(shape=(0, 4)), "shape"),
    (dict(position=(1e-6, 1e-6)), "position"),
    (dict(bits=0), "bits"),
    (dict(gaussian_noise=-0.1), "gaussian_noise"),
    (dict(illumination=np.ones((3, 3))), "illumination"),
])
def test_bad_inputs_name_the_argument(kwargs, name):
    args = dict(shape=(16, 16), position=(1e-6, 1e-6, 5e-6), radius=0.5e-6, n_particle=1.59,
                wavelength=532e-9, pixel_size=0.1e-6, n_medium=1.33)
    args.update(kwargs)
    shape, pos = args.pop("shape"), args.pop("position")
    with pytest.raises(ValueError, match=name):
        mie_hologram(shape, pos, **args)
