"""Scalar free-space propagation (angular spectrum and Fresnel) with explicit VJPs."""
from __future__ import annotations

import math
import numbers
import warnings
from dataclasses import dataclass

import numpy as np

from .. import _backend as B
from .._backend import fft as F
from .._backend import cuda as C
from .._backend import kernels as K
from .._backend import validate as V
from .._backend.autodiff import register_vjp
from .._backend.capabilities import route

__all__ = ["propagate", "transfer_function", "transfer_kappa", "band_limit_freq",
           "band_limit_mask", "free_workspace", "padded_shape", "Plan"]

_METHODS = {"asm": 0, "fresnel": 1}

free_workspace = F.free_workspace


@dataclass
class Plan:
    """Everything one propagation needs, checked once: the array library, dtypes,
    the field's grid (ny, nx) and the FFT grid (py, px) (zero-padded when ``pad``),
    the optics (metres) and the distances.

    Build it with :meth:`make`.  Its methods are the building blocks of the
    propagators of the package (the ∂H volume, streamed back-propagation): the
    spectrum on the FFT grid (:meth:`spectrum`), the inverse transform cropped back
    (:meth:`inverse_crop`), the transfer function (:meth:`transfer`).  On the kernel
    path (numpy with the compiled module, ``kernel`` True) the plan is also what the
    C++ transfer kernels read (``wavelength``, ``dy``, ``dx``, ``px``, ``method``,
    ``band_limit``, ``carrier``).
    """

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
    cuda: bool = False

    @classmethod
    def make(cls, field, z, wavelength, pixel_size, method="asm", pad=True, band_limit=True,
             carrier=True, op="propagate") -> "Plan":
        """Check the arguments of :func:`propagate` (same meaning and units) and plan
        the transforms.  ``op`` names the operation whose path (kernel or reference)
        the capability table decides."""
        xp = B.namespace(field, z, names=["field", "z"])
        kind = V.field_array(field, "field", xp)
        V.choice("method", method, _METHODS)
        lam = V.wavelength(wavelength)
        dy, dx = V.pixel_size(pixel_size)
        zs, zkind, zdtype, zshape, stack = _parse_z(z, xp)
        ny, nx = int(field.shape[-2]), int(field.shape[-1])
        py, px = padded_shape((ny, nx)) if pad else (ny, nx)
        path = route(op, xp)
        plan = cls(xp=xp, device=B.device_of(field), cdtype=B.complex_dtype_for(xp, field.dtype),
                   real_input=kind in ("f4", "f8"), batch_shape=tuple(field.shape[:-2]), ny=ny,
                   nx=nx, py=py, px=px, dy=dy, dx=dx, wavelength=lam, method=method,
                   band_limit=bool(band_limit), carrier=bool(carrier), zs=zs, stack=stack,
                   z_kind=zkind, z_dtype=zdtype, z_shape=zshape,
                   kernel=path == "kernel", cuda=path == "cuda")
        _check_sampling(plan)
        return plan

    def batch3(self, a):
        """(batch, ny, nx) complex C-contiguous numpy view of ``a``, and whether it is
        a new array that may be overwritten (a conversion copy) or the caller's data."""
        b = np.ascontiguousarray(a, dtype=self.cdtype)
        owned = not np.shares_memory(b, a) if isinstance(a, np.ndarray) else True
        return b.reshape((-1, b.shape[-2], b.shape[-1])), owned

    def spectrum(self, a):
        """Spectrum of ``a`` (..., ny, nx) on the FFT grid, (..., py, px) of the plan's
        complex dtype (``a`` zero-padded; never modified).  Kernel path: pruned numpy
        transforms, C-contiguous result."""
        if self.kernel:
            a3, owned = self.batch3(a)
            U = F.padded_fft2(a3, (self.py, self.px), owned=owned)
            return U.reshape(tuple(a.shape[:-2]) + (self.py, self.px))
        xp = self.xp
        u = xp.astype(a, self.cdtype) if a.dtype != self.cdtype else a
        s = (self.py, self.px) if (self.py, self.px) != (self.ny, self.nx) else None
        return F.fftn(u, s=s, xp=xp)

    def inverse_crop(self, V):
        """Inverse transform of the spectrum ``V`` (..., py, px) cropped to the field's
        grid (..., ny, nx).  Kernel path: ``V`` is overwritten and the result is a view
        with contiguous rows."""
        if self.kernel:
            return F.ifft2_crop(V, (self.ny, self.nx))
        v = F.ifftn(V, xp=self.xp)
        return v[..., :self.ny, :self.nx] if (self.py, self.px) != (self.ny, self.nx) else v

    def device_spectrum(self, a):
        """The CUDA path's spectrum of ``a`` (..., ny, nx): (batch, py, px), C-contiguous,
        of the plan's complex dtype (the layout the CUDA kernels read)."""
        xp = self.xp
        u = xp.astype(a, self.cdtype) if a.dtype != self.cdtype else a
        u = xp.reshape(u, (-1, self.ny, self.nx))
        return xp.ascontiguousarray(_fft_ref(self, u))

    def stack_batch(self, nz: int, batch: int, planes_in_flight: int = 2) -> int:
        """Planes of a z-stack per CUDA kernel call: as many as fit in the free device
        memory (:func:`diffimaging._backend.cuda.planes_per_batch`), each plane needing
        ``planes_in_flight`` spectra of ``batch`` FFT grids (the kernel's output and
        cuFFT's)."""
        per_plane = planes_in_flight * batch * self.py * self.px * np.dtype(self.cdtype).itemsize
        return C.planes_per_batch(per_plane, nz)

    def transfer(self, z, kappa=False):
        """Transfer function H(z) on the FFT grid (the plan's dtype, library and device);
        with ``kappa`` also its phase rate d(phase)/dz [rad/m] (see
        :func:`transfer_function`)."""
        return transfer_function((self.py, self.px), z, wavelength=self.wavelength,
                                 pixel_size=(self.dy, self.dx), method=self.method,
                                 band_limit=self.band_limit, carrier=self.carrier, xp=self.xp,
                                 device=self.device, dtype=self.cdtype, return_kappa=kappa)


def padded_shape(shape) -> tuple[int, int]:
    """The zero-padded FFT grid of ``propagate(pad=True)`` for a (ny, nx) field: the
    smallest fast FFT lengths of at least twice each size."""
    return F.next_fast_len(2 * int(shape[0])), F.next_fast_len(2 * int(shape[1]))


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


def band_limit_freq(method, wavelength, n, d, z) -> float:
    """Band-limit frequency [1/m] (Matsushima & Shimobaba 2009) along one axis of an
    ``n``-point FFT grid of spacing ``d`` [m] for propagation by ``z`` [m]:
    beyond it the transfer function's phase is undersampled (aliased)."""
    lam = wavelength
    df = 1.0 / (n * d)
    az = abs(z)
    if method == "asm":
        return 1.0 / (lam * math.sqrt((2.0 * df * az) ** 2 + 1.0))
    return math.inf if az == 0 else 1.0 / (2.0 * df * lam * az)


def _check_sampling(p: Plan) -> None:
    """Warn (SamplingWarning) where the grid makes the result unreliable."""
    zmax = float(np.max(np.abs(p.zs)))
    if zmax == 0:
        return
    # per axis: Nyquist frequency of the samples and the band-limit frequency of the FFT grid
    axes = [(0.5 / d, band_limit_freq(p.method, p.wavelength, n, d, zmax), n, d)
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

def _grid(shape, pixel_size, half, xp, device):
    dy, dx = pixel_size
    ny, nx = int(shape[0]), int(shape[1])
    fy = F.fftfreq(ny, dy, xp=xp, device=device)[:, None]
    fx = (F.rfftfreq if half else F.fftfreq)(nx, dx, xp=xp, device=device)[None, :]
    return fy, fx


def band_limit_mask(shape, z, *, wavelength, pixel_size, method="asm", half=False, xp=None,
                    device=None):
    """Boolean band-limit mask (Matsushima & Shimobaba 2009) of the transfer function
    for propagation by ``z`` metres on an FFT grid of ``shape = (ny, nx)`` samples spaced
    ``pixel_size`` metres: True where |fy| and |fx| are within the band-limit
    frequencies of :func:`band_limit_freq`.  ``half``: the half spectrum of a real
    transform, (ny, nx // 2 + 1)."""
    xp = np if xp is None else xp
    lam, (dy, dx), fy, fx = _checked_grid(shape, wavelength, pixel_size, method, half, xp, device)
    return _band_mask(fy, fx, xp, method, lam, shape, (dy, dx), float(z))


def _checked_grid(shape, wavelength, pixel_size, method, half, xp, device):
    """Validated wavelength [m], (dy, dx) [m] and the (fy, fx) frequency grids [1/m]."""
    lam = V.wavelength(wavelength)
    dy, dx = V.pixel_size(pixel_size)
    V.choice("method", method, _METHODS)
    fy, fx = _grid(shape, (dy, dx), half, xp, device)
    return lam, (dy, dx), fy, fx


def _band_mask(fy, fx, xp, method, lam, shape, pixel_size, z):
    fyl = band_limit_freq(method, lam, int(shape[0]), pixel_size[0], z)
    fxl = band_limit_freq(method, lam, int(shape[1]), pixel_size[1], z)
    return (xp.abs(fy) <= fyl) & (xp.abs(fx) <= fxl)


def transfer_kappa(shape, z, *, wavelength, pixel_size, method="asm", band_limit=True,
                   carrier=True, half=False, xp=None, device=None):
    """Support and phase rate of the free-space transfer function on an FFT grid.

    The one place where the transfer function's formula is written: propagation by
    ``z`` metres multiplies the spectrum by ``H = ok * exp(i z kappa)``, where

    - ``kappa`` [rad/m] is 2 pi sqrt(1/lambda^2 - f^2) (angular spectrum) or
      2 pi / lambda - pi lambda f^2 (Fresnel) with ``carrier``; without it the carrier
      2 pi / lambda is subtracted (for the angular spectrum in the cancellation-free
      form -2 pi f^2 / (sqrt(1/lambda^2 - f^2) + 1/lambda));
    - ``ok`` (bool) drops the evanescent components (angular spectrum) and, with
      ``band_limit``, the frequencies beyond the band limit of ``z``
      (:func:`band_limit_mask`).

    ``shape = (ny, nx)`` samples spaced ``pixel_size`` metres, in the FFT's own
    (unshifted) order; ``half``: the half spectrum (ny, nx // 2 + 1) of a real
    transform.  Returns ``(ok, kappa)``: float64 kappa, 0 where ``ok`` is False.
    """
    xp = np if xp is None else xp
    lam, (dy, dx), fy, fx = _checked_grid(shape, wavelength, pixel_size, method, half, xp, device)
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
        ok = ok & _band_mask(fy, fx, xp, method, lam, shape, (dy, dx), float(z))
    return ok, xp.where(ok, kappa, 0.0)


def transfer_function(shape, z, *, wavelength, pixel_size, method="asm", band_limit=True,
                      carrier=True, xp=None, device=None, dtype=None, return_kappa=False):
    """Transfer function H(fy, fx) of free-space propagation by ``z`` metres on an
    FFT grid of ``shape = (ny, nx)`` samples spaced ``pixel_size`` metres, in
    the FFT's (unshifted) frequency order.

    The phase is computed in float64; the result is cast to ``dtype``
    (complex128 by default).  With ``return_kappa`` also returns the phase rate
    kappa = d(phase)/dz in rad/m (float64, 0 where H = 0); see :func:`transfer_kappa`.
    """
    xp = np if xp is None else xp
    dtype = xp.complex128 if dtype is None else dtype
    z = float(z)
    ok, kappa = transfer_kappa(shape, z, wavelength=wavelength, pixel_size=pixel_size,
                               method=method, band_limit=band_limit, carrier=carrier, xp=xp,
                               device=device)
    phase = z * kappa
    m = xp.astype(ok, xp.float64)
    H = xp.astype(m * xp.cos(phase), dtype) + xp.astype(m * xp.sin(phase), dtype) * 1j
    return (H, kappa) if return_kappa else H


def _fft_ref(p: Plan, u):
    s = (p.py, p.px) if (p.py, p.px) != (p.ny, p.nx) else None
    return F.fftn(u, s=s, xp=p.xp)


def _ifft_crop_ref(p: Plan, U):
    v = F.ifftn(U, xp=p.xp)
    return v[..., :p.ny, :p.nx] if (p.py, p.px) != (p.ny, p.nx) else v


def _forward_reference(p: Plan, field):
    xp = p.xp
    u = xp.astype(field, p.cdtype) if p.real_input else field
    U = _fft_ref(p, u)
    outs = [_ifft_crop_ref(p, U * p.transfer(z)) for z in p.zs]
    return xp.stack(outs, axis=0) if p.stack else outs[0]


def _pullback_reference(p: Plan, field, g, want_z=True):
    xp = p.xp
    u = xp.astype(field, p.cdtype) if p.real_input else field
    U = _fft_ref(p, u) if want_z else None
    acc = None
    dz = []
    n = float(p.py * p.px)
    planes = [g[k, ...] for k in range(len(p.zs))] if p.stack else [g]
    for z, gk in zip(p.zs, planes):
        G = _fft_ref(p, gk)
        H, kappa = p.transfer(z, kappa=True)
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

def _forward_kernel(p: Plan, field):
    u3, owned = p.batch3(field)
    U = F.padded_fft2(u3, (p.py, p.px), owned=owned, workspace=True)
    if not p.stack:
        K.transfer_apply(U, U, p, float(p.zs[0]), conjugate=False)
        v = p.inverse_crop(U)
        # U may be the per-thread work buffer, which the next call overwrites: the
        # result is returned as is only when it is a new array.  (C-contiguity alone
        # does not tell: a crop to one row of the buffer is C-contiguous too.)
        if v.flags.c_contiguous and not np.may_share_memory(v, U):
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
        v = p.inverse_crop(tmp)
        if v.flags.c_contiguous:
            out[k] = v
        else:
            K.crop_copy(v, out[k])
    return out.reshape((len(p.zs),) + p.batch_shape + (p.ny, p.nx))


def _pullback_kernel(p: Plan, field, g, want_z=True):
    n = float(p.py * p.px)
    U = p.spectrum(field) if want_z else None
    if not p.stack:
        G = p.spectrum(g)
        dz = K.transfer_pullback(U, G, G, p, float(p.zs[0]), accumulate=False)
        return p.inverse_crop(G), [dz / n]
    g = np.asarray(g)
    acc = None
    dz = []
    for k, z in enumerate(p.zs):
        G = p.spectrum(g[k])
        if acc is None:
            acc = G
            d = K.transfer_pullback(U, G, acc, p, float(z), accumulate=False)
        else:
            d = K.transfer_pullback(U, G, acc, p, float(z), accumulate=True)
        dz.append(d / n)
    return p.inverse_crop(acc), dz


# --------------------------------------------------------------------------
# CUDA path (CuPy + the _cuda kernels + cuFFT through cupy.fft)
# --------------------------------------------------------------------------

def _forward_cuda(p: Plan, field):
    from .._backend import cuda_propagate as KC

    xp = p.xp
    U = p.device_spectrum(field)
    nb = int(U.shape[0])
    if not p.stack:
        KC.transfer_apply(U, U, p, float(p.zs[0]), conjugate=False)
        v = p.inverse_crop(U)
        return xp.reshape(xp.ascontiguousarray(v), p.batch_shape + (p.ny, p.nx))
    nz = len(p.zs)
    out = xp.empty((nz, nb, p.ny, p.nx), dtype=p.cdtype)
    chunk = p.stack_batch(nz, nb)
    for k0 in range(0, nz, chunk):
        k1 = min(nz, k0 + chunk)
        zs = KC.device_distances(p.zs[k0:k1])
        S = xp.empty((k1 - k0, nb, p.py, p.px), dtype=p.cdtype)
        KC.transfer_stack(U, S, zs, p)
        out[k0:k1] = p.inverse_crop(S)
        del S
    return xp.reshape(out, (nz,) + p.batch_shape + (p.ny, p.nx))


def _pullback_cuda(p: Plan, field, g, want_z=True):
    from .._backend import cuda_propagate as KC

    xp = p.xp
    n = float(p.py * p.px)
    U = p.device_spectrum(field) if want_z else None
    if not p.stack:
        G = p.device_spectrum(g)
        dz = KC.transfer_pullback(U, G, G, p, float(p.zs[0]), accumulate=False)
        return p.inverse_crop(G), [dz / n]
    nz = len(p.zs)
    nb = int(np.prod(p.batch_shape, dtype=np.int64)) if p.batch_shape else 1
    acc = xp.empty((nb, p.py, p.px), dtype=p.cdtype)
    dz = np.zeros(nz)
    chunk = p.stack_batch(nz, nb)
    for k0 in range(0, nz, chunk):
        k1 = min(nz, k0 + chunk)
        zs = KC.device_distances(p.zs[k0:k1])
        gk = xp.reshape(g[k0:k1], (-1, p.ny, p.nx))
        G = xp.reshape(p.device_spectrum(gk), (k1 - k0, nb, p.py, p.px))
        KC.transfer_stack_adjoint(G, acc, zs, p, accumulate=k0 > 0)
        if want_z:
            dz[k0:k1] = KC.transfer_stack_dz(U, G, zs, p)
        del G
    return p.inverse_crop(acc), list(dz / n)


# --------------------------------------------------------------------------
# public API
# --------------------------------------------------------------------------

def _forward(p: Plan, field):
    if p.kernel:
        return _forward_kernel(p, field)
    if p.cuda:
        return _forward_cuda(p, field)
    return _forward_reference(p, field)


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
    p = Plan.make(field, z, wavelength, pixel_size, method, pad, band_limit, carrier)
    return _forward(p, field)


def _propagate_fwd(field, z, *, wavelength, pixel_size, method="asm", pad=True, band_limit=True,
                   carrier=True):
    p = Plan.make(field, z, wavelength, pixel_size, method, pad, band_limit, carrier)
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
        du, dz = (_pullback_cuda if p.cuda else _pullback_reference)(p, field, g)
        du = xp.reshape(du, tuple(field.shape))
        if p.real_input:
            du = xp.real(du)
    if p.z_kind == "scalar":
        dz_out = xp.asarray(dz[0], dtype=B.real_dtype_for(xp, p.cdtype), device=p.device)
    else:
        dz_out = xp.reshape(xp.asarray(dz, dtype=p.z_dtype, device=p.device), p.z_shape)
    return du, dz_out


# torch CUDA tensors: zero-copy CuPy views through the CUDA kernels (DLPack)
propagate, _propagate_fwd, _propagate_bwd = C.via_cupy_vjp(propagate, _propagate_fwd,
                                                           _propagate_bwd)
register_vjp(propagate, _propagate_fwd, _propagate_bwd)
