"""Particle motion (holography.motion), PIV on a solid rotation and PTV on noisy
detections (solid rotation, Lamb–Oseen vortex) at 1e-3 particles per pixel."""
import numpy as np
import pytest

from diffimaging import holography as H
from diffimaging.holography import motion as M
from diffimaging.holography.analysis.ptv import predictor_from_links, predictor_from_piv

PX = 2e-6  # lateral pixel, metres


# -- fields ---------------------------------------------------------------------------------

def test_uniform_field_and_move_particles():
    d = np.array([1e-6, -2e-6, 3e-6])
    f = M.uniform(d)
    p = np.random.default_rng(0).uniform(0, 1e-3, (5, 3))
    np.testing.assert_array_equal(f(p), np.tile(d, (5, 1)))
    np.testing.assert_allclose(f.displacement(p, 2.5), np.tile(2.5 * d, (5, 1)))
    tab = H.ParticleTable(p, np.full(5, 10e-6))
    seq = M.move_particles(tab, f, frames=4, dt=0.5)
    assert len(seq) == 4 and all(isinstance(t, H.ParticleTable) for t in seq)
    for k, t in enumerate(seq):
        np.testing.assert_allclose(t.positions, p + 0.5 * k * d, rtol=0, atol=1e-18)
        np.testing.assert_array_equal(t.diameters, tab.diameters)
    assert seq[0].positions is not tab.positions  # frame 0 is a copy
    # (positions, diameters) pairs are tables too
    seq2 = M.move_particles((p, 10e-6), f, frames=2)
    np.testing.assert_allclose(seq2[1].positions, p + d)


@pytest.mark.parametrize("axis, frm, to", [("z", 0, 1), ("y", 1, 2), ("x", 2, 0)])
def test_solid_rotation_is_exact(axis, frm, to):
    centre = np.array([300e-6, 200e-6, 2e-3])
    ang = 0.3
    f = M.solid_rotation(ang, centre, axis)
    # a quarter turn maps the +frm offset onto the +to offset (sense of rotation)
    e = np.zeros(3)
    e[frm] = 50e-6
    q = M.move_particles(H.ParticleTable(centre + e[None], [1e-5]), f, frames=2, dt=(np.pi / 2) / ang)
    want = np.zeros(3)
    want[to] = 50e-6
    np.testing.assert_allclose(q[1].positions[0] - centre, want, atol=1e-16)
    # random points: distance to the axis kept, coordinate along the axis kept, exact angle
    rng = np.random.default_rng(1)
    p = centre + rng.uniform(-1e-3, 1e-3, (200, 3))
    seq = M.move_particles(H.ParticleTable(p, np.full(200, 1e-5)), f, frames=3)
    ax = 3 - frm - to  # the remaining coordinate
    for k in (1, 2):
        r0 = p - centre
        r1 = seq[k].positions - centre
        np.testing.assert_allclose(r1[:, ax], r0[:, ax], atol=1e-18)
        np.testing.assert_allclose(np.hypot(r1[:, frm], r1[:, to]), np.hypot(r0[:, frm], r0[:, to]),
                                   rtol=1e-13)
        turned = np.arctan2(r1[:, to], r1[:, frm]) - np.arctan2(r0[:, to], r0[:, frm])
        np.testing.assert_allclose(np.angle(np.exp(1j * turned)), k * ang, atol=1e-12)
    # the velocity is omega x r: the limit of displacement / t
    t = 1e-6
    np.testing.assert_allclose(f.displacement(p, t) / t, f(p), rtol=0, atol=1e-9)  # |v| ~ 3e-4
    v = f(p)
    assert np.allclose(v[:, ax], 0) and np.allclose(np.sum(v * (p - centre), axis=1), 0, atol=1e-20)


@pytest.mark.parametrize("model", ["lamb-oseen", "rankine"])
def test_vortex_profile(model):
    rc, gam = 100e-6, 2e-9  # m, m^2 per frame
    c = (500e-6, 400e-6)
    f = M.vortex(gam, rc, c, model=model)
    r = np.array([0.3, 1.0, 1.1209, 3.0, 10.0]) * rc
    v = f.speed(r)
    g = gam / (2 * np.pi)
    if model == "lamb-oseen":
        want = g / r * (1 - np.exp(-(r / rc) ** 2))
        peak_r = 1.120906 * rc
    else:
        want = np.where(r <= rc, g * r / rc ** 2, g / r)
        peak_r = rc
    np.testing.assert_allclose(v, want, rtol=1e-12)
    np.testing.assert_allclose(f.speed(10 * rc), g / (10 * rc), rtol=1e-12)
    rr = np.linspace(1e-7, 5 * rc, 200001)
    np.testing.assert_allclose(rr[np.argmax(f.speed(rr))], peak_r, rtol=1e-3)
    np.testing.assert_allclose(f.speed(peak_r), f.peak_speed, rtol=1e-9)
    # strength given as the peak speed
    f2 = M.vortex(peak_speed=f.peak_speed, core_radius=rc, centre=c, model=model)
    np.testing.assert_allclose(f2.circulation, gam, rtol=1e-9)
    # velocity field: azimuthal, +y towards +x, of the profile's magnitude, planar
    rng = np.random.default_rng(2)
    p = np.column_stack([c[0] + rng.uniform(-4, 4, 50) * rc, c[1] + rng.uniform(-4, 4, 50) * rc,
                         rng.uniform(1e-3, 3e-3, 50)])
    u = f(p)
    dy, dx = p[:, 0] - c[0], p[:, 1] - c[1]
    np.testing.assert_allclose(np.hypot(u[:, 0], u[:, 1]), f.speed(np.hypot(dy, dx)), rtol=1e-12)
    np.testing.assert_allclose(u[:, 0] * dy + u[:, 1] * dx, 0, atol=1e-22)
    assert np.all(dy * u[:, 1] - dx * u[:, 0] > 0) and np.all(u[:, 2] == 0)
    # moved exactly along circles, by v(r) / r radians per frame
    q = M.move_particles(H.ParticleTable(p, np.full(50, 1e-5)), f, frames=2, dt=3.0)[1].positions
    qy, qx = q[:, 0] - c[0], q[:, 1] - c[1]
    np.testing.assert_allclose(np.hypot(qy, qx), np.hypot(dy, dx), rtol=1e-13)
    turned = np.angle(np.exp(1j * (np.arctan2(qx, qy) - np.arctan2(dx, dy))))
    np.testing.assert_allclose(turned, 3.0 * f.angular_velocity(np.hypot(dy, dx)), atol=1e-12)


def test_user_callable_is_integrated_with_rk4():
    rot = M.solid_rotation(0.2, (0.0, 0.0, 0.0))
    p = np.random.default_rng(3).uniform(-1e-3, 1e-3, (20, 3))
    exact = M.move_particles((p, 1e-5), rot, frames=2)[1].positions
    plain = lambda q: rot.velocity(q)  # noqa: E731  (not a Field: integrated numerically)
    err = [np.abs(M.move_particles((p, 1e-5), plain, frames=2, substeps=s)[1].positions - exact).max()
           for s in (1, 2, 4)]
    assert err[2] < 2e-11  # 1e-8 of the ~1 mm radius
    # fourth order: halving the step divides the error by ~2^4 (Euler: 2, RK2: 4)
    assert 12 < err[0] / err[1] < 20 and 12 < err[1] / err[2] < 20


def test_simulate_sequence_shapes_and_seeds():
    tab = H.random_particles((48, 48), PX, count=3, z_range=(1e-3, 1.5e-3), margin=10 * PX, seed=0)
    kw = dict(wavelength=532e-9, pixel_size=PX, gaussian_noise=0.01)
    still = M.uniform((0.0, 0.0, 0.0))
    h, truth = M.simulate_sequence((48, 48), tab, still, frames=3, seed=7, **kw)
    assert h.shape == (3, 48, 48) and h.dtype == np.float64 and len(truth) == 3
    # the same particles, different noise per frame; reproducible from the seed
    assert np.std(h[1] - h[0]) > 0.005 and np.std(h[2] - h[1]) > 0.005
    h2, _ = M.simulate_sequence((48, 48), tab, still, frames=3, seed=7, **kw)
    np.testing.assert_array_equal(h, h2)
    h3, _ = M.simulate_sequence((48, 48), tab, still, frames=3, seed=8, **kw)
    assert not np.array_equal(h, h3)
    # noiseless frames of moving particles: each frame is simulate_particles of its truth
    move = M.uniform((3 * PX, -2 * PX, 0.0))
    hb, tb = M.simulate_sequence((48, 48), tab, move, frames=2, bin_factor=2, wavelength=532e-9,
                                 pixel_size=PX)
    assert hb.shape == (2, 24, 24)
    np.testing.assert_allclose(tb[1].positions, tab.positions + [3 * PX, -2 * PX, 0.0], atol=1e-18)
    ref, _ = H.simulate_particles((48, 48), tb[1], wavelength=532e-9, pixel_size=PX, bin_factor=2)
    np.testing.assert_allclose(hb[1], ref, atol=1e-12)
    assert np.abs(hb[1] - hb[0]).max() > 0.05


# -- PIV on a simulated solid-body rotation -------------------------------------------------

SHAPE = (48, 64, 64)          # (nz, ny, nx) voxels
VOX = (4e-6, 2e-6, 2e-6)      # (dz, dy, dx) voxel pitch, metres
Z0 = 1e-3                     # depth of plane 0, metres


def _render(positions, sigma=1.0):
    """Particle volume: a 3-D Gaussian blob (sigma voxels) per particle; voxel
    (k, i, j) sits at (y, x, z) = (i dy, j dx, Z0 + k dz)."""
    c = np.column_stack([(positions[:, 2] - Z0) / VOX[0], positions[:, 0] / VOX[1],
                         positions[:, 1] / VOX[2]])
    vol = np.zeros(SHAPE)
    r = int(np.ceil(3 * sigma))
    off = np.arange(-r, r + 1)
    for p in c:
        base = np.floor(p).astype(int)
        idx = [base[k] + off for k in range(3)]
        ok = [(i >= 0) & (i < n) for i, n in zip(idx, SHAPE)]
        if not all(o.any() for o in ok):
            continue
        g = [np.exp(-0.5 * ((idx[k][ok[k]] - p[k]) / sigma) ** 2) for k in range(3)]
        vol[np.ix_(idx[0][ok[0]], idx[1][ok[1]], idx[2][ok[2]])] += (
            g[0][:, None, None] * g[1][None, :, None] * g[2][None, None, :])
    return vol


def _rotation_case(axis, angle, seed=0, n=1500):
    rng = np.random.default_rng(seed)
    ext = np.array([SHAPE[1] * VOX[1], SHAPE[2] * VOX[2], SHAPE[0] * VOX[0]])
    pos = np.column_stack([rng.uniform(-0.2, 1.2, n) * ext[0], rng.uniform(-0.2, 1.2, n) * ext[1],
                           Z0 + rng.uniform(-0.2, 1.2, n) * ext[2]])
    centre = np.array([ext[0] / 2, ext[1] / 2, Z0 + ext[2] / 2])
    f = M.solid_rotation(angle, centre, axis)
    seq = M.move_particles(H.ParticleTable(pos, np.full(n, 1e-5)), f, frames=2)
    va, vb = _render(seq[0].positions), _render(seq[1].positions)
    va += rng.normal(0, 0.02, SHAPE)  # 2 % of a blob's peak
    vb += rng.normal(0, 0.02, SHAPE)
    return f, va, vb


def _truth_voxels(f, centers):
    """The rotation's displacement (dz, dy, dx) in voxels of the particle whose midpoint
    is at each window centre (what a symmetric window-deformation PIV measures; it
    differs from the chord at the centre by O(angle^2 r) ~ 0.03 voxel here)."""
    c = centers.reshape(-1, 3)
    m = np.column_stack([c[:, 1] * VOX[1], c[:, 2] * VOX[2], Z0 + c[:, 0] * VOX[0]])
    p = m.copy()
    for _ in range(40):
        p = m - 0.5 * f.displacement(p)
    d = f.displacement(p)
    return np.column_stack([d[:, 2] / VOX[0], d[:, 0] / VOX[1], d[:, 1] / VOX[2]])


@pytest.mark.parametrize("axis", ["z", "x"])
def test_piv_solid_rotation_rmse(axis):
    # 0.08 rad per frame: up to 2.7 voxels at the window centres about z; about x the y
    # displacement changes by 0.16 voxel per voxel in z (dz = 2 dy), a strong shear
    # inside each 16^3 window
    f, va, vb = _rotation_case(axis, 0.08)
    r = H.piv(va, vb, (16, 16, 16), 0.5, passes=3)
    truth = _truth_voxels(f, r.centers)
    err = r.displacement.reshape(-1, 3) - truth
    rmse = float(np.sqrt(np.mean(np.sum(err ** 2, axis=1))))
    assert np.linalg.norm(truth, axis=1).max() > 2.5
    assert rmse <= 0.2, rmse                  # the target (measured: ~0.03 voxel)
    assert rmse <= 0.08, rmse                 # what window deformation achieves here
    chord = f.displacement(np.column_stack([r.centers.reshape(-1, 3)[:, 1] * VOX[1],
                                            r.centers.reshape(-1, 3)[:, 2] * VOX[2],
                                            Z0 + r.centers.reshape(-1, 3)[:, 0] * VOX[0]]))
    chord = np.column_stack([chord[:, 2] / VOX[0], chord[:, 0] / VOX[1], chord[:, 1] / VOX[2]])
    rmse_chord = float(np.sqrt(np.mean(np.sum((r.displacement.reshape(-1, 3) - chord) ** 2, axis=1))))
    assert rmse_chord <= 0.2, rmse_chord      # against the analytic displacement at the centres
    assert not r.outlier.any()                # a linear field passes the (extrapolated) median test
    # a single plain pass is biased towards zero and loses pairs in the shear
    r1 = H.piv(va, vb, (16, 16, 16), 0.5)
    rmse1 = float(np.sqrt(np.mean(np.sum((r1.displacement.reshape(-1, 3) - truth) ** 2, axis=1))))
    assert rmse1 > 2 * rmse


def test_piv_predictor_forms_and_interpolation():
    f, va, vb = _rotation_case("z", 0.06, seed=1, n=1200)
    coarse = H.piv(va, vb, (16, 32, 32), 0.5, passes=2)
    fine = H.piv(va, vb, (16, 16, 16), 0.5, predictor=coarse, passes=2)
    truth = _truth_voxels(f, fine.centers)
    rmse = np.sqrt(np.mean(np.sum((fine.displacement.reshape(-1, 3) - truth) ** 2, axis=1)))
    assert rmse <= 0.1, rmse
    # a callable predictor (the exact field) and an array on the centres give the same vectors
    exact = truth.reshape(fine.displacement.shape)
    r_call = H.piv(va, vb, (16, 16, 16), 0.5, predictor=lambda c: exact.reshape(-1, 3))
    r_arr = H.piv(va, vb, (16, 16, 16), 0.5, predictor=exact)
    np.testing.assert_allclose(r_call.displacement, r_arr.displacement)
    assert np.sqrt(np.mean(np.sum((r_arr.displacement - exact) ** 2, axis=-1))) < 0.08
    # interpolation of a linear field is exact inside and linearly extrapolated to the edges
    G = np.array([[0.0, 0.0, 0.0], [0.01, 0.0, -0.05], [0.02, 0.05, 0.0]])  # d = G @ (z, y, x)
    lin = np.einsum("ij,...j->...i", G, fine.centers) + [0.1, 0.2, 0.3]
    res = H.PIVResult(fine.centers, lin, fine.peak_ratio, fine.outlier)
    pts = np.random.default_rng(4).uniform(0, 1, (100, 3)) * (np.array(SHAPE) - 1)
    np.testing.assert_allclose(res.interpolate(pts), pts @ G.T + [0.1, 0.2, 0.3], atol=1e-12)
    with pytest.raises(ValueError, match="predictor"):
        H.piv(va, vb, (16, 16, 16), 0.5, predictor=np.zeros((2, 3)))


def test_predictor_from_piv_maps_voxels_to_metres():
    f = M.solid_rotation(0.04, (64e-6, 64e-6, Z0 + 96e-6))
    centers = np.stack(np.meshgrid(np.arange(7.5, 48, 8), np.arange(7.5, 64, 8), np.arange(7.5, 64, 8),
                                   indexing="ij"), axis=-1)
    disp = _truth_voxels(f, centers).reshape(centers.shape)
    res = H.PIVResult(centers, disp, np.ones(centers.shape[:3]), np.zeros(centers.shape[:3], bool))
    pred = predictor_from_piv(res, VOX, origin=(0.0, 0.0, Z0))
    p = np.random.default_rng(5).uniform(0.1, 0.9, (50, 3)) * [128e-6, 128e-6, 192e-6] + [0, 0, Z0]
    # the midpoint field is linear in the position: the prediction is the rotation's chord
    np.testing.assert_allclose(pred(p), f.displacement(p), rtol=0, atol=2e-9)  # < 1e-3 px
    with pytest.raises(ValueError, match="voxel_size"):
        predictor_from_piv(res, (1e-6, 1e-6))
    with pytest.raises(ValueError, match="PIVResult"):
        predictor_from_piv(disp, VOX)


# -- PTV on noisy detections at 1e-3 ppp ----------------------------------------------------

N_PX = 512
L = N_PX * PX


def _detections(table, rng):
    """Detected particles: 0.3 px lateral and 3 um axial jitter, 5 % dropped, 5 %
    spurious (uniform in the volume); returns positions and true ids (-1: spurious)."""
    n = len(table)
    keep = rng.random(n) > 0.05
    pos = table.positions[keep] + rng.normal(0, 1, (keep.sum(), 3)) * [0.3 * PX, 0.3 * PX, 3e-6]
    ids = np.flatnonzero(keep)
    ns = rng.binomial(n, 0.05)
    spur = np.column_stack([rng.uniform(0, L, ns), rng.uniform(0, L, ns), rng.uniform(1e-3, 3e-3, ns)])
    pos = np.vstack([pos, spur])
    ids = np.concatenate([ids, -np.ones(ns, int)])
    perm = rng.permutation(len(pos))
    return pos[perm], ids[perm]


def _ptv_case(field, seed):
    tab = H.random_particles((N_PX, N_PX), PX, ppp=1e-3, z_range=(1e-3, 3e-3), seed=seed)
    seq = M.move_particles(tab, field, frames=2)
    rng = np.random.default_rng(seed + 100)
    (pa, ia), (pb, ib) = _detections(seq[0], rng), _detections(seq[1], rng)
    linkable = len(np.intersect1d(ia[ia >= 0], ib[ib >= 0]))
    return pa, ia, pb, ib, linkable


def _score(links, ia, ib, linkable):
    a, b = ia[links.pairs[:, 0]], ib[links.pairs[:, 1]]
    ok = (a == b) & (a >= 0)
    return float(ok.mean()), len(links.pairs) / linkable


@pytest.mark.parametrize("name", ["rotation", "vortex"])
def test_ptv_rotation_and_vortex(name):
    if name == "rotation":  # up to 36 um (18 px) per frame at the corners
        field = M.solid_rotation(0.05, (L / 2, L / 2, 2e-3))
    else:                   # Lamb–Oseen, up to 30 um per frame at 1.12 x 250 um
        field = M.vortex(peak_speed=30e-6, core_radius=L / 4, centre=(L / 2, L / 2))
    pa, ia, pb, ib, linkable = _ptv_case(field, seed=10 if name == "rotation" else 11)
    assert 230 <= linkable <= 262
    # plain nearest-neighbour assignment with a search radius above the largest motion
    links = H.link(pa, pb, 45e-6)
    correct, found = _score(links, ia, ib, linkable)
    assert correct >= 0.9 and found >= 0.9, (correct, found)
    # refined: the robust local-affine predictor from the first links and a 6 um radius
    ref = H.link(pa, pb, 3 * PX, max_axial_distance=15e-6, predictor=predictor_from_links(links, k=8))
    correct2, found2 = _score(ref, ia, ib, linkable)
    assert correct2 >= 0.97 and found2 >= 0.9, (correct2, found2)
    # a search radius below the motion misses the fast particles without a predictor
    assert _score(H.link(pa, pb, 3 * PX, max_axial_distance=15e-6), ia, ib, linkable)[1] < 0.5


def test_ptv_large_rotation_needs_a_predictor():
    # 0.25 rad per frame: up to 175 um, more than the ~100 um spacing of the particles
    field = M.solid_rotation(0.25, (L / 2, L / 2, 2e-3))
    pa, ia, pb, ib, linkable = _ptv_case(field, seed=12)
    first = H.link(pa, pb, 160e-6)
    c0, _ = _score(first, ia, ib, linkable)
    assert c0 < 0.9  # plain assignment alone is not good enough here
    links = first
    for _ in range(3):  # relaxation: predict from the current links, relink tightly
        links = H.link(pa, pb, 3 * PX, max_axial_distance=15e-6, predictor=predictor_from_links(links))
    correct, found = _score(links, ia, ib, linkable)
    assert correct >= 0.9 and found >= 0.9, (c0, correct, found)


def test_link_axial_distance():
    a = np.array([[0.0, 0.0, 1e-3], [50e-6, 0.0, 1e-3]])
    b = a + [[1e-6, 0.0, 20e-6], [0.0, 1e-6, -25e-6]]
    assert len(H.link(a, b, 5e-6).pairs) == 0
    links = H.link(a, b, 5e-6, max_axial_distance=30e-6)
    np.testing.assert_array_equal(links.pairs, [[0, 0], [1, 1]])
    with pytest.raises(ValueError, match="max_axial_distance"):
        H.link(a, b, 5e-6, max_axial_distance=-1.0)
    with pytest.raises(ValueError, match="predictor"):
        H.link(a, b, 5e-6, predictor=np.zeros((3, 3)))


# -- bad inputs -----------------------------------------------------------------------------

def test_bad_inputs():
    tab = H.ParticleTable(np.zeros((2, 3)) + 1e-3, np.full(2, 1e-5))
    with pytest.raises(ValueError, match="axis"):
        M.solid_rotation(0.1, (0, 0, 0), axis="w")
    with pytest.raises(ValueError, match="angle"):
        M.solid_rotation(np.nan, (0, 0, 0))
    with pytest.raises(ValueError, match="centre"):
        M.solid_rotation(0.1, (0, 0))
    with pytest.raises(ValueError, match="exactly one"):
        M.vortex(1e-9, 1e-4, (0, 0), peak_speed=1e-6)
    with pytest.raises(ValueError, match="exactly one"):
        M.vortex(core_radius=1e-4, centre=(0, 0))
    with pytest.raises(ValueError, match="core_radius"):
        M.vortex(1e-9, 0.0, (0, 0))
    with pytest.raises(ValueError, match="centre"):
        M.vortex(1e-9, 1e-4, (0,))
    with pytest.raises(ValueError, match="model"):
        M.vortex(1e-9, 1e-4, (0, 0), model="burgers")
    with pytest.raises(ValueError, match="d "):
        M.uniform((1e-6, 0.0))
    with pytest.raises(ValueError, match="frames"):
        M.move_particles(tab, M.uniform((0, 0, 0)), frames=0)
    with pytest.raises(ValueError, match="dt"):
        M.move_particles(tab, M.uniform((0, 0, 0)), dt=np.inf)
    with pytest.raises(ValueError, match="substeps"):
        M.move_particles(tab, lambda p: p, substeps=0)
    with pytest.raises(ValueError, match="field"):
        M.move_particles(tab, (1e-6, 0, 0))
    with pytest.raises(ValueError, match="ParticleTable"):
        M.move_particles(np.zeros((2, 3)), M.uniform((0, 0, 0)))
    with pytest.raises(ValueError, match="positions"):
        M.move_particles((np.zeros((2, 2)), 1e-5), M.uniform((0, 0, 0)))
    with pytest.raises(ValueError, match="non-finite"):
        M.move_particles(tab, lambda p: np.full(p.shape, np.nan))
    with pytest.raises(ValueError, match="return_field"):
        M.simulate_sequence((16, 16), tab, M.uniform((0, 0, 0)), wavelength=532e-9, pixel_size=PX,
                            return_field=True)
    with pytest.raises(ValueError, match="shape"):
        M.simulate_sequence((16,), tab, M.uniform((0, 0, 0)), wavelength=532e-9, pixel_size=PX)
    a = np.zeros((16, 16, 16))
    with pytest.raises(ValueError, match="passes"):
        H.piv(a, a, (8, 8, 8), passes=0)
    with pytest.raises(ValueError, match="deform_order"):
        H.piv(a, a, (8, 8, 8), passes=2, deform_order=7)
    with pytest.raises(ValueError, match="border"):
        H.normalized_median_test(np.zeros((3, 3, 3, 3)), border="wrap")
    links = H.link(np.zeros((3, 3)), np.zeros((3, 3)) + 1e-7, 1e-6)
    with pytest.raises(ValueError, match="at least 4"):
        predictor_from_links(links)
    with pytest.raises(ValueError, match="k must"):
        predictor_from_links(links, k=2)
    with pytest.raises(ValueError, match="Links"):
        predictor_from_links(np.zeros((5, 3)))
