"""Launcher of Fourier ptychography's CUDA fidelity kernel (module ``_cuda``) for
CuPy arrays: the device twin of :func:`diffimaging.fpm.losses.gradient` followed by
the fields' cotangent, in one pass (see ``csrc/systems/fpm/fidelity_cuda.hpp``)."""
from __future__ import annotations

import numpy as np

from . import cuda as C

__all__ = ["fidelity"]

_LOSS_CODE = {"amplitude": 0, "poisson": 1, "huber": 2}
_REAL_OF = {"complex64": "float32", "complex128": "float64"}


def fidelity(psi, y, mask, a, w, background: float, loss: str):
    """``(vals (J,) host float64, gpsi)`` for the fields ``psi`` (J, ny, nx) complex,
    the images ``y`` (J, ny, nx) and the pixel mask (ny, nx) of psi's real dtype
    (C-contiguous CuPy arrays), the brightnesses ``a`` and frame weights ``w`` (J,)
    (host values): mu = a_j |psi|^2 + background, vals_j = sum mask L(mu, y) and
    gpsi = 2 a_j w_j mask dL/dmu psi, with L the fidelity ``loss`` of
    :mod:`diffimaging.fpm.losses`.  The per-image sums are deterministic."""
    cu = C.require_module()
    if loss not in _LOSS_CODE:
        raise ValueError(f"loss must be one of {', '.join(_LOSS_CODE)}, got {loss!r}")
    name = C.dtype_name(psi)
    pp = C.device_pointer(psi, "psi")
    rname = _REAL_OF[name]
    if psi.ndim != 3 or tuple(y.shape) != tuple(psi.shape):
        raise ValueError(f"psi and y must be (J, ny, nx) stacks of one shape, got "
                         f"{tuple(psi.shape)} and {tuple(y.shape)}")
    if tuple(mask.shape) != tuple(psi.shape[1:]):
        raise ValueError(f"mask must be one (ny, nx) image {tuple(psi.shape[1:])}, got "
                         f"{tuple(mask.shape)}")
    py_ = C.device_pointer(y, "y", (rname,))
    pm = C.device_pointer(mask, "mask", (rname,))
    J = int(psi.shape[0])
    n = int(psi.shape[1]) * int(psi.shape[2])
    cp = C._cupy()
    ad = cp.asarray(np.ascontiguousarray(np.asarray(a, dtype=np.float64).reshape(-1)))
    wd = cp.asarray(np.ascontiguousarray(np.asarray(w, dtype=np.float64).reshape(-1)))
    if int(ad.size) != J or int(wd.size) != J:
        raise ValueError(f"a and w must hold one value per image ({J}), got {int(ad.size)} and "
                         f"{int(wd.size)}")
    gpsi = cp.empty_like(psi)
    vals = cu.fpm_fidelity(pp, py_, pm, C.device_pointer(ad, "a", ("float64",)),
                           C.device_pointer(wd, "w", ("float64",)), float(background),
                           _LOSS_CODE[loss], name, J, n, C.device_pointer(gpsi, "gpsi"),
                           C.stream())
    return np.asarray(vals, dtype=np.float64), gpsi
