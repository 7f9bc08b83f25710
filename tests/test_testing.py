"""The public test helpers catch what they are meant to catch."""
import numpy as np
import pytest

import diffimaging as di
from diffimaging.testing import available_backends, backend, check_vjp, dottest
from diffimaging.testing.fixtures import backend as backend_fixture  # noqa: F401

from conftest import crandn

LAM = 532e-9


def test_dottest_accepts_an_adjoint_and_rejects_a_wrong_one(rng):
    a = crandn(rng, (7, 5))
    x = crandn(rng, (5,))
    err = dottest(lambda u: a @ u, lambda v: np.conj(a.T) @ v, x)
    assert 0 <= err < 1e-14
    with pytest.raises(AssertionError, match=r"relative error .* > tol 1\.0e-12"):
        dottest(lambda u: a @ u, lambda v: a.T @ v, x)          # transpose without conjugation
    with pytest.raises(AssertionError, match="relative error"):
        dottest(lambda u: a @ u, lambda v: 1.001 * np.conj(a.T) @ v, x)
    with pytest.raises(AssertionError, match="adjoint returned shape"):
        dottest(lambda u: a @ u, lambda v: np.conj(a) @ v[:5], x)
    with pytest.raises(AssertionError, match="checks nothing"):
        dottest(lambda u: 0 * (a @ u), lambda v: np.conj(a.T) @ v, x)


def test_dottest_tolerance_by_precision(rng):
    """A complex64 pair passes at 1e-5 but not at the double-precision tolerance."""
    p = di.Propagate(3e-5, LAM, 1e-6)
    x = crandn(rng, (16, 18), np.complex64)
    assert dottest(p, p.H, x) <= 1e-5
    with pytest.raises(AssertionError):
        dottest(p, p.H, x, rtol=1e-12)
    # a real input: the R-linear map real -> complex, real parts compared
    xr = rng.standard_normal((2, 9, 9))
    dottest(p, lambda v: np.real(p.H(v)), xr)
    with pytest.raises(AssertionError):
        dottest(p, lambda v: np.imag(p.H(v)), xr)


def test_check_vjp_accepts_right_and_rejects_wrong_vjps(rng):
    x = crandn(rng, (10, 12))
    res = check_vjp(di.propagate, x, 3e-5, wavelength=LAM, pixel_size=1e-6, carrier=False)
    assert set(res) == {"arg0", "arg1"} and max(res.values()) < 1e-6
    # a stage whose VJP forgets the conjugate (the gradient convention's trap)
    wrong = di.Custom(lambda u: 2j * u, lambda u, y, g: 2j * g)
    right = di.Custom(lambda u: 2j * u, lambda u, y, g: -2j * g)
    check_vjp(di.Model(right), x)
    with pytest.raises(AssertionError, match="arg0: VJP gives"):
        check_vjp(di.Model(wrong), x)
    # a wrong parameter cotangent (off by a factor 2)
    a = di.Param(1.5)
    bad = di.Custom(lambda u, a: a * u * u,
                    lambda u, y, g, a: (2 * a * g * u, {"a": 2 * float(np.sum(g * u * u))}),
                    params={"a": a})
    xr = rng.standard_normal((6, 7))
    with pytest.raises(AssertionError, match=r"custom\.a: VJP gives"):
        check_vjp(di.Model(bad), xr)
    check_vjp(di.Model(bad), xr, names=[])  # the x-cotangent alone is right
    with pytest.raises(TypeError, match="params="):
        check_vjp(di.Model(bad), xr, {"custom.a": 1.0})


def test_backends_and_fixture(backend_fixture):
    names = available_backends()
    assert names[0] == "numpy" and backend_fixture.name in names
    host = np.arange(6.0).reshape(2, 3)
    a = backend_fixture.asarray(host)
    np.testing.assert_array_equal(backend_fixture.to_numpy(a), host)
    # the helpers work on any array-API library
    p = di.Propagate(2e-5, LAM, 1e-6)
    u = backend_fixture.asarray(crandn(np.random.default_rng(3), (8, 10)))
    dottest(p, p.H, u)
    check_vjp(di.Model(p, di.Intensity()), u)
    with pytest.raises(ValueError, match="unknown backend"):
        backend("jax-numpy")
