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
from .model import SensorGrid, check_learn, default_pad, model
from .precondition import SensorPreconditioner

__all__ = ["reconstruct", "initial_field", "register", "register_focused",
           "whole_pixel_correction", "height_sweep", "focus_offset", "capture_heights"]


def _parabola_offset(values, i) -> float:
    """Sub-step position of the minimum of ``values`` near its grid index ``i``:
    the vertex of the parabola through i - 1, i, i + 1, in steps within
    [-0.5, 0.5]; 0 at the grid's ends, with a non-finite neighbour or no
    upward curvature."""
    if not 0 < i < len(values) - 1:
        return 0.0
    a, b, c = values[i - 1], values[i], values[i + 1]
    den = a - 2 * b + c
    if not (np.isfinite(a) and np.isfinite(b) and np.isfinite(c)) or den <= 0:
        return 0.0
    return float(np.clip(0.5 * (a - c) / den, -0.5, 0.5))


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


def register(images, z):
    """Relative sensor positions of the captures from the images alone [sensor
    pixels], mean zero: each capture is cross-correlated (sub-pixel peak,
    :func:`skimage.registration.phase_cross_correlation` without normalisation)
    with its two next neighbours in height, whose holograms differ little, and
    the pairwise displacements are fitted by least squares.  Accurate to a few
    tenths of a pixel: enough to resolve whole-pixel ambiguities of the nominal
    positions, not to replace them."""
    from scipy import ndimage
    from skimage.registration import phase_cross_correlation

    ims = np.asarray(B.to_host_float64(images, "images"), dtype=np.float64)
    K, ny, nx = ims.shape
    win = np.hanning(ny)[:, None] * np.hanning(nx)[None, :]

    def prep(a):
        a = ndimage.gaussian_filter(a, 0.7)
        return (a - a.mean()) * win

    order = np.argsort(np.asarray(z, dtype=np.float64), kind="stable")
    rows, rhs = [], []
    for gap in (1, 2):
        for i in range(K - gap):
            a, b = order[i], order[i + gap]
            d, _, _ = phase_cross_correlation(prep(ims[a]), prep(ims[b]), upsample_factor=20,
                                              normalization=None)
            row = np.zeros(K)
            row[b], row[a] = 1.0, -1.0
            rows.append(row)
            rhs.append(d)
    rows.append(np.ones(K))
    rhs.append(np.zeros(2))
    est = np.linalg.lstsq(np.asarray(rows), np.asarray(rhs), rcond=None)[0]
    return est - est.mean(axis=0)


def register_focused(images, shifts, z, *, factor, wavelength, pixel_size, pad):
    """Relative sensor positions of the captures [sensor pixels], mean zero,
    from their *refocused* images: each capture is interpolated onto the
    high-resolution grid at its nominal position, back-propagated to its height
    ``z[k]`` (best its own autofocus, :func:`capture_heights`), and its amplitude
    cross-correlated with the first capture's (sub-pixel peak).  In focus the
    captures are shifted copies of one sample, whatever their heights, so this
    holds on sparse samples where :func:`register` (raw holograms of
    neighbouring heights) does not.  Measured (256^2 x 16, positions known
    modulo one pixel, 1e4 photons): RMS error 0.36 px on the bar target
    (:func:`register`: 1.17 px, up to 2.9 px) and 0.19 px on the camera sample
    (0.14 px).  ``wavelength`` in the medium; lengths in metres."""
    from skimage.registration import phase_cross_correlation

    from .classical import upsample

    f = V.factor(factor)
    ims = np.asarray(B.to_host_float64(images, "images"), dtype=np.float64)
    shifts = np.asarray(shifts, dtype=np.float64)
    K = ims.shape[0]
    focused = []
    for k in range(K):
        hr, seen = upsample(ims[k:k + 1], shifts[k:k + 1], factor=f, pixel_size=pixel_size,
                            pad=pad, order=1)
        amp = np.where(seen, np.sqrt(np.clip(hr, 0.0, None)), 1.0)[0]
        u = 1.0 + propagate(amp - 1.0 + 0j, -float(z[k]), wavelength=wavelength,
                            pixel_size=pixel_size / f, carrier=False)
        a = np.abs(u[pad:u.shape[0] - pad, pad:u.shape[1] - pad])
        focused.append(a - a.mean())
    d = np.array([phase_cross_correlation(focused[0], a, upsample_factor=10,
                                          normalization=None)[0] for a in focused])
    est = shifts / pixel_size + d / f
    return est - est.mean(axis=0)


def whole_pixel_correction(nominal, measured, pixel_size, threshold=0.75):
    """The nominal positions moved by whole pixels where they disagree with the
    measured relative ones (``measured`` in pixels, mean zero) by more than
    ``threshold`` pixels along an axis; the sub-pixel part of each nominal
    position is kept.  (Rounding every disagreement would move positions whose
    nominal error and registration error together just pass half a pixel.)"""
    nominal = np.asarray(nominal, dtype=np.float64)
    nom = nominal / pixel_size
    diff = measured - (nom - nom.mean(axis=0))
    diff -= np.median(diff, axis=0)               # no common move (unobservable)
    n = np.where(np.abs(diff) > threshold, np.round(diff), 0.0)
    return nominal + n * pixel_size


def height_sweep(t, images, shifts, z, *, factor, wavelength, pixel_size, pad, search, step):
    """Each capture's height on its own: for capture k, the captures that the
    field ``t`` would give at heights z[k] + dz (dz on a grid of ``step`` over
    [-search, search]) are compared with image k (sum of squares) and the best
    dz is refined by a parabola through its neighbours.  Returns the new (K,)
    heights [m].

    The field need not be sharp: from captures whose heights are off by tens of
    micrometres it is a blend of slightly defocused copies of the sample,
    centred on their mean plane, and each capture still matches it best near
    its own relative height.  (All lengths in metres; ``wavelength`` in the
    medium; ``pixel_size`` the sensor pitch.)"""
    f = V.factor(factor)
    p = pixel_size / f
    ims = np.asarray(B.to_host_float64(images, "images"), dtype=np.float64)
    K = ims.shape[0]
    n = int(round(search / step))
    dzs = np.arange(-n, n + 1) * step
    o = np.asarray(t) - 1.0
    out = np.array(z, dtype=np.float64)
    for k in range(K):
        cand = z[k] + dzs
        cand = cand[cand > 0]
        u = 1.0 + propagate(o, cand, wavelength=wavelength, pixel_size=p, carrier=False)
        grid = SensorGrid(f, np.repeat(np.asarray(shifts, dtype=np.float64)[k:k + 1], len(cand), 0),
                          p, ims.shape[1:], origin=pad)
        pred = grid(np.abs(u) ** 2)
        err = np.sum((pred - ims[k]) ** 2, axis=(-2, -1))
        i = int(np.argmin(err))
        out[k] = float(cand[i]) + _parabola_offset(err, i) * step
    return out


_CAPTURE_CRITERIA = ("contrast", "sparsity")


def capture_heights(images, shifts, z, *, factor, wavelength, pixel_size, pad, search, step,
                    border=2):
    """Each capture's height by autofocus of that capture alone [m].

    Capture k is interpolated onto the high-resolution grid at its nominal
    position (:func:`~diffimaging.lensless.classical.upsample`), its amplitude
    back-propagated to ``z[k] + dz`` for dz on a grid of ``step`` over
    [-search, search], and two focus criteria are evaluated over the window
    (less ``border`` sensor pixels along every edge):

    - "contrast": the amplitude's contrast std/mean, largest in focus for
      absorbing samples (stained tissue, a chrome target);
    - "sparsity": ``||grad u||_1 / ||grad u||_2`` of the complex field, least
      in focus when the sample also shifts the phase (the amplitude contrast
      of a phase object is least in focus, not largest).

    The criterion whose optima lie inside the search range for more captures
    is used for all (an optimum on the range's edge is the criterion
    failing, not a height; "sparsity" on a tie).  With at least 8 captures,
    one whose optimum lies further from the median offset (optimum - nominal)
    than four times the offsets' spread (1.4826 MAD; at least 10 um) took a
    secondary focus (periodic detail refocuses at other distances too) and is
    searched again within that band ("outliers" in the record; measured on
    the bar target with a +40 um common error: 2 of 16 captures 132 um off,
    then within 2 um).  Each optimum is refined by a parabola.

    Measured on the 256^2 x 16 simulated sets (seed 1, 1e4
    photons, height errors sigma 25 um): bar target (opaque bars) "contrast",
    RMS error 0.8 um with a mean of -0.05 um; camera sample (amplitude and
    phase) "sparsity", 4.1 um RMS, mean 1.8 um; the other criterion failed
    on each (optima on the range's edge).  A capture fixes its own height
    absolutely, so this also finds a common offset of all heights.

    Returns ``(heights, record)``: the (K,) heights [m] and a dict with the
    "criterion" used, the "grid" of dz [m], each criterion's (K, n) "values"
    and the number of "interior" optima per criterion.
    """
    from .classical import upsample

    f = V.factor(factor)
    p = pixel_size / f
    ims = np.asarray(B.to_host_float64(images, "images"), dtype=np.float64)
    K, ny, nx = ims.shape
    z = np.asarray(z, dtype=np.float64)
    hr, seen = upsample(ims, shifts, factor=f, pixel_size=pixel_size, pad=pad, order=1)
    amp = np.where(seen, np.sqrt(np.clip(hr, 0.0, None)), 1.0)
    n = int(round(search / step))
    dzs = np.arange(-n, n + 1) * step
    b = border * f
    win = (slice(pad + b, pad + ny * f - b), slice(pad + b, pad + nx * f - b))
    vals = {c: np.full((K, dzs.size), np.inf) for c in _CAPTURE_CRITERIA}
    for k in range(K):
        ok = z[k] + dzs > 0
        u = 1.0 + propagate(amp[k] - 1.0 + 0j, -(z[k] + dzs[ok]), wavelength=wavelength,
                            pixel_size=p, carrier=False)
        w = u[(slice(None),) + win]
        a = np.abs(w)
        vals["contrast"][k, ok] = -np.std(a, axis=(-2, -1)) / np.maximum(
            np.mean(a, axis=(-2, -1)), 1e-300)
        g2 = np.abs(np.diff(w, axis=-2)[..., :, :-1]) ** 2 + \
            np.abs(np.diff(w, axis=-1)[..., :-1, :]) ** 2
        vals["sparsity"][k, ok] = np.sum(np.sqrt(g2), axis=(-2, -1)) / np.maximum(
            np.sqrt(np.sum(g2, axis=(-2, -1))), 1e-300)
    best = {c: np.argmin(v, axis=1) for c, v in vals.items()}
    interior = {c: int(np.sum((i > 0) & (i < dzs.size - 1) & np.isfinite(vals[c][np.arange(K), i])))
                for c, i in best.items()}
    crit = "contrast" if interior["contrast"] > interior["sparsity"] else "sparsity"
    # a capture whose optimum is far from the others' common offset took a spurious
    # focus (the self-images of periodic detail give secondary optima): its optimum is
    # searched again within the others' spread of the median offset
    idx = np.asarray(best[crit]).copy()
    off = dzs[idx]
    med = float(np.median(off))
    lim = max(4.0 * 1.4826 * float(np.median(np.abs(off - med))), 10e-6, 2 * step)
    outliers = np.flatnonzero(np.abs(off - med) > lim) if K >= 8 else np.zeros(0, int)
    for k in outliers:
        near = np.abs(dzs - med) <= lim
        v = np.where(near, vals[crit][k], np.inf)
        idx[k] = int(np.argmin(v))
    out = z.copy()
    for k in range(K):
        v, i = vals[crit][k], int(idx[k])
        out[k] = z[k] + float(dzs[i]) + _parabola_offset(v, i) * step
    return out, dict(criterion=crit, grid=dzs, values=vals, interior=interior,
                     outliers=outliers)


_FOCUS = ("passivity", "sparsity")


def focus_offset(t, *, wavelength, pixel_size, window, search, step, criterion="passivity"):
    """The common height offset dz [m] that brings the field ``t`` into focus.

    The data fix the heights only relative to one another: moving every height
    by dz and refocusing the field by -dz, ``u = 1 + A(-dz)(t - 1)``, predicts
    the same captures.  The offset is therefore a matter of focus, judged over
    ``window`` (a tuple of slices) by ``criterion`` (minimised):

    - "passivity" (default): ``sum max(|u| - 1, 0)^2``, the light a passive
      sample would have to create.  In focus a sample transmits at most the
      light it receives; out of focus, the fringes of every edge overshoot
      ``|u| = 1``.  Needs a field fitted without the ``|t| <= 1`` constraint
      (the schedule's second stage) and a sample with clear or nearly clear
      parts (microscope slides are mostly clear).
    - "sparsity": ``||grad u||_1 / ||grad u||_2``, least when the edges are
      sharp (defocus spreads each edge into fringes); the ratio, unlike the
      total variation itself, does not fall as the defocused field's energy
      leaves the window.  Measured less reliable on the simulated sets (local
      minima within 30 um of focus when the relative heights are still off).

    Grid of ``step`` over [-search, search], refined by a parabola through the
    best three points.  Returns ``(dz, (grid, values))``."""
    V.choice("criterion", criterion, _FOCUS)
    n = int(round(search / step))
    dzs = np.arange(-n, n + 1) * step
    o = np.asarray(t) - 1.0
    crit = []
    for chunk in np.array_split(dzs, max(1, len(dzs) // 8)):
        planes = 1.0 + propagate(o, -chunk, wavelength=wavelength, pixel_size=pixel_size,
                                 carrier=False)
        for u in planes:
            w = u[window]
            if criterion == "passivity":
                crit.append(float(np.sum(np.clip(np.abs(w) - 1.0, 0.0, None) ** 2)))
                continue
            g2 = np.abs(np.diff(w, axis=0)[:, :-1]) ** 2 + np.abs(np.diff(w, axis=1)[:-1, :]) ** 2
            crit.append(float(np.sum(np.sqrt(g2)) / max(np.sqrt(np.sum(g2)), 1e-300)))
    crit = np.asarray(crit)
    i = int(np.argmin(crit))
    return float(dzs[i]) + _parabola_offset(crit, i) * step, (dzs, crit)


def _host(x) -> np.ndarray:
    """A complex array of any library as a complex128 numpy array."""
    xp = B.namespace(x)
    return np.asarray(B.to_host_float64(xp.real(x), "x")) + \
        1j * np.asarray(B.to_host_float64(xp.imag(x), "x"))


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
        if isinstance(captures, (list, tuple)):
            shapes = {tuple(np.shape(a)) for a in captures}
            if len(shapes) > 1:
                raise ValueError(f"captures of different shapes cannot be stacked: got "
                                 f"{sorted(shapes)}; crop them to one size first")
            captures = np.asarray(captures)
        images = captures
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
                progress=False, loss="l2", tv=None, pad=None, schedule="auto", z_search=None,
                focus="capture", modulo=False, precondition=True,
                callback=None) -> Reconstruction:
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
        Geometry learned with the field: per-capture sensor positions, per-capture
        heights, one common height offset, per-capture gains and offsets.
        ``()`` keeps the nominal geometry (the baseline).
    iterations : int
        FISTA iterations in all (both joint stages of the schedule).
    progress : bool
        tqdm progress bars.
    loss : "l2" or "poisson"
        Data fidelity (the Poisson likelihood of normalised captures, photon
        count unknown, differs from least squares by a 1 / intensity weight).
        Measured (128^2 x 16 camera sample, true geometry, 100 iterations):
        Poisson 0.7 dB (1e4 photons) and 0.4 dB (1e3) below least squares.
    tv : float, optional
        Weight of the total variation of the field (real and imaginary parts),
        for captures normalised to 1 and the data term 0.5 sum (I - y)^2.
        Default 1e-2, measured on the same case: PSNR 22.7 / 23.8 / 25.0 / 25.6
        / 25.8 dB at 5e-4 / 2e-3 / 5e-3 / 1e-2 / 2.5e-2 (1e4 photons; the same
        order at 1e3); on the bar target 2.5e-2 wipes out the finest groups
        that 1e-2 keeps.  Not settled: at 256^2 x 16 and 300 iterations (seed
        1, true geometry, 1e4 photons) 2e-3 gave 31.4 dB and 1e-2 30.6 dB.
    pad : int, optional
        High-resolution pixels of free field around the window (default:
        :func:`~diffimaging.lensless.model.default_pad`).
    schedule : "auto" or "joint"
        "auto" (default), when heights are learned:

        1. with ``modulo=True``, the whole-pixel ambiguities of the nominal
           positions are resolved by registering the captures, each refocused
           at its own autofocus height (:func:`capture_heights`,
           :func:`register_focused`, :func:`whole_pixel_correction`);
        2. each capture's height by autofocus of that capture alone
           (:func:`capture_heights`, see ``focus``): absolute, so a common
           offset of all heights is found too.  Per-capture focus is noisy on
           small or featureless windows, so two starts are compared: these
           heights, and the nominal ones moved by the median of their
           offsets; the one whose back-propagated field predicts the captures
           better is kept (measured: the per-capture heights on 256^2 windows,
           the common offset on 64^2 test windows, right both times);
        3. the field and the positions at those heights, a tenth of the
           iterations, fitting the data alone (a prior or the constraint
           would favour the starting plane);
        4. the field, the positions and the heights together, a fifth of the
           iterations, the data alone: the heights relative to one another;
        5. the joint solve with the prior, the constraint and the
           preconditioner, the remaining iterations.

        "joint": one joint solve (step 5) from the nominal geometry; it gets
        the relative heights when their errors are small but cannot see a
        common offset at all (moving every height and refocusing the field
        predicts the same captures).
    z_search : float [m], optional
        Half-width of the height search (default: 100 um, at most half the
        smallest nominal height).
    focus : "capture", "auto", "passivity" or "sparsity"
        How the "auto" schedule finds the heights.  "capture" (default): step
        2 above.  The others: the earlier schedule, kept for comparison:
        the field from the nominal heights, each capture's height swept
        against it (:func:`height_sweep`) twice, the relative heights
        jointly, then the common offset by autofocus of the field
        (:func:`focus_offset` with this criterion; "auto": "passivity" over
        +- ``z_search``, then "sparsity" within +- 20 um).  Measured at 256^2 x
        16 (seed 1, 1e4 photons, height errors sigma 25 um): on the camera
        sample both find the heights (RMS error 0.5 um); on the bar target
        the sweep leaves the heights where they were (a field fitted at the
        nominal heights matches each capture best there), the joint stage
        does not recover from 17 um of relative error and the field's
        autofocus runs to the edge of its range (heights 120 um off), where
        "capture" leaves 0.8 um (its "contrast" criterion) and the
        schedule ends at 0.3 um (camera: 0.4 um).
    modulo : bool
        The nominal positions are known only modulo one sensor pixel (a stage
        that repeats its sub-pixel steps but not its whole-pixel travel): the
        whole pixels are found by registering the refocused captures with one
        another before anything else (:func:`register_focused`; refocused at
        the captures' own autofocus heights in the default schedule, at the
        nominal heights otherwise).  Off by default: a registration that errs
        by more than half a pixel would spoil good nominal positions.
    precondition : bool or SensorPreconditioner
        Precondition the field's gradient steps by the inverse squared
        transfer of the sensor pixels (:class:`SensorPreconditioner`, default
        True): the fine detail that the pixels attenuate converges as fast as
        the coarse.  Measured (256^2 x 16 camera sample, true geometry, 300
        iterations): PSNR 31.1 dB against 30.6 dB without at 1e4 photons,
        30.8 against 30.6 dB at 1e3 (see :class:`SensorPreconditioner` for its
        floor).  Used
        in the final solve (with the prior and the constraint) of the "auto"
        schedule, after the geometry stages, and when nothing is learned; not
        in a "joint" solve that learns the geometry from the start (the
        field's larger steps hold the geometry back).
    callback : callable(iteration, x, params, record) -> bool, optional
        Called after every iteration of each joint stage.

    Returns
    -------
    Reconstruction: ``field`` the window (ny * factor, nx * factor) of the
    transmission, the learned ``shifts`` and ``z`` (the common offset included),
    ``history`` with the per-iteration "loss" and "time" [s] of all stages, the
    "stage" each iteration belongs to, and the records of the schedule:
    "registration" (step 1: measured relative positions [m] and the corrected
    start), "capture focus" (step 2: the criterion used, the grid [m], the
    values, the interior optima per criterion and the "heights" [m]); with the
    other ``focus`` modes, "heights" (the swept heights [m], one array per
    sweep) and "focus" (each criterion's grid [m], values and optimum, and the
    "offset" applied [m]).

    Example
    -------
    >>> caps = simulate(factor=2, seed=1)
    >>> rec = reconstruct(caps, iterations=300)
    >>> psnr(rec.field, caps.truth["field"])
    """
    caps = _resolve(captures, nominal_shifts, nominal_z, factor, wavelength, pixel_size, n_medium)
    learn = check_learn(learn)
    iterations = check_count(iterations, "iterations")
    schedule = V.choice("schedule", schedule, ("auto", "joint"))
    focus = V.choice("focus", focus, ("capture", "auto") + _FOCUS)
    V.choice("loss", loss, ("l2", "poisson"))
    images = caps.images
    xp = B.namespace(images, names=["captures"])
    if B.dtype_kind(xp, images.dtype) not in ("f4", "f8"):
        raise TypeError(f"captures must be real float images (float32/float64), got {images.dtype}")
    V.check_finite(images, "captures", ("capture", "y", "x"), what="pixel")
    f, P = caps.factor, caps.pixel_size
    p = P / f
    lam = caps.wavelength / caps.n_medium
    ny, nx = caps.sensor_shape
    tv = 1e-2 if tv is None else float(tv)
    if not (math.isfinite(tv) and tv >= 0):
        raise ValueError(f"tv must be a weight >= 0, got {tv!r}")
    z_search = min(100e-6, 0.5 * float(np.min(caps.z))) if z_search is None else \
        V.positive_scalar(z_search, "z_search", typical=(1e-7, 1e-1))
    history = {"loss": [], "stage": [], "time": []}
    shifts0 = caps.shifts
    auto = schedule == "auto"
    pad_given = pad
    pad = default_pad(shifts0, f, P) if pad is None else \
        V.integer(pad, "pad", minimum=0, type_error=ValueError)
    focus_done = None
    if modulo and caps.K > 1:
        # the captures refocused (each at its own autofocus height when heights are
        # learned by the default schedule) and registered with one another
        zf = caps.z
        if auto and focus == "capture" and ("z" in learn or "offset" in learn):
            focus_done = capture_heights(images, shifts0, caps.z, factor=f, wavelength=lam,
                                         pixel_size=P, pad=pad, search=z_search,
                                         step=max(0.5e-6, z_search / 50))
            zf = focus_done[0]
        measured = register_focused(images, caps.shifts, zf, factor=f, wavelength=lam,
                                    pixel_size=P, pad=pad)
        shifts0 = whole_pixel_correction(caps.shifts, measured, P)
        history["registration"] = {"measured": measured * P, "start": shifts0}
        if pad_given is None:
            pad = default_pad(shifts0, f, P)
    cdt = B.complex_dtype_for(xp, images.dtype)
    host_cdt = np.complex64 if cdt == xp.complex64 else np.complex128
    x0 = initial_field(images, shifts0, caps.z, factor=f, wavelength=caps.wavelength,
                       pixel_size=P, pad=pad, n_medium=caps.n_medium)
    m = model(caps.sensor_shape, shifts0, caps.z, wavelength=caps.wavelength, pixel_size=P,
              factor=f, n_medium=caps.n_medium, pad=pad, learn=learn)
    if precondition is True:
        pre = SensorPreconditioner(f)
    elif precondition is False or precondition is None:
        pre = None
    elif callable(getattr(precondition, "apply", None)):
        pre = precondition
    else:
        raise TypeError(f"precondition must be True, False or a SensorPreconditioner, got "
                        f"{type(precondition).__name__}")
    regs = [R.TV(tv, prox_iterations=10)] if tv > 0 else []
    prob = ModelProblem(m, images, loss=loss, regularizers=regs,
                        constraint=C.AmplitudeAtMost(1.0), prox_split=True, preconditioner=pre)
    # the first stage of the schedule fits the data alone: a prior or a constraint
    # applied at the (possibly wrong) nominal plane would pull the focus towards it
    # (and without the preconditioner: the unregularised field it gives is noisier, which
    # misleads the autofocus; measured: the offset at the search's edge, 120 um off)
    free = ModelProblem(m, images, loss=loss, prox_split=True)

    def to_device(a):
        return xp.asarray(np.asarray(a).astype(host_cdt), device=B.device_of(images))

    def solve(x, params, n, stage, problem=prob):
        if n == 0:
            return x, params
        x, params = problem.start(x, params)
        res = run(FISTA(), problem, (x, params), iterations=n, callback=callback,
                  progress=progress, label=f"lensless {stage}")
        t0 = history["time"][-1] if history["time"] else 0.0
        history["loss"].extend(res.history["loss"])
        history["time"].extend(t0 + t for t in res.history["time"])
        history["stage"].extend([stage] * len(res.history["loss"]))
        return res.x, res.params

    x, params = free.start(to_device(x0))
    heights = ("z" in learn or "offset" in learn)
    window = (slice(pad + 2 * f, pad + (ny - 2) * f), slice(pad + 2 * f, pad + (nx - 2) * f))
    if auto and heights:
        geometry = [k for k in ("sensor.shift",) if "shift" in learn]
        first = ModelProblem(m, images, loss=loss, names=geometry, prox_split=True)
        if focus == "capture":
            n1, n2 = iterations // 10, iterations // 5    # the final stage keeps 70 %
            zk, rec = focus_done if focus_done is not None else capture_heights(
                images, shifts0, caps.z, factor=f, wavelength=lam, pixel_size=P, pad=pad,
                search=z_search, step=max(0.5e-6, z_search / 50))
            # two starts: the per-capture heights, or the nominal ones moved by the
            # median of their offsets (per-capture focus is noisy on small or
            # featureless windows); the one whose back-propagated field predicts the
            # captures better is kept (a common offset does not change that misfit)
            common = caps.z + float(np.median(zk - caps.z))
            starts = {"per capture": zk, "common offset": common} if "z" in learn else \
                {"common offset": common}
            misfit, fields = {}, {}
            for name, zs in starts.items():
                fields[name] = initial_field(images, shifts0, zs, factor=f,
                                             wavelength=caps.wavelength, pixel_size=P, pad=pad,
                                             n_medium=caps.n_medium)
                pz = dict(params, **{"heights.z": xp.asarray(zs, device=B.device_of(x))})
                misfit[name] = free.value(free.start(to_device(fields[name]), pz,
                                                     project=False))
            used = min(misfit, key=misfit.get)
            history["capture focus"] = dict(rec, heights=zk, misfit=misfit, used=used)
            params = dict(params, **{"heights.z": xp.asarray(starts[used],
                                                             device=B.device_of(x))})
            x = to_device(fields[used])
            x, params = solve(x, params, n1, "field", first)
            x, params = solve(x, params, n2, "relative geometry", free)
            x, params = solve(x, params, iterations - n1 - n2, "joint")
        else:
            n1, n2 = iterations // 10, iterations // 5    # the final stage keeps 60 %
            for _ in range(2):
                x, params = solve(x, params, n1, "field", first)
                if "z" in learn:
                    zk = height_sweep(_host(x), images, params["sensor.shift"],
                                      params["heights.z"], factor=f, wavelength=lam,
                                      pixel_size=P, pad=pad, search=z_search,
                                      step=max(0.5e-6, z_search / 20))
                    history.setdefault("heights", []).append(zk)
                    params = dict(params, **{"heights.z": xp.asarray(zk, device=B.device_of(x))})
            x, params = solve(x, params, n2, "relative geometry", free)
            th = _host(x)
            kw = dict(wavelength=lam, pixel_size=p, window=window)
            first_crit = "passivity" if focus == "auto" else focus
            dz, (grid, curve) = focus_offset(th, search=z_search, step=max(0.5e-6, z_search / 40),
                                             criterion=first_crit, **kw)
            history["focus"] = {first_crit: {"offset": dz, "grid": grid, "values": curve}}
            if focus == "auto":
                near = min(20e-6, z_search)
                moved = 1.0 + propagate(th - 1.0, -dz, wavelength=lam, pixel_size=p,
                                        carrier=False)
                fine, (g2, c2) = focus_offset(moved, search=near, step=near / 20,
                                              criterion="sparsity", **kw)
                dz += fine
                history["focus"]["sparsity"] = {"offset": dz, "grid": g2 + dz - fine,
                                                "values": c2}
            history["focus"]["offset"] = dz
            x = to_device(1.0 + propagate(th - 1.0, -dz, wavelength=lam, pixel_size=p,
                                          carrier=False))
            params = dict(params)
            key = "heights.z" if "z" in learn else "heights.offset"
            params[key] = params[key] + dz
            x, params = solve(x, params, iterations - 2 * n1 - n2, "joint")
    else:
        # geometry learned from the start: the preconditioned field steps share FISTA's
        # step with the positions and heights, which then barely move (measured on the
        # small test case: shift error 0.35 px from 0.39 px, against 0.02 px without)
        plain = prob if not learn or pre is None else ModelProblem(
            m, images, loss=loss, regularizers=regs, constraint=C.AmplitudeAtMost(1.0),
            prox_split=True)
        x, params = solve(x, params, iterations, "joint", plain)
    win = x[pad:pad + ny * f, pad:pad + nx * f]
    shifts = np.asarray(B.to_host_float64(params["sensor.shift"], "shift"), dtype=np.float64)
    z = np.asarray(B.to_host_float64(params["heights.z"], "z"), dtype=np.float64) + \
        float(B.to_host_float64(params["heights.offset"], "offset"))
    return Reconstruction(field=win, shifts=shifts, z=z, nominal_shifts=caps.shifts.copy(),
                          nominal_z=caps.z.copy(), history=history,
                          settings=dict(learn=list(learn), iterations=iterations, loss=loss, tv=tv,
                                        pad=pad, factor=f, schedule=schedule, z_search=z_search,
                                        focus=focus, modulo=bool(modulo),
                                        precondition=pre is not None))
