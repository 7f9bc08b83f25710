"""Back-propagation of an in-line hologram to a stack of depth planes, streamed."""
from __future__ import annotations

import numpy as np

from .. import _backend as B
from .._backend import validate as V
from .._backend import kernels as K
from .._backend.capabilities import route
from .._backend.cuda import via_cupy
from ..ops.propagate import Plan, propagate
from ..ops.shift import intensity
from ..optim.run import check_count
from .io import check_finite

__all__ = ["backpropagate", "check_depth_range", "DEPTH_FACTOR"]

#: depths beyond DEPTH_FACTOR x N dx^2 n / lambda0 are refused as a unit slip (see
#: :func:`check_depth_range`)
DEPTH_FACTOR = 100.0


def check_depth_range(z, shape, *, wavelength, pixel_size, n_medium=1.0, name="z"):
    """Refuse depths that no in-line hologram of this sensor can use: a unit slip.

    A particle at depth z spreads its fringes over a disk of radius lambda z / (2 dx)
    (the fringe frequency reaches the sensor's Nyquist limit there); beyond
    z_N = N dx^2 n / lambda0 (N the larger image side, dx the larger pixel size,
    lambda0 / n the wavelength in the medium) the hologram no longer holds the
    fine fringes and the depth resolution degrades with z.  Depths beyond
    :data:`DEPTH_FACTOR` (100) times z_N are refused (``ValueError`` naming
    ``name``, with the limit and the likely slip: millimetres typed for metres).
    Lensless fields (1024^2, 10 um pixels, 532 nm: z_N = 0.19 m) and microscope
    holograms (0.05 um pixels: z_N of a few um, depths of tens of um) pass.
    """
    zs = np.abs(np.asarray(z, dtype=np.float64).reshape(-1))
    if zs.size == 0:
        return
    n_pix = max(int(s) for s in tuple(shape)[-2:])
    dy, dx = V.pixel_size(pixel_size)
    lam = V.wavelength(wavelength) / V.n_medium(n_medium)
    z_n = n_pix * max(dy, dx) ** 2 / lam
    limit = DEPTH_FACTOR * z_n
    if float(zs.max()) > limit:
        raise ValueError(f"{name}: depths up to {float(zs.max()):g} m are implausible for a "
                         f"{n_pix}-pixel hologram with {max(dy, dx):g} m pixels at "
                         f"{lam:g} m in the medium (the hologram resolves depths to about "
                         f"N dx^2 n / lambda = {z_n:.3g} m; refused beyond {DEPTH_FACTOR:g}x that, "
                         f"{limit:.3g} m): depths are in metres, did you give millimetres? "
                         f"(e.g. 1e-3:5e-3:81 for 1 to 5 mm)")


def _update_projections_np(proj, planes, zc, offset, rdt):
    """Running min/max of |offset + u_k|^2 and the depths where they occur, plane by
    plane with in-place numpy operations (no (k, ny, nx) temporaries)."""
    shape = planes.shape[1:]
    if proj is None:
        proj = {"min": np.full(shape, np.inf, dtype=rdt), "argmin_z": np.zeros(shape, dtype=rdt),
                "max": np.full(shape, -np.inf, dtype=rdt), "argmax_z": np.zeros(shape, dtype=rdt)}
    if route("backpropagate", np) == "kernel" and planes.strides[-1] == planes.itemsize:
        # one fused pass: |offset + u|^2 and the four running maps
        K.minmax_project(planes, offset, zc, proj)
        return proj
    mask = np.empty(shape, dtype=bool)
    for k in range(planes.shape[0]):
        pk = planes[k]
        if offset:
            np.add(pk, offset, out=pk)
        ik = intensity(pk)
        np.less(ik, proj["min"], out=mask)
        np.copyto(proj["min"], ik, where=mask)
        np.copyto(proj["argmin_z"], rdt(zc[k]), where=mask)
        np.greater(ik, proj["max"], out=mask)
        np.copyto(proj["max"], ik, where=mask)
        np.copyto(proj["argmax_z"], rdt(zc[k]), where=mask)
    return proj


def _projections_np(u, zs, offset, rdt, kw, progress):
    """Projections on numpy: one spectrum of the hologram, then per plane the fused
    transfer-function multiply, the pruned inverse transform and the fused min/max
    update reading the cropped output in place (no stack, no copies)."""
    p = Plan.make(u, float(-zs[0]), kw["wavelength"], kw["pixel_size"], kw["method"], kw["pad"],
                  True, False, op="backpropagate")
    U = p.spectrum(u)
    tmp = np.empty_like(U)
    shape = u.shape
    proj = {"min": np.full(shape, np.inf, dtype=rdt), "argmin_z": np.zeros(shape, dtype=rdt),
            "max": np.full(shape, -np.inf, dtype=rdt), "argmax_z": np.zeros(shape, dtype=rdt)}
    planes = range(zs.size)
    if progress:
        from tqdm.auto import tqdm

        planes = tqdm(planes, desc="back-propagation", unit="plane")
    for k in planes:
        K.transfer_apply(U, tmp, p, float(-zs[k]), conjugate=False)
        v = p.inverse_crop(tmp)
        K.minmax_project(v[None], offset, zs[k:k + 1], proj)
    return proj


def _projections_cuda(u, zs, offset, rdt, kw, progress):
    """Projections on the GPU: one spectrum of the hologram, then batches of planes
    sized from the free device memory (:func:`diffimaging._backend.cuda.planes_per_batch`):
    the z-stack kernel writes the batch's spectra, one batched cuFFT inverse
    transform, and the CUDA min/max kernel reads the cropped planes in place — the
    volume is never in memory, whatever the number of planes."""
    from .._backend import cuda_pointwise as KP
    from .._backend import cuda_propagate as KC

    xp = B.namespace(u)
    p = Plan.make(u, float(-zs[0]), kw["wavelength"], kw["pixel_size"], kw["method"], kw["pad"],
                  True, False, op="backpropagate")
    U = p.device_spectrum(u)
    shape = tuple(u.shape)
    proj = {"min": xp.full(shape, np.inf, dtype=rdt), "argmin_z": xp.zeros(shape, dtype=rdt),
            "max": xp.full(shape, -np.inf, dtype=rdt), "argmax_z": xp.zeros(shape, dtype=rdt)}
    chunk = p.stack_batch(zs.size, 1)
    starts = range(0, zs.size, chunk)
    if progress:
        from tqdm.auto import tqdm

        starts = tqdm(starts, desc="back-propagation", unit="batch")
    for k0 in starts:
        k1 = min(zs.size, k0 + chunk)
        S = xp.empty((k1 - k0, 1, p.py, p.px), dtype=p.cdtype)
        KC.transfer_stack(U, S, KC.device_distances(-zs[k0:k1]), p)
        planes = xp.reshape(p.inverse_crop(S), (k1 - k0,) + shape)
        del S
        KP.minmax_project(planes, offset, zs[k0:k1], proj)
    return proj


@via_cupy
def backpropagate(hologram, z, *, wavelength, pixel_size, output="projections", field="amplitude",
                  chunk=16, method="asm", pad=True, progress=False, n_medium=1.0):
    """Back-propagate a (background-divided, unit-mean) hologram to depths ``z``.

    The field at the sensor is taken as ``sqrt(hologram)`` (``field="amplitude"``,
    the measured amplitude with zero phase; the unit reference wave is infinite,
    so only ``sqrt(hologram) - 1`` is propagated and 1 added back) or as the
    contrast ``hologram - 1`` (``field="contrast"``); it is propagated by ``-z``
    with the carrier-free transfer function (CONVENTIONS.md), ``chunk`` planes at a
    time (one forward FFT per chunk of planes), so that a large volume never needs
    to be in memory when only projections are wanted.

    Parameters
    ----------
    hologram : array (ny, nx), real, unit mean
    z : 1-d array of depths [m] (distances from the sensor, positive upstream objects)
    wavelength, pixel_size : metres (``wavelength`` in vacuum)
    n_medium : refractive index of the medium between the particles and the sensor
        (1.0 air, 1.33 water; 1 <= n <= 3): the light propagates with the
        wavelength ``wavelength / n_medium``
    output : "projections" | "intensity" | "complex"
        "projections" returns a dict of (ny, nx) maps, computed plane chunk by chunk:
        ``min`` / ``max`` of |u|^2 over depth, ``argmin_z`` / ``argmax_z`` (the depth in
        metres where they occur); "intensity" the (nz, ny, nx) |u|^2 stack; "complex"
        the (nz, ny, nx) field stack.
    chunk : planes per batch (memory ~ chunk x padded plane) for the stacks and for
        other array libraries; projections on numpy stream plane by plane from one
        spectrum of the hologram (fused kernels, memory ~ 2 padded planes), and on
        CuPy in batches sized from the free device memory (CUDA kernels; a
        2048^2 x 1000-plane request fits any GPU)

    A torch CUDA tensor runs on the CUDA path too (viewed as a CuPy array through
    DLPack, zero-copy, when the CUDA module is built and CuPy is installed); the
    maps or stacks come back as torch tensors on its device.

    Example
    -------
    >>> p = backpropagate(h, np.linspace(1e-3, 5e-3, 81), wavelength=532e-9, pixel_size=2e-6)
    >>> depth_map = p["argmin_z"]           # where each pixel is darkest (opaque particles)
    """
    xp = B.namespace(hologram, names=["hologram"])
    if hologram.ndim != 2:
        raise ValueError(f"hologram must be a single (ny, nx) image, got shape {tuple(hologram.shape)}")
    if B.dtype_kind(xp, hologram.dtype) not in ("f4", "f8"):
        raise TypeError(f"hologram must be a real float image, got dtype {hologram.dtype}")
    check_finite(hologram)
    n_medium = V.n_medium(n_medium)
    if output not in ("projections", "intensity", "complex"):
        raise ValueError(f"output must be 'projections', 'intensity' or 'complex', got {output!r}")
    # the reference wave (1) is infinite and propagates to itself: only the
    # deviation from it is propagated (a padded window of ones would add edge
    # diffraction that looks like dark particles along the borders)
    if field == "amplitude":
        u = xp.sqrt(xp.clip(hologram, 0.0, None)) - 1.0
        offset = 1.0
    elif field == "contrast":
        u = hologram - 1.0
        offset = 0.0
    else:
        raise ValueError(f"field must be 'amplitude' or 'contrast', got {field!r}")
    zs = np.asarray(B.to_host_float64(z, "z"), dtype=np.float64).reshape(-1)
    if zs.size == 0 or not np.all(np.isfinite(zs)):
        raise ValueError("z must be a non-empty 1-d array of finite depths in metres")
    chunk = check_count(chunk, "chunk (planes per batch)", minimum=1)
    check_depth_range(zs, hologram.shape, wavelength=wavelength, pixel_size=pixel_size,
                      n_medium=n_medium)
    kw = dict(wavelength=V.wavelength(wavelength) / n_medium, pixel_size=pixel_size, method=method,
              pad=pad, carrier=False)
    starts = range(0, zs.size, chunk)
    if progress:
        from tqdm.auto import tqdm

        starts = tqdm(starts, desc="back-propagation", unit="chunk")
    dev = B.device_of(hologram)
    rdt = B.real_dtype_for(xp, hologram.dtype)
    stack_parts = []
    proj = None
    path = route("backpropagate", xp)
    if output == "projections" and path == "kernel":
        return _projections_np(u, zs, offset, rdt, kw, progress)
    if output == "projections" and path == "cuda":
        return _projections_cuda(u, zs, offset, rdt, kw, progress)
    for s in starts:
        zc = zs[s:s + chunk]
        planes = propagate(u, xp.asarray(-zc, device=dev), **kw)  # (k, ny, nx)
        if output == "projections" and B.is_numpy_namespace(xp):
            proj = _update_projections_np(proj, planes, zc, offset, rdt)
            continue
        if offset:
            planes = planes + offset
        if output == "complex":
            stack_parts.append(planes)
            continue
        inten = xp.real(planes) ** 2 + xp.imag(planes) ** 2
        if output == "intensity":
            stack_parts.append(inten)
            continue
        zc_arr = xp.asarray(zc, dtype=rdt, device=dev)
        i_min, i_max = xp.argmin(inten, axis=0), xp.argmax(inten, axis=0)
        v_min, v_max = xp.min(inten, axis=0), xp.max(inten, axis=0)
        z_min, z_max = xp.take(zc_arr, xp.reshape(i_min, (-1,)), axis=0), \
            xp.take(zc_arr, xp.reshape(i_max, (-1,)), axis=0)
        z_min = xp.reshape(z_min, v_min.shape)
        z_max = xp.reshape(z_max, v_max.shape)
        if proj is None:
            proj = {"min": v_min, "argmin_z": z_min, "max": v_max, "argmax_z": z_max}
        else:
            lo = v_min < proj["min"]
            hi = v_max > proj["max"]
            proj["argmin_z"] = xp.where(lo, z_min, proj["argmin_z"])
            proj["min"] = xp.where(lo, v_min, proj["min"])
            proj["argmax_z"] = xp.where(hi, z_max, proj["argmax_z"])
            proj["max"] = xp.where(hi, v_max, proj["max"])
    if output == "projections":
        return proj
    return xp.concat(stack_parts, axis=0) if len(stack_parts) > 1 else stack_parts[0]
