"""Stage shapes and adjoints, stage naming in models, and the Sum / Stack compositions."""
import numpy as np
import pytest

import diffimaging as di
from diffimaging.testing import check_vjp, dottest

from conftest import crandn

LAM = 532e-9
K = 3


# ---------------------------------------------------------------------- oshape

def _stages(rng):
    """(stage, input shape, expected output shape) for every stage type."""
    return [
        (di.Propagate(3e-5, LAM, 1e-6), (2, 9, 11), (2, 9, 11)),
        (di.Propagate(np.array([1e-5, 2e-5, 3e-5]), LAM, 1e-6), (9, 11), (3, 9, 11)),
        (di.Propagate(np.array([1e-5, 2e-5, 3e-5]), LAM, 1e-6), (3, 9, 11), (3, 9, 11)),
        (di.Propagate(np.array([1e-5, 2e-5, 3e-5]), LAM, 1e-6, mode="stack"), (3, 9, 11),
         (3, 3, 9, 11)),
        (di.Shift((0.3, -0.2)), (9, 11), (9, 11)),
        (di.Shift(rng.uniform(-1, 1, (K, 2))), (9, 11), (K, 9, 11)),
        (di.Bin(2), (2, 9, 12), (2, 4, 6)),
        (di.Bin(3, rng.uniform(-0.5, 0.5, (K, 2))), (12, 9), (K, 4, 3)),
        (di.Pupil(0.3, LAM, 0.5e-6, zernike=np.zeros(4)), (2, 8, 10), (2, 8, 10)),
        (di.Intensity(), (5, 7), (5, 7)),
        (di.Gain(np.ones((K, 1, 1)), 0.1), (9, 11), (K, 9, 11)),
        (di.Quantize(8), (5, 7), (5, 7)),
        (di.Saturate(2.0), (5, 7), (5, 7)),
        (di.Complex(), (5, 7), (5, 7)),
        (di.AmplitudePhase(), (2, 5, 7), (5, 7)),
        (di.AbsorptionPhase(), (2, 3, 5, 7), (3, 5, 7)),
        (di.Custom(lambda x: x * x, lambda x, y, g: 2 * g * x), (5, 7), (5, 7)),
        (di.Custom(lambda x: x[..., ::2, :], lambda x, y, g: g, oshape=lambda s: s[:-2] + (
            (s[-2] + 1) // 2, s[-1])), (5, 7), (3, 7)),
    ]


def test_oshape_of_every_stage_matches_its_output(rng):
    for stage, ishape, expected in _stages(rng):
        assert stage.oshape(ishape) == expected, stage
        x = rng.standard_normal(ishape) + (1j * rng.standard_normal(ishape)
                                           if not isinstance(stage, (di.AmplitudePhase, di.AbsorptionPhase)) else 0)
        assert tuple(stage(x).shape) == expected, stage


def test_oshape_errors_name_the_stage(rng):
    with pytest.raises(ValueError, match=r"Bin stage 'bin'.*smaller than the binning factor 4"):
        di.Bin(4).oshape((3, 8))
    with pytest.raises(ValueError, match=r"Shift stage 'drift'.*do not broadcast"):
        di.Shift(np.zeros((3, 2)), name="drift").oshape((2, 8, 8))
    with pytest.raises(ValueError, match=r"Propagate stage 'propagate'.*\(\.\.\., ny, nx\)"):
        di.Propagate(1e-3, LAM, 1e-6).oshape((8,))
    with pytest.raises(ValueError, match="leading axis of 3"):
        di.Propagate(np.ones(3) * 1e-3, LAM, 1e-6, mode="batch").oshape((2, 8, 8))
    with pytest.raises(ValueError, match=r"AmplitudePhase stage.*\(2, \.\.\., ny, nx\)"):
        di.AmplitudePhase().oshape((3, 8, 8))
    with pytest.raises(ValueError, match=r"Gain stage 'gain'.*do not broadcast"):
        di.Gain(np.ones((4, 1, 1))).oshape((3, 8, 8))
    m = di.Model(di.Propagate(1e-3, LAM, 1e-6), di.Bin(2), di.Bin(4))
    assert m.oshape((16, 24)) == (2, 3)
    with pytest.raises(ValueError, match=r"stage 'bin_1'.*smaller than the binning factor 4"):
        m.oshape((6, 12))


def test_model_oshape_chains_stages(rng):
    m = di.Model(di.AbsorptionPhase(), di.Propagate(np.array([3e-5, 4e-5, 6e-5]), LAM, 1e-6),
                 di.Intensity(), di.Bin(2, rng.uniform(-0.4, 0.4, (K, 2))),
                 di.Gain(np.ones((K, 1, 1)), 0.05))
    x = np.stack([0.2 * rng.random((16, 12)), rng.standard_normal((16, 12))])
    assert m.oshape(x.shape) == (K, 8, 6) == m(x).shape


# ---------------------------------------------------------------------- adjoints

SHAPES = [(9, 11), (8, 8), (K, 6, 10)]  # odd, even, non-square with a batch axis
DTYPES = [(np.complex128, 1e-12), (np.complex64, 1e-5)]


def _linear_stages(rng):
    return {
        "propagate": di.Propagate(3e-5, LAM, 1e-6),
        "propagate-fresnel-carrier": di.Propagate(3e-5, LAM, 1e-6, method="fresnel", carrier=True),
        "propagate-stack": di.Propagate(np.array([1e-5, 2e-5, 3e-5]), LAM, 1e-6, mode="stack"),
        "shift": di.Shift(rng.uniform(-1, 1, 2)),
        "shift-per-capture": di.Shift(rng.uniform(-1, 1, (K, 2))),
        "bin": di.Bin(2),
        "bin-shift-per-capture": di.Bin(2, rng.uniform(-0.5, 0.5, (K, 2))),
        "pupil": di.Pupil(0.4, LAM, 0.5e-6, zernike=rng.normal(0, 0.3, 6)),
        "gain-per-capture": di.Gain(rng.uniform(0.5, 1.5, (K, 1, 1))),
        "complex": di.Complex(),
        "model": di.Model(di.Pupil(0.4, LAM, 0.5e-6, zernike=rng.normal(0, 0.2, 4)),
                          di.Propagate(2e-5, LAM, 0.5e-6), di.Shift(rng.uniform(-1, 1, (K, 2))),
                          di.Bin(2, rng.uniform(-0.5, 0.5, (K, 2)))),
    }


@pytest.mark.parametrize("dtype,tol", DTYPES, ids=["complex128", "complex64"])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("which", list(_linear_stages(np.random.default_rng(0))))
def test_adjoint_dot_test(rng, which, shape, dtype, tol):
    stage = _linear_stages(rng)[which]
    x = crandn(rng, shape, dtype)
    adj = di.Adjoint(stage, ishape=x.shape)
    err = dottest(stage, adj, x, rtol=tol)
    assert err <= tol
    y = stage(x)
    assert y.dtype == dtype and adj(y).dtype == dtype
    assert adj.H is stage and stage.H.H is stage
    # the inferred input shape (every batch axis of the output kept) when it is the input's
    if stage.ishape(y.shape) == x.shape:
        np.testing.assert_allclose(stage.H(y), adj(y), rtol=1e-6 if dtype == np.complex64 else 1e-12,
                                   atol=0)


def test_adjoint_of_real_stage_and_in_a_model(rng):
    """Bin on real images is R-linear real -> real; an Adjoint stage chains in a
    Model and its VJP (parameters included) passes the finite-difference check."""
    x = rng.standard_normal((2, 10, 12))
    b = di.Bin(2, di.Param(np.array([0.3, -0.2])))
    dottest(b, b.H, x)
    # A^H A in a model: its parameter cotangent is the shift's, through both
    m = di.Model(b, b.H)
    assert list(m.params) == ["bin.shift", "bin_adjoint.shift"]
    assert m(x).shape == x.shape
    check_vjp(m, x)
    check_vjp(di.Model(di.Propagate(di.Param(3e-5), LAM, 1e-6).H, di.Intensity()),
              crandn(rng, (9, 10)))


def test_nonlinear_stages_have_no_adjoint():
    for stage in [di.Intensity(), di.Quantize(4), di.Saturate(1.0), di.AmplitudePhase(),
                  di.AbsorptionPhase(), di.Gain(2.0, offset=di.Param(0.0)), di.Gain(2.0, 0.5),
                  di.Custom(lambda x: x * x, lambda x, y, g: 2 * g * x)]:
        assert not stage.linear
        with pytest.raises(AttributeError, match="nonlinear.*diffimaging.vjp"):
            stage.H
        with pytest.raises(ValueError, match="nonlinear"):
            di.Adjoint(stage)
    assert di.Gain(di.Param(2.0)).linear
    assert di.Custom(lambda x: 2 * x, lambda x, y, g: 2 * g, linear=True).H is not None
    with pytest.raises(AttributeError, match=r"stage\(s\) 'intensity' \(Intensity\)"):
        di.Model(di.Propagate(1e-3, LAM, 1e-6), di.Intensity()).H


def test_adjoint_shape_errors(rng):
    p = di.Propagate(np.array([1e-5, 2e-5]), LAM, 1e-6, mode="stack")
    with pytest.raises(ValueError, match=r"outputs arrays of shape \(K=2"):
        p.H(crandn(rng, (3, 8, 8)))
    with pytest.raises(ValueError, match="the stage's output for an input of shape"):
        di.Adjoint(di.Bin(2), ishape=(8, 8))(crandn(rng, (5, 5)))


# ------------------------------------------------------------------- naming

def test_models_never_rename_their_stages(rng):
    p1, p2 = di.Propagate(di.Param(1e-5), LAM, 1e-6), di.Propagate(2e-5, LAM, 1e-6)
    inten = di.Intensity()
    m1 = di.Model(p1, p2, inten)
    m2 = di.Model(p2, p1, inten)
    assert (p1.name, p2.name, inten.name) == ("propagate", "propagate", "intensity")
    assert list(m1.params) == ["propagate.z", "propagate_1.z"]
    assert m1.params["propagate.z"] is p1.params["z"] and m2.params["propagate.z"] is p2.params["z"]
    assert list(m1.named_stages) == ["propagate", "propagate_1", "intensity"]
    x = crandn(rng, (8, 8))
    ref = di.intensity(di.propagate(di.propagate(x, 1e-5, wavelength=LAM, pixel_size=1e-6,
                                                 carrier=False),
                                    2e-5, wavelength=LAM, pixel_size=1e-6, carrier=False))
    np.testing.assert_allclose(m1(x), ref, atol=1e-12)
    np.testing.assert_allclose(m2(x, {"propagate.z": 1e-5, "propagate_1.z": 2e-5}), ref, atol=1e-12)
    # one stage object twice in one model: two names, overridable separately
    m3 = di.Model(p1, p1, inten)
    assert list(m3.params) == ["propagate.z", "propagate_1.z"] and p1.name == "propagate"
    np.testing.assert_allclose(m3(x, {"propagate_1.z": 2e-5}), ref, atol=1e-12)
    # a taken suffix is skipped
    named = di.Model(di.Shift((0, 0), name="shift_1"), di.Shift((0, 0)), di.Shift((0, 0)))
    assert list(named.named_stages) == ["shift_1", "shift", "shift_2"]
    with pytest.raises(ValueError, match="without dots"):
        di.Shift((0, 0), name="a.b")


def test_nested_models_prefix_names(rng):
    optics = di.Model(di.Pupil(0.3, LAM, 0.5e-6, zernike=di.Param(np.zeros(3))),
                      di.Propagate(di.Param(2e-5), LAM, 0.5e-6), name="optics")
    m = di.Model(di.Complex(), optics, di.Intensity())
    assert list(m.params) == ["optics.pupil.zernike", "optics.propagate.z"]
    x = crandn(rng, (10, 12))
    np.testing.assert_allclose(m(x, {"optics.propagate.z": 3e-5}),
                               di.intensity(optics(x, {"propagate.z": 3e-5})), atol=1e-12)
    assert m.oshape(x.shape) == x.shape
    check_vjp(m, x, params={"optics.pupil.zernike": np.array([0.1, -0.2, 0.3])})


# ------------------------------------------------------------------- Sum, Stack

def _tilts(ny, nx, k):
    """k plane-wave illuminations exp(2 pi i (fy y + fx x)) (the captures' tilts)."""
    yy, xx = np.meshgrid(np.arange(ny), np.arange(nx), indexing="ij")
    f = np.array([[0.0, 0.0], [0.1, -0.05], [-0.08, 0.12]])[:k]
    return np.exp(2j * np.pi * (f[:, 0, None, None] * yy + f[:, 1, None, None] * xx))


def test_sum_of_intensities_over_illuminations(rng):
    """Multiplexed Fourier ptychography: sum over K tilted illuminations of the
    low-passed intensity."""
    tilt = _tilts(12, 14, K)
    pupil = di.Pupil(0.3, LAM, 0.5e-6, zernike=di.Param(rng.normal(0, 0.2, 4)))
    m = di.Sum(di.Custom(lambda x: x * tilt, lambda x, y, g: np.sum(np.conj(tilt) * g, axis=0),
                         oshape=lambda s: (K,) + s, name="illuminate"),
               pupil, di.Intensity())
    assert list(m.params) == ["pupil.zernike"]
    x = crandn(rng, (12, 14))
    y = m(x)
    expected = sum(di.intensity(di.Model(pupil)(x * tilt[k])) for k in range(K))
    np.testing.assert_allclose(y, expected, rtol=1e-12, atol=1e-12)
    assert m.oshape(x.shape) == y.shape == (12, 14)
    check_vjp(m, x)
    nested = di.Model(m, di.Gain(di.Param(2.0)))
    assert list(nested.params) == ["sum.pupil.zernike", "gain.gain", "gain.offset"]
    check_vjp(nested, x)
    # sum over another axis; a linear Sum has an adjoint (its input shape given)
    s1 = di.Sum(di.Propagate(np.array([1e-5, 2e-5]), LAM, 1e-6, mode="stack"), axis=-4)
    x2 = crandn(rng, (4, 9, 10))
    np.testing.assert_allclose(s1(x2), sum(di.propagate(x2, z, wavelength=LAM, pixel_size=1e-6,
                                                        carrier=False) for z in (1e-5, 2e-5)))
    dottest(s1, di.Adjoint(s1, ishape=x2.shape), x2)
    with pytest.raises(ValueError, match="length of the summed axis"):
        s1.H(s1(x2))
    with pytest.raises(ValueError, match="axis 3 is out of range"):
        di.Sum(di.Complex(), axis=3)(x2)


def _capture(shift, z):
    return di.Model(di.Shift(di.Param(shift)), di.Propagate(di.Param(z), LAM, 1e-6), di.Intensity(),
                    di.Bin(2))


def test_stack_of_captures(rng):
    """Pixel super-resolution: one object, captures with their own shift and defocus."""
    caps = [_capture(np.array([0.3, -0.6]), 2e-5), _capture(np.array([-0.4, 0.2]), 3e-5)]
    st = di.Stack(caps)
    assert list(st.params) == ["0.shift.shift", "0.propagate.z", "1.shift.shift", "1.propagate.z"]
    x = crandn(rng, (12, 16))
    y = st(x)
    np.testing.assert_allclose(y, np.stack([c(x) for c in caps]), rtol=1e-13, atol=1e-13)
    assert st.oshape(x.shape) == y.shape == (2, 6, 8)
    check_vjp(st, x)
    # the object cotangent is the sum of the captures'
    g = rng.standard_normal(y.shape)
    gx, gp = di.vjp(st, x)[1](g)
    parts = [di.vjp(c, x)[1](g[k]) for k, c in enumerate(caps)]
    np.testing.assert_allclose(gx, parts[0][0] + parts[1][0], rtol=1e-12)
    np.testing.assert_allclose(gp["1.propagate.z"], parts[1][1]["propagate.z"], rtol=1e-12)
    # nested, stacked on the last axis
    m = di.Model(di.Stack(caps, axis=-1), di.Gain(di.Param(1.5)))
    assert list(m.params)[:2] == ["stack.0.shift.shift", "stack.0.propagate.z"]
    assert m.oshape(x.shape) == m(x).shape == (6, 8, 2)
    np.testing.assert_allclose(m(x)[..., 1], 1.5 * caps[1](x), rtol=1e-13)
    check_vjp(m, x)
    with pytest.raises(ValueError, match="member 1 outputs shape"):
        di.Stack([di.Bin(2), di.Bin(4)])(x)
    with pytest.raises(ValueError, match="members' shapes differ"):
        di.Stack([di.Bin(2), di.Bin(4)]).oshape(x.shape)
    with pytest.raises(TypeError, match="list of stages"):
        di.Stack(di.Bin(2))


@pytest.mark.parametrize("dtype,tol", DTYPES, ids=["complex128", "complex64"])
def test_linear_stack_adjoint(rng, dtype, tol):
    st = di.Stack([di.Model(di.Shift(rng.uniform(-1, 1, 2)), di.Bin(2)),
                   di.Model(di.Propagate(2e-5, LAM, 1e-6), di.Bin(2, (0.3, 0.1)))])
    for shape in SHAPES:
        x = crandn(rng, shape, dtype)
        dottest(st, di.Adjoint(st, ishape=x.shape), x, rtol=tol)


def test_joint_recovery_through_solve_on_a_stack(rng):
    """Two captures of one smooth object, the second with an unknown sub-pixel
    shift: solve recovers the object and the shift together."""
    n = 24
    yy, xx = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    truth = (np.exp(-((yy - 10.0) ** 2 + (xx - 13.0) ** 2) / 18.0)
             + 0.6 * np.exp(-((yy - 16.0) ** 2 + (xx - 7.0) ** 2) / 10.0))
    s_true = np.array([0.7, -0.45])
    cap0 = di.Shift(np.zeros(2))                                      # the reference capture
    cap1 = di.Shift(di.Param(np.zeros(2), bounds=(-2.0, 2.0)))        # unknown shift
    m = di.Model(di.Stack([cap0, cap1]))
    y = m(truth, {"stack.1.shift": s_true})
    res = di.solve(m, y, np.zeros_like(truth), method="lbfgs", iterations=60, progress=False)
    np.testing.assert_allclose(res.params["stack.1.shift"], s_true, atol=1e-4)
    np.testing.assert_allclose(res.x, truth, atol=1e-3)
