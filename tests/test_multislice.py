"""The multi-slice hologram stage: planes met in order of decreasing z,
U = r + s_n,  s_{j+1} = P~(d_j) (s_j + o_j (r + s_j))."""
import warnings

import numpy as np
import pytest

import diffimaging as di
from diffimaging.holography import Volume
from diffimaging.holography.multislice import MultiSlice

from conftest import crandn, vdot

LAM, PX = 532e-9, 2e-6


def _disk(shape, cy, cx, radius):
    y, x = np.mgrid[:shape[0], :shape[1]]
    return ((y - cy) ** 2 + (x - cx) ** 2 <= radius * radius).astype(float)


def _P(u, z, **kw):
    return di.propagate(u, z, wavelength=LAM, pixel_size=PX, carrier=False, **kw)


def test_single_plane_equals_volume_and_scales_with_reference():
    rng = np.random.default_rng(0)
    o = crandn(rng, (1, 24, 30)) * 0.3
    z, dz = [1.1e-3], 3e-5
    u = MultiSlice(z, LAM, PX, dz=dz, reference=1.0)(o)
    np.testing.assert_allclose(u, Volume(z, LAM, PX, dz=dz, reference=1.0)(o), rtol=0, atol=1e-12)
    # the illumination scales the scattered light too: U = r (1 + P~(z + dz) o)
    r = 0.7
    ur = MultiSlice(z, LAM, PX, dz=dz, reference=r)(o)
    np.testing.assert_allclose(ur, r * (1 + _P(o[0], z[0] + dz)), rtol=0, atol=1e-12)
    assert u.dtype == np.complex128 and u.shape == (24, 30)


def test_two_planes_second_order_difference_from_born():
    # pad=False and distances below N dx^2 / lambda: P~(a) P~(b) = P~(a + b) exactly, so the
    # multi-slice field differs from first Born by exactly the double-scattering term
    shape = (40, 40)
    z = np.array([1.0e-4, 2.5e-4])                 # unsorted on purpose: plane 1 is met first
    o = np.stack([-_disk(shape, 20, 18, 4) * (0.6 + 0.2j), -_disk(shape, 22, 21, 5) * (0.5 - 0.3j)])
    ms = MultiSlice(z, LAM, PX, pad=False)
    born = Volume(z, LAM, PX, pad=False, reference=1.0)
    diffs = []
    for a in (1.0, 0.5):
        d = ms(a * o) - born(a * o)
        expected = _P(a * o[0] * _P(a * o[1], z[1] - z[0], pad=False), z[0], pad=False)
        np.testing.assert_allclose(d, expected, rtol=0, atol=1e-12)
        diffs.append(np.linalg.norm(d))
    assert diffs[0] > 1e-2 * np.linalg.norm(born(o) - 1)   # a visible effect ...
    assert diffs[0] / diffs[1] == pytest.approx(4.0, rel=1e-9)   # ... of second order


def test_shadowing_matches_sequential_propagation_by_hand():
    shape = (48, 48)
    z1, z2, dz = 1.0e-3 + 5e-5, 1.0e-3, 1e-5
    t1 = 1 - _disk(shape, 24, 24, 8)              # opaque disks on one optical axis
    t2 = 1 - _disk(shape, 24, 24, 3)
    o = np.stack([t2 - 1, t1 - 1])                 # z given in increasing order
    z = np.array([z2, z1])
    r = 0.8
    # the total field, propagated plane by plane (periodic grid: the plane wave is exact)
    u = r * t1
    u = _P(u, z1 - z2, pad=False)
    u = _P(t2 * u, z2 + dz, pad=False)
    np.testing.assert_allclose(MultiSlice(z, LAM, PX, dz=dz, reference=r, pad=False)(o), u,
                               rtol=0, atol=1e-12)
    # on the padded grid: the small disk sits in the big one's shadow and barely changes the
    # hologram, while first Born adds its full scattered field
    ms = MultiSlice(z, LAM, PX, dz=dz)
    born = Volume(z, LAM, PX, dz=dz, reference=1.0)
    big_only = o.copy()
    big_only[0] = 0
    d_ms = np.linalg.norm(ms(o) - ms(big_only))
    d_born = np.linalg.norm(born(o) - born(big_only))
    assert d_ms < 0.05 * d_born
    # two coincident opaque disks block what one does (t * t = t); Born counts them twice
    twice = np.stack([t1 - 1, t1 - 1])
    one = MultiSlice([z1], LAM, PX)((t1 - 1)[None])
    np.testing.assert_allclose(MultiSlice([z1, z1], LAM, PX)(twice), one, rtol=0, atol=1e-12)
    assert np.linalg.norm(Volume([z1, z1], LAM, PX)(twice) - one) > 1.0


def test_plane_order_in_z_is_free():
    rng = np.random.default_rng(3)
    o = crandn(rng, (3, 16, 20)) * 0.2
    z = np.array([1.2e-3, 1.5e-3, 1.0e-3])
    perm = np.array([2, 0, 1])
    u = MultiSlice(z, LAM, PX, dz=1e-5)(o)
    np.testing.assert_allclose(MultiSlice(z[perm], LAM, PX, dz=1e-5)(o[perm]), u, rtol=0, atol=1e-13)
    # and the order matters physically: swapping the objects between depths changes the field
    assert np.linalg.norm(MultiSlice(z, LAM, PX, dz=1e-5)(o[perm]) - u) > 1e-2


@pytest.mark.parametrize("complex_object", [False, True])
def test_vjp_field_finite_differences(complex_object):
    rng = np.random.default_rng(10 + complex_object)
    z = np.array([1.1e-3, 1.4e-3, 1.25e-3])        # unsorted
    o = -(rng.random((3, 20, 24)) > 0.9).astype(float) * 0.8 + 0.1 * rng.standard_normal((3, 20, 24))
    if complex_object:
        o = o + 0.2j * rng.standard_normal(o.shape)
    dz0, r0 = 1e-5, 0.9
    m = di.Model(MultiSlice(z, LAM, PX, dz=di.Param(dz0), reference=di.Param(r0)))
    y, pb = di.vjp(m, o)
    w = crandn(rng, y.shape)
    gx, gp = pb(w)
    assert gx.shape == o.shape and gx.dtype == o.dtype
    assert isinstance(gp["multislice.dz"], float) and isinstance(gp["multislice.reference"], float)

    def L(oo, over=None):                            # L = Re <w, U>: dL/dU = w
        return float(np.real(vdot(w, m(oo, over))))

    h = 1e-6
    for _ in range(2):
        d = rng.standard_normal(o.shape) + (1j * rng.standard_normal(o.shape) if complex_object else 0)
        fd = (L(o + h * d) - L(o - h * d)) / (2 * h)
        assert fd == pytest.approx(float(np.real(vdot(gx, d))), rel=1e-7)
    hz = 1e-9
    fdz = (L(o, {"multislice.dz": dz0 + hz}) - L(o, {"multislice.dz": dz0 - hz})) / (2 * hz)
    assert fdz == pytest.approx(gp["multislice.dz"], rel=1e-6)
    fdr = (L(o, {"multislice.reference": r0 + h}) - L(o, {"multislice.reference": r0 - h})) / (2 * h)
    assert fdr == pytest.approx(gp["multislice.reference"], rel=1e-7)


def test_vjp_model_with_intensity_finite_differences():
    rng = np.random.default_rng(20)
    z = np.array([1.3e-3, 1.0e-3, 1.15e-3])
    o = -(rng.random((3, 18, 22)) > 0.9).astype(float)
    o = o * (1 - 0.3j) + 0.1j * rng.standard_normal(o.shape)
    dz0, r0 = -2e-5, 1.1
    m = di.Model(MultiSlice(z, LAM, PX, dz=di.Param(dz0), reference=di.Param(r0)), di.Intensity())
    y, pb = di.vjp(m, o)
    w = rng.standard_normal(y.shape)
    gx, gp = pb(w)

    def L(oo, over=None):
        return float(np.sum(w * m(oo, over)))

    h = 1e-6
    d = crandn(rng, o.shape)
    assert (L(o + h * d) - L(o - h * d)) / (2 * h) == pytest.approx(float(np.real(vdot(gx, d))), rel=1e-7)
    hz = 1e-9
    fdz = (L(o, {"multislice.dz": dz0 + hz}) - L(o, {"multislice.dz": dz0 - hz})) / (2 * hz)
    assert fdz == pytest.approx(gp["multislice.dz"], rel=1e-6)
    fdr = (L(o, {"multislice.reference": r0 + h}) - L(o, {"multislice.reference": r0 - h})) / (2 * h)
    assert fdr == pytest.approx(gp["multislice.reference"], rel=1e-7)
    # a 0-d array reference (as the solvers pass it) gets a 0-d cotangent of the same value
    y2, pb2 = di.vjp(m, o, {"multislice.reference": np.asarray(r0)})
    g2 = pb2(w)[1]["multislice.reference"]
    assert np.shape(g2) == () and float(g2) == pytest.approx(gp["multislice.reference"], rel=1e-12)


@pytest.mark.parametrize("dtype", [np.complex64, np.float32])
def test_single_precision(dtype):
    rng = np.random.default_rng(30)
    z = np.array([1.2e-3, 1.0e-3])
    o64 = -(rng.random((2, 16, 16)) > 0.85).astype(float) * (1.0 + (0.3j if dtype == np.complex64 else 0))
    o = o64.astype(dtype)
    m = di.Model(MultiSlice(z, LAM, PX, dz=di.Param(1e-5), reference=di.Param(np.asarray(1.0))),
                 di.Intensity())
    stage = m.stages[0]
    u = stage(o)
    assert u.dtype == np.complex64
    np.testing.assert_allclose(u, stage(o64), rtol=0, atol=1e-5)
    y, pb = di.vjp(m, o)
    assert y.dtype == np.float32
    gx, gp = pb(np.ones_like(y))
    assert gx.dtype == np.dtype(dtype) and gx.shape == o.shape
    gx64 = di.vjp(m, o64)[1](np.ones(y.shape))[0]
    np.testing.assert_allclose(gx, gx64, rtol=0, atol=1e-4 * np.abs(gx64).max())


def test_reference_path_matches_kernels():
    # the plain array-API path (no kernels) on array_api_strict against numpy's compiled one
    xs = pytest.importorskip("array_api_strict")
    rng = np.random.default_rng(35)
    o = -(rng.random((3, 16, 18)) > 0.9).astype(float) + 0.1j * rng.standard_normal((3, 16, 18))
    m = di.Model(MultiSlice([1.2e-3, 1.0e-3, 1.1e-3], LAM, PX, dz=di.Param(1e-5),
                            reference=di.Param(0.9)), di.Intensity())
    y, pb = di.vjp(m, o)
    w = rng.standard_normal(y.shape)
    gx, gp = pb(w)
    ys, pbs = di.vjp(m, xs.asarray(o))
    gxs, gps = pbs(xs.asarray(w))
    assert type(ys).__module__.startswith("array_api_strict") and gxs.dtype == xs.complex128
    np.testing.assert_allclose(np.from_dlpack(ys), y, rtol=0, atol=1e-12)
    np.testing.assert_allclose(np.from_dlpack(gxs), gx, rtol=0, atol=1e-10)
    assert float(gps["multislice.dz"]) == pytest.approx(gp["multislice.dz"], rel=1e-8)
    assert float(gps["multislice.reference"]) == pytest.approx(gp["multislice.reference"], rel=1e-10)


def test_bad_inputs():
    ms = MultiSlice([1e-3, 1.2e-3, 1.1e-3], LAM, PX)
    with pytest.raises(ValueError, match=r"\(nz=3, ny, nx\).*\(2, 16, 16\)"):
        ms(np.zeros((2, 16, 16)))
    with pytest.raises(ValueError, match=r"nz=3"):
        ms(np.zeros((16, 16)))
    with pytest.raises(ValueError, match="at least one"):
        MultiSlice([], LAM, PX)
    with pytest.raises(ValueError, match="scalar"):
        MultiSlice([1e-3], LAM, PX, reference=di.Param(np.ones(3)))(np.zeros((1, 8, 8)))


def test_solve_lowers_the_loss():
    rng = np.random.default_rng(40)
    z = np.array([1.0e-3, 1.3e-3])
    truth = np.zeros((2, 32, 32))
    truth[0] = -_disk((32, 32), 12, 14, 3)
    truth[1] = -_disk((32, 32), 20, 19, 2.5)
    model = di.Model(MultiSlice(z, LAM, PX), di.Intensity())
    y = model(truth) + 1e-3 * rng.standard_normal((32, 32))
    with warnings.catch_warnings():
        warnings.simplefilter("error")                # no sampling warnings on this grid
        res = di.solve(model, y, np.zeros_like(truth), method="fista", iterations=15,
                       regularizers=[di.L1(1e-3)], constraint=di.Box(-1, 0), progress=False)
    loss = res.history["loss"]
    assert np.all(np.isfinite(loss))
    assert loss[-1] < 0.5 * loss[0]
    assert res.x.min() >= -1 and res.x.max() <= 0
