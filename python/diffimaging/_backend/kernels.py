"""Access to the compiled modules.

``_core`` (C++ CPU kernels) is always built by ``pip install``; ``_cuda`` only
when a CUDA toolkit was found at build time.  If a module is missing, the
pure array-API reference implementation is used and ``show_config()`` says so.
Inputs reaching these wrappers have been validated by the public functions;
the checks here guard the kernel contract (dtype, contiguity), never copy.
"""
from __future__ import annotations

import numpy as np

from .threads import get_num_threads

try:
    from .. import _core
except ImportError as _exc:  # pragma: no cover - only without a build
    _core = None
    _core_error = str(_exc)
else:
    _core_error = None

try:
    from .. import _cuda
except ImportError as _exc:
    import importlib.util as _ilu

    _cuda = None
    if _ilu.find_spec(__name__.split(".")[0] + "._cuda") is None:
        _cuda_error = ("not part of this build: no CUDA compiler was found at build time, or "
                       "DIFFIMAGING_CUDA=OFF")
    else:
        _cuda_error = f"built but failed to import: {_exc}"
else:
    _cuda_error = None

_METHOD_CODE = {"asm": 0, "fresnel": 1}


def have_cpu() -> bool:
    return _core is not None


def have_cuda_module() -> bool:
    return _cuda is not None


def cpu_unavailable_reason() -> str | None:
    """Why the compiled CPU module is missing (None when it is in use)."""
    return _core_error


def cuda_unavailable_reason() -> str | None:
    """Why the CUDA module is missing (None when it is importable)."""
    return _cuda_error


def cpu_simd() -> str | None:
    """Instruction set the CPU kernels were compiled for (None without them)."""
    return _core.simd() if _core is not None else None


def cuda_runtime_version() -> int | None:
    """CUDA runtime version of the CUDA module (e.g. 12040; None without it)."""
    return int(_cuda.runtime_version()) if _cuda is not None else None


def cuda_device_count() -> int:
    """Number of GPUs the CUDA module sees (0 without the module or a driver)."""
    if _cuda is None:
        return 0
    try:
        return int(_cuda.device_count())
    except Exception:  # pragma: no cover
        return 0


def _require(a: np.ndarray, name: str, dtypes) -> None:
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{name}: the CPU kernels take numpy arrays, got {type(a).__name__}")
    if a.dtype not in dtypes:
        raise TypeError(f"{name}: dtype {a.dtype} is not supported by the kernel")
    if not a.flags.c_contiguous:
        raise ValueError(f"{name}: the CPU kernels need C-contiguous arrays")


_COMPLEX = (np.dtype(np.complex64), np.dtype(np.complex128))
_REALCPLX = (np.dtype(np.float32), np.dtype(np.float64)) + _COMPLEX


def transfer_apply(src, dst, plan, z: float, conjugate: bool) -> None:
    _require(src, "src", _COMPLEX)
    _require(dst, "dst", _COMPLEX)
    _core.transfer_apply(src, dst, z, plan.wavelength, plan.dy, plan.dx, _METHOD_CODE[plan.method],
                         plan.band_limit, plan.carrier, conjugate, get_num_threads())


def transfer_pullback(U, G, acc, plan, z: float, accumulate: bool) -> float:
    if U is not None:
        _require(U, "U", _COMPLEX)
    _require(G, "G", _COMPLEX)
    _require(acc, "acc", _COMPLEX)
    return float(_core.transfer_pullback(U, G, acc, z, plan.wavelength, plan.dy, plan.dx,
                                         _METHOD_CODE[plan.method], plan.band_limit, plan.carrier,
                                         accumulate, get_num_threads()))


def dh_accumulate(O, Sr, Si, plan, z_mask: float, z_phase: float, accumulate: bool) -> None:
    """Sr (+)= Re(H) O, Si (+)= Im(H) O on the half spectrum of a real transform of
    length plan.px; H has the band limit of ``z_mask`` and the phase of ``z_phase``."""
    for a, n in ((O, "O"), (Sr, "Sr"), (Si, "Si")):
        _require(a, n, _COMPLEX)
    _core.dh_accumulate(O, Sr, Si, plan.px, z_mask, z_phase, plan.wavelength, plan.dy, plan.dx,
                        _METHOD_CODE[plan.method], plan.band_limit, accumulate, get_num_threads())


def dh_backproject(A, B, C, plan, z_mask: float, z_phase: float) -> None:
    """C = Re(H) A + Im(H) B (B None: Re(H) A) on the half spectrum (see dh_accumulate)."""
    _require(A, "A", _COMPLEX)
    if B is not None:
        _require(B, "B", _COMPLEX)
    _require(C, "C", _COMPLEX)
    _core.dh_backproject(A, B, C, plan.px, z_mask, z_phase, plan.wavelength, plan.dy, plan.dx,
                         _METHOD_CODE[plan.method], plan.band_limit, get_num_threads())


def dh_accumulate_table(O, T, Sr, Si, accumulate: bool) -> None:
    """Sr (+)= Re(T) O, Si (+)= Im(T) O elementwise (T: one plane's H, precomputed)."""
    for a, n in ((O, "O"), (T, "T"), (Sr, "Sr"), (Si, "Si")):
        _require(a, n, _COMPLEX)
    _core.dh_accumulate_table(O, T, Sr, Si, accumulate, get_num_threads())


def dh_backproject_table(A, B, T, C) -> None:
    """C = Re(T) A + Im(T) B elementwise (B None: Re(T) A)."""
    for a, n in ((A, "A"), (T, "T"), (C, "C")):
        _require(a, n, _COMPLEX)
    if B is not None:
        _require(B, "B", _COMPLEX)
    _core.dh_backproject_table(A, B, T, C, get_num_threads())


def prox_step(x, xp, g, out, beta: float, step: float, shift: float, lo: float, hi: float):
    """out = clip(y - step g + shift, lo, hi) with y = x + beta (x - xp) (xp None: y = x);
    returns (sum g (out - y), sum (out - y)^2, sum out) in double precision."""
    for a, n in ((x, "x"), (g, "g"), (out, "out")):
        _require(a, n, (np.dtype(np.float32), np.dtype(np.float64)))
    if xp is not None:
        _require(xp, "xp", (np.dtype(np.float32), np.dtype(np.float64)))
    return _core.prox_step(x, xp, g, out, beta, step, shift, lo, hi, get_num_threads())


def prox_step_rows(x, xp, buf, out, beta: float, step: float, shift: float, lo: float, hi: float):
    """prox_step with the gradient read from ``buf[:, :nx]`` (rows of length >= nx); the
    result goes to ``out`` and over the gradient in ``buf``, whose other columns are
    zeroed (the padded input of the next transform).  Returns the three sums."""
    for a, n in ((x, "x"), (buf, "buf"), (out, "out")):
        _require(a, n, (np.dtype(np.float32), np.dtype(np.float64)))
    if xp is not None:
        _require(xp, "xp", (np.dtype(np.float32), np.dtype(np.float64)))
    return _core.prox_step_rows(x, xp, buf, out, beta, step, shift, lo, hi, get_num_threads())


def minmax_project(planes, offset: float, z, proj) -> None:
    """Update the running min/max of |offset + u|^2 over the (k, ny, nx) complex
    ``planes`` (rows contiguous; a strided view is read in place) and their depths
    ``z`` (k,) in the maps of ``proj`` (in place)."""
    if not isinstance(planes, np.ndarray) or planes.dtype not in _COMPLEX:
        raise TypeError("planes: a complex64/complex128 numpy array is needed")
    zz = np.ascontiguousarray(z, dtype=np.float64)
    _core.minmax_project(planes, float(offset), zz, proj["min"], proj["argmin_z"], proj["max"],
                         proj["argmax_z"], get_num_threads())


def bin_forward(image3, out3, factor, shifts2, scale):
    _require(image3, "image", _REALCPLX)
    _require(out3, "out", _REALCPLX)
    _core.bin_forward(image3, out3, factor, shifts2, scale, get_num_threads())


def bin_adjoint(g3, out3, factor, shifts2, scale):
    _require(g3, "g", _REALCPLX)
    _require(out3, "out", _REALCPLX)
    _core.bin_adjoint(g3, out3, factor, shifts2, scale, get_num_threads())


def bin_shift_grad(image3, g3, factor, shifts2, scale):
    _require(image3, "image", _REALCPLX)
    _require(g3, "g", _REALCPLX)
    d = np.empty((g3.shape[0], 2), dtype=np.float64)
    _core.bin_shift_grad(image3, g3, d, factor, shifts2, scale, get_num_threads())
    return d


def crop_copy(src3, dst3):
    """dst3[...] = src3[:, :ny, :nx] (threaded copy; src3 rows contiguous)."""
    if not isinstance(src3, np.ndarray) or src3.ndim != 3 or src3.strides[2] != src3.itemsize:
        raise ValueError("crop_copy: src must be a 3-d numpy array with contiguous rows")
    _require(dst3, "dst", _REALCPLX)
    _core.crop_copy(src3, dst3, get_num_threads())


def intensity(u):
    _require(u, "u", _COMPLEX)
    out = np.empty(u.shape, dtype=np.float32 if u.dtype == np.complex64 else np.float64)
    _core.intensity(u, out, get_num_threads())
    return out
