"""Simulated Fourier ptychography data with known truth.

:func:`simulate` renders the J = rows * cols camera images of a thin complex
sample under an LED array whose *true* geometry, pupil aberrations and LED
brightnesses differ from the nominal setup it reports, adds Poisson noise and,
optionally, a few corrupted frames.  Defaults are the package's standard case:

- optics: wavelength 629.7 nm, objective NA 0.1, magnification 4, camera
  pixel 6.5 um, up-sampling 4, 64 x 64 camera pixels -> a 256 x 256 object
  (pixel 0.406 um);
- LEDs: 15 x 15, pitch 4 mm, height 90 mm (nominal), illumination from the
  3D direction cosines of each LED, continuous spectral shifts;
- truth: array moved by (200, -150) um, rotated by 0.5 degree, 1.5 mm too
  high; Zernike (1.0, 0.5, -0.3, 0.3, 0.2, 0, 0, 0.2, 0) rad (Noll 1..9);
  brightness uniform within +-15 %; Poisson noise for a bright-field mean of
  5000 photons;
- object ``"camera"``: amplitude 0.3 + 0.7 camera, phase pi (moon - 0.5)
  (scikit-image's bundled images), or ``"bars"``: a procedural resolution
  target of opaque bars (:func:`diffimaging.lensless.bar_target`) with a weak
  phase step.

The sample extends beyond the camera's field of view (``margin`` camera pixels
of the same scene on every side, and beyond them a uniform sample of the
scene's mean: :class:`~diffimaging.fpm.imaging.Imaging`): light from outside
the field reaches its edge pixels, as in a real microscope, and no edge of
the simulation's grid rings into the field.  A reconstruction (whose grid
is smaller) meets the same out-of-field light as on real data.  The truth is
the central field of view.
"""
from __future__ import annotations

import math

import numpy as np

from .._backend import validate as V
from .data import Dataset, Setup
from .imaging import Imaging

__all__ = ["simulate", "sample_object", "standard_setup", "STANDARD_TRUTH", "OBJECTS"]

#: objects :func:`simulate` draws
OBJECTS = ("camera", "bars")
#: the standard case's misalignment, aberrations and brightness spread
STANDARD_TRUTH = dict(offset=(200e-6, -150e-6), rotation=math.radians(0.5), height_error=1.5e-3,
                      zernike=(1.0, 0.5, -0.3, 0.3, 0.2, 0.0, 0.0, 0.2, 0.0), brightness=0.15)


def standard_setup(**overrides) -> Setup:
    """The nominal setup of the standard case (keyword arguments replace fields)."""
    kw = dict(rows=15, cols=15, pitch=4e-3, height=90e-3, wavelength=629.7e-9, na=0.1,
              pixel_size=6.5e-6, magnification=4.0, upsampling=4)
    kw.update(overrides)
    return Setup(**kw)


def sample_object(name, shape, *, upsampling=4):
    """The complex transmission of a built-in test object on a grid ``shape``.

    ``"camera"``: amplitude 0.3 + 0.7 camera, phase pi (moon - 0.5); ``"bars"``:
    opaque bars (transmission 0.05) of half-pitch down to one object pixel on a
    clear background, with a phase of 0.5 rad on the bars.
    """
    V.choice("obj", name, OBJECTS)
    ny, nx = (int(n) for n in shape)
    if name == "camera":
        from skimage import data
        from skimage.transform import resize

        cam = resize(data.camera().astype(np.float64) / 255.0, (ny, nx), anti_aliasing=True)
        moon = resize(data.moon().astype(np.float64) / 255.0, (ny, nx), anti_aliasing=True)
        return (0.3 + 0.7 * cam) * np.exp(1j * np.pi * (moon - 0.5))
    from ..lensless.simulate import bar_target

    n = max(ny, nx)
    t, _ = bar_target(n, upsampling)
    a = np.abs(t)[:ny, :nx]
    return a * np.exp(0.5j * (a < 0.5))


def _corrupt(images, idx, rng):
    """Three kinds of bad frame, in turn: stray light (a bright gradient), a frame
    of a moved sample (rolled by 3 camera pixels), a burst of hot pixels."""
    kinds = []
    J, ny, nx = images.shape
    level = float(np.median(images.mean(axis=(1, 2))))
    for n, j in enumerate(idx):
        kind = ("stray light", "moved", "hot pixels")[n % 3]
        if kind == "stray light":
            yy = np.linspace(0.0, 1.0, ny)[:, None]
            images[j] = images[j] + rng.poisson(2.0 * max(level, 50.0) * yy * np.ones((1, nx)))
        elif kind == "moved":
            images[j] = np.roll(images[j], (3, -3), axis=(0, 1))
        else:
            m = rng.random((ny, nx)) < 0.03
            images[j] = np.where(m, images[j] + 5.0 * max(level, 50.0), images[j])
        kinds.append(kind)
    return kinds


def simulate(*, setup: Setup | None = None, shape=(64, 64), obj="camera", offset=None,
             rotation=None, height_error=None, zernike=None, brightness=None, photons=5000.0,
             background=0.0, corrupted=0, margin=32, led_size=0.3e-3, seed=0) -> Dataset:
    """Simulated FPM images of a known sample under a misaligned LED array.

    Parameters
    ----------
    setup : Setup, optional
        The *nominal* setup (default :func:`standard_setup`).
    shape : (ny, nx)
        Camera pixels of the field of view (the object has ``upsampling`` times more).
    obj : "camera" or "bars"
        The test object (:func:`sample_object`).
    offset : (dy, dx) [m], rotation [rad], height_error [m]
        The true array geometry relative to the nominal (defaults: the standard
        case's (200, -150) um, 0.5 degree, +1.5 mm).
    zernike : sequence [rad]
        True pupil aberrations, Noll 1, 2, ... (default the standard case's 9).
    brightness : float or (J,) array
        The spread of the LED brightnesses (uniform within +-brightness) or the
        values themselves (default 0.15).
    photons : float or None
        Mean photon count of the on-axis bright-field image (Poisson noise);
        None: noiseless images (in units of a clear bright field).
    background : float
        Offset b added to every pixel, photons.
    corrupted : int
        Number of corrupted frames (stray light, a moved sample, hot pixels in
        turn) at random LEDs.
    margin : int
        Camera pixels of scene beyond the field of view on every side (the
        outer half fades to the scene's mean, see
        :class:`~diffimaging.fpm.imaging.Imaging`).
    led_size : float [m]
        The LEDs' emitter size: the unscattered light crosses the pupil's
        edge over the LED's angular size (the reconstruction assumes 0.2 mm).
    seed : int

    Returns
    -------
    Dataset with ``truth``: ``object`` (NY, NX) complex of the field of view,
    ``setup`` (true Setup), ``zernike``, ``noll``, ``brightness`` (J,),
    ``background``, ``photons``, ``corrupted`` (indices), ``corruption``
    (their kinds), ``scale`` (photons per unit intensity).

    Example
    -------
    >>> data = simulate(shape=(32, 32), setup=standard_setup(rows=7, cols=7))
    >>> data.images.shape
    (49, 32, 32)
    """
    setup = standard_setup() if setup is None else setup
    if not isinstance(setup, Setup):
        raise TypeError(f"setup must be a diffimaging.fpm.Setup, got {type(setup).__name__}")
    try:
        ny, nx = (V.integer(n, "shape", minimum=8) for n in shape)
    except TypeError:
        raise TypeError(f"shape must be (ny, nx) camera pixels, got {shape!r}") from None
    V.choice("obj", obj, OBJECTS)
    margin = V.integer(margin, "margin", minimum=0)
    corrupted = V.integer(corrupted, "corrupted", minimum=0, maximum=setup.n_leds)
    rng = np.random.default_rng(seed)
    t = STANDARD_TRUTH
    off = np.asarray(t["offset"] if offset is None else offset, dtype=np.float64)
    rot = float(t["rotation"] if rotation is None else rotation)
    dh = float(t["height_error"] if height_error is None else height_error)
    zern = np.asarray(t["zernike"] if zernike is None else zernike, dtype=np.float64)
    J = setup.n_leds
    if brightness is None:
        brightness = t["brightness"]
    if np.ndim(brightness) == 0:
        spread = float(brightness)
        if not 0 <= spread < 1:
            raise ValueError(f"brightness must be a spread within [0, 1) or one value per LED, "
                             f"got {brightness!r}")
        a = 1.0 + spread * rng.uniform(-1.0, 1.0, J)
    else:
        a = np.asarray(brightness, dtype=np.float64)
        if a.shape != (J,):
            raise ValueError(f"brightness must be a spread or one value per LED ({J},), got "
                             f"shape {a.shape}")
    true = setup.with_geometry(offset=np.asarray(setup.offset) + off,
                               rotation=setup.rotation + rot, height=setup.height + dh)
    u = setup.upsampling
    NY, NX = (ny + 2 * margin) * u, (nx + 2 * margin) * u
    scene = sample_object(obj, (NY, NX), upsampling=u)
    img = Imaging(true, (NY, NX), margin=margin * u, zernike=len(zern), led_size=led_size)
    psi = img(scene, true.geometry(), zern)
    clean = (a[:, None, None] * (psi.real ** 2 + psi.imag ** 2))[:, margin:margin + ny,
                                                                 margin:margin + nx]
    centre = int(np.argmin(np.hypot(*true.wavevectors().T)))
    if photons is None:
        scale = 1.0
        images = clean + float(background)
    else:
        photons = V.positive_scalar(photons, "photons", unit="(photons)")
        scale = photons / float(np.mean(clean[centre]))
        images = rng.poisson(scale * clean + float(background)).astype(np.float64)
    idx = sorted(int(j) for j in rng.choice(J, size=corrupted, replace=False)) if corrupted else []
    kinds = _corrupt(images, idx, rng) if idx else []
    fov = scene[margin * u:margin * u + ny * u, margin * u:margin * u + nx * u]
    truth = dict(object=fov, setup=true, zernike=zern, noll=list(range(1, len(zern) + 1)),
                 brightness=a, background=float(background), photons=photons,
                 corrupted=idx, corruption=kinds, scale=scale, obj=obj, margin=margin,
                 seed=seed)
    return Dataset(images=images, setup=setup, truth=truth)
