"""The classical FPM baseline (EPRY, :mod:`diffimaging.fpm.classical`): integer
spectral shifts of the nominal geometry; recovery of a weak object and of a
defocused pupil on noiseless data of :func:`diffimaging.fpm.model` whose
illumination frequencies fall on the object's spectral grid; the returned
reconstruction reproduces the data through an independent (tilted-field, full
FFT) forward model; the pupil stays the circ without pupil updates; bad inputs.
"""
import math

import numpy as np
import pytest
from scipy import ndimage

from diffimaging import fpm
from diffimaging.fpm.classical import epry, nominal_pixel_shifts

WL = 500e-9
N, U = 64, 4                                   # object 64 x 64, images 16 x 16
# object pixel p = 100 um / 4 / 4 = 6.25 um, N p = 0.4 mm, spectral step 1 / (N p);
# one pitch tilts by sin = 2 / 400 = 0.005, i.e. 0.005 / WL * N p = 4 spectral pixels
# (off-grid by < 1e-3 px up to the corners); the pupil's radius is 6.25 spectral pixels
RADIUS_PX = 6.25
OPTICS = dict(pitch=2e-3, height=0.4, wavelength=WL, na=RADIUS_PX * WL / (N * 6.25e-6),
              pixel_size=100e-6, magnification=4)
DEFOCUS = 0.5                                  # Noll 4 [rad]


def _setup():
    return fpm.Setup(5, 5, upsampling=U, **OPTICS)


def _object():
    rng = np.random.default_rng(0)
    a = ndimage.gaussian_filter(rng.standard_normal((N, N)), 2, mode="wrap")
    a = 0.3 + 0.7 * (a - a.min()) / (a.max() - a.min())
    ph = ndimage.gaussian_filter(rng.standard_normal((N, N)), 2, mode="wrap")
    return a * np.exp(0.3j * ph / np.abs(ph).max())


def _corr(x, y):
    x = x - x.mean()
    y = y - y.mean()
    return float(np.sum(x * y) / np.sqrt(np.sum(x * x) * np.sum(y * y)))


def _band(shifts):
    """The synthetic band (union of the shifted pupils) on the object's FFT grid."""
    f = np.rint(np.fft.fftfreq(N) * N)
    Y, X = np.meshgrid(f, f, indexing="ij")
    band = np.zeros((N, N), bool)
    for ky, kx in shifts:
        band |= (Y - ky) ** 2 + (X - kx) ** 2 <= RADIUS_PX ** 2
    return band


def _tilted_forward(obj, pupil, shifts, u):
    """|psi_j| of an independent forward model: the object times the integer
    tilt exp(-2 pi i m_j . r / N), a full FFT, the model's low-frequency crop,
    the pupil, the inverse FFT scaled by 1 / u^2."""
    NY, NX = obj.shape
    ny, nx = pupil.shape
    iy, ix = np.arange(NY)[:, None], np.arange(NX)[None, :]
    ly = np.r_[0:ny - ny // 2, NY - ny // 2:NY]
    lx = np.r_[0:nx - nx // 2, NX - nx // 2:NX]
    out = []
    for my, mx in shifts:
        tilted = obj * np.exp(-2j * np.pi * (my * iy / NY + mx * ix / NX))
        S = np.fft.fft2(tilted)[np.ix_(ly, lx)]
        out.append(np.abs(np.fft.ifft2(pupil * S)) / u ** 2)
    return np.array(out)


@pytest.fixture(scope="module")
def data():
    setup = _setup()
    zern = np.zeros(9)
    zern[3] = DEFOCUS
    m = fpm.model(5, 5, upsampling=U, zernike=zern, **OPTICS)
    obj = _object()
    return fpm.Dataset(np.asarray(m(obj)), setup, truth=dict(object=obj, zernike=zern))


@pytest.fixture(scope="module")
def recovered(data):
    return epry(data, iterations=150)


def test_shifts_on_the_spectral_grid_with_overlapping_pupils():
    s = _setup()
    shifts = nominal_pixel_shifts(s, (N, N))
    assert shifts.shape == (25, 2) and shifts.dtype.kind == "i"
    exact = s.wavevectors() * N * s.object_pixel_size
    assert np.max(np.abs(exact - shifts)) < 1e-3
    assert np.array_equal(shifts[12], [0, 0])
    assert np.array_equal(np.unique(shifts[:, 1]), [-8, -4, 0, 4, 8])
    # neighbouring pupils (4 px apart, radius 6.25 px) overlap by ~60 % of their area
    x = 4 / (2 * RADIUS_PX)
    overlap = 2 / math.pi * (math.acos(x) - x * math.sqrt(1 - x * x))
    assert 0.55 < overlap < 0.65
    # a general setup: rounding to the nearest pixel, at most half a pixel off
    g = fpm.Setup(7, 7, pitch=4e-3, height=80e-3, wavelength=520e-9, na=0.1,
                  pixel_size=6.5e-6, magnification=4)
    sh = nominal_pixel_shifts(g, (128, 96))
    ex = g.wavevectors() * np.array([128, 96]) * g.object_pixel_size
    assert np.max(np.abs(ex - sh)) <= 0.5


def test_epry_recovers_object_and_defocus(data, recovered):
    rec = recovered
    band = _band(nominal_pixel_shifts(data.setup, (N, N)))

    def bl(x):
        return np.fft.ifft2(np.fft.fft2(x) * band)

    truth = data.truth["object"]
    assert _corr(np.abs(bl(truth)), np.abs(bl(rec.object))) > 0.95
    assert abs(rec.zernike[3] - DEFOCUS) < 0.1
    # piston and tilts are moved into the object
    assert np.max(np.abs(rec.zernike[:3])) < 1e-6
    # the other aberrations stay small
    assert np.max(np.abs(rec.zernike[4:])) < 0.1
    loss = np.asarray(rec.history["loss"])
    assert loss.shape == (150,)
    assert loss[-1] < 0.01 * loss[0]
    assert np.all(np.diff(loss[::10]) < 0)


def test_reconstruction_fields_and_data_consistency(data, recovered):
    rec = recovered
    s = data.setup
    assert rec.object.shape == (N, N) and rec.object.dtype == np.complex128
    assert rec.pupil.shape == (16, 16) and rec.pupil.dtype == np.complex128
    assert rec.noll == list(range(1, 10)) and rec.zernike.shape == (9,)
    assert rec.setup == s
    assert np.array_equal(rec.geometry["offset"], np.zeros(2))
    assert rec.geometry["height"] == s.height and rec.geometry["pitch"] == s.pitch
    assert rec.geometry["rotation"] == 0.0
    bf = s.brightfield()
    factor = np.median(data.images[bf].mean(axis=(1, 2)))
    assert np.allclose(rec.brightness, factor) and rec.brightness.shape == (25,)
    assert rec.background == 0.0 and np.array_equal(rec.noise, np.ones(25))
    assert rec.history["stage"] == ["epry"] * 150 and len(rec.history["time"]) == 150
    assert rec.settings["iterations"] == 150 and rec.settings["order"] == "na"
    # pupil zero outside the circ
    fy = np.fft.fftfreq(16, s.low_pixel_size)[:, None]
    fx = np.fft.fftfreq(16, s.low_pixel_size)[None, :]
    outside = fy ** 2 + fx ** 2 > s.cutoff ** 2
    assert np.all(rec.pupil[outside] == 0)
    # the returned object and pupil (after the gauge moves) reproduce the data with
    # the returned brightness, through an independent forward model
    amp = _tilted_forward(rec.object, rec.pupil, nominal_pixel_shifts(s, (N, N)), U)
    ref = np.sqrt(data.images / factor)
    misfit = np.sum((ref - amp) ** 2) / np.sum(ref ** 2)
    assert misfit == pytest.approx(rec.history["loss"][-1], rel=1e-6, abs=1e-12)
    assert misfit < 1e-3


def test_without_pupil_update_the_pupil_stays_the_circ(data):
    rec = epry(data, iterations=3, pupil_update=False, order="index")
    s = data.setup
    fy = np.fft.fftfreq(16, s.low_pixel_size)[:, None]
    fx = np.fft.fftfreq(16, s.low_pixel_size)[None, :]
    circ = (fy ** 2 + fx ** 2 <= s.cutoff ** 2).astype(complex)
    assert np.array_equal(rec.pupil, circ)
    assert np.array_equal(rec.zernike, np.zeros(9))
    assert len(rec.history["loss"]) == 3


def test_clear_sample_start_and_callback_stop():
    # a clear sample: the start is already exact (|field| = 1 under the on-axis LED)
    s = _setup()
    m = fpm.model(5, 5, upsampling=U, **OPTICS)
    ds = fpm.Dataset(np.asarray(m(np.ones((N, N), complex))), s)
    calls = []
    rec = epry(ds, iterations=10, pupil_update=False,
               callback=lambda it, st: calls.append(it) or it == 1)
    assert calls == [0, 1] and len(rec.history["loss"]) == 2
    assert rec.history["loss"][-1] < 1e-6
    assert np.allclose(np.abs(rec.object), 1.0, atol=0.01)
    # the pupil update stays stable on the near-empty dark-field windows of a clear sample
    rec = epry(ds, iterations=10)
    assert rec.history["loss"][-1] < 1e-3
    assert np.allclose(np.abs(rec.object), 1.0, atol=0.05)
    rec2 = epry(ds, iterations=1, upsampling=2)
    assert rec2.object.shape == (32, 32) and rec2.setup.upsampling == 2


@pytest.mark.parametrize("kw, exc, name", [
    (dict(iterations=0), ValueError, "iterations"),
    (dict(iterations=2.0), TypeError, "iterations"),
    (dict(alpha=0.0), ValueError, "alpha"),
    (dict(alpha=2.5), ValueError, "alpha"),
    (dict(alpha="1"), TypeError, "alpha"),
    (dict(beta=-1.0), ValueError, "beta"),
    (dict(order="random"), ValueError, "order"),
    (dict(upsampling=0), ValueError, "upsampling"),
    (dict(pupil_update="yes"), TypeError, "pupil_update"),
    (dict(callback=3), TypeError, "callback"),
])
def test_bad_arguments(data, kw, exc, name):
    with pytest.raises(exc, match=name):
        epry(data, **kw)


def test_bad_dataset_and_shift_arguments():
    with pytest.raises(TypeError, match="dataset"):
        epry(np.ones((25, 16, 16)))
    with pytest.raises(TypeError, match="setup"):
        nominal_pixel_shifts("setup", (64, 64))
    with pytest.raises(ValueError, match="object_shape"):
        nominal_pixel_shifts(_setup(), (64, 64, 1))
