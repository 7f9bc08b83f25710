"""Differentiable pixel-super-resolution: the high-resolution complex field
and the capture geometry recovered together from K low-resolution captures.

The problem (see :mod:`~diffimaging.lensless.model` for the forward model f)::

    t*, s*, z* = argmin_t,s,z  L(f(t; s, z), y) + beta TV(t)
                 s.t. |t| <= 1, s and z within their bounds

solved with the package's model and optimisation layers
(:class:`~diffimaging.optim.ModelProblem`, :class:`~diffimaging.optim.FISTA`,
:func:`~diffimaging.optim.run`), after a height-aware start (see
:func:`reconstruct`).
"""
from __future__ import annotations

import math

import numpy as np

from .. import _backend as B
from .._backend import validate as V
from ..ops.propagate import propagate
from ..optim import FISTA, ModelProblem, run
from ..optim import constraints as C
from ..optim import regularizers as R
from ..optim.run import check_count
from .captures import Captures, Reconstruction
from .classical import upsample
from .model import check_learn, default_pad, model

__all__ = ["reconstruct", "initial_field"]


def initial_field(images, shifts, z, *, factor, wavelength, pixel_size, pad, n_medium=1.0):
    """The starting transmission: every capture interpolated onto the
    high-resolution grid at its position (:func:`~diffimaging.lensless.classical.upsample`),
    its amplitude back-propagated by its height (carrier-free angular
    spectrum), and the K back-propagated fields averaged (a clear sample, 1,
    where no capture looked).  Returns a complex128 (NY, NX) numpy array."""
    hr, seen = upsample(images, shifts, factor=factor, pixel_size=pixel_size, pad=pad, order=1)
    amp = np.where(seen, np.sqrt(np.clip(hr, 0.0, None)), 1.0)
    lam = wavelength / n_medium
    acc = np.zeros(amp.shape[1:], dtype=np.complex128)
    for k in range(amp.shape[0]):
        acc += propagate(amp[k] - 1.0 + 0j, -float(z[k]), wavelength=lam,
                         pixel_size=pixel_size / factor, carrier=False)
    return 1.0 + acc / amp.shape[0]


def _resolve(captures, nominal_shifts, nominal_z, factor, wavelength, pixel_size, n_medium):
    if isinstance(captures, Captures):
        images = captures.images
        s = captures.shifts if nominal_shifts is None else nominal_shifts
        z = captures.z if nominal_z is None else nominal_z
        factor = captures.factor if factor is None else factor
        wavelength = captures.wavelength if wavelength is None else wavelength
        pixel_size = captures.pixel_size if pixel_size is None else pixel_size
        n_medium = captures.n_medium if n_medium is None else n_medium
    else:
        images = np.asarray(captures) if isinstance(captures, (list, tuple)) else captures
        missing = [n for n, v in (("nominal_shifts", nominal_shifts), ("nominal_z", nominal_z),
                                  ("factor", factor), ("wavelength", wavelength),
                                  ("pixel_size", pixel_size)) if v is None]
        if missing:
            raise TypeError(f"reconstruct of a bare image stack needs {', '.join(missing)} "
                            f"(or pass a Captures, which carries them)")
        s, z = nominal_shifts, nominal_z
        n_medium = 1.0 if n_medium is None else n_medium
    # one validation of everything: the Captures constructor
    return Captures(images, s, z, wavelength=wavelength, pixel_size=pixel_size, factor=factor,
                    n_medium=n_medium)


def reconstruct(captures, nominal_shifts=None, nominal_z=None, *, factor=None, wavelength=None,
                pixel_size=None, n_medium=None, learn=("shift", "z"), iterations=300,
                progress=False, loss="l2", tv=None, pad=None, callback=None) -> Reconstruction:
    """Recover the high-resolution field and the capture geometry.

    Parameters
    ----------
    captures : Captures or (K, ny, nx) array
        The captures (background-normalised intensities).  With an array, the
        geometry arguments are required.
    nominal_shifts : (K, 2) [m], optional
        Nominal sensor positions (default: the Captures').
    nominal_z : (K,) [m], optional
        Nominal heights (default: the Captures').
    factor, wavelength, pixel_size, n_medium : optional
        Geometry (defaults: the Captures').
    learn : subset of ("shift", "z", "offset", "gain")
        Geometry learned with the field; ``()`` keeps the nominal geometry.
    iterations : int
        Iterations of the joint solve.
    progress : bool
        tqdm progress bar.
    loss : "l2" or "poisson"
    tv : float, optional
        Weight of the total variation of the field.
    pad : int, optional
        High-resolution pixels of free field around the window.
    callback : callable(iteration, x, params, record) -> bool, optional

    Returns
    -------
    Reconstruction (field: the window, ny * factor x nx * factor).
    """
    caps = _resolve(captures, nominal_shifts, nominal_z, factor, wavelength, pixel_size, n_medium)
    learn = check_learn(learn)
    iterations = check_count(iterations, "iterations")
    images = caps.images
    xp = B.namespace(images, names=["captures"])
    if B.dtype_kind(xp, images.dtype) not in ("f4", "f8"):
        raise TypeError(f"captures must be real float images (float32/float64), got {images.dtype}")
    V.check_finite(images, "captures", ("capture", "y", "x"), what="pixel")
    f, P = caps.factor, caps.pixel_size
    pad = default_pad(caps.shifts, f, P) if pad is None else \
        V.integer(pad, "pad", minimum=0, type_error=ValueError)
    cdt = B.complex_dtype_for(xp, images.dtype)
    x0 = initial_field(images, caps.shifts, caps.z, factor=f, wavelength=caps.wavelength,
                       pixel_size=P, pad=pad, n_medium=caps.n_medium)
    x0 = xp.asarray(x0.astype(np.complex64 if cdt == xp.complex64 else np.complex128),
                    device=B.device_of(images))
    m = model(caps.sensor_shape, caps.shifts, caps.z, wavelength=caps.wavelength, pixel_size=P,
              factor=f, n_medium=caps.n_medium, pad=pad, learn=learn)
    tv = 1e-3 if tv is None else float(tv)
    regs = [R.TV(tv, prox_iterations=10)] if tv > 0 else []
    prob = ModelProblem(m, images, loss=loss, regularizers=regs,
                        constraint=C.AmplitudeAtMost(1.0), prox_split=True)
    start = prob.start(x0)
    res = run(FISTA(), prob, start, iterations=iterations, callback=callback, progress=progress,
              label="lensless (FISTA)")
    t = res.x
    ny, nx = caps.sensor_shape
    win = t[pad:pad + ny * f, pad:pad + nx * f]
    shifts = np.asarray(B.to_host_float64(res.params["sensor.shift"], "shift"))
    z = np.asarray(B.to_host_float64(res.params["heights.z"], "z")) + \
        float(B.to_host_float64(res.params["heights.offset"], "offset"))
    return Reconstruction(field=win, shifts=shifts, z=z, nominal_shifts=caps.shifts.copy(),
                          nominal_z=caps.z.copy(), history=res.history,
                          settings=dict(learn=list(learn), iterations=iterations, loss=loss, tv=tv,
                                        pad=pad, factor=f))
