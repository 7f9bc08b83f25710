"""Losses (diffimaging.optim.losses), regularisers and constraints (diffimaging.optim).

Gradients against central finite differences in float64/complex128 (directional
derivative dL ≈ Re Σ conj(grad)·d), closed forms for the proxes, the TV prox
against its optimality conditions and a scipy reference minimiser, projections,
bad inputs, and torch / array-api-strict inputs against numpy.
"""
from __future__ import annotations

import numpy as np
import pytest

from numpy.testing import assert_allclose, assert_array_equal

from diffimaging import optim as P
from diffimaging.optim import losses as L
from conftest import rand


# ------------------------------------------------------------------ helpers

def fd_check(f, g, x, rng, h=1e-6, rtol=1e-6, n_dirs=3):
    """Central-difference directional derivatives of f at x against Re Σ conj(g)·d."""
    for _ in range(n_dirs):
        d = rand(rng, x.shape, x.dtype)
        num = (f(x + h * d) - f(x - h * d)) / (2 * h)
        ana = float(np.real(np.sum(np.conj(g) * d)))
        assert abs(num - ana) <= rtol * max(abs(ana), 1.0), (num, ana)


def tv_ref(x, ndim=2, isotropic=True):
    """Independent TV: np.diff with the last sample repeated (Neumann, zero last difference)."""
    ds = [np.diff(x, axis=a, append=np.take(x, [-1], axis=a)) for a in range(-ndim, 0)]
    if isotropic:
        return float(np.sum(np.sqrt(sum(d * d for d in ds))))
    return float(sum(np.sum(np.abs(d)) for d in ds))


def soft(v, t):
    return np.sign(v) * np.maximum(np.abs(v) - t, 0)


# =================================================================== losses

LOSS_CASES = [
    ("l2-real", lambda: L.L2(), np.float64),
    ("l2-complex", lambda: L.L2(), np.complex128),
    ("huber-real", lambda: L.Huber(0.7), np.float64),
    ("huber-complex", lambda: L.Huber(0.7), np.complex128),
    ("l1-real", lambda: L.L1(), np.float64),
    ("l1-complex", lambda: L.L1(), np.complex128),
    ("l1smooth-real", lambda: L.L1(eps=0.3), np.float64),
    ("l1smooth-complex", lambda: L.L1(eps=0.3), np.complex128),
]


@pytest.mark.parametrize("name,make,dtype", LOSS_CASES, ids=[c[0] for c in LOSS_CASES])
def test_loss_gradient_finite_differences(name, make, dtype):
    rng = np.random.default_rng(10)
    loss = make()
    pred = rand(rng, (3, 5, 4), dtype)
    y = rand(rng, (3, 5, 4), dtype)
    v, g = loss(pred, y)
    assert g.shape == pred.shape and g.dtype == pred.dtype
    assert v == pytest.approx(loss.value(pred, y), rel=1e-14)
    assert_allclose(g, loss.grad(pred, y), rtol=1e-14)
    fd_check(lambda p: loss.value(p, y), g, pred, rng)


@pytest.mark.parametrize("cls", [L.Poisson, L.KL])
def test_poisson_kl_gradient_finite_differences(cls):
    rng = np.random.default_rng(11)
    pred = rng.uniform(0.5, 20.0, (4, 6))
    y = rng.poisson(pred).astype(np.float64)
    y[0, :3] = 0
    loss = cls()
    v, g = loss(pred, y)
    fd_check(lambda p: loss.value(p, y), g, pred, rng, h=1e-6)
    # closed form of the gradient and (for Poisson) the value
    assert_allclose(g, 1 - y / pred, rtol=1e-13)
    if cls is L.Poisson:
        assert v == pytest.approx(float(np.sum(pred - y * np.log(pred))), rel=1e-13)
    else:
        ylogy = np.where(y > 0, y * np.log(np.where(y > 0, y, 1)), 0)
        assert v == pytest.approx(float(np.sum(ylogy - y * np.log(pred) - y + pred)), rel=1e-13)


def test_poisson_kl_agree_and_differ_by_constant():
    rng = np.random.default_rng(12)
    y = rng.poisson(5.0, (7, 8)).astype(np.float64)
    y[0, 0] = 0
    pois, kl = L.Poisson(), L.KL()
    consts = []
    for scale in (0.5, 1.0, 3.0):
        pred = rng.uniform(0.1, 10, y.shape) * scale
        assert_allclose(kl.grad(pred, y), pois.grad(pred, y), rtol=0, atol=0)
        consts.append(kl.value(pred, y) - pois.value(pred, y))
    ylogy = np.where(y > 0, y * np.log(np.where(y > 0, y, 1)), 0)
    assert_allclose(consts, float(np.sum(ylogy - y)), rtol=1e-12)
    # the KL divergence vanishes at pred = y where y > 0 (0 log 0 = 0 where y = 0 and pred = 0
    # is below the floor: tiny)
    assert kl.value(y + (y == 0), y) == pytest.approx(float(np.sum(y == 0)), abs=1e-9)
    assert kl.value(y, y) == pytest.approx(0.0, abs=1e-6)


def test_poisson_below_floor_is_c1_linear_continuation():
    floor = 0.5
    loss = L.Poisson(floor=floor)
    y = np.array([[0.0, 1.0, 4.0, 2.0]])
    pred = np.array([[-1.0, 0.2, -0.3, 0.49]])
    g = loss.grad(pred, y)
    assert_allclose(g, 1 - y / floor, rtol=1e-14)
    assert np.all(g[y > 0] < 0)  # pushes pred up
    # value: tangent line at the floor
    f_floor = floor - y * np.log(floor)
    assert loss.value(pred, y) == pytest.approx(float(np.sum(f_floor + (1 - y / floor) * (pred - floor))),
                                                rel=1e-14)
    # value and gradient consistent across the floor (C1)
    rng = np.random.default_rng(13)
    p2 = np.array([[floor - 1e-3, floor + 1e-3, floor, 0.3]])
    fd_check(lambda p: loss.value(p, y), loss.grad(p2, y), p2, rng, h=1e-7, rtol=1e-5)


def test_huber_limits():
    rng = np.random.default_rng(14)
    delta = 0.5
    hub = L.Huber(delta)
    y = rand(rng, (6, 7), np.complex128)
    # small residuals: identical to L2
    small = y + 0.2 * delta * rand(rng, y.shape, np.complex128) / np.sqrt(2) / 3
    assert np.all(np.abs(small - y) < delta)
    assert hub.value(small, y) == pytest.approx(L.L2().value(small, y), rel=1e-14)
    assert_allclose(hub.grad(small, y), L.L2().grad(small, y), rtol=1e-14)
    # large residuals: slope delta like delta * L1, value delta(|r| - delta/2)
    for dt in (np.float64, np.complex128):
        yy = rand(rng, (6, 7), dt)
        big = yy + 5 * rand(rng, yy.shape, dt)
        r = np.abs(big - yy)
        big = np.where(r > delta, big, yy + 3 * delta)
        r = np.abs(big - yy)
        assert np.all(r > delta)
        assert_allclose(hub.grad(big, yy), delta * L.L1().grad(big, yy), rtol=1e-13)
        assert hub.value(big, yy) == pytest.approx(float(np.sum(delta * (r - delta / 2))), rel=1e-13)


def test_l1_loss_closed_forms():
    y = np.array([1.0, 2.0, -1.0, 0.5])
    pred = np.array([2.0, 2.0, -3.0, 0.5 + 1e-3])
    assert L.L1().value(pred, y) == pytest.approx(1 + 0 + 2 + 1e-3)
    assert_array_equal(L.L1().grad(pred, y), [1.0, 0.0, -1.0, 1.0])  # 0 at r = 0
    e = 0.1
    r = pred - y
    assert L.L1(eps=e).value(pred, y) == pytest.approx(float(np.sum(np.sqrt(r * r + e * e) - e)))
    assert_allclose(L.L1(eps=e).grad(pred, y), r / np.sqrt(r * r + e * e))
    yc = np.array([1 + 1j, 0j])
    pc = np.array([1 + 1j + 3 * np.exp(0.7j), 0j])
    assert_allclose(L.L1().grad(pc, yc), [np.exp(0.7j), 0])
    assert L.L1().value(pc, yc) == pytest.approx(3.0)


def test_loss_precision_and_data_conversion():
    rng = np.random.default_rng(15)
    for dt in (np.float32, np.complex64):
        pred = rand(rng, (5, 6), dt)
        y64 = rand(rng, (5, 6), np.complex128 if dt == np.complex64 else np.float64)
        for loss in (L.L2(), L.Huber(0.3), L.L1(), L.L1(eps=0.1)):
            v, g = loss(pred, y64)
            assert g.dtype == dt and isinstance(v, float)
    pred = rng.uniform(1, 5, (5, 6)).astype(np.float32)
    counts = rng.poisson(3.0, (5, 6)).astype(np.uint16)  # integer counts accepted
    for loss in (L.Poisson(), L.KL()):
        g = loss.grad(pred, counts)
        assert g.dtype == np.float32
        assert_allclose(g, 1 - counts / pred, rtol=1e-6)


def test_loss_bad_inputs():
    rng = np.random.default_rng(16)
    a = rand(rng, (4, 5), np.float64)
    with pytest.raises(ValueError, match="pred.*y.*same shape"):
        L.L2().value(a, a[:3])
    with pytest.raises(TypeError, match="y"):
        L.L2().value(a, 1.0)
    with pytest.raises(TypeError, match="complex"):
        L.L2().value(a, a.astype(np.complex128))
    with pytest.raises(TypeError, match="pred"):
        L.L2().value(np.ones((3, 3), np.int32), np.ones((3, 3)))
    for cls in (L.Poisson, L.KL):
        with pytest.raises(ValueError, match="non-negative"):
            cls().grad(np.abs(a) + 1, a)
        with pytest.raises(TypeError, match="real pred"):
            cls().value(a.astype(np.complex128), np.abs(a))
    for bad in (0.0, -1.0, np.inf, np.nan):
        with pytest.raises(ValueError, match="delta"):
            L.Huber(bad)
    with pytest.raises(ValueError, match="floor"):
        L.Poisson(floor=0)
    with pytest.raises(ValueError, match="eps"):
        L.L1(eps=-1)


def test_get_loss_and_custom():
    assert isinstance(L.get_loss("l2"), L.L2)
    assert isinstance(L.get_loss("Poisson"), L.Poisson) and L.get_loss("kl").name == "kl"
    assert L.get_loss("huber", delta=0.25).delta == 0.25
    assert L.get_loss("l1", eps=0.5).eps == 0.5
    assert L.get_loss("poisson", floor=1e-3).floor == 1e-3
    inst = L.Huber(2.0)
    assert L.get_loss(inst) is inst
    with pytest.raises(ValueError, match="loss"):
        L.get_loss("l3")
    with pytest.raises(TypeError, match="loss"):
        L.get_loss(42)
    with pytest.raises(TypeError, match="loss"):
        L.get_loss((len,))
    with pytest.raises(TypeError, match="delta"):
        L.get_loss("l2", delta=1.0)
    with pytest.raises(TypeError):
        L.get_loss(inst, delta=1.0)

    rng = np.random.default_rng(17)
    pred, y = rand(rng, (3, 4), np.complex128), rand(rng, (3, 4), np.complex128)
    cl = L.get_loss((lambda p, t: 2 * L.L2().value(p, t), lambda p, t: 2 * (p - t)))
    assert isinstance(cl, L.CustomLoss)
    v, g = cl(pred, y)
    assert v == pytest.approx(2 * L.L2().value(pred, y))
    assert_allclose(g, 2 * (pred - y))
    bad = L.CustomLoss(lambda p, t: 0.0, lambda p, t: p[:1])
    with pytest.raises(ValueError, match="shape"):
        bad.grad(pred, y)
    with pytest.raises(TypeError, match="callable"):
        L.CustomLoss(1.0, len)


# ============================================================== regularisers

REG_CASES = [
    ("tv-iso-real", lambda: P.TV(0.7, eps=0.05), np.float64, (2, 6, 7)),
    ("tv-aniso-real", lambda: P.TV(0.7, isotropic=False, eps=0.05), np.float64, (6, 7)),
    ("tv-iso-complex-real_imag", lambda: P.TV(1.3, eps=0.05), np.complex128, (5, 6)),
    ("tv-aniso-complex-real_imag", lambda: P.TV(1.3, eps=0.05, isotropic=False), np.complex128,
     (5, 6)),
    ("tv-iso-complex-amplitude", lambda: P.TV(1.3, eps=0.05, on="amplitude"), np.complex128, (5, 6)),
    ("tv-3d-iso", lambda: P.TV(0.9, ndim=3, eps=0.05), np.float64, (3, 4, 5)),
    ("tv-3d-aniso", lambda: P.TV(0.9, ndim=3, eps=0.05, isotropic=False), np.float64, (3, 4, 5)),
    ("l1-real", lambda: P.L1(0.8, eps=0.05), np.float64, (5, 6)),
    ("l1-complex-amplitude", lambda: P.L1(0.8, eps=0.05), np.complex128, (5, 6)),
    ("l1-complex-real_imag", lambda: P.L1(0.8, eps=0.05, on="real_imag"), np.complex128, (5, 6)),
    ("l2-real", lambda: P.L2(1.7), np.float64, (5, 6)),
    ("l2-complex", lambda: P.L2(1.7), np.complex128, (5, 6)),
]


@pytest.mark.parametrize("name,make,dtype,shape", REG_CASES, ids=[c[0] for c in REG_CASES])
def test_regularizer_smooth_gradient_finite_differences(name, make, dtype, shape):
    rng = np.random.default_rng(20)
    reg = make()
    x = rand(rng, shape, dtype)
    if "amplitude" in name:  # keep away from |x| = 0
        x = (1.0 + 0.4 * rng.random(shape)) * np.exp(1j * rng.uniform(-3, 3, shape))
    v, g = reg.value_and_grad(x)
    assert g.shape == x.shape and g.dtype == x.dtype
    assert v == reg.smooth_value(x)
    fd_check(reg.smooth_value, g, x, rng)
    # the smoothing is what makes the difference: with eps -> 0 smooth == exact
    if hasattr(reg, "eps"):
        assert reg.smooth_value(x) < reg.value(x)
        reg.eps = 1e-9
        assert reg.smooth_value(x) == pytest.approx(reg.value(x), rel=1e-7)


def test_tv_values_closed_form():
    rng = np.random.default_rng(21)
    # a vertical edge of height 1 across 3 rows: TV = 3, iso and aniso
    e = np.zeros((3, 4))
    e[:, 2:] = 1
    assert P.TV(1.0).value(e) == pytest.approx(3.0)
    assert P.TV(2.0, isotropic=False).value(e) == pytest.approx(6.0)
    # a single bright pixel at (1, 1): differences (-1, -1) at (1, 1), 1 at (0, 1) and (1, 0):
    # iso sqrt(2) + 1 + 1, aniso 4
    s = np.zeros((3, 3))
    s[1, 1] = 1
    assert P.TV(1.0).value(s) == pytest.approx(np.sqrt(2) + 2)
    assert P.TV(1.0, isotropic=False).value(s) == pytest.approx(4.0)
    x = rand(rng, (2, 5, 6), np.float64)
    assert P.TV(1.0).value(x) == pytest.approx(tv_ref(x))
    assert P.TV(1.0, isotropic=False).value(x) == pytest.approx(tv_ref(x, isotropic=False))
    x3 = rand(rng, (2, 3, 4, 5), np.float64)
    assert P.TV(1.0, ndim=3).value(x3) == pytest.approx(tv_ref(x3, 3))
    assert P.TV(1.0, ndim=3).value(x3) != pytest.approx(P.TV(1.0).value(x3))
    z = rand(rng, (5, 6), np.complex128)
    assert P.TV(1.0).value(z) == pytest.approx(tv_ref(z.real) + tv_ref(z.imag))
    assert P.TV(1.0, on="amplitude").value(z) == pytest.approx(tv_ref(np.abs(z)))
    # a constant image has zero TV and zero gradient
    c = np.full((4, 5), 3.0)
    assert P.TV(1.0).value(c) == 0.0
    assert_array_equal(P.TV(1.0).grad(c), 0.0)


def test_l1_prox_soft_threshold():
    rng = np.random.default_rng(22)
    x = rand(rng, (6, 7), np.float64)
    reg = P.L1(0.5)
    out = reg.prox(x, 0.8)
    assert_allclose(out, soft(x, 0.4), rtol=1e-15, atol=0)
    assert np.sum(out == 0) > 5
    z = rand(rng, (6, 7), np.complex128)
    out = reg.prox(z, 0.8)
    amp = np.abs(z)
    assert_allclose(out, np.maximum(amp - 0.4, 0) * np.exp(1j * np.angle(z)), rtol=1e-13, atol=1e-15)
    out = P.L1(0.5, on="real_imag").prox(z, 0.8)
    assert_allclose(out, soft(z.real, 0.4) + 1j * soft(z.imag, 0.4), rtol=1e-15)
    assert_allclose(P.L1(0.5).prox(np.zeros(3, np.complex128), 1.0), 0)
    assert P.L1(0.5).value(z) == pytest.approx(0.5 * float(np.sum(amp)))


def test_l2_prox_closed_form():
    rng = np.random.default_rng(23)
    for dt in (np.float64, np.complex128):
        x = rand(rng, (5, 6), dt)
        reg = P.L2(0.6)
        out = reg.prox(x, 2.5)
        assert_allclose(out, x / (1 + 1.5), rtol=1e-15)
        # it is the minimiser: the gradient of the prox objective vanishes there
        assert_allclose(out - x + 2.5 * reg.grad(out), 0, atol=1e-14)
        assert reg.value(x) == pytest.approx(0.3 * float(np.sum(np.abs(x) ** 2)))


def _prox_objective(reg, x, step, u):
    """0.5 |u - x|^2 + step * weight * R(u)  (reg.value includes the weight)."""
    return 0.5 * float(np.sum(np.abs(u - x) ** 2)) + step * reg.value(u)


def _scipy_tv_prox(x, lam, ndim, isotropic, delta=1e-9):
    """Reference TV prox by SLSQP on the primal epigraph form
    min 0.5 |u - x|^2 + lam sum t  s.t.  t >= |D u|  (a convex feasible set; the isotropic
    norm sqrt(|D_i u|^2 + delta^2) with delta = 1e-9 so that it is differentiable)."""
    from scipy.optimize import minimize

    n = x.size
    shape = x.shape
    # the forward differences as dense matrices, built from np.diff (independent of the package)
    eye = np.eye(n).reshape((n,) + shape)
    Ds = [np.diff(eye, axis=a, append=np.take(eye, [-1], axis=a)).reshape(n, n).T
          for a in range(-ndim, 0)]
    nt = n if isotropic else n * ndim
    xr = x.ravel()

    def f(v):
        return 0.5 * np.sum((v[:n] - xr) ** 2) + lam * np.sum(v[n:])

    def fg(v):
        return np.concatenate([v[:n] - xr, lam * np.ones(nt)])

    if isotropic:
        def norm(u):
            return np.sqrt(sum((Dk @ u) ** 2 for Dk in Ds) + delta ** 2)

        def c(v):
            return v[n:] - norm(v[:n])

        def cj(v):
            u = v[:n]
            Ju = -sum(((Dk @ u) / norm(u))[:, None] * Dk for Dk in Ds)
            return np.concatenate([Ju, np.eye(n)], axis=1)
        cons = [{"type": "ineq", "fun": c, "jac": cj}]
        t0 = norm(xr)
    else:
        Dall = np.concatenate(Ds, axis=0)
        A = np.concatenate([np.concatenate([-Dall, np.eye(nt)], axis=1),
                            np.concatenate([Dall, np.eye(nt)], axis=1)], axis=0)
        cons = [{"type": "ineq", "fun": lambda v: A @ v, "jac": lambda v: A}]
        t0 = np.abs(Dall @ xr)
    res = minimize(f, np.concatenate([xr, t0 + 1e-3]), jac=fg, constraints=cons, method="SLSQP",
                   options={"maxiter": 1000, "ftol": 1e-14})
    return res.x[:n].reshape(shape)


@pytest.mark.parametrize("isotropic", [True, False])
@pytest.mark.parametrize("shape,ndim", [((5, 6), 2), ((3, 3, 4), 3)])
def test_tv_prox_optimal(isotropic, shape, ndim):
    rng = np.random.default_rng(24)
    x = rand(rng, shape, np.float64)
    step = 0.6
    reg = P.TV(0.5, ndim=ndim, isotropic=isotropic)  # default prox_iterations, prox_tol
    tau = step * reg.weight
    u = reg.prox(x, step)
    assert u.shape == x.shape and u.dtype == x.dtype
    f_u = _prox_objective(reg, x, step, u)
    # the prox really changes the image and lowers the objective
    assert np.max(np.abs(u - x)) > 0.05
    assert f_u < _prox_objective(reg, x, step, x) - 0.1
    # no random perturbation does better
    for scale in (1e-1, 1e-2, 1e-3):
        for _ in range(20):
            f_p = _prox_objective(reg, x, step, u + scale * rng.standard_normal(x.shape))
            assert f_p >= f_u - 1e-4 * abs(f_u)
    # an independent minimiser (SLSQP on the primal epigraph form)
    u_ref = _scipy_tv_prox(x, tau, ndim, isotropic)
    f_ref = _prox_objective(reg, x, step, u_ref)
    assert abs(f_u - f_ref) <= 1e-4 * abs(f_ref), (f_u, f_ref)
    # tighter settings converge to the same minimiser (strongly convex: unique)
    tight = P.TV(0.5, ndim=ndim, isotropic=isotropic, prox_iterations=5000, prox_tol=1e-12)
    u_t = tight.prox(x, step)
    assert abs(_prox_objective(reg, x, step, u_t) - f_ref) <= 1e-6 * abs(f_ref)
    assert_allclose(u_t, u_ref, atol=1e-4)


def test_tv_prox_constant_and_batch():
    rng = np.random.default_rng(25)
    reg = P.TV(3.0)
    c = np.full((7, 8), 2.5)
    assert_allclose(reg.prox(c, 10.0), c, rtol=1e-14)
    # batch items are independent: each item is proxed as if alone
    x = rand(rng, (3, 6, 5), np.float64)
    x[1] = -1.25  # a constant item stays put
    tight = P.TV(0.4, prox_iterations=3000, prox_tol=1e-13)
    out = tight.prox(x, 1.0)
    assert_allclose(out[1], -1.25, rtol=1e-12)
    for i in (0, 2):
        assert_allclose(out[i], tight.prox(x[i], 1.0), atol=1e-8)
    # the prox preserves the mean (Neumann boundary) and is 3-D aware
    assert_allclose(out.mean(axis=(-2, -1)), x.mean(axis=(-2, -1)), atol=1e-10)
    o3 = P.TV(0.4, ndim=3, prox_iterations=3000, prox_tol=1e-13).prox(x, 1.0)
    assert not np.allclose(o3, out, atol=1e-3)
    assert o3.mean() == pytest.approx(x.mean(), abs=1e-10)
    # step * weight = 0: identity
    assert_array_equal(P.TV(0.0).prox(x, 1.0), x)
    assert_array_equal(reg.prox(x, 0.0), x)


def test_tv_prox_complex():
    rng = np.random.default_rng(26)
    z = rand(rng, (5, 6), np.complex128)
    kw = dict(prox_iterations=3000, prox_tol=1e-13)
    reg = P.TV(0.5, **kw)
    out = reg.prox(z, 1.0)
    assert out.dtype == z.dtype
    assert_allclose(out.real, reg.prox(z.real, 1.0), atol=1e-12)
    assert_allclose(out.imag, reg.prox(z.imag, 1.0), atol=1e-12)
    amp = P.TV(0.5, on="amplitude", **kw)
    out = amp.prox(z, 1.0)
    assert_allclose(np.abs(out), reg.prox(np.abs(z), 1.0), atol=1e-12)
    assert_allclose(np.angle(out), np.angle(z), atol=1e-12)
    # and it is optimal for TV(|u|): perturbations (of amplitude and phase) do no better
    f_u = _prox_objective(amp, z, 1.0, out)
    for _ in range(30):
        f_p = _prox_objective(amp, z, 1.0, out + 1e-2 * rand(rng, z.shape, np.complex128))
        assert f_p >= f_u - 1e-10


# ============================================================== constraints

def test_projections_correct_and_idempotent():
    rng = np.random.default_rng(27)
    x = rand(rng, (2, 5, 6), np.float64)
    z = 2 * rand(rng, (2, 5, 6), np.complex128)
    mask = rng.random((5, 6)) > 0.4
    cases = [
        (P.NonNegative(), x, np.maximum(x, 0)),
        (P.NonNegative(), z, np.maximum(z.real, 0) + 0j),
        (P.Box(-0.3, 0.5), x, np.clip(x, -0.3, 0.5)),
        (P.Box(-0.3, 0.5), z, np.clip(z.real, -0.3, 0.5) + 1j * np.clip(z.imag, -0.3, 0.5)),
        (P.Box(hi=0.2), x, np.minimum(x, 0.2)),
        (P.Support(mask), z, np.where(mask, z, 0)),
        (P.Support(mask.astype(np.float32)), x, np.where(mask, x, 0)),
        (P.AmplitudeAtMost(), z, np.where(np.abs(z) > 1, np.exp(1j * np.angle(z)), z)),
        (P.AmplitudeAtMost(0.5), x, np.clip(x, -0.5, 0.5)),
        (P.Intersection(P.Support(mask), P.AmplitudeAtMost(0.7)), z,
         np.where(mask, np.where(np.abs(z) > 0.7, 0.7 * np.exp(1j * np.angle(z)), z), 0)),
    ]
    for c, v, want in cases:
        got = c.project(v)
        assert got.dtype == v.dtype and got.shape == v.shape, c
        assert_allclose(got, want, rtol=1e-14, atol=1e-15, err_msg=repr(c))
        assert_allclose(c.project(got), got, rtol=1e-14, atol=0, err_msg=repr(c))
        assert_allclose(c.prox(v, 0.3), got, rtol=0, atol=0)
        assert not np.allclose(got, v)  # every case does something
    # commuting projections: both orders agree
    a = P.Intersection(P.Support(mask), P.AmplitudeAtMost(0.7)).project(z)
    b = P.Intersection(P.AmplitudeAtMost(0.7), P.Support(mask)).project(z)
    assert_allclose(a, b, rtol=1e-15)
    # projection = nearest point: a feasible point is never closer
    c = P.AmplitudeAtMost(0.7)
    pz = c.project(z)
    for _ in range(10):
        q = c.project(z + rand(rng, z.shape, np.complex128))
        assert np.all(np.abs(q - z) >= np.abs(pz - z) - 1e-14)


def test_prior_and_constraint_bad_inputs():
    for bad in (-1.0, np.inf, np.nan):
        for cls in (P.TV, P.L1, P.L2):
            with pytest.raises(ValueError, match="weight"):
                cls(bad)
    with pytest.raises(TypeError, match="weight"):
        P.TV("1")
    for nd in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="ndim"):
            P.TV(1.0, ndim=nd)
    with pytest.raises(ValueError, match="ndim=3"):
        P.TV(1.0, ndim=3).value(np.ones((4, 5)))
    with pytest.raises(ValueError, match="on"):
        P.TV(1.0, on="phase")
    with pytest.raises(ValueError, match="on"):
        P.L1(1.0, on="abs")
    with pytest.raises(ValueError, match="step"):
        P.L1(1.0).prox(np.ones(3), -0.1)
    with pytest.raises(ValueError, match="prox_iterations"):
        P.TV(1.0, prox_iterations=0)
    with pytest.raises(ValueError, match="lo <= hi"):
        P.Box(1.0, 0.0)
    with pytest.raises(ValueError, match="broadcast"):
        P.Support(np.ones((4, 5), bool)).project(np.ones((2, 5, 4)))
    with pytest.raises(ValueError, match="broadcast"):
        P.Support(np.ones((2, 4, 5), bool)).project(np.ones((4, 5)))
    with pytest.raises(ValueError, match="0 and 1"):
        P.Support(np.full((3, 3), 0.5))
    with pytest.raises(TypeError, match="mask"):
        P.Support([[1, 0]])
    with pytest.raises(ValueError, match="a must be non-negative"):
        P.AmplitudeAtMost(-1.0)
    with pytest.raises(TypeError, match="Constraint"):
        P.Intersection(P.NonNegative(), P.L2(1.0))
    with pytest.raises(TypeError, match="x"):
        P.TV(1.0).value(np.ones((3, 3), np.int64))


def test_prior_precision_preserved():
    rng = np.random.default_rng(28)
    for dt in (np.float32, np.complex64):
        x = rand(rng, (6, 7), dt)
        for reg in (P.TV(0.3), P.TV(0.3, on="amplitude"), P.L1(0.3), P.L1(0.3, on="real_imag"),
                    P.L2(0.3)):
            assert reg.grad(x).dtype == dt, reg
            out = reg.prox(x, 1.0)
            assert out.dtype == dt, reg
        for c in (P.NonNegative(), P.Box(0, 1), P.AmplitudeAtMost(), P.Support(np.ones((6, 7), bool))):
            assert c.project(x).dtype == dt
        # float32 TV prox agrees with the float64 one to single precision
        x64 = x.astype(np.complex128 if dt == np.complex64 else np.float64)
        tv = P.TV(0.3, prox_iterations=300, prox_tol=1e-7)
        assert_allclose(tv.prox(x, 1.0), tv.prox(x64, 1.0), atol=2e-5)


# ================================================================= backends



def _same(lib, got, want, tol=1e-12):
    assert lib.is_mine(got), type(got)
    g = lib.back(got)
    assert g.dtype == want.dtype and g.shape == want.shape
    assert_allclose(g, want, rtol=tol, atol=tol * max(1.0, np.abs(want).max()))


@pytest.mark.parametrize("dtype", [np.float64, np.complex128, np.float32, np.complex64])
def test_backends_losses_match_numpy(lib, dtype):
    rng = np.random.default_rng(30)
    tol = 1e-12 if dtype in (np.float64, np.complex128) else 2e-6
    pred = rand(rng, (2, 5, 6), dtype)
    y = rand(rng, (2, 5, 6), dtype)
    losses = [L.L2(), L.Huber(0.5), L.L1(), L.L1(eps=0.2)]
    if dtype in (np.float64, np.float32):
        pred = np.abs(pred) + 0.1
        y = np.round(np.abs(y) * 3).astype(dtype)
        losses += [L.Poisson(), L.KL(), L.Poisson(floor=0.3)]
    for loss in losses:
        v, g = loss(pred, y)
        vt, gt = loss(lib.to(pred), lib.to(y))
        assert isinstance(vt, float)
        assert vt == pytest.approx(v, rel=tol, abs=tol)
        _same(lib, gt, g, tol)
    with pytest.raises(ValueError, match="same shape"):
        L.L2().value(lib.to(pred), lib.to(y[:1]))
    with pytest.raises(TypeError, match="different array libraries"):
        L.L2().value(lib.to(pred), y)


@pytest.mark.parametrize("dtype", [np.float64, np.complex128, np.float32])
def test_backends_priors_match_numpy(lib, dtype):
    rng = np.random.default_rng(31)
    tol = 1e-11 if dtype in (np.float64, np.complex128) else 1e-5
    x = rand(rng, (2, 6, 7), dtype)
    regs = [P.TV(0.4), P.TV(0.4, isotropic=False), P.TV(0.4, ndim=3), P.TV(0.4, on="amplitude"),
            P.L1(0.3), P.L1(0.3, on="real_imag"), P.L2(0.6)]
    for reg in regs:
        xt = lib.to(x)
        assert reg.value(xt) == pytest.approx(reg.value(x), rel=tol)
        assert reg.smooth_value(xt) == pytest.approx(reg.smooth_value(x), rel=tol)
        _same(lib, reg.grad(xt), reg.grad(x), tol)
        want = reg.prox(x, 0.7)
        n_np = getattr(reg, "last_prox_iterations", None)
        got = reg.prox(xt, 0.7)
        if n_np is not None:  # same iteration on both paths
            assert reg.last_prox_iterations == n_np
        _same(lib, got, want, 10 * tol)
    mask = rng.random((6, 7)) > 0.5
    cons = [P.NonNegative(), P.Box(-0.2, 0.3), P.AmplitudeAtMost(0.8), P.Support(mask),
            P.Support(lib.to(mask)), P.Intersection(P.Support(mask), P.AmplitudeAtMost(0.5))]
    for c in cons:
        ref = P.Support(mask) if isinstance(c, P.Support) else c
        _same(lib, c.project(lib.to(x)), ref.project(x), 1e-14)
