"""One entry point for a hologram -> volume reconstruction: ∂H (the inverse
problem, with the distance offset and the illumination learned) or plain
back-propagation."""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import numpy as np

from .. import _backend as B
from .._backend import validate as V
from .._backend.capabilities import route
from .._backend.cuda import via_cupy
from ..model import Bin, Intensity, Model, Param
from ..optim.run import check_count
from .fused import FusedVolumeProblem
from .backprop import backpropagate, check_depth_range
from .io import check_optics
from .io import check_finite
from .volume import Volume, check_distinct_depths

__all__ = ["reconstruct", "Reconstruction"]

_MODELS = ("born", "gabor", "multislice")


@dataclass
class Reconstruction:
    """Result of :func:`reconstruct`.

    volume : (nz, ny, nx) real array, or None when only projections were kept.
        ∂H: the particle map ``-Re(o)`` (0 = empty, 1 = opaque; for
        ``object="complex"`` the amplitude ``|o|``): particles are bright.
        Back-propagation: the intensity stack ``|u|^2`` (opaque particles are dark).
    z : (nz,) plane depths in metres, the learned offset included (``z_nominal + dz``).
    dz : learned distance offset [m] (0 when not learned).
    wavelength : vacuum wavelength [m]; ``n_medium`` the medium's refractive index
        (the propagation used ``wavelength / n_medium``).
    reference : learned illumination amplitude (1 for back-propagation).
    polarity : "bright" or "dark": how :func:`find_particles` reads ``volume``.
    projections : dict of (ny, nx) maps (min/max over depth and where they occur)
        for streamed back-propagation, else None.
    history : the solver's per-iteration record (loss, fidelity, regulariser,
        parameter values, step, wall time); ``search``: the global stage's table.
    object : the raw ∂H object stack o (o = t - 1) for further use, or None.
    origin : (y, x) metres of the volume's pixel (0, 0) in the hologram's
        coordinates (pixel (i, j) of the hologram at (i dy, j dx)): (0, 0), except
        with ``bin_factor`` f > 1, where the volume's pixels are f times finer and
        the f x f fine pixels of sensor pixel (0, 0) are centred on it:
        -(f - 1) / 2 fine pixels.  :func:`find_particles` adds it.
    """

    volume: object
    z: np.ndarray
    dz: float
    reference: float
    method: str
    model: str
    polarity: str
    pixel_size: tuple
    wavelength: float
    projections: dict | None = None
    history: dict = field(default_factory=dict)
    search: dict | None = None
    object: object = None
    settings: dict = field(default_factory=dict)
    origin: tuple = (0.0, 0.0)
    n_medium: float = 1.0


@via_cupy
def reconstruct(hologram, z, *, wavelength, pixel_size, method="dh", model="born", learn_z=True,
                dz_range=None, learn_reference=True, sparsity=0.01, tv=0.0, object="absorbing",
                solver="fista", iterations=100, loss="l2", output="intensity", chunk=16,
                search="auto", search_points=9, search_steps=6, progress=False, callback=None,
                engine="auto", bin_factor=1, n_medium=1.0):
    """Reconstruct a particle volume from one in-line hologram.

    Parameters
    ----------
    hologram : (ny, nx) real array, background-divided with unit mean (see
        :func:`preprocess`); NaN or infinite pixels raise a ValueError with their
        count and the first one's position.  Any array library: a CuPy array runs
        on the GPU (CUDA kernels); a torch CUDA tensor is viewed as a CuPy array
        (DLPack, zero-copy, when the CUDA module is built and CuPy is installed)
        and the volume, object and projections come back as torch tensors.
    z : 1-d array of distinct plane depths [m] (distances to the sensor), equally
        spaced for particle finding.  For ∂H these are the *nominal* depths: the learned
        offset ``dz`` is added to all of them.
    wavelength, pixel_size : metres; ``wavelength`` in vacuum.
    n_medium : refractive index of the medium between the particles and the sensor
        (1.0 air, 1.33 water; 1 <= n <= 3): the light propagates with the
        wavelength ``wavelength / n_medium``.  Depths are refused (``ValueError``)
        beyond what the sensor can resolve, a unit slip (see
        :func:`~diffimaging.holography.backprop.check_depth_range`).
    method : "dh" (the inverse problem) or "backprop" (back-propagation of the
        hologram's amplitude, streamed; ``output`` selects "intensity", "complex"
        or "projections").
    model : "born" (first-Born superposition |r (1 + sum_k P~(z_k + dz) o_k)|^2,
        the default), "gabor" (its linearisation r^2 (1 + 2 Re sum_k ...): linear
        in o, convex, fastest to converge) or "multislice" (the illumination
        passes the planes in order and each plane shadows the ones downstream).
    learn_z : learn the global distance offset ``dz`` with the volume.
    dz_range : (lo, hi) bounds of ``dz`` in metres.  A learned offset that ends
        on a bound (within 1 % of the range) warns (``UserWarning``): the true
        distance is probably outside the range (wrong nominal depths or units).  Default: +-5 % of the mean
        depth for a single plane (a planar sample: the recording distance is
        well defined and found by a global stage over this range, then refined
        with the object); +- half the plane spacing for a stack (see Notes).
    learn_reference : learn the illumination amplitude r (starts at the mean
        square root of the hologram).
    sparsity : L1 weight on o (default 0.01, for holograms with unit mean and the
        data term 0.5 sum (I - h)^2).  Measured on 256^2 holograms with 1 % noise at
        2e-3 particles per pixel (100 iterations): 0.005 gives recall/precision
        0.95/0.89, 0.02 gives 0.92/0.93.  Noise-free data still need it: the prior
        removes the twin image.  Raise it for noisier data (about the noise sigma).
    tv : 3-D total-variation weight (0: off).
    object : "absorbing" (real o in [-1, 0]: opaque or absorbing particles; the
        twin image, which is not real and negative, is suppressed by this bound
        and the sparsity prior) or "complex" (|1 + o| <= 1, phase particles too).
    solver : "fista" (default) or "adam"; ``iterations`` their count (an integer
        >= 1, numpy integers accepted).
    loss : "l2" or "poisson" (photon-count data scaled to unit mean).
    search : "auto" (a global stage over ``dz_range`` when learning the distance
        of a single plane), True, or False.  Two grids of ``search_points``
        candidates (over ``dz_range``, then +- one coarse spacing around the
        best), each scored after ``search_steps`` object updates; the joint solve
        starts from the best candidate and its object.
    bin_factor : integer f >= 1 (∂H): the sensor integrates f x f pixels of the
        reconstructed volume (exact area binning, mean), so the volume is
        reconstructed on an f times finer grid (pixel size / f) than the hologram:
        for particles that the sensor pixels undersample.  Positions stay in the
        hologram's coordinates (see ``Reconstruction.origin``).  Runs on the
        generic path.
    engine : "auto" (default), "fused" or "generic".  On numpy and CuPy, absorbing
        objects with the "born" or "gabor" model, FISTA, no TV and an "l2"/"poisson"
        loss run on the fused real-object engine (``holography.fused``: half-spectrum
        transforms, precomputed transfer tables, the extrapolated point's forward
        pass from stored spectra; about nz real FFT pairs per iteration, 5-6x faster
        than the generic path at 512^2 x 64 planes, see benchmarks/bench_holo.py; on
        CuPy with cuFFT and the CUDA kernels of ``_backend.cuda_dh``); everything
        else (torch on the CPU, complex objects, multi-slice, Adam, TV) runs the
        generic model/solver path (:func:`diffimaging.solve`), also selected by
        "generic".  "fused" raises if the fused engine cannot serve the call.  The
        two solve the same problem; the fused engine keeps each plane's band-limit
        mask at its nominal depth (the offset moves the phase only), the generic
        Volume stage moves the mask with the offset: they differ only on the
        band-limit edge; and the fused engine pads to the kernel's reach
        (``holography._dhfast.reach_grid``), not to twice the image, which changes
        only how the kernel's tails wrap around (recall/precision unchanged on
        512^2 x 64-plane particle fields, benchmarks/bench_dh_1024.py).

    Returns
    -------
    Reconstruction

    Notes
    -----
    For a stack of equally spaced planes the offset of the whole grid is not
    identifiable from the hologram: moving the grid by one spacing while moving
    every particle one plane back gives the same hologram, and particles at
    random depths make every sub-plane offset equally good.  The hologram fixes
    each particle's *absolute* depth; ``z + dz`` carries it, so a wrong nominal
    distance does not bias the particle depths as long as the grid still covers
    the particles (choose z with a margin).  The distance of a planar sample
    (one plane) is well defined, and is learned here to ~0.1 %.

    Example
    -------
    >>> rec = reconstruct(h, np.linspace(1e-3, 5e-3, 81), wavelength=532e-9, pixel_size=2e-6)
    >>> found = find_particles(rec)
    """
    if method not in ("dh", "backprop"):
        raise ValueError(f"method must be 'dh' or 'backprop', got {method!r}")
    zs = np.asarray(B.to_host_float64(z, "z"), dtype=np.float64).reshape(-1)
    check_optics(wavelength, pixel_size, zs)
    lam0 = V.wavelength(wavelength)
    n_medium = V.n_medium(n_medium)
    lam = lam0 / n_medium                    # the wavelength in the medium
    dy, dx = V.pixel_size(pixel_size)
    if zs.size == 0 or not np.all(np.isfinite(zs)) or np.any(zs <= 0):
        raise ValueError("z must be a non-empty 1-d array of positive depths in metres "
                         "(distances from the sensor)")
    check_distinct_depths(zs)
    iterations = check_count(iterations, "iterations", minimum=1)
    search_points = check_count(search_points, "search_points", minimum=1)
    search_steps = check_count(search_steps, "search_steps")
    h = np.asarray(hologram) if isinstance(hologram, (list, tuple)) else hologram
    xp = B.namespace(h, names=["hologram"])
    if h.ndim != 2:
        raise ValueError(f"hologram must be a single (ny, nx) image, got shape {tuple(h.shape)}")
    if B.dtype_kind(xp, h.dtype) not in ("f4", "f8"):
        raise TypeError(f"hologram must be a real float image (float32/float64), got {h.dtype}")
    check_finite(h)
    check_depth_range(zs, h.shape, wavelength=lam0, pixel_size=(dy, dx), n_medium=n_medium)
    mean = float(xp.mean(h))
    if not (0.2 < mean < 5.0):
        raise ValueError(f"hologram should be background-divided with unit mean (got mean {mean:.3g}); "
                         "run diffimaging.holography.preprocess first")
    common = dict(pixel_size=(dy, dx), wavelength=lam0, n_medium=n_medium)
    if method == "backprop":
        out = backpropagate(h, zs, wavelength=lam0, pixel_size=(dy, dx), output=output, chunk=chunk,
                            progress=progress, n_medium=n_medium)
        if output == "projections":
            return Reconstruction(None, zs, 0.0, 1.0, "backprop", "backprop", "dark", projections=out,
                                  settings=dict(output=output), **common)
        vol = xp.abs(out) ** 2 if output == "complex" else out
        return Reconstruction(vol, zs, 0.0, 1.0, "backprop", "backprop", "dark",
                              object=out if output == "complex" else None,
                              settings=dict(output=output), **common)

    from ..optim import FISTA, run, solve
    from ..optim import constraints as C
    from ..optim import regularizers as R

    if model not in _MODELS:
        raise ValueError(f"model must be one of {_MODELS}, got {model!r}")
    if object not in ("absorbing", "complex"):
        raise ValueError(f"object must be 'absorbing' or 'complex', got {object!r}")
    if solver not in ("fista", "adam"):
        raise ValueError(f"solver must be 'fista' or 'adam', got {solver!r}")
    fb = V.integer(bin_factor, "bin_factor", minimum=1, hint="(sensor pixels per volume pixel along each axis)", type_error=ValueError)
    vdy, vdx = dy / fb, dx / fb              # the volume's pixel size
    nz = zs.size
    if dz_range is None:
        if nz == 1:
            dz_range = (-0.05 * zs[0], 0.05 * zs[0])
        else:
            half = 0.5 * float(np.min(np.abs(np.diff(np.sort(zs)))))
            dz_range = (-half, half)
    lo, hi = (float(v) for v in dz_range)
    if not (lo <= 0.0 <= hi) or lo == hi:
        raise ValueError(f"dz_range must be (lo, hi) metres with lo <= 0 <= hi, got {dz_range!r}")
    if np.any(zs + lo <= 0):
        raise ValueError("dz_range would move a plane behind the sensor (z + dz <= 0)")
    r0 = math.sqrt(mean)
    dz_p = Param(0.0, bounds=(lo, hi), fixed=not learn_z, scale=max(hi - lo, 1e-9) / 4)
    # scaled so that its curvature (a sum over all pixels) matches one voxel's: one
    # FISTA step size then serves both
    r_p = Param(r0, bounds=(0.0, None), fixed=not learn_reference, scale=1.0 / math.sqrt(h.size))
    if model == "multislice":
        from .multislice import MultiSlice

        stage = MultiSlice(zs, lam, (vdy, vdx), dz=dz_p, reference=r_p, name="volume")
    else:
        stage = Volume(zs, lam, (vdy, vdx), dz=dz_p, reference=r_p, linearized=model == "gabor")
    chain = [stage] if model == "gabor" else [stage, Intensity()]
    if fb > 1:
        chain.append(Bin(fb, reduce="mean"))
    m = Model(*chain)
    if isinstance(sparsity, bool) or not isinstance(sparsity, (int, float)) or not sparsity >= 0:
        raise ValueError(f"sparsity must be a non-negative L1 weight, got {sparsity!r}")
    regs = []
    if sparsity:
        regs.append(R.L1(float(sparsity)))
    if tv:
        regs.append(R.TV(float(tv), ndim=3))
    constraint = C.Box(-1.0, 0.0) if object == "absorbing" else C.AmplitudeAtMost(1.0)
    rdt = B.real_dtype_for(xp, h.dtype)
    shape = (nz, int(h.shape[0]) * fb, int(h.shape[1]) * fb)
    x0 = xp.zeros(shape, dtype=rdt if object == "absorbing" else B.complex_dtype_for(xp, h.dtype),
                  device=B.device_of(h))
    if object == "complex":
        constraint = _ShiftedAmplitude()
    if engine not in ("auto", "fused", "generic"):
        raise ValueError(f"engine must be 'auto', 'fused' or 'generic', got {engine!r}")
    fused_ok = (engine != "generic" and route("dh_fused", xp) in ("kernel", "cuda")
                and object == "absorbing"
                and model in ("born", "gabor") and solver == "fista" and not tv
                and loss in ("l2", "poisson") and fb == 1)
    if engine == "fused" and not fused_ok:
        raise ValueError("engine='fused' needs a numpy hologram (compiled kernels) or a CuPy one "
                         "(CUDA kernels), object='absorbing', model 'born' or 'gabor', "
                         "solver='fista', tv=0, loss 'l2' or 'poisson' and bin_factor=1")
    use_fast = engine == "fused" or (engine == "auto" and fused_ok)
    do_search = (search is True) or (search == "auto" and learn_z and nz == 1)
    common_solve = dict(loss=loss, regularizers=regs, constraint=constraint, method=solver)
    table = None
    if do_search:
        # two-level global stage: a coarse grid over dz_range finds the basin (the
        # fringes make the objective multimodal), a finer grid around the best
        # candidate (+- one coarse spacing) brings the start within the basin's core
        coarse = np.linspace(lo, hi, search_points)
        r1 = solve(m, h, x0, iterations=0, search={"volume.dz": coarse}, search_steps=search_steps,
                   progress=False, **common_solve)
        best = r1.search["best"]["volume.dz"]
        step = coarse[1] - coarse[0] if coarse.size > 1 else (hi - lo)
        fine = np.clip(np.linspace(best - step, best + step, search_points), lo, hi)
        r2 = solve(m, h, x0, iterations=0, search={"volume.dz": fine}, search_steps=search_steps,
                   progress=False, **common_solve)
        table = {"names": ["volume.dz"], "values": r1.search["values"] + r2.search["values"],
                 "loss": r1.search["loss"] + r2.search["loss"], "best": r2.search["best"]}
        dz_p.value = float(r2.search["best"]["volume.dz"])
        x0 = r2.x
    if use_fast:
        prob = FusedVolumeProblem(h, zs, wavelength=lam, pixel_size=(dy, dx), dz_bounds=(lo, hi),
                                  learn_z=learn_z, learn_reference=learn_reference,
                                  sparsity=float(sparsity), loss=loss, linearized=model == "gabor",
                                  dz_scale=dz_p.scale, r_scale=r_p.scale)
        start = prob.start(x0 if do_search else None, dz=float(dz_p.value), reference=r0)
        res = run(FISTA(), prob, start, iterations=iterations, callback=callback,
                  progress=progress, label="∂H (fused FISTA)")
        o, hist = res.x, res.history
        dz, ref = res.params["volume.dz"], res.params["volume.reference"]
    else:
        res = solve(m, h, x0, iterations=iterations, progress=progress, callback=callback,
                    **common_solve)
        res.search = table
        o, hist = res.x, res.history
        dz = float(B.to_host_float64(res.params["volume.dz"], "dz"))
        ref = float(B.to_host_float64(res.params["volume.reference"], "reference"))
    if learn_z and (hi - lo) > 0 and min(dz - lo, hi - dz) <= 0.01 * (hi - lo):
        side = "lower" if dz - lo < hi - dz else "upper"
        warnings.warn(f"the learned distance offset dz = {dz:.4g} m sits on its {side} bound "
                      f"(dz_range = ({lo:.4g}, {hi:.4g}) m): the true distance is probably outside "
                      f"the range; check the nominal depths z (metres) or widen dz_range",
                      UserWarning, stacklevel=2)
    vol = -o if object == "absorbing" else xp.abs(o)
    return Reconstruction(vol, zs + dz, dz, ref, "dh", model, "bright", history=hist,
                          search=table, object=o,
                          settings=dict(sparsity=sparsity, tv=tv, object=object, solver=solver,
                                        iterations=iterations, loss=loss, dz_range=(lo, hi),
                                        bin_factor=fb),
                          origin=(-(fb - 1) / 2 * vdy, -(fb - 1) / 2 * vdx),
                          **dict(common, pixel_size=(vdy, vdx)))


class _ShiftedAmplitude:
    """|1 + o| <= 1 for complex scattered fields (transmittance inside the unit disk)."""

    def project(self, o):
        from ..optim.constraints import AmplitudeAtMost

        return AmplitudeAtMost(1.0).project(o + 1.0) - 1.0
