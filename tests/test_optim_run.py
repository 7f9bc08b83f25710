"""The run loop (diffimaging.optim.run) and the algorithm classes: the non-finite
stop, callbacks, tolerance, the history schema of the generic and fused paths,
and algorithms driven one step at a time."""
import time

import numpy as np
import pytest

import diffimaging as di
from diffimaging import holography as H
from diffimaging.holography.fused import FusedVolumeProblem
from diffimaging.optim import FISTA, GD, LBFGS, Adam, ModelProblem, SolverError, run, solve

LAM, PX = 532e-9, 2e-6
METHODS = {"fista": FISTA, "gd": GD, "adam": Adam, "lbfgs": LBFGS}


def _blur_ops(n, sigma=1.5):
    """A periodic Gaussian blur (forward, adjoint VJP) and data blurred from a random object."""
    f = np.fft.fftfreq(n)
    Hf = np.exp(-2 * (np.pi * sigma) ** 2 * (f[:, None] ** 2 + f[None, :] ** 2))
    fwd = lambda x: np.real(np.fft.ifft2(np.fft.fft2(x) * Hf))  # noqa: E731
    adj = lambda x, y, g: np.real(np.fft.ifft2(np.fft.fft2(g) * Hf))  # noqa: E731
    rng = np.random.default_rng(0)
    return fwd, adj, fwd(rng.random((n, n))) + 0.01 * rng.standard_normal((n, n))


def _blur(n=16):
    fwd, adj, y = _blur_ops(n)
    return di.Model(di.Custom(fwd, adj)), y


def _holo(n=40, nz=5, seed=0):
    rng = np.random.default_rng(seed)
    z = np.linspace(1e-3, 2e-3, nz)
    pos = np.column_stack([rng.uniform(8, n - 8, 4) * PX, rng.uniform(8, n - 8, 4) * PX,
                           z[rng.integers(1, nz - 1, 4)]])
    holo, _ = H.simulate_particles((n, n), H.ParticleTable(pos, np.full(4, 10e-6)), wavelength=LAM,
                                   pixel_size=PX, gaussian_noise=0.005, seed=seed + 1)
    return holo, z


@pytest.mark.parametrize("method", list(METHODS))
def test_non_finite_stop_keeps_the_last_recorded_iterate(method):
    blur, adj, y = _blur_ops(12)
    calls = {"n": 0}

    def fwd(x):
        calls["n"] += 1
        return blur(x) * (np.nan if calls["n"] > 12 else 1.0)

    model = di.Model(di.Custom(fwd, adj))
    seen = []
    with pytest.raises(SolverError, match="iteration") as info:
        solve(model, y, np.zeros_like(y), method=method, iterations=50, progress=False,
              regularizers=[di.L2(0.01)],
              callback=lambda it, x, p, rec: seen.append((it, np.array(x))) and False)
    res = info.value.result
    assert isinstance(info.value, FloatingPointError)
    assert res.message == "non-finite objective" and np.all(np.isfinite(res.x))
    if seen:
        assert res.iterations == seen[-1][0]
        np.testing.assert_array_equal(res.x, seen[-1][1])
    else:
        assert res.iterations == 0
        np.testing.assert_array_equal(res.x, np.zeros_like(y))
    assert len(res.history["loss"]) == len(seen)


def test_non_finite_stop_on_the_fused_path():
    holo, z = _holo()
    holo = holo.copy()
    holo[3, 4] = np.nan
    prob = FusedVolumeProblem(holo, z, wavelength=LAM, pixel_size=PX, dz_bounds=(-1e-5, 1e-5))
    with pytest.raises(SolverError, match="iteration 1") as info:
        run(FISTA(), prob, prob.start(), iterations=5)
    res = info.value.result
    assert res.iterations == 0 and np.all(res.x == 0) and res.params["volume.dz"] == 0.0


@pytest.mark.parametrize("method", list(METHODS))
def test_callback_stops_and_its_time_is_not_counted(method):
    model, y = _blur()
    seen = []

    def cb(it, x, params, rec):
        assert set(rec) == {"loss", "fidelity", "regularizer", "step"}
        seen.append(it)
        time.sleep(0.3)
        return len(seen) >= 3

    r = solve(model, y, np.zeros_like(y), method=method, iterations=50, progress=False, callback=cb)
    assert len(seen) == 3 and r.iterations == seen[-1] and r.message == "stopped by callback"
    assert not r.converged and len(r.history["loss"]) == 3
    assert r.history["time"][-1] < 0.3        # three 0.3 s pauses excluded


def test_tolerance_needs_five_small_changes_in_a_row():
    # L1 denoising: FISTA reaches the soft threshold exactly, then the objective stays put
    rng = np.random.default_rng(1)
    y = rng.standard_normal((10, 12))
    model = di.Model(di.Custom(lambda x: x, lambda x, yy, g: g))
    tol = 1e-12
    r = solve(model, y, np.zeros_like(y), regularizers=[di.L1(0.5)], method="fista", iterations=100,
              tol=tol, progress=False)
    h = r.history["loss"]
    small = [abs(a - b) <= tol * abs(a) for a, b in zip(h[:-1], h[1:])]
    assert r.converged and r.message == f"relative change below tol={tol}"
    assert small[-5:] == [True] * 5 and (len(small) == 5 or not small[-6])
    assert r.iterations < 100


def test_tolerance_on_the_fused_path():
    holo, z = _holo(seed=2)
    prob = FusedVolumeProblem(holo, z, wavelength=LAM, pixel_size=PX, dz_bounds=(-1e-5, 1e-5),
                              dz_scale=5e-6, r_scale=1.0 / holo.shape[0])
    r = run(FISTA(), prob, prob.start(reference=1.0), iterations=300, tol=1e-4)
    h = r.history["loss"]
    assert r.converged and len(h) < 300
    assert all(abs(a - b) <= 1e-4 * abs(a) for a, b in zip(h[-6:-1], h[-5:]))


def test_history_schema_is_the_same_for_the_generic_and_fused_paths():
    holo, z = _holo(seed=3)
    kw = dict(wavelength=LAM, pixel_size=PX, iterations=8)
    hf = H.reconstruct(holo, z, engine="fused", **kw).history
    hg = H.reconstruct(holo, z, engine="generic", **kw).history
    assert set(hf) == set(hg) == {"loss", "fidelity", "regularizer", "params", "step", "time",
                                  "evaluations", "final_loss"}
    for h in (hf, hg):
        n = len(h["loss"])
        assert n > 0 and all(len(h[k]) == n for k in ("fidelity", "regularizer", "step", "time",
                                                        "evaluations"))
        assert set(h["params"]) == {"volume.dz", "volume.reference"}
        for v in h["params"]["volume.dz"]:
            assert isinstance(v, np.ndarray) and v.dtype == np.float64 and v.shape == ()
        assert isinstance(h["final_loss"], float) and h["final_loss"] == pytest.approx(h["loss"][-1])
        assert all(isinstance(e, int) and e >= 2 for e in h["evaluations"])


@pytest.mark.parametrize("method", list(METHODS))
def test_an_algorithm_stepped_by_hand_equals_solve(method):
    model, y = _blur()
    regs = [di.L2(0.05)]
    step = {"x": 1e-2} if method == "adam" else {"x": 1.0}
    r = solve(model, y, np.zeros_like(y), regularizers=regs, method=method, iterations=15,
              constraint=di.Box(0.0, 1.0), step=step, progress=False)
    prob = ModelProblem(model, y, regularizers=regs, constraint=di.Box(0.0, 1.0),
                        prox_split=method == "fista")
    alg = METHODS[method](step=step)
    alg.setup(prob, prob.start(np.zeros_like(y)))
    losses = []
    for _ in range(15):
        rec = alg.step()
        if alg.done:
            break
        if rec is not None:
            losses.append(rec["loss"])
    x, params = prob.variables(alg.x)
    np.testing.assert_array_equal(x, r.x)
    assert losses == r.history["loss"]
    assert alg.final_value() == r.history["final_loss"]


def test_fista_stepped_by_hand_on_the_fused_problem_equals_reconstruct():
    holo, z = _holo(seed=4)
    rec = H.reconstruct(holo, z, wavelength=LAM, pixel_size=PX, iterations=12, engine="fused",
                        learn_reference=False)
    lo, hi = rec.settings["dz_range"]
    prob = FusedVolumeProblem(holo, z, wavelength=LAM, pixel_size=PX, dz_bounds=(lo, hi),
                              learn_reference=False, dz_scale=(hi - lo) / 4,
                              r_scale=1.0 / np.sqrt(holo.size))
    alg = FISTA()
    alg.setup(prob, prob.start(reference=np.sqrt(np.mean(holo))))
    for _ in range(12):
        alg.step()
    o, params = prob.variables(alg.x)
    np.testing.assert_array_equal(o, rec.object)
    assert params["volume.dz"] == rec.dz and params["volume.reference"] == rec.reference


@pytest.mark.parametrize("method", ["fista", "lbfgs"])
def test_joint_problem_stepped_by_hand_equals_solve(method):
    # the default ModelProblem learns every non-fixed parameter, as solve() does
    n = 24
    yy, xx = np.mgrid[:n, :n]
    amp = np.where((yy - 11) ** 2 + (xx - 12) ** 2 < 20, 0.3, 1.0)
    model = di.Model(di.Propagate(di.Param(1.05e-3, bounds=(0.5e-3, 2e-3)), LAM, PX), di.Intensity())
    y = model(amp, {"propagate.z": 1e-3})
    r = solve(model, y, np.ones_like(amp), method=method, iterations=10, constraint=di.Box(0.0, 1.0),
              progress=False)
    prob = ModelProblem(model, y, constraint=di.Box(0.0, 1.0), prox_split=method == "fista")
    assert prob.names == ["propagate.z"] and prob.groups == ["x", "propagate.z"]
    alg = METHODS[method](step=1.0)
    alg.setup(prob, prob.start(np.ones_like(amp)))
    for _ in range(10):
        alg.step()
        if alg.done:
            break
    x, params = prob.variables(alg.x)
    np.testing.assert_array_equal(x, r.x)
    assert float(params["propagate.z"]) == float(r.params["propagate.z"]) != 1.05e-3
    with pytest.raises(KeyError, match="unknown parameter"):
        ModelProblem(model, y, names=["propagate.dz"])
