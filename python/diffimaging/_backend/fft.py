"""The one FFT layer of the package.

Every transform of the package goes through this module; no other module calls
``scipy.fft`` or ``xp.fft``.  The engine follows the array's library:

- numpy: ``scipy.fft`` (pocketfft) with ``workers`` = the thread setting
  (:func:`~.threads.get_num_threads`);
- CuPy: ``cupy.fft`` (cuFFT), through its array-API namespace;
- any other array-API library (torch, JAX, array-api-strict, ...): ``xp.fft``.

Besides the generic transforms (:func:`fftn`, :func:`ifftn`, :func:`rfftn`,
:func:`irfftn`, :func:`fftshift`) it holds

- the frequency grids (:func:`fftfreq`, :func:`rfftfreq`), built as ``j / (n d)``
  in float64 (never ``linspace``, CONVENTIONS.md);
- the pruned transforms of the zero-padded propagation grid (numpy):
  :func:`padded_fft2` (the zero rows of the padded input are not transformed) and
  :func:`ifft2_crop` (the rows the crop discards are not inverse-transformed), with
  a per-thread work buffer (:func:`free_workspace`);
- axis transforms with output buffers (numpy): :func:`c2c`, :func:`r2c`, :func:`c2r`
  (``out=``; the fused ∂H engine writes every transform into its own work arrays).

The buffer transforms use scipy's pocketfft binding, which takes ``out=``; it is a
private SciPy module, so it is probed once at import and, where it is missing or
its signature changed (a SciPy release may rename it), the public ``scipy.fft``
functions are used instead, with the same results (a copy into ``out`` then
replaces the in-place write).  Measured cost of that fallback
(``benchmarks/bench_fft_fallback.py``, 2 threads of a shared machine, one padded
r2c + c2c forward and c2c + c2r cropped inverse pair of the ∂H engine, float32):
+3% at 256² (1.49 -> 1.54 ms) and +7% at 512² (5.05 -> 5.42 ms), from the
temporaries and copies.
"""
from __future__ import annotations

import threading

import numpy as np
import scipy.fft as _sfft

from . import kernels as K
from .namespace import is_cupy_namespace, is_numpy_namespace, is_torch_namespace
from .threads import get_num_threads

__all__ = ["engine", "next_fast_len", "prev_fast_len", "fftfreq", "rfftfreq", "fftn", "ifftn",
           "rfftn", "irfftn", "fftshift", "padded_fft2", "ifft2_crop", "free_workspace", "c2c",
           "r2c", "c2r", "have_buffer_engine"]


def _probe_pocketfft():
    """scipy's pocketfft binding if it is importable and takes ``out=`` as expected."""
    try:
        from scipy.fft._pocketfft import pypocketfft as pp

        out = np.empty((1, 3), np.complex128)
        pp.r2c(np.zeros((1, 4)), axes=(1,), forward=True, inorm=0, out=out, nthreads=1)
        return pp
    except Exception:  # other scipy builds: the public API (see the module docstring)
        return None


_PP = _probe_pocketfft()


def have_buffer_engine() -> bool:
    """True when :func:`c2c` / :func:`r2c` / :func:`c2r` write straight into ``out``
    (scipy's pocketfft binding); False when they fall back to the public scipy.fft."""
    return _PP is not None


def engine(xp) -> str:
    """Human-readable name of the FFT engine used for arrays of namespace ``xp``."""
    if is_numpy_namespace(xp):
        import scipy

        buffers = "output buffers" if _PP is not None else "no output buffers (public API)"
        return f"scipy.fft (pocketfft, scipy {scipy.__version__}, worker threads, {buffers})"
    if is_cupy_namespace(xp):
        return "cupy.fft (cuFFT)"
    if is_torch_namespace(xp):
        return "torch.fft"
    return f"{getattr(xp, '__name__', 'xp')}.fft (array-API fft extension)"


# ------------------------------------------------------------------ sizes and grids

def next_fast_len(n: int, real: bool = False) -> int:
    """Smallest length >= n whose FFT is fast (a product of small primes)."""
    return int(_sfft.next_fast_len(int(n), real=real))


def prev_fast_len(n: int, real: bool = False) -> int:
    """Largest length <= n whose FFT is fast (a product of small primes)."""
    return int(_sfft.prev_fast_len(int(n), real=real))


def fftfreq(n: int, d: float, *, xp=np, device=None):
    """Frequencies [1/unit of ``d``] of an ``n``-point FFT with sample spacing ``d``,
    in the FFT's own order (0, 1, ..., -1) / (n d); float64 of namespace ``xp``."""
    j = xp.arange(n, dtype=xp.float64, device=device)
    half = (n + 1) // 2
    return xp.where(j < half, j, j - n) / (n * d)


def rfftfreq(n: int, d: float, *, xp=np, device=None):
    """Non-negative frequencies (0, 1, ..., n // 2) / (n d) of the half spectrum of an
    ``n``-point real FFT; float64 of namespace ``xp``."""
    return xp.arange(n // 2 + 1, dtype=xp.float64, device=device) / (n * d)


# -------------------------------------------------------------- generic transforms

def _workers(workers):
    return get_num_threads() if workers is None else int(workers)


def _np(x) -> bool:
    return isinstance(x, np.ndarray)


def _lib(xp, x):
    """xp for the given array: the namespace passed, or the array's own."""
    if xp is not None:
        return xp
    import array_api_compat as aac

    return aac.array_namespace(x)


def fftn(x, s=None, axes=(-2, -1), *, xp=None, overwrite=False, out=None, workers=None):
    """Forward complex FFT over ``axes`` (zero-padded to ``s`` when given).

    ``overwrite``: the input may be destroyed (numpy).  ``out`` (numpy only, ``s``
    None): a complex array of the result's shape and dtype to write into (the input
    itself for an in-place transform)."""
    xp = _lib(xp, x)
    if is_numpy_namespace(xp):
        if out is not None:
            if s is not None:
                raise ValueError("fftn: out= is not supported together with s=")
            return c2c(x, axes, forward=True, out=out, workers=workers)
        return _sfft.fftn(x, s=s, axes=axes, workers=_workers(workers), overwrite_x=overwrite)
    if out is not None:
        raise TypeError(f"fftn: out= is supported for numpy arrays only, got {type(x).__name__}")
    return xp.fft.fftn(x, s=s, axes=axes)


def ifftn(x, s=None, axes=(-2, -1), *, xp=None, overwrite=False, out=None, workers=None):
    """Inverse complex FFT over ``axes`` (normalised by 1/n); see :func:`fftn`."""
    xp = _lib(xp, x)
    if is_numpy_namespace(xp):
        if out is not None:
            if s is not None:
                raise ValueError("ifftn: out= is not supported together with s=")
            return c2c(x, axes, forward=False, out=out, workers=workers)
        return _sfft.ifftn(x, s=s, axes=axes, workers=_workers(workers), overwrite_x=overwrite)
    if out is not None:
        raise TypeError(f"ifftn: out= is supported for numpy arrays only, got {type(x).__name__}")
    return xp.fft.ifftn(x, s=s, axes=axes)


def rfftn(x, s=None, axes=(-2, -1), *, xp=None, workers=None):
    """Half spectrum of a real array over ``axes`` (zero-padded to ``s`` when given)."""
    xp = _lib(xp, x)
    if is_numpy_namespace(xp):
        return _sfft.rfftn(x, s=s, axes=axes, workers=_workers(workers))
    return xp.fft.rfftn(x, s=s, axes=axes)


def irfftn(x, s=None, axes=(-2, -1), *, xp=None, workers=None):
    """Real inverse of a half spectrum over ``axes`` (output lengths ``s``)."""
    xp = _lib(xp, x)
    if is_numpy_namespace(xp):
        return _sfft.irfftn(x, s=s, axes=axes, workers=_workers(workers))
    return xp.fft.irfftn(x, s=s, axes=axes)


def fftshift(x, axes=(-2, -1), *, xp=None):
    """Move the zero frequency (zero lag) to the centre along ``axes``."""
    xp = _lib(xp, x)
    return xp.fft.fftshift(x, axes=axes)


# ------------------------------------------------- axis transforms with output buffers

def _require_out(out, shape, dtype, name):
    if not isinstance(out, np.ndarray):
        raise TypeError(f"{name}: out must be a numpy array, got {type(out).__name__}")
    if tuple(out.shape) != tuple(shape) or out.dtype != dtype:
        raise ValueError(f"{name}: out must have shape {tuple(shape)} and dtype {np.dtype(dtype)}, "
                         f"got {tuple(out.shape)} {out.dtype}")


def _store(r, out):
    """Copy the transform r into out unless the transform already wrote there."""
    if out is None:
        return r
    if r is not out and not np.shares_memory(r, out):
        out[...] = r
    return out


def c2c(a, axes, forward: bool, *, out=None, workers=None):
    """Complex FFT of the numpy array ``a`` over ``axes`` (inverse normalised by 1/n),
    written into ``out`` when given (``out`` may be ``a``: in place)."""
    axes = tuple(axes)
    w = _workers(workers)
    if out is not None:
        _require_out(out, a.shape, a.dtype, "c2c")
    if _PP is not None and np.iscomplexobj(a):
        return _PP.c2c(a, axes=axes, forward=forward, inorm=0 if forward else 2, out=out,
                       nthreads=w)
    f = _sfft.fftn if forward else _sfft.ifftn
    return _store(f(a, axes=axes, workers=w, overwrite_x=out is a), out)


def r2c(a, axes, *, out=None, workers=None):
    """Half spectrum (last of ``axes`` halved to n // 2 + 1) of the real numpy array
    ``a`` over ``axes``, written into ``out`` when given."""
    axes = tuple(axes)
    w = _workers(workers)
    if out is not None:
        shape = list(a.shape)
        shape[axes[-1]] = a.shape[axes[-1]] // 2 + 1
        _require_out(out, shape, np.result_type(a.dtype, np.complex64), "r2c")
    if _PP is not None:
        return _PP.r2c(a, axes=axes, forward=True, inorm=0, out=out, nthreads=w)
    return _store(_sfft.rfftn(a, axes=axes, workers=w), out)


def c2r(a, axes, n: int, *, out=None, workers=None):
    """Real inverse (normalised by 1/n) over ``axes`` of the half spectrum ``a``, the
    last axis giving ``n`` real samples; written into ``out`` when given."""
    axes = tuple(axes)
    w = _workers(workers)
    if out is not None:
        shape = list(a.shape)
        shape[axes[-1]] = int(n)
        _require_out(out, shape, np.empty(0, a.dtype).real.dtype, "c2r")
    if _PP is not None:
        return _PP.c2r(a, axes=axes, lastsize=int(n), forward=False, inorm=2, out=out, nthreads=w)
    s = [a.shape[ax] for ax in axes[:-1]] + [int(n)]
    return _store(_sfft.irfftn(a, s=s, axes=axes, workers=w), out)


# ------------------------------------------- pruned transforms of the padded grid

# Pruned FFTs on the padded grid: the zero rows of the padded input need no
# row transform, and the rows that the crop discards need no inverse row
# transform.  (Set to False to time the plain fft2/ifft2 variant.)
PRUNED = True

_WS = threading.local()


def free_workspace() -> None:
    """Release the padded work buffer that ``propagate`` keeps per thread between
    calls (one array of the padded grid size, reused while shapes repeat)."""
    _WS.__dict__.clear()


def _workspace(shape, dtype):
    buf = getattr(_WS, "buf", None)
    if buf is None or buf.shape != shape or buf.dtype != dtype:
        _WS.buf = None  # drop the old one first
        buf = _WS.buf = np.empty(shape, dtype=dtype)
    return buf


def padded_fft2(u3, shape, *, owned=False, workspace=False, workers=None):
    """Spectrum on the ``shape = (py, px)`` grid of the (implicitly zero-padded)
    complex numpy batch ``u3`` (b, ny, nx), C-contiguous.

    ``owned``: ``u3`` is a private copy that may be overwritten (else the caller's
    data are never modified).  With ``workspace`` the result lives in the per-thread
    work buffer (no new allocation, so no page faults on a large array; valid until
    the next call)."""
    w = _workers(workers)
    py, px = (int(v) for v in shape)
    ny, nx = u3.shape[-2], u3.shape[-1]
    if (py, px) == (ny, nx):
        if not owned:
            # the caller's data: copy (threaded, first touch spread over the
            # threads) into the result, then transform in place
            own = np.empty(u3.shape, dtype=u3.dtype)
            K.crop_copy(u3, own)
            u3 = own
        return _sfft.fft2(u3, workers=w, overwrite_x=True)
    if not PRUNED:
        return _sfft.fft2(u3, s=(py, px), workers=w)
    if workspace:
        buf = _workspace((u3.shape[0], py, px), u3.dtype)
        buf[:, :ny, :nx] = u3
        buf[:, :ny, nx:] = 0
        buf[:, ny:, :] = 0
        rows = buf[:, :ny, :]
        a = _sfft.fft(rows, axis=-1, workers=w, overwrite_x=True)  # ny rows only
        if a is not rows and not np.shares_memory(a, buf):
            rows[...] = a
        b = _sfft.fft(buf, axis=-2, workers=w, overwrite_x=True)
        if b is not buf and not np.shares_memory(b, buf):
            buf[...] = b
        return buf
    a = _sfft.fft(u3, n=px, axis=-1, workers=w)                      # ny rows only
    return _sfft.fft(a, n=py, axis=-2, workers=w, overwrite_x=True)


def ifft2_crop(V, shape, *, workers=None):
    """Inverse transform of the numpy spectrum ``V`` (..., py, px) (overwritten),
    cropped to ``shape = (ny, nx)`` (a view; rows contiguous)."""
    w = _workers(workers)
    ny, nx = (int(v) for v in shape)
    if (V.shape[-2], V.shape[-1]) == (ny, nx):
        return _sfft.ifft2(V, workers=w, overwrite_x=True)
    if not PRUNED:
        return _sfft.ifft2(V, workers=w, overwrite_x=True)[..., :ny, :nx]
    # rows first (contiguous, all rows), then the strided column transforms of
    # the kept columns only: the column pass is the costly one
    V = _sfft.ifft(V, axis=-1, workers=w, overwrite_x=True)
    cols = V[..., :nx]
    v = _sfft.ifft(cols, axis=-2, workers=w, overwrite_x=True)
    return v[..., :ny, :]
