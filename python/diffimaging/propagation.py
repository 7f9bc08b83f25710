"""Scalar free-space propagation (angular spectrum and Fresnel) with explicit VJPs."""
from __future__ import annotations

import math
import numbers
import threading
import warnings
from dataclasses import dataclass

import numpy as np
import scipy.fft as _sfft

from . import _backend as B
from . import _kernels as K
from . import _validate as V
from ._autodiff import register_vjp
from ._threads import get_num_threads

__all__ = ["propagate", "transfer_function", "free_workspace"]

_METHODS = {"asm": 0, "fresnel": 1}


@dataclass
class _Plan:
    xp: object
    device: object
    cdtype: object
    real_input: bool
    batch_shape: tuple
    ny: int
    nx: int
    py: int  # FFT grid (padded) size
    px: int
    dy: float
    dx: float
    wavelength: float
    method: str
    band_limit: bool
    carrier: bool
    zs: np.ndarray  # float64 distances on the host
    stack: bool
    z_kind: str  # "scalar" (Python number) or "array"
    z_dtype: object
    z_shape: tuple
    kernel: bool


def _fast_len(n: int) -> int:
    return int(_sfft.next_fast_len(int(n)))


def _parse_z(z, xp):
    if isinstance(z, bool):
        raise TypeError("z must be a real number or a 0-d/1-d array of distances in metres, got a bool")
    if isinstance(z, numbers.Real):
        zs = np.asarray([float(z)])
        kind, dtype, shape, stack = "scalar", None, (), False
    elif isinstance(z, (list, tuple)):
        raise TypeError("z must be a float or an array of the field's library; wrap a list of "
                        "distances with xp.asarray(...)")
    else:
        ndim = getattr(z, "ndim", None)
        if ndim is None:
            raise TypeError(f"z must be a real number or an array of distances in metres, got "
                            f"{type(z).__name__}")
        if ndim > 1:
            raise ValueError(f"z must be a scalar or a 1-d array of distances, got shape {tuple(z.shape)}")
        if B.dtype_kind(xp, z.dtype) not in ("f4", "f8"):
            raise TypeError(f"z must be a real floating-point array in metres, got dtype {z.dtype}")
        zs = B.to_host_float64(z, "z").reshape(-1)
        kind, dtype, shape, stack = "array", z.dtype, tuple(z.shape), ndim == 1
        if stack and zs.size == 0:
            raise ValueError("z is an empty array of distances")
    if not np.all(np.isfinite(zs)):
        raise ValueError(f"z must be finite (metres), got {zs if zs.size < 8 else zs[:8]}")
    return zs, kind, dtype, shape, stack


def _make_plan(field, z, wavelength, pixel_size, method, pad, band_limit, carrier) -> _Plan:
    xp = B.namespace(field, z, names=["field", "z"])
    kind = V.field_array(field, "field", xp)
    if method not in _METHODS:
        raise ValueError(f"method must be 'asm' or 'fresnel', got {method!r}")
    lam = V.wavelength(wavelength)
    dy, dx = V.pixel_size(pixel_size)
    zs, zkind, zdtype, zshape, stack = _parse_z(z, xp)
    ny, nx = int(field.shape[-2]), int(field.shape[-1])
    if pad:
        py, px = _fast_len(2 * ny), _fast_len(2 * nx)
    else:
        py, px = ny, nx
    plan = _Plan(xp=xp, device=B.device_of(field), cdtype=B.complex_dtype_for(xp, field.dtype),
                 real_input=kind in ("f4", "f8"), batch_shape=tuple(field.shape[:-2]), ny=ny, nx=nx,
                 py=py, px=px, dy=dy, dx=dx, wavelength=lam, method=method,
                 band_limit=bool(band_limit), carrier=bool(carrier), zs=zs, stack=stack,
                 z_kind=zkind, z_dtype=zdtype, z_shape=zshape,
                 kernel=B.is_numpy_namespace(xp) and K.have_cpu())
    _check_sampling(plan)
    return plan


def _band_limit_freq(method, lam, n, d, z):
    df = 1.0 / (n * d)
    az = abs(z)
    if method == "asm":
        return 1.0 / (lam * math.sqrt((2.0 * df * az) ** 2 + 1.0))
    return math.inf if az == 0 else 1.0 / (2.0 * df * lam * az)


def _check_sampling(p: _Plan) -> None:
    """Warn (SamplingWarning) where the grid makes the result unreliable."""
    zmax = float(np.max(np.abs(p.zs)))
    if zmax == 0:
        return
    # per axis: Nyquist frequency of the samples and the band-limit frequency of the FFT grid
    axes = [(0.5 / d, _band_limit_freq(p.method, p.wavelength, n, d, zmax), n, d)
            for n, d in ((p.py, p.dy), (p.px, p.dx))]
    cut = [(fl, nyq, n, d) for nyq, fl, n, d in axes if fl < nyq]
    if cut:
        fl, nyq, n, d = min(cut, key=lambda t: t[0] / t[1])
        if p.method == "fresnel":
            zc = n * d * d / p.wavelength
            if p.band_limit:
                msg = (f"Fresnel transfer function undersampled: |z| = {zmax:.4g} m exceeds N dx^2 / "
                       f"wavelength = {zc:.4g} m for this grid (N = {n}, dx = {d:.4g} m); the band "
                       f"limit keeps |f| <= {fl:.4g} 1/m, {100 * fl / nyq:.1f}% of the Nyquist "
                       f"frequency {nyq:.4g} 1/m, so the result has lost resolution (use a larger "
                       f"grid, or method='asm')")
            else:
                msg = (f"Fresnel transfer function aliased: |z| = {zmax:.4g} m exceeds N dx^2 / "
                       f"wavelength = {zc:.4g} m (N = {n}, dx = {d:.4g} m) and band_limit=False; "
                       f"the result wraps around (set band_limit=True or enlarge the grid)")
            warnings.warn(msg, V.SamplingWarning, stacklevel=4)
        elif not p.band_limit:
            warnings.warn(f"angular-spectrum transfer function aliased at |z| = {zmax:.4g} m: its "
                          f"phase is undersampled beyond |f| = {fl:.4g} 1/m ({100 * fl / nyq:.1f}% "
                          f"of the Nyquist frequency) and band_limit=False; the result wraps around",
                          V.SamplingWarning, stacklevel=4)
    if p.method == "fresnel":
        # paraxial error at the highest frequency kept
        f = min(min(fl, nyq) for nyq, fl, _, _ in axes)
        f = min(f, 1.0 / p.wavelength)
        err = 2 * math.pi * zmax * abs(1 / p.wavelength - 0.5 * p.wavelength * f * f
                                       - math.sqrt(max(1 / p.wavelength ** 2 - f * f, 0.0)))
        if err > math.pi / 2:
            warnings.warn(f"Fresnel (paraxial) approximation invalid: at |f| = {f:.4g} 1/m and |z| = "
                          f"{zmax:.4g} m its phase differs from the exact angular spectrum by "
                          f"{err:.3g} rad (> pi/2); use method='asm'", V.SamplingWarning, stacklevel=4)


# --------------------------------------------------------------------------
# reference implementation (any array-API namespace)
# --------------------------------------------------------------------------

def _freqs(xp, n, d, device):
    j = xp.arange(n, dtype=xp.float64, device=device)
    half = (n + 1) // 2
    return xp.where(j < half, j, j - n) / (n * d)


def transfer_function(shape, z, *, wavelength, pixel_size, method="asm", band_limit=True,
                      carrier=True, xp=None, device=None, dtype=None, return_kappa=False):
    """Transfer function H(fy, fx) of free-space propagation by ``z`` metres on an
    FFT grid of ``shape = (ny, nx)`` samples spaced ``pixel_size`` metres, in
    the FFT's (unshifted) frequency order.

    The phase is computed in float64; the result is cast to ``dtype``
    (complex128 by default).  With ``return_kappa`` also returns the phase rate
    kappa = d(phase)/dz in rad/m (float64, 0 where H = 0).
    """
    xp = np if xp is None else xp
    dtype = xp.complex128 if dtype is None else dtype
    lam = V.wavelength(wavelength)
    dy, dx = V.pixel_size(pixel_size)
    if method not in _METHODS:
        raise ValueError(f"method must be 'asm' or 'fresnel', got {method!r}")
    z = float(z)
    ny, nx = int(shape[0]), int(shape[1])
    fy = _freqs(xp, ny, dy, device)[:, None]
    fx = _freqs(xp, nx, dx, device)[None, :]
    f2 = fy * fy + fx * fx
    inv_l = 1.0 / lam
    if method == "asm":
        s = inv_l * inv_l - f2
        ok = s > 0
        kz = xp.sqrt(xp.where(ok, s, 0.0))
        kappa = 2 * math.pi * kz if carrier else -2 * math.pi * f2 / (kz + inv_l)
    else:
        ok = xp.ones(f2.shape, dtype=xp.bool, device=device)
        kappa = (2 * math.pi * inv_l if carrier else 0.0) - math.pi * lam * f2
    if band_limit:
        fyl = _band_limit_freq(method, lam, ny, dy, z)
        fxl = _band_limit_freq(method, lam, nx, dx, z)
        ok = ok & (xp.abs(fy) <= fyl) & (xp.abs(fx) <= fxl)
    kappa = xp.where(ok, kappa, 0.0)
    phase = z * kappa
    m = xp.astype(ok, xp.float64)
    H = xp.astype(m * xp.cos(phase), dtype) + xp.astype(m * xp.sin(phase), dtype) * 1j
    return (H, kappa) if return_kappa else H


def _tf(p: _Plan, z, kappa=False):
    return transfer_function((p.py, p.px), z, wavelength=p.wavelength, pixel_size=(p.dy, p.dx),
                             method=p.method, band_limit=p.band_limit, carrier=p.carrier,
                             xp=p.xp, device=p.device, dtype=p.cdtype, return_kappa=kappa)


def _fft_ref(p: _Plan, u):
    xp = p.xp
    if (p.py, p.px) != (p.ny, p.nx):
        return xp.fft.fftn(u, s=(p.py, p.px), axes=(-2, -1))
    return xp.fft.fftn(u, axes=(-2, -1))


def _ifft_crop_ref(p: _Plan, U):
    v = p.xp.fft.ifftn(U, axes=(-2, -1))
    return v[..., :p.ny, :p.nx] if (p.py, p.px) != (p.ny, p.nx) else v


def _forward_reference(p: _Plan, field):
    xp = p.xp
    u = xp.astype(field, p.cdtype) if p.real_input else field
    U = _fft_ref(p, u)
    outs = [_ifft_crop_ref(p, U * _tf(p, z)) for z in p.zs]
    return xp.stack(outs, axis=0) if p.stack else outs[0]


def _pullback_reference(p: _Plan, field, g, want_z=True):
    xp = p.xp
    u = xp.astype(field, p.cdtype) if p.real_input else field
    U = _fft_ref(p, u) if want_z else None
    acc = None
    dz = []
    n = float(p.py * p.px)
    planes = [g[k, ...] for k in range(len(p.zs))] if p.stack else [g]
    for z, gk in zip(p.zs, planes):
        G = _fft_ref(p, gk)
        H, kappa = _tf(p, z, kappa=True)
        if want_z:
            w = xp.astype(kappa, p.cdtype) * 1j * H * U
            dz.append(float(xp.sum(xp.real(xp.conj(G) * w))) / n)
        t = xp.conj(H) * G
        acc = t if acc is None else acc + t
    du = _ifft_crop_ref(p, acc)
    return du, dz


# --------------------------------------------------------------------------
# compiled path (numpy + C++ kernels + scipy.fft)
# --------------------------------------------------------------------------

# Pruned FFTs on the padded grid: the zero rows of the padded input need no
# row transform, and the rows that the crop discards need no inverse row
# transform.  (Set to False to time the plain fft2/ifft2 variant.)
_PRUNED = True


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


def _fft_np(p: _Plan, u3, workers, workspace=False, owned=False):
    """Spectrum of the (implicitly zero-padded) batch u3 on the FFT grid.
    With ``workspace`` the result lives in the per-thread work buffer (no new
    allocation, so no page faults on a large array)."""
    if (p.py, p.px) == (p.ny, p.nx):
        if not owned:
            # the caller's data: copy (threaded, first touch spread over the
            # threads) into the result, then transform in place
            own = np.empty(u3.shape, dtype=p.cdtype)
            K.crop_copy(u3, own)
            u3 = own
        return _sfft.fft2(u3, workers=workers, overwrite_x=True)
    if not _PRUNED:
        return _sfft.fft2(u3, s=(p.py, p.px), workers=workers)
    if workspace:
        buf = _workspace((u3.shape[0], p.py, p.px), p.cdtype)
        buf[:, :p.ny, :p.nx] = u3
        buf[:, :p.ny, p.nx:] = 0
        buf[:, p.ny:, :] = 0
        rows = buf[:, :p.ny, :]
        a = _sfft.fft(rows, axis=-1, workers=workers, overwrite_x=True)  # ny rows only
        if a is not rows and not np.shares_memory(a, buf):
            rows[...] = a
        b = _sfft.fft(buf, axis=-2, workers=workers, overwrite_x=True)
        if b is not buf and not np.shares_memory(b, buf):
            buf[...] = b
        return buf
    a = _sfft.fft(u3, n=p.px, axis=-1, workers=workers)             # ny rows only
    return _sfft.fft(a, n=p.py, axis=-2, workers=workers, overwrite_x=True)


def _ifft_crop_np(p: _Plan, V, workers):
    """Inverse transform of the spectrum V (overwritten) cropped to (ny, nx)."""
    if (p.py, p.px) == (p.ny, p.nx):
        return _sfft.ifft2(V, workers=workers, overwrite_x=True)
    if not _PRUNED:
        return _sfft.ifft2(V, workers=workers, overwrite_x=True)[..., :p.ny, :p.nx]
    # rows first (contiguous, all rows), then the strided column transforms of
    # the kept columns only: the column pass is the costly one
    V = _sfft.ifft(V, axis=-1, workers=workers, overwrite_x=True)
    cols = V[..., :p.nx]
    v = _sfft.ifft(cols, axis=-2, workers=workers, overwrite_x=True)
    return v[..., :p.ny, :]


def _as_batch3(p: _Plan, a):
    """(batch, ny, nx) complex C-contiguous view of a, and whether it is a new
    array that may be overwritten (a conversion copy) or the caller's data."""
    b = np.ascontiguousarray(a, dtype=p.cdtype)
    owned = not np.shares_memory(b, a) if isinstance(a, np.ndarray) else True
    return b.reshape((-1, b.shape[-2], b.shape[-1])), owned


def _spectrum(p: _Plan, a, workers):
    """Spectrum on the FFT grid of an array (never modifies it)."""
    a3, owned = _as_batch3(p, a)
    return _fft_np(p, a3, workers, owned=owned)


def _forward_kernel(p: _Plan, field):
    w = get_num_threads()
    u3, owned = _as_batch3(p, field)
    U = _fft_np(p, u3, w, workspace=True, owned=owned)
    if not p.stack:
        K.transfer_apply(U, U, p, float(p.zs[0]), conjugate=False)
        v = _ifft_crop_np(p, U, w)
        if v.flags.c_contiguous:
            return v.reshape(p.batch_shape + (p.ny, p.nx))
        out = np.empty(u3.shape, dtype=p.cdtype)
        K.crop_copy(v, out)
        return out.reshape(p.batch_shape + (p.ny, p.nx))
    out = np.empty((len(p.zs),) + u3.shape, dtype=p.cdtype)
    tmp = np.empty_like(U)
    # H(z_k) is generated on the fly for every plane (exact, any spacing): a
    # recurrence H(z + dz) = H(z) H(dz) on a stored table was measured slower
    # (it streams two tables through the cache per plane)
    for k, z in enumerate(p.zs):
        K.transfer_apply(U, tmp, p, float(z), conjugate=False)
        v = _ifft_crop_np(p, tmp, w)
        if v.flags.c_contiguous:
            out[k] = v
        else:
            K.crop_copy(v, out[k])
    return out.reshape((len(p.zs),) + p.batch_shape + (p.ny, p.nx))


def _pullback_kernel(p: _Plan, field, g, want_z=True):
    w = get_num_threads()
    n = float(p.py * p.px)
    U = _spectrum(p, field, w) if want_z else None
    if not p.stack:
        G = _spectrum(p, g, w)
        dz = K.transfer_pullback(U, G, G, p, float(p.zs[0]), accumulate=False)
        return _ifft_crop_np(p, G, w), [dz / n]
    g = np.asarray(g)
    acc = None
    dz = []
    for k, z in enumerate(p.zs):
        G = _spectrum(p, g[k], w)
        if acc is None:
            acc = G
            d = K.transfer_pullback(U, G, acc, p, float(z), accumulate=False)
        else:
            d = K.transfer_pullback(U, G, acc, p, float(z), accumulate=True)
        dz.append(d / n)
    return _ifft_crop_np(p, acc, w), dz


# --------------------------------------------------------------------------
# public API
# --------------------------------------------------------------------------

def _forward(p: _Plan, field):
    return _forward_kernel(p, field) if p.kernel else _forward_reference(p, field)


def propagate(field, z, *, wavelength, pixel_size, method="asm", pad=True, band_limit=True,
              carrier=True):
    """Scalar free-space propagation of a ``(..., ny, nx)`` field by ``z`` metres.

    Parameters
    ----------
    field : array (..., ny, nx), float or complex
        Complex field sampled on the grid; real input is promoted to the complex
        dtype of the same precision (float32 -> complex64).  Leading axes are batch axes.
    z : float, 0-d array or 1-d array of nz distances [m]
        Propagation distance (negative: backwards).  A 1-d array gives a
        ``(nz, ..., ny, nx)`` stack computed with one forward FFT and nz inverse FFTs.
    wavelength : float [m]
    pixel_size : float or (dy, dx) [m]
    method : {"asm", "fresnel"}
        Exact angular spectrum (evanescent waves dropped) or the paraxial
        Fresnel transfer function.
    pad : bool
        Zero-pad to at least twice the size (a fast FFT length) and crop back,
        so that propagation is a linear, not circular, convolution.
    band_limit : bool
        Band-limit the transfer function (Matsushima & Shimobaba 2009) on the FFT grid.
        The limit frequency moves with |z|, so the result is piecewise smooth in z: where a
        grid frequency crosses the limit the z-derivative jumps, and the VJP gives the
        one-sided derivative there (finite differences must not straddle such a z).
    carrier : bool
        Keep the plane-wave phase exp(i k z).  ``carrier=False`` gives the field
        relative to a reference wave travelling the same distance (holography,
        intensity models); its phase z (k_z - k) is computed directly.

    Returns
    -------
    array of the input's library, device and precision (complex).

    Example
    -------
    >>> u = np.ones((256, 256), np.complex64)
    >>> v = propagate(u, 1e-3, wavelength=532e-9, pixel_size=2e-6)
    """
    p = _make_plan(field, z, wavelength, pixel_size, method, pad, band_limit, carrier)
    return _forward(p, field)


def _propagate_fwd(field, z, *, wavelength, pixel_size, method="asm", pad=True, band_limit=True,
                   carrier=True):
    p = _make_plan(field, z, wavelength, pixel_size, method, pad, band_limit, carrier)
    return _forward(p, field), (p, field)


def _propagate_bwd(res, g):
    p, field = res
    xp = p.xp
    expected = ((len(p.zs),) if p.stack else ()) + p.batch_shape + (p.ny, p.nx)
    if tuple(g.shape) != expected:
        raise ValueError(f"cotangent must have the output's shape {expected}, got {tuple(g.shape)}")
    g = xp.astype(g, p.cdtype) if not B.is_complex(xp, g.dtype) or g.dtype != p.cdtype else g
    if p.kernel:
        du, dz = _pullback_kernel(p, field, g)
        du = du.reshape(tuple(field.shape))
        du = np.ascontiguousarray(du.real) if p.real_input else np.ascontiguousarray(du)
    else:
        du, dz = _pullback_reference(p, field, g)
        du = xp.reshape(du, tuple(field.shape))
        if p.real_input:
            du = xp.real(du)
    if p.z_kind == "scalar":
        dz_out = xp.asarray(dz[0], dtype=B.real_dtype_for(xp, p.cdtype), device=p.device)
    else:
        dz_out = xp.reshape(xp.asarray(dz, dtype=p.z_dtype, device=p.device), p.z_shape)
    return du, dz_out


register_vjp(propagate, _propagate_fwd, _propagate_bwd)
