"""The fused real-object ∂H engine (holography._dhfast): operator against the generic
Volume stage, adjoint, distance gradient, kernels, and the solver against the
generic model/solver path."""
import numpy as np
import pytest

import diffimaging as di
from diffimaging._backend import kernels as K
from diffimaging import holography as H
from diffimaging.holography._dhfast import HalfVolume
from diffimaging.holography.fused import model_terms as _model_terms
from diffimaging.optim.losses import get_loss

LAM, PX = 532e-9, 2e-6
# band limit active on these small grids at mm distances; inactive at 0.2-0.3 mm
MASKED = np.array([1.0e-3, 1.2e-3, 1.5e-3])
UNMASKED = np.array([2.0e-4, 3.0e-4])


def _obj(rng, nz, ny, nx, dtype):
    return (-0.4 * rng.random((nz, ny, nx))).astype(dtype)


def _field(hv, o, dz):
    return hv.field(hv.refocus(hv.spectra(o), dz))


def _volume_field(zs, o, dz, linearized=False):
    v = H.Volume(zs, LAM, PX, dz=dz, linearized=linearized)
    out, res = v.forward(np.asarray(o, np.float64), {"dz": dz, "reference": 1.0})
    return v, out, res


@pytest.mark.parametrize("shape", [(24, 24), (25, 31), (32, 20)])
@pytest.mark.parametrize("tables", [False, True])
def test_forward_equals_volume_stage_at_nominal_depths(shape, tables):
    rng = np.random.default_rng(1)
    o = _obj(rng, 3, *shape, np.float64)
    hv = HalfVolume(MASKED, shape, LAM, PX, np.float64)
    hv.build_tables(1 << 30 if tables else 0)
    assert (hv.T is not None) == tables
    _, u, _ = _volume_field(MASKED, o, 0.0)
    s = _field(hv, o, 0.0)
    assert np.max(np.abs(s - (u - 1))) <= 1e-12 * np.max(np.abs(u - 1))


@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-12), (np.float32, 2e-6)])
def test_forward_with_offset_equals_volume_stage_without_band_limit_edge(dtype, tol):
    # where the band limit removes nothing, moving the mask with dz changes nothing:
    # the fused model (mask of the nominal depth) equals the Volume stage exactly
    rng = np.random.default_rng(2)
    o = _obj(rng, 2, 33, 27, dtype)
    hv = HalfVolume(UNMASKED, (33, 27), LAM, PX, dtype)
    hv.build_tables(1 << 30)
    for dz in (7e-6, -11e-6):
        _, u, _ = _volume_field(UNMASKED, o, dz)
        s = _field(hv, o, dz)
        assert s.dtype == (np.complex64 if dtype == np.float32 else np.complex128)
        assert np.max(np.abs(s - (u - 1))) <= tol * np.max(np.abs(u - 1))


def test_offset_keeps_nominal_band_limit_mask():
    # documented difference: with the band limit active the fused model keeps the
    # mask of z_k; the offset moves the phase only (a smooth function of dz)
    rng = np.random.default_rng(3)
    o = _obj(rng, 3, 24, 24, np.float64)
    hv = HalfVolume(MASKED, (24, 24), LAM, PX, np.float64)
    S0 = hv.spectra(o)
    dz = 9e-6
    Sd = hv.refocus(S0, dz)
    # the support of the spectrum is unchanged by the offset
    assert np.array_equal(np.abs(S0[0]) > 0, np.abs(Sd[0]) > 0)
    # and refocusing back is exact
    Sb = hv.refocus(Sd, -dz)
    assert np.max(np.abs(Sb[0] - S0[0])) <= 1e-12 * np.max(np.abs(S0[0]))


@pytest.mark.parametrize("zs", [MASKED, UNMASKED])
@pytest.mark.parametrize("shape", [(24, 24), (21, 30)])
def test_adjoint_dot_and_plane_gradients(zs, shape):
    rng = np.random.default_rng(4)
    nz = zs.size
    o = _obj(rng, nz, *shape, np.float64)
    g = rng.standard_normal(shape) + 1j * rng.standard_normal(shape)
    hv = HalfVolume(zs, shape, LAM, PX, np.float64)
    hv.build_tables(1 << 30)
    for dz in (0.0, 5e-6):
        s = _field(hv, o, dz)
        (A, B), _ = hv.cotangent_spectra(g.real, g.imag, dz)
        go = np.stack([hv.plane_grad(A, B, k) for k in range(nz)])
        lhs = np.real(np.vdot(g, s))                 # Re <g, A o>
        rhs = float(np.sum(go * o))                  # <Re A^H g, o>
        assert abs(lhs - rhs) <= 1e-12 * np.linalg.norm(s) * np.linalg.norm(g) * 10
    # against the Volume stage's VJP (same operator at dz = 0)
    v, _, res = _volume_field(zs, o, 0.0)
    go_ref, _ = v.backward(res, g)
    (A, B), _ = hv.cotangent_spectra(g.real, g.imag, 0.0)
    go = np.stack([hv.plane_grad(A, B, k) for k in range(nz)])
    assert np.max(np.abs(go - go_ref)) <= 1e-12 * np.max(np.abs(go_ref))


@pytest.mark.parametrize("zs", [MASKED, UNMASKED])
@pytest.mark.parametrize("linearized", [False, True])
def test_distance_and_reference_gradients_against_finite_differences(zs, linearized):
    rng = np.random.default_rng(5)
    shape = (26, 22)
    o = _obj(rng, zs.size, *shape, np.float64)
    hv = HalfVolume(zs, shape, LAM, PX, np.float64)
    h = 1.0 + 0.2 * rng.standard_normal(shape)
    loss = get_loss("l2")
    S0 = hv.spectra(o)
    dz, r = 4e-6, 1.05

    def f(dz_, r_):
        return _model_terms(hv, hv.refocus(S0, dz_), r_, h, loss, linearized)[0]

    _, gr, gi, g_ref = _model_terms(hv, hv.refocus(S0, dz), r, h, loss, linearized)
    _, (A0, B0) = hv.cotangent_spectra(gr, gi, dz)
    g_dz = hv.dz_grad(A0, B0, hv.refocus(S0, dz))
    e = 1e-8
    fd_dz = (f(dz + e, r) - f(dz - e, r)) / (2 * e)
    fd_r = (f(dz, r + 1e-6) - f(dz, r - 1e-6)) / 2e-6
    assert abs(g_dz - fd_dz) <= 1e-6 * max(abs(fd_dz), 1.0)
    assert abs(g_ref - fd_r) <= 1e-6 * max(abs(fd_r), 1.0)
    # and the plane gradients against finite differences of the loss in o
    (A, B), _ = hv.cotangent_spectra(gr, gi, dz)
    k, i, j = 1, 7, 9
    gk = hv.plane_grad(A, B, k)
    op, om = o.copy(), o.copy()
    op[k, i, j] += 1e-6
    om[k, i, j] -= 1e-6

    def fo(oo):
        return _model_terms(hv, hv.refocus(hv.spectra(oo), dz), r, h, loss, linearized)[0]

    fd_o = (fo(op) - fo(om)) / 2e-6
    assert abs(gk[i, j] - fd_o) <= 1e-6 * max(abs(fd_o), 1.0)


def test_gabor_forward_equals_linearised_volume_stage():
    rng = np.random.default_rng(6)
    o = _obj(rng, 2, 30, 30, np.float64)
    hv = HalfVolume(UNMASKED, (30, 30), LAM, PX, np.float64)
    h = np.ones((30, 30))
    for dz in (0.0, 6e-6):
        _, I_ref, _ = _volume_field(UNMASKED, o, dz, linearized=True)
        S = hv.refocus(hv.spectra(o), dz)
        sr = hv.field(S, real_only=True)
        assert np.max(np.abs((1 + 2 * sr) - I_ref)) <= 1e-12
        f, _, _, _ = _model_terms(hv, S, 1.0, h, get_loss("l2"), True)
        assert abs(f - 0.5 * np.sum((I_ref - h) ** 2)) <= 1e-12 * max(f, 1.0)


@pytest.mark.parametrize("dtype", [np.complex64, np.complex128])
def test_table_kernels_equal_on_the_fly_kernels(dtype):
    rng = np.random.default_rng(7)
    hv = HalfVolume(MASKED, (20, 26), LAM, PX, np.float32 if dtype == np.complex64 else np.float64)
    hv.build_tables(1 << 30)
    shp = (hv.my, hv.nxh)
    O = (rng.standard_normal(shp) + 1j * rng.standard_normal(shp)).astype(dtype)
    B = (rng.standard_normal(shp) + 1j * rng.standard_normal(shp)).astype(dtype)
    tol = 1e-6 if dtype == np.complex64 else 1e-14
    for k, z in enumerate(MASKED):
        s1 = [np.zeros(shp, dtype) for _ in range(2)]
        s2 = [np.zeros(shp, dtype) for _ in range(2)]
        K.dh_accumulate(O, s1[0], s1[1], hv.plan, float(z), float(z), accumulate=False)
        K.dh_accumulate_table(O, hv.T[k], s2[0], s2[1], accumulate=False)
        assert np.max(np.abs(s1[0] - s2[0])) <= tol * 10 and np.max(np.abs(s1[1] - s2[1])) <= tol * 10
        # Re(H) O + i Im(H) O = H O: the pair holds H
        Hk = hv.T[k]
        assert np.allclose(s2[0] + 1j * s2[1], Hk * O, atol=tol * 10)
        c1, c2 = np.empty(shp, dtype), np.empty(shp, dtype)
        K.dh_backproject(O, B, c1, hv.plan, float(z), float(z))
        K.dh_backproject_table(O, B, hv.T[k], c2)
        assert np.allclose(c1, c2, atol=tol * 10)
        assert np.allclose(c2, Hk.real * O + Hk.imag * B, atol=tol * 10)
        K.dh_backproject_table(O, None, hv.T[k], c2)
        assert np.allclose(c2, Hk.real * O, atol=tol * 10)
    # band limit: rows and columns outside it are zero in the table
    assert np.any(hv.T[-1] == 0)


@pytest.mark.parametrize("dtype", [np.complex64, np.complex128])
@pytest.mark.parametrize("shape", [(20, 26), (70, 90)])
def test_batched_table_kernels_equal_plane_by_plane(dtype, shape):
    # a batch of planes (b, my, nxh) in one call: the sum over the batch, and each
    # plane's back-projection, as one plane at a time (blocks of the cache loop
    # cross the plane size on the larger grid)
    rng = np.random.default_rng(8)
    zs = np.linspace(2e-4, 6e-4, 5)
    hv = HalfVolume(zs, shape, LAM, PX, np.float32 if dtype == np.complex64 else np.float64)
    hv.build_tables(1 << 30)
    shp = (zs.size, hv.my, hv.nxh)
    O = (rng.standard_normal(shp) + 1j * rng.standard_normal(shp)).astype(dtype)
    A, B = ((rng.standard_normal(shp[1:]) + 1j * rng.standard_normal(shp[1:])).astype(dtype)
            for _ in range(2))
    tol = (1e-5 if dtype == np.complex64 else 1e-13) * np.sqrt(zs.size)
    for k0, kb in ((0, 5), (1, 3), (4, 1)):
        ref = [np.full(shp[1:], 0.5, dtype) for _ in range(2)]
        got = [r.copy() for r in ref]
        for k in range(k0, k0 + kb):
            K.dh_accumulate_table(O[k], hv.T[k], ref[0], ref[1], accumulate=True)
        K.dh_accumulate_table(O[k0:k0 + kb], hv.T[k0:k0 + kb], got[0], got[1], accumulate=True)
        for r, g in zip(ref, got):
            assert np.max(np.abs(r - g)) <= tol * np.max(np.abs(r))
        # accumulate=False: the batch overwrites the sums
        K.dh_accumulate_table(O[k0:k0 + kb], hv.T[k0:k0 + kb], got[0], got[1], accumulate=False)
        expect = np.sum(hv.T[k0:k0 + kb].real * O[k0:k0 + kb], axis=0)
        assert np.max(np.abs(got[0] - expect)) <= tol * np.max(np.abs(expect))
        for b in (B, None):
            C = np.empty((kb,) + shp[1:], dtype)
            K.dh_backproject_table(A, b, hv.T[k0:k0 + kb], C)
            for j in range(kb):
                c1 = np.empty(shp[1:], dtype)
                K.dh_backproject_table(A, b, hv.T[k0 + j], c1)
                assert np.array_equal(C[j], c1)
    with pytest.raises(ValueError, match="shape of the planes"):
        K.dh_accumulate_table(O[:2], hv.T[:3], got[0], got[1], accumulate=True)
    with pytest.raises(ValueError, match="C-contiguous"):
        K.dh_backproject_table(A, B, hv.T[::2], np.empty((3,) + shp[1:], dtype))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [7, 1000, 300001])
def test_prox_step_kernel(dtype, n):
    rng = np.random.default_rng(8)
    x = (-rng.random(n)).astype(dtype)
    xp = (-rng.random(n)).astype(dtype)
    g = rng.standard_normal(n).astype(dtype)
    out = np.empty(n, dtype)
    beta, a, shift = 0.3, 0.7, 0.05
    sums = K.prox_step(x, xp, g, out, beta, a, shift, -1.0, 0.0)
    y = x.astype(np.float64) + beta * (x.astype(np.float64) - xp)
    ref = np.clip(y - a * g + shift, -1.0, 0.0)
    tol = 1e-6 if dtype == np.float32 else 1e-13
    assert np.max(np.abs(out - ref)) <= tol
    d = ref - y
    assert np.allclose(sums, (np.sum(g * d), np.sum(d * d), np.sum(ref)), rtol=1e-4 if dtype == np.float32 else 1e-10,
                       atol=1e-3 if dtype == np.float32 else 1e-9)
    sums0 = K.prox_step(x, None, g, out, 0.0, a, shift, -1.0, 0.0)
    assert np.max(np.abs(out - np.clip(x - a * g + shift, -1.0, 0.0))) <= tol
    assert np.isclose(sums0[2], np.sum(out, dtype=np.float64), rtol=1e-5)


def _case(n=64, count=5, nz=11, seed=0):
    rng = np.random.default_rng(seed)
    z = np.linspace(1e-3, 2e-3, nz)
    pos = np.column_stack([rng.uniform(10, n - 10, count) * PX, rng.uniform(10, n - 10, count) * PX,
                           z[rng.integers(1, nz - 1, count)]])
    tab = H.ParticleTable(pos, np.full(count, 10e-6))
    holo, truth = H.simulate_particles((n, n), tab, wavelength=LAM, pixel_size=PX, gaussian_noise=0.005,
                                       seed=seed + 1)
    return holo, truth, z


def test_fused_solver_matches_generic_path_and_finds_particles():
    holo, truth, z = _case()
    kw = dict(wavelength=LAM, pixel_size=PX, iterations=60)
    rf = H.reconstruct(holo, z, engine="fused", **kw)
    rg = H.reconstruct(holo, z, engine="generic", **kw)
    # same keys as the generic history, plus the evaluation count
    for key in ("loss", "fidelity", "regularizer", "step", "time"):
        assert len(rf.history[key]) == len(rf.history["loss"]) > 0
    assert set(rf.history["params"]) == set(rg.history["params"]) == {"volume.dz", "volume.reference"}
    # the same problem: the fused objective is as low as the generic one (a few %)
    lf, lg = rf.history["loss"][-1], rg.history["loss"][-1]
    assert lf <= 1.05 * lg
    # and far below the start (the first iterate's objective)
    assert lf < 0.3 * rf.history["loss"][0]
    assert rf.object.dtype == holo.dtype and rf.object.shape == (z.size,) + holo.shape
    assert np.all(rf.object <= 0) and np.all(rf.object >= -1)
    m = H.match(H.find_particles(rf), truth, 2 * PX, 30e-6)
    assert m.recall >= 0.8 and m.precision >= 0.8
    assert abs(rf.dz) <= 0.5 * (z[1] - z[0])


def test_fused_solver_poisson_and_gabor_decrease():
    holo, truth, z = _case(seed=3)
    for model, loss in (("gabor", "l2"), ("born", "poisson")):
        r = H.reconstruct(holo, z, wavelength=LAM, pixel_size=PX, iterations=15, model=model, loss=loss,
                          engine="fused")
        assert r.history["loss"][-1] < r.history["loss"][0]
        # function-value restart keeps the recorded objective non-increasing
        assert np.all(np.diff(r.history["loss"]) <= 1e-9 * abs(r.history["loss"][0]))


def test_fused_solver_float32_stays_float32_and_callback_stops():
    holo, _, z = _case(seed=5)
    h32 = holo.astype(np.float32)
    seen = []

    def cb(it, x, params, rec):
        seen.append((it, float(params["volume.dz"]), rec["loss"]))
        return it >= 4

    r = H.reconstruct(h32, z, wavelength=LAM, pixel_size=PX, iterations=50, engine="fused", callback=cb)
    assert r.object.dtype == np.float32
    assert len(seen) == 4 == len(r.history["loss"])


def test_fused_learns_distance_of_a_planar_sample():
    # one plane: the distance is identifiable; the global stage then the fused solver
    rng = np.random.default_rng(11)
    n, z_true = 64, 1.5e-3
    pos = np.column_stack([rng.uniform(8, n - 8, 6) * PX, rng.uniform(8, n - 8, 6) * PX,
                           np.full(6, z_true)])
    holo, _ = H.simulate_particles((n, n), H.ParticleTable(pos, np.full(6, 10e-6)), wavelength=LAM,
                                   pixel_size=PX, gaussian_noise=0.002, seed=2)
    nominal = np.array([z_true * 1.03])
    r = H.reconstruct(holo, nominal, wavelength=LAM, pixel_size=PX, iterations=80, engine="fused")
    assert abs(r.z[0] - z_true) <= 0.01 * z_true


def test_engine_errors():
    holo, _, z = _case(n=32, count=2, nz=3)
    with pytest.raises(ValueError, match="engine"):
        H.reconstruct(holo, z, wavelength=LAM, pixel_size=PX, engine="gpu")
    with pytest.raises(ValueError, match="engine='fused' needs"):
        H.reconstruct(holo, z, wavelength=LAM, pixel_size=PX, engine="fused", object="complex")
    with pytest.raises(ValueError, match="engine='fused' needs"):
        H.reconstruct(holo, z, wavelength=LAM, pixel_size=PX, engine="fused", tv=1e-3)
    with pytest.raises(TypeError):
        HalfVolume(z, (32, 32), LAM, PX, np.int32)


# ------------------------------------------------------------ the reach grid

def test_reach_grid_sizes():
    from diffimaging.holography._dhfast import REACH_MARGIN, reach_grid

    # 1024^2, 2 um pixels, 5 mm: the kernel reaches ~339 px; the doubled grid is 2048
    my, mx = reach_grid((1024, 1024), 5e-3, LAM, (PX, PX))
    fresnel_px = np.sqrt(LAM * 5e-3) / PX
    assert my == mx and 1024 + 339 + REACH_MARGIN * fresnel_px <= my < 1500
    # non-square pixels and images: each axis on its own
    gy, gx = reach_grid((300, 800), 1e-3, LAM, (PX, 1.5 * PX))
    assert 300 + 67 <= gy < 600 and 800 + 30 <= gx < 900
    # a reach longer than the image: the doubled grid of propagate(pad=True)
    assert reach_grid((64, 64), 2e-3, LAM, (PX, PX)) == (128, 128)
    # Fresnel: paraxial reach lambda z f_Nyquist
    fy, _ = reach_grid((1024, 1024), 5e-3, LAM, (PX, PX), method="fresnel")
    assert 1024 + 332 + REACH_MARGIN * fresnel_px <= fy <= my
    # the smaller grid never moves the band limit below the Nyquist frequency
    from diffimaging.ops.propagate import band_limit_freq
    for n, z in ((1024, 5e-3), (512, 5e-3), (256, 1e-3), (200, 2e-3)):
        g, _ = reach_grid((n, n), z, LAM, (PX, PX))
        assert band_limit_freq("asm", LAM, g, PX, z) >= 0.5 / PX or g >= 2 * n


def test_reach_grid_field_is_a_linear_convolution():
    # the field on the reach grid against a 4x grid (the unbounded convolution up to
    # the kernel tails) is as close as the doubled grid's; on a grid short of the
    # reach the wrapped fringes make it far worse
    rng = np.random.default_rng(4)
    n, zs = 128, np.array([3e-4, 5e-4])
    o = np.zeros((2, n, n))
    for _ in range(40):
        i, j = rng.integers(0, n - 3, 2)
        o[rng.integers(2), i:i + 3, j:j + 3] = -1.0
    ref = HalfVolume(zs, (n, n), LAM, PX, np.float64, pad=(4 * n, 4 * n))
    s_ref = _field(ref, o, 0.0)

    def err(hv):
        s = _field(hv, o, 0.0)
        return np.sqrt(np.mean(np.abs(s - s_ref) ** 2) / np.mean(np.abs(s_ref) ** 2))

    reach = HalfVolume(zs, (n, n), LAM, PX, np.float64, pad="reach")
    double = HalfVolume(zs, (n, n), LAM, PX, np.float64)
    assert reach.my < double.my == 256
    e_reach, e_double = err(reach), err(double)
    assert e_reach <= 3.0 * e_double and e_reach < 1e-2
    short = HalfVolume(zs, (n, n), LAM, PX, np.float64, pad=(n + 12, n + 12))
    assert err(short) > 5 * e_reach
    # the operator on the reach grid keeps its adjoint
    rng2 = np.random.default_rng(5)
    g = rng2.standard_normal((n, n)) + 1j * rng2.standard_normal((n, n))
    s = _field(reach, o, 0.0)
    (A, B), _ = reach.cotangent_spectra(g.real.copy(), g.imag.copy(), 0.0)
    back = np.stack([reach.plane_grad(A, B, k) for k in range(2)])
    lhs = np.sum(s.real * g.real + s.imag * g.imag)
    assert abs(lhs - np.sum(back * o)) <= 1e-10 * np.linalg.norm(s) * np.linalg.norm(g)


def test_reach_grid_solver_matches_doubled_grid():
    # reconstruct's default (reach) against the Volume stage's doubled grid: the same
    # particles, the objective within 1 %
    from diffimaging.holography.fused import FusedVolumeProblem
    from diffimaging.optim import FISTA, run

    n, nz = 128, 9
    rng = np.random.default_rng(7)
    z = np.linspace(3e-4, 7e-4, nz)
    pos = np.column_stack([rng.uniform(4, n - 4, 12) * PX, rng.uniform(4, n - 4, 12) * PX,
                           z[rng.integers(1, nz - 1, 12)]])
    holo, truth = H.simulate_particles((n, n), H.ParticleTable(pos, np.full(12, 8e-6)), wavelength=LAM,
                                       pixel_size=PX, gaussian_noise=0.005, seed=8)
    out = {}
    for pad in ("reach", "double"):
        prob = FusedVolumeProblem(holo, z, wavelength=LAM, pixel_size=PX, dz_bounds=(-2e-5, 2e-5), pad=pad)
        res = run(FISTA(), prob, prob.start(reference=1.0), iterations=60)
        out[pad] = (prob.hv.my, res)
    assert out["reach"][0] < out["double"][0]
    lr, ld = out["reach"][1].history["loss"][-1], out["double"][1].history["loss"][-1]
    assert abs(lr - ld) <= 0.01 * ld
    rec = H.reconstruct(holo, z, wavelength=LAM, pixel_size=PX, iterations=60, dz_range=(-2e-5, 2e-5))
    m = H.match(H.find_particles(rec), truth, 2 * PX, 30e-6)
    assert m.recall >= 0.9 and m.precision >= 0.9


def test_pad_errors():
    with pytest.raises(ValueError, match="pad must be"):
        HalfVolume(UNMASKED, (32, 32), LAM, PX, np.float64, pad="triple")
    with pytest.raises(ValueError, match="pad must be"):
        HalfVolume(UNMASKED, (32, 32), LAM, PX, np.float64, pad=(16, 64))
