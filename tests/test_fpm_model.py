"""The FPM forward model: LED geometry against a direct formula, the on-axis LED
as a low-pass of the object, VJPs (object, Zernike, brightness, LED offset,
rotation, height, pitch) against central finite differences in complex128,
the stages' adjoints, and bad inputs."""
import math

import numpy as np
import pytest

import diffimaging as d
from diffimaging import fpm
from diffimaging.fpm.model import Illumination, PupilFilter, SpectralIllumination, SpectralPupil
from diffimaging.testing import check_vjp

LAM, NA, CAM, MAG, U = 520e-9, 0.1, 6.5e-6, 4.0, 4
PITCH, HEIGHT = 4e-3, 80e-3
N = 32                      # high-resolution grid; camera grid N / U = 8
P_HIGH = CAM / MAG / U


def _model(**kw):
    args = dict(pitch=PITCH, height=HEIGHT, wavelength=LAM, na=NA, pixel_size=CAM,
                magnification=MAG, upsampling=U)
    args.update(kw)
    return fpm.model(3, 3, **args)


def _object(seed=1, shape=(N, N)):
    rng = np.random.default_rng(seed)
    return (1.0 + 0.3 * rng.standard_normal(shape)) * np.exp(0.5j * rng.standard_normal(shape))


def test_wavevectors_against_direct_formula():
    off, a = np.array([0.3e-3, -0.7e-3]), 0.05
    k = fpm.wavevectors(3, 4, PITCH, offset=off, rotation=a, height=HEIGHT, wavelength=LAM)
    assert k.shape == (12, 2)
    for r in range(3):
        for c in range(4):
            u, v = (c - 1.5) * PITCH, (r - 1.0) * PITCH
            x = math.cos(a) * u - math.sin(a) * v + off[1]
            y = math.sin(a) * u + math.cos(a) * v + off[0]
            R = math.sqrt(x * x + y * y + HEIGHT ** 2)
            np.testing.assert_allclose(k[r * 4 + c], [y / R / LAM, x / R / LAM], rtol=1e-14)
    pos = fpm.led_positions(3, 4, PITCH, offset=off, rotation=a, height=HEIGHT)
    np.testing.assert_allclose(pos[:, 2], HEIGHT)
    # the nominal, centred array: the centre LED of an odd array is on axis, and the
    # stage reports the same frequencies
    k0 = fpm.wavevectors(3, 3, PITCH, height=HEIGHT, wavelength=LAM)
    np.testing.assert_array_equal(k0[4], [0.0, 0.0])
    R = math.hypot(PITCH, HEIGHT)
    np.testing.assert_allclose(k0[5], [0.0, PITCH / R / LAM], rtol=1e-14)
    np.testing.assert_allclose(_model().stages[0].wavevectors(), k0, rtol=1e-14)


def test_wavevectors_vjp_against_finite_differences():
    geo = dict(offset=np.array([0.3e-3, -0.7e-3]), rotation=0.05, height=HEIGHT)
    gk = np.random.default_rng(0).standard_normal((9, 2))
    an = fpm.wavevectors_vjp(gk, 3, 3, PITCH, wavelength=LAM, **geo)

    def loss(pitch=PITCH, **kw):
        g = dict(geo, **kw)
        return float(np.sum(gk * fpm.wavevectors(3, 3, pitch, wavelength=LAM, **g)))

    for key, h in (("rotation", 1e-6), ("height", 1e-7), ("pitch", 1e-8)):
        v = PITCH if key == "pitch" else geo[key]
        fd = (loss(**{key: v + h}) - loss(**{key: v - h})) / (2 * h)
        assert abs(fd - float(an[key])) <= 1e-6 * abs(fd)
    for i in range(2):
        e = np.zeros(2)
        e[i] = 1e-7
        fd = (loss(offset=geo["offset"] + e) - loss(offset=geo["offset"] - e)) / 2e-7
        assert abs(fd - float(an["offset"][i])) <= 1e-6 * abs(fd)


def test_on_axis_led_is_a_low_pass_of_the_object():
    o = _object()
    m = _model(zernike=np.zeros(9))
    y = m(o)
    assert y.shape == (9, N // U, N // U) and y.dtype == np.float64
    f = np.fft.fftfreq(N, P_HIGH)
    circ = np.hypot(f[:, None], f[None, :]) <= NA / LAM
    low = np.fft.ifft2(np.fft.fft2(o) * circ)[::U, ::U]
    np.testing.assert_allclose(y[4], np.abs(low) ** 2, rtol=1e-12, atol=1e-12)
    # a clear sample is unit bright under the on-axis LED (under a tilted LED whose
    # frequency is not on the grid's frequency lattice, the periodic grid leaks)
    np.testing.assert_allclose(m(np.ones((N, N), complex))[4], 1.0, atol=1e-12)
    # the tilt shifts the spectrum continuously: a plane wave of frequency -k_j in
    # the object cancels LED j's tilt
    k = m.stages[0].wavevectors()
    r = np.arange(N) * P_HIGH
    plane = np.exp(2j * np.pi * (k[0, 0] * r[:, None] + k[0, 1] * r[None, :]))
    unfused = _model(zernike=np.zeros(9), fused=False)
    np.testing.assert_allclose(unfused.stages[0](plane)[0], 1.0, atol=1e-12)
    # fused: the window of LED 0's spectrum holds the plane wave at zero frequency alone
    S = m.stages[0](plane)[0]
    assert abs(S[0, 0] - N * N) <= 1e-9 * N * N
    S[0, 0] = 0
    assert np.max(np.abs(S)) <= 1e-9 * N * N


def test_model_parameters_and_shapes():
    m = _model()
    assert set(m.params) == {"leds.offset", "leds.rotation", "leds.height", "leds.pitch",
                             "pupil.zernike", "brightness.gain", "brightness.offset"}
    assert m.params["leds.pitch"].fixed and not m.params["leds.height"].fixed
    assert m.params["brightness.gain"].shape == (9, 1, 1)
    assert m.oshape((N, N)) == (9, N // U, N // U)
    assert m(_object().astype(np.complex64)).dtype == np.float32


def _generic_model(fused=True):
    rng = np.random.default_rng(7)
    return _model(offset=(0.4e-3, -0.6e-3), rotation=0.03, zernike=0.3 * rng.standard_normal(9),
                  brightness=1.0 + 0.1 * rng.standard_normal(9), background=0.02,
                  learn=fpm.LEARNABLE, fused=fused)


def test_fused_and_unfused_models_agree():
    """The partial-DFT stages give the FFT stages' images and cotangents."""
    o = _object()
    a, b = _generic_model(True), _generic_model(False)
    ya, pa = d.vjp(a, o)
    yb, pb = d.vjp(b, o)
    np.testing.assert_allclose(ya, yb, rtol=1e-11, atol=1e-12 * np.max(ya))
    g = np.random.default_rng(4).standard_normal(ya.shape)
    (gxa, gpa), (gxb, gpb) = pa(g), pb(g)
    np.testing.assert_allclose(gxa, gxb, atol=1e-10 * np.max(np.abs(gxb)))
    for k in gpb:
        np.testing.assert_allclose(np.asarray(gpa[k], dtype=float), np.asarray(gpb[k], dtype=float),
                                   rtol=1e-8, atol=1e-10 * np.max(np.abs(gpb[k])), err_msg=k)


def test_fused_stages_skip_parameter_cotangents_on_request():
    m = _generic_model()
    m.stages[0].geometry_gradient = False
    m.stages[1].zernike_gradient = False
    _, gp = d.vjp(m, _object())[1](np.ones((9, N // U, N // U)))
    assert float(np.max(np.abs(gp["leds.offset"]))) == 0.0
    assert float(np.max(np.abs(gp["pupil.zernike"]))) == 0.0
    assert np.shape(gp["pupil.zernike"]) == (9,)


@pytest.mark.parametrize("fused", [True, False])
def test_vjp_full_model_matches_finite_differences(fused):
    m = _generic_model(fused)
    rel = check_vjp(m, _object(), rtol=1e-4,
                    names=["leds.offset", "leds.rotation", "leds.height", "leds.pitch",
                           "pupil.zernike", "brightness.gain", "brightness.offset"])
    assert max(rel.values()) < 1e-4, rel


@pytest.mark.parametrize("name,index,h", [("leds.offset", (0,), 1e-7), ("leds.offset", (1,), 1e-7),
                                          ("leds.rotation", (), 1e-7), ("leds.height", (), 1e-6),
                                          ("pupil.zernike", (4,), 1e-6)])
def test_vjp_geometry_components(name, index, h):
    """Each geometry parameter alone (a random direction could hide a wrong component)."""
    m = _generic_model()
    o = _object()
    g = np.random.default_rng(3).standard_normal((9, N // U, N // U))
    _, gp = d.vjp(m, o)[1](g)
    v0 = np.array(m.params[name].value, dtype=np.float64)
    vp, vm = v0.copy(), v0.copy()
    vp[index] += h
    vm[index] -= h
    fd = (np.sum(g * m(o, {name: vp})) - np.sum(g * m(o, {name: vm}))) / (2 * h)
    an = float(np.asarray(gp[name])[index])
    assert np.shape(gp[name]) == v0.shape
    assert abs(fd - an) <= 1e-4 * abs(an)


def test_stage_adjoints_dot_test():
    rng = np.random.default_rng(5)
    ill = Illumination(3, 3, PITCH, HEIGHT, wavelength=LAM, pixel_size=P_HIGH, offset=(1e-4, 2e-4),
                       rotation=0.02)
    pup = PupilFilter(NA, LAM, P_HIGH, upsampling=U, zernike=0.2 * rng.standard_normal(6))
    sill = SpectralIllumination(3, 3, PITCH, HEIGHT, wavelength=LAM, pixel_size=P_HIGH,
                                upsampling=U, offset=(1e-4, 2e-4), rotation=0.02)
    spup = SpectralPupil(NA, LAM, P_HIGH, upsampling=U, zernike=0.2 * rng.standard_normal(6))
    for st, ishape in ((ill, (N, 24)), (pup, (9, N, 24)), (pup, (N, N)), (sill, (N, 24)),
                       (sill, (28, 36)), (spup, (9, 7, 6))):
        oshape = st.oshape(ishape)
        u = rng.standard_normal(ishape) + 1j * rng.standard_normal(ishape)
        v = rng.standard_normal(oshape) + 1j * rng.standard_normal(oshape)
        Au, AHv = st(u), st.H(v)
        assert AHv.shape == ishape
        assert abs(np.vdot(Au, v) - np.vdot(u, AHv)) <= 1e-12 * np.linalg.norm(Au) * np.linalg.norm(v)


def test_bad_inputs():
    with pytest.raises(TypeError, match="rows"):
        fpm.model(2.0, 3, pitch=PITCH, height=HEIGHT, wavelength=LAM, na=NA, pixel_size=CAM,
                  magnification=MAG, upsampling=U)
    with pytest.raises(ValueError, match="cols"):
        fpm.model(3, 0, pitch=PITCH, height=HEIGHT, wavelength=LAM, na=NA, pixel_size=CAM,
                  magnification=MAG, upsampling=U)
    with pytest.raises(ValueError, match="na"):
        _model(na=-0.1)
    with pytest.raises(ValueError, match="height"):
        _model(height=0.0)
    with pytest.raises(ValueError, match="offset"):
        _model(offset=(1e-3, 0.0, 0.0))
    with pytest.raises(ValueError, match="brightness"):
        _model(brightness=np.ones(4))
    with pytest.raises(TypeError, match="upsampling"):
        _model(upsampling=4.0)
    with pytest.raises(ValueError, match="unknown group"):
        _model(learn=("offsets",))
    with pytest.raises(ValueError, match="noll"):
        _model(zernike=np.zeros(3), noll=[2, 3])
    with pytest.raises(TypeError, match="rotation"):
        _model(rotation="0.1")
    m = _model()
    with pytest.raises(ValueError, match="multiple of upsampling"):
        m(np.ones((30, 30), complex))
    with pytest.raises(ValueError, match=r"\(ny, nx\)"):
        m(np.ones((2, N, N), complex))
    with pytest.raises(TypeError, match="object"):
        m(np.ones((N, N), dtype=np.int64))


def test_sampling_warnings():
    with pytest.warns(d.SamplingWarning, match="camera grid's Nyquist"):
        _model(na=0.5)
    with pytest.warns(d.SamplingWarning, match="increase upsampling"):
        _model(upsampling=1, na=0.15)


def test_torch_matches_numpy():
    torch = pytest.importorskip("torch")
    m = _generic_model()
    o = _object()
    yn, pbn = d.vjp(m, o)
    yt, pbt = d.vjp(m, torch.asarray(o))
    assert isinstance(yt, torch.Tensor) and yt.dtype == torch.float64
    np.testing.assert_allclose(yt.numpy(), yn, rtol=1e-12, atol=1e-12)
    g = np.random.default_rng(1).standard_normal(yn.shape)
    gon, gpn = pbn(g)
    got, gpt = pbt(torch.asarray(g))
    np.testing.assert_allclose(got.numpy(), gon, rtol=1e-10, atol=1e-12)
    for k, v in gpn.items():
        # (the piston's cotangent is zero up to round-off: an absolute floor)
        np.testing.assert_allclose(np.asarray(gpt[k]), np.asarray(v), rtol=1e-9,
                                   atol=1e-12 * float(np.max(np.abs(v))), err_msg=k)
    assert m(torch.asarray(o.astype(np.complex64))).dtype == torch.float32


def test_pupil_filter_without_upsampling_is_the_model_layers_pupil():
    """upsampling = 1 crops nothing: the same filter as diffimaging.model.Pupil."""
    c = 0.4 * np.random.default_rng(4).standard_normal(8)
    x = _object(shape=(3, 16, 20))
    p = CAM / MAG
    ours = PupilFilter(NA, LAM, p, upsampling=1, zernike=c)(x)
    ref = d.model.Pupil(NA, LAM, p, zernike=c)(x)
    np.testing.assert_allclose(ours, ref, rtol=1e-12, atol=1e-12)


def test_geometry_bad_inputs():
    kw = dict(height=HEIGHT, wavelength=LAM)
    with pytest.raises(ValueError, match="pitch"):
        fpm.wavevectors(3, 3, -PITCH, **kw)
    with pytest.raises(ValueError, match="height"):
        fpm.wavevectors(3, 3, PITCH, height=0.0, wavelength=LAM)
    with pytest.raises(TypeError, match="rotation"):
        fpm.wavevectors(3, 3, PITCH, rotation="0.1", **kw)
    with pytest.raises(ValueError, match="offset"):
        fpm.wavevectors(3, 3, PITCH, offset=(1e-3,), **kw)
    with pytest.raises(TypeError, match="offset"):
        fpm.led_positions(3, 3, PITCH, offset=("a", 1.0), height=HEIGHT)
    with pytest.raises(ValueError, match="wavelength"):
        fpm.wavevectors(3, 3, PITCH, height=HEIGHT, wavelength=-1.0)
    with pytest.raises(TypeError, match="rows"):
        fpm.nominal_grid(None, 3)
    with pytest.raises(ValueError, match="zernike"):
        PupilFilter(NA, LAM, P_HIGH, upsampling=U, zernike=np.zeros((3, 3)))
    with pytest.raises(ValueError, match="offset"):
        Illumination(3, 3, PITCH, HEIGHT, wavelength=LAM, pixel_size=P_HIGH, offset=(0.0,))
    with pytest.raises(TypeError, match="offset"):
        _model(offset="centre")
