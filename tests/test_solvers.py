"""solve(): known optima, joint object/parameter recovery, global search, errors."""
import numpy as np
import pytest

import diffimaging as di
from diffimaging.optim import L1, L2, Box, SolverError, solve

LAM, PX = 532e-9, 2e-6


def _blur_model(n, sigma=1.5):
    """A linear, real convolution y = h * x as a Custom stage (periodic)."""
    f = np.fft.fftfreq(n)
    H = np.exp(-2 * (np.pi * sigma) ** 2 * (f[:, None] ** 2 + f[None, :] ** 2))
    fwd = lambda x: np.real(np.fft.ifft2(np.fft.fft2(x) * H))  # noqa: E731
    adj = lambda x, y, g: np.real(np.fft.ifft2(np.fft.fft2(g) * H))  # noqa: E731
    return di.Model(di.Custom(fwd, adj)), H


@pytest.mark.parametrize("method", ["fista", "lbfgs", "gd"])
def test_tikhonov_deconvolution_closed_form(method):
    rng = np.random.default_rng(0)
    n, beta = 32, 0.05
    model, H = _blur_model(n)
    x_true = rng.random((n, n))
    y = model(x_true) + 0.01 * rng.standard_normal((n, n))
    closed = np.real(np.fft.ifft2(np.conj(H) * np.fft.fft2(y) / (np.abs(H) ** 2 + beta)))
    r = solve(model, y, np.zeros((n, n)), regularizers=[L2(beta)], method=method,
              iterations=600 if method == "gd" else 300, tol=1e-14, progress=False)
    err = np.linalg.norm(r.x - closed) / np.linalg.norm(closed)
    assert err < (1e-4 if method == "gd" else 1e-6), err
    assert r.history["loss"][-1] <= r.history["loss"][0]


def test_l1_denoising_soft_threshold():
    rng = np.random.default_rng(1)
    y = rng.standard_normal((20, 24))
    beta = 0.7
    model = di.Model(di.Custom(lambda x: x, lambda x, yy, g: g))
    r = solve(model, y, np.zeros_like(y), regularizers=[L1(beta)], method="fista", iterations=50,
              progress=False)
    expected = np.sign(y) * np.maximum(np.abs(y) - beta, 0)
    np.testing.assert_allclose(r.x, expected, atol=1e-8)
    assert np.count_nonzero(r.x) < y.size  # genuinely sparse


def _hologram_case(n=128, seed=0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:n, :n]
    amp = np.ones((n, n))
    for _ in range(12):
        cy, cx, rad = rng.uniform(15, n - 15), rng.uniform(15, n - 15), rng.uniform(3, 8)
        amp[(yy - cy) ** 2 + (xx - cx) ** 2 < rad ** 2] = 0.3
    return amp


def test_joint_recovery_distance_and_object():
    """Amplitude object, distance started 10 % off: global stage then L-BFGS.
    Targets (issue 3): distance within 0.1 %, object within 3 % in 400 iterations."""
    amp = _hologram_case()
    z_true = 1e-3
    model = di.Model(di.Propagate(di.Param(1.1 * z_true, bounds=(0.5e-3, 2e-3)), LAM, PX),
                     di.Intensity())
    y = model(amp, {"propagate.z": z_true})
    x0 = np.ones_like(amp)
    start_err = np.linalg.norm(x0 - amp) / np.linalg.norm(amp)
    r = solve(model, y, x0, method="lbfgs", iterations=400, constraint=Box(0.0, 1.0),
              search={"propagate.z": np.linspace(0.85e-3, 1.15e-3, 61)}, progress=False)
    z = float(r.params["propagate.z"])
    assert abs(z - z_true) / z_true < 1e-3
    err = np.linalg.norm(r.x - amp) / np.linalg.norm(amp)
    assert err < 0.03 and start_err > 0.15
    assert r.search["best"]["propagate.z"] == pytest.approx(z_true, rel=0.01)
    h = r.history
    assert len(h["loss"]) == r.iterations and len(h["params"]["propagate.z"]) == r.iterations
    assert h["loss"][-1] < 1e-3 * h["loss"][0]
    assert np.all(np.diff(h["time"]) >= 0)


def test_joint_recovery_poisson_noise():
    """10^3 photons per pixel, Poisson loss: the distance within 1 %."""
    rng = np.random.default_rng(3)
    amp = _hologram_case(96, seed=2)
    z_true, photons = 1e-3, 1e3
    model = di.Model(di.Propagate(di.Param(1.1 * z_true, bounds=(0.5e-3, 2e-3)), LAM, PX),
                     di.Intensity(), di.Gain(photons))
    counts = rng.poisson(model(amp, {"propagate.z": z_true})).astype(np.float64)
    r = solve(model, counts, np.ones_like(amp), loss="poisson", method="lbfgs", iterations=150,
              constraint=Box(0.0, 1.0), search={"propagate.z": np.linspace(0.85e-3, 1.15e-3, 31)},
              progress=False)
    assert abs(float(r.params["propagate.z"]) - z_true) / z_true < 1e-2


def test_numpy_and_torch_give_the_same_result():
    torch = pytest.importorskip("torch")
    amp = _hologram_case(48, seed=5)
    model = di.Model(di.Propagate(di.Param(1.05e-3, bounds=(0.5e-3, 2e-3)), LAM, PX), di.Intensity())
    y = model(amp, {"propagate.z": 1e-3})
    kw = dict(method="lbfgs", iterations=30, constraint=Box(0.0, 1.0), progress=False)
    rn = solve(model, y, np.ones_like(amp), **kw)
    rt = solve(model, torch.tensor(y), torch.ones(amp.shape, dtype=torch.float64), **kw)
    assert isinstance(rt.x, torch.Tensor)
    np.testing.assert_allclose(rt.x.numpy(), rn.x, atol=1e-4)
    assert float(rt.params["propagate.z"]) == pytest.approx(float(rn.params["propagate.z"]), rel=1e-4)


def test_adam_moves_object_and_parameter_and_is_deterministic():
    amp = _hologram_case(48, seed=7)
    model = di.Model(di.Propagate(di.Param(1.05e-3, bounds=(0.5e-3, 2e-3)), LAM, PX), di.Intensity())
    y = model(amp, {"propagate.z": 1e-3})
    r1 = solve(model, y, np.ones_like(amp), method="adam", iterations=60, progress=False)
    r2 = solve(model, y, np.ones_like(amp), method="adam", iterations=60, progress=False)
    np.testing.assert_array_equal(r1.x, r2.x)
    assert r1.history["loss"][-1] < 0.5 * r1.history["loss"][0]
    assert float(r1.params["propagate.z"]) != 1.05e-3


def test_optimize_subset_and_bounds():
    amp = _hologram_case(48, seed=8)
    model = di.Model(di.Propagate(di.Param(1.05e-3, bounds=(1.02e-3, 2e-3)), LAM, PX), di.Intensity())
    y = model(amp, {"propagate.z": 1e-3})
    # only the distance moves; the bound keeps it above 1.02 mm
    r = solve(model, y, amp, optimize=["propagate.z"], method="lbfgs", iterations=30, progress=False)
    np.testing.assert_array_equal(r.x, amp)
    assert float(r.params["propagate.z"]) == pytest.approx(1.02e-3, rel=1e-9)
    # only the object moves
    r = solve(model, y, np.ones_like(amp), optimize=["x"], method="lbfgs", iterations=5, progress=False)
    assert float(r.params["propagate.z"]) == 1.05e-3


def test_non_finite_objective_raises_with_last_iterate():
    calls = {"n": 0}

    def fwd(x):
        calls["n"] += 1
        return x * (np.nan if calls["n"] > 4 else 1.0)

    model = di.Model(di.Custom(fwd, lambda x, y, g: g))
    y = np.ones((4, 4))
    with pytest.raises(SolverError, match="iteration") as info:
        solve(model, y, np.zeros((4, 4)), method="adam", iterations=20, progress=False)
    assert info.value.result is not None and np.all(np.isfinite(info.value.result.x))


def test_callback_stops_and_bad_arguments():
    model, _ = _blur_model(8)
    y = np.ones((8, 8))
    seen = []
    r = solve(model, y, np.zeros((8, 8)), method="adam", iterations=50, progress=False,
              callback=lambda it, x, p, rec: seen.append(it) or it >= 3)
    assert seen == [1, 2, 3] and r.iterations == 3 and r.message == "stopped by callback"
    with pytest.raises(ValueError, match="method"):
        solve(model, y, y, method="newton")
    with pytest.raises(KeyError, match="unknown parameter"):
        solve(model, y, y, optimize=["propagate.z"])
    with pytest.raises(ValueError, match="iterations"):
        solve(model, y, y, iterations=-1)
    with pytest.raises(TypeError, match="Model"):
        solve(lambda x: x, y, y)
    with pytest.raises(ValueError, match="loss"):
        solve(model, y, y, loss="l3")
