"""Holography building blocks: matching, preprocessing, streamed back-propagation."""
import numpy as np
import pytest

import diffimaging as di
from diffimaging import holography as H

LAM, PX = 532e-9, 2e-6


# ------------------------------------------------------------------ match

def test_match_counts_and_rmse():
    rng = np.random.default_rng(0)
    truth = np.column_stack([rng.uniform(0, 1e-3, 400), rng.uniform(0, 1e-3, 400),
                             rng.uniform(1e-3, 5e-3, 400)])
    keep = rng.permutation(400)[:360]                       # 40 missed
    noise = np.column_stack([rng.normal(0, 0.5e-6, 360), rng.normal(0, 0.5e-6, 360),
                             rng.normal(0, 3e-6, 360)])
    found = truth[keep] + noise
    fp = np.column_stack([rng.uniform(0, 1e-3, 25), rng.uniform(0, 1e-3, 25), rng.uniform(1e-3, 5e-3, 25)])
    found = np.concatenate([found, fp])[rng.permutation(385)]
    m = H.match(found, truth, lateral_tol=4e-6, axial_tol=30e-6)
    # false positives landing within the tolerance of a missed particle may match it
    assert 360 <= len(m.pairs) <= 362
    assert m.recall == pytest.approx(len(m.pairs) / 400)
    assert m.precision == pytest.approx(len(m.pairs) / 385)
    assert m.lateral_rmse == pytest.approx(np.sqrt(2) * 0.5e-6, rel=0.15)
    assert m.axial_rmse == pytest.approx(3e-6, rel=0.15)
    assert len(np.unique(m.pairs[:, 0])) == len(m.pairs) == len(np.unique(m.pairs[:, 1]))
    np.testing.assert_allclose(m.errors, found[m.pairs[:, 0]] - truth[m.pairs[:, 1]])


def test_match_is_one_to_one_and_maximal():
    # greedy nearest-first would pair f0-t0 and leave f1 unmatched; the optimum pairs both
    truth = np.array([[0.0, 0.0, 0.0], [0.0, 1.5e-6, 0.0]])
    found = np.array([[0.0, 0.7e-6, 0.0], [0.0, -0.9e-6, 0.0]])
    m = H.match(found, truth, lateral_tol=1e-6, axial_tol=1e-6)
    assert len(m.pairs) == 2 and m.recall == 1.0
    assert sorted(map(tuple, m.pairs)) == [(0, 1), (1, 0)]
    # two found at one true particle: one match
    m = H.match(np.array([[0, 0, 0], [0, 1e-7, 0]]), truth[:1], 1e-6, 1e-6)
    assert len(m.pairs) == 1 and m.precision == 0.5


def test_match_axial_tolerance_and_tables():
    class Table:
        positions = np.array([[0.0, 0.0, 10e-6], [5e-6, 5e-6, 50e-6]])

    truth = np.array([[0.0, 0.0, 0.0], [5e-6, 5e-6, 0.0]])
    m = H.match(Table(), truth, lateral_tol=1e-6, axial_tol=20e-6)
    assert len(m.pairs) == 1 and m.axial_rmse == pytest.approx(10e-6)
    empty = H.match(np.zeros((0, 3)), truth, 1e-6, 1e-6)
    assert empty.recall == 0.0 and np.isnan(empty.precision) and len(empty.pairs) == 0


@pytest.mark.parametrize("args,exc", [((np.zeros((3, 2)), np.zeros((3, 3)), 1e-6, 1e-6), ValueError),
                                      ((np.zeros((3, 3)), np.zeros((3, 3)), 0.0, 1e-6), ValueError),
                                      ((np.zeros((3, 3)), np.full((3, 3), np.nan), 1e-6, 1e-6), ValueError)])
def test_match_bad_input(args, exc):
    with pytest.raises(exc):
        H.match(*args)


# ------------------------------------------------------------------ preprocess

def test_divide_background_and_median_estimate():
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[:64, :80]
    bg = 100 * (1 + 0.3 * np.exp(-((yy - 30) ** 2 + (xx - 40) ** 2) / 800.0))
    frames = []
    for _ in range(9):  # moving dark particles on a fixed illumination
        obj = np.ones((64, 80))
        for _ in range(5):
            cy, cx = rng.uniform(5, 59), rng.uniform(5, 75)
            obj[(yy - cy) ** 2 + (xx - cx) ** 2 < 9] = 0.4
        frames.append(obj * bg)
    frames = np.array(frames)
    est = H.estimate_background(frames)
    np.testing.assert_allclose(est, bg, rtol=1e-12)       # median over moving particles
    out = H.divide_background(frames[0], est)
    assert out.mean() == pytest.approx(1.0)
    obj0 = frames[0] / bg
    np.testing.assert_allclose(out, obj0 / obj0.mean(), rtol=1e-12)
    # a single frame: the smooth low-pass estimate removes the illumination profile
    p, info = H.preprocess(frames[0], crop=False)
    assert info["background"] == "lowpass"
    assert np.std(p[obj0 == 1]) < 0.5 * np.std(frames[0][obj0 == 1] / frames[0].mean())
    with pytest.raises(ValueError, match="at least 3 frames"):
        H.estimate_background(frames[:2], method="median")
    with pytest.raises(ValueError, match="broadcast"):
        H.divide_background(frames[0], np.ones((3, 3)))
    with pytest.raises(TypeError, match="real image"):
        H.divide_background(frames[0] + 0j, bg)


def test_crop_fast():
    a = np.arange(1021 * 1031, dtype=np.float32).reshape(1021, 1031)
    c, (y0, x0) = H.crop_fast(a)
    import scipy.fft as sfft

    assert c.shape == (sfft.prev_fast_len(1021), sfft.prev_fast_len(1031))
    assert c.shape[0] <= 1021 and (1021 - c.shape[0]) // 2 == y0
    np.testing.assert_array_equal(c, a[y0:y0 + c.shape[0], x0:x0 + c.shape[1]])
    c4, _ = H.crop_fast(a, multiple_of=4)
    assert c4.shape[0] % 4 == 0 and c4.shape[1] % 4 == 0


# ------------------------------------------------------------------ back-propagation

def _one_particle(n=128, z0=2e-3, r=3.0, yx=(60.3, 70.7)):
    yy, xx = np.mgrid[:n, :n]
    disk = ((yy - yx[0]) ** 2 + (xx - yx[1]) ** 2 <= r * r).astype(float)
    u = di.propagate(1.0 - disk, z0, wavelength=LAM, pixel_size=PX, carrier=False)
    return np.abs(u) ** 2


def test_backpropagate_finds_the_particle_depth():
    h = _one_particle()
    zs = np.linspace(1e-3, 3e-3, 41)                        # 50 um planes
    p = H.backpropagate(h, zs, wavelength=LAM, pixel_size=PX, chunk=7)
    iy, ix = np.unravel_index(np.argmin(p["min"]), p["min"].shape)  # no border artefacts
    assert abs(iy - 60.3) <= 1.5 and abs(ix - 70.7) <= 1.5
    # the darkest plane lies within 2 planes of the true depth (the particle's depth of
    # field d^2 / wavelength is ~270 um; a scalar focus criterion need not hit the centre)
    assert p["argmin_z"][iy, ix] == pytest.approx(2e-3, abs=100e-6)
    # chunking does not change the result
    q = H.backpropagate(h, zs, wavelength=LAM, pixel_size=PX, chunk=100)
    for k in p:
        np.testing.assert_allclose(p[k], q[k], rtol=1e-12, atol=1e-15)


def test_backpropagate_stacks_and_backends():
    h = _one_particle(64, z0=1e-3)
    zs = np.array([0.5e-3, 1e-3, 1.5e-3])
    c = H.backpropagate(h, zs, wavelength=LAM, pixel_size=PX, output="complex", chunk=2)
    assert c.shape == (3, 64, 64) and c.dtype == np.complex128
    np.testing.assert_allclose(c[1], 1 + di.propagate(np.sqrt(h) - 1, -1e-3, wavelength=LAM,
                                                      pixel_size=PX, carrier=False), atol=1e-12)
    i = H.backpropagate(h, zs, wavelength=LAM, pixel_size=PX, output="intensity")
    np.testing.assert_allclose(i, np.abs(c) ** 2, atol=1e-12)
    # the streamed projections (fused kernels, plane by plane) equal the stack's
    pr = H.backpropagate(h, zs, wavelength=LAM, pixel_size=PX)
    np.testing.assert_allclose(pr["min"], i.min(axis=0), rtol=1e-12)
    np.testing.assert_allclose(pr["max"], i.max(axis=0), rtol=1e-12)
    np.testing.assert_array_equal(pr["argmin_z"], zs[np.argmin(i, axis=0)])
    np.testing.assert_array_equal(pr["argmax_z"], zs[np.argmax(i, axis=0)])
    torch = pytest.importorskip("torch")
    pt = H.backpropagate(torch.tensor(h, dtype=torch.float32), zs, wavelength=LAM, pixel_size=PX)
    assert isinstance(pt["min"], torch.Tensor) and pt["min"].dtype == torch.float32
    pn = H.backpropagate(h.astype(np.float32), zs, wavelength=LAM, pixel_size=PX)
    np.testing.assert_allclose(pt["min"].numpy(), pn["min"], rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="output"):
        H.backpropagate(h, zs, wavelength=LAM, pixel_size=PX, output="volume")
    with pytest.raises(ValueError, match="single"):
        H.backpropagate(np.stack([h, h]), zs, wavelength=LAM, pixel_size=PX)
    with pytest.raises(ValueError, match="chunk"):
        H.backpropagate(h, zs, wavelength=LAM, pixel_size=PX, chunk=0)


@pytest.mark.parametrize("dtype", [np.complex64, np.complex128])
def test_minmax_projection_kernel_equals_the_array_path(dtype):
    from diffimaging._backend import kernels as K
    from diffimaging.holography.backprop import _update_projections_np

    rng = np.random.default_rng(3)
    planes = (0.3 * (rng.standard_normal((5, 17, 23)) + 1j * rng.standard_normal((5, 17, 23)))).astype(dtype)
    planes[2, 3, 4] = planes[1, 3, 4]        # a tie: the first plane wins
    zc = np.linspace(1e-3, 2e-3, 5)
    rdt = np.float32 if dtype == np.complex64 else np.float64
    fused = _update_projections_np(None, planes.copy(), zc, 1.0, rdt)
    fused = _update_projections_np(fused, planes[::-1].copy(), zc + 1e-3, 1.0, rdt)  # a second chunk
    def inten(p):
        re = (p.real + 1.0).astype(rdt)
        im = p.imag.astype(rdt)
        return re * re + im * im

    allv = np.concatenate([inten(planes), inten(planes[::-1])])
    allz = np.concatenate([zc, zc + 1e-3]).astype(rdt)
    np.testing.assert_allclose(fused["min"], allv.min(axis=0), rtol=1e-6)
    np.testing.assert_allclose(fused["max"], allv.max(axis=0), rtol=1e-6)
    np.testing.assert_array_equal(fused["argmin_z"], allz[np.argmin(allv, axis=0)])
    np.testing.assert_array_equal(fused["argmax_z"], allz[np.argmax(allv, axis=0)])
    assert fused["min"].dtype == rdt and K.have_cpu()
    # the array path (a non-contiguous chunk) gives the same maps
    strided = np.empty((5, 17, 46), dtype)[:, :, ::2]
    strided[...] = planes
    ref = _update_projections_np(None, strided, zc, 1.0, rdt)
    one = _update_projections_np(None, planes.copy(), zc, 1.0, rdt)
    for k in ref:
        np.testing.assert_allclose(one[k], ref[k], rtol=1e-6)
