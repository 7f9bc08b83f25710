"""The ∂H forward model: a stack of per-plane scattering objects superposed at the
sensor relative to the reference wave."""
from __future__ import annotations

import numpy as np

from .. import _backend as B
from .. import _kernels as K
from .. import propagation as P
from .._autodiff import vjp as _vjp
from .._threads import get_num_threads
from ..model import Stage, _value_in
from ..propagation import propagate

__all__ = ["Volume"]


class Volume(Stage):
    """Sensor field of a particle volume (first-Born superposition):

        U = r + sum_k P~(z_k + dz) o_k

    ``o`` is the (nz, ny, nx) stack of scattered fields (o_k = t_k - 1 on plane k:
    -1 inside an opaque particle, 0 elsewhere), ``z`` the planes' depths (metres,
    distances to the sensor), ``dz`` a global distance offset and ``r`` the
    reference amplitude, both learnable Params.  P~ is the carrier-free propagator
    (CONVENTIONS.md).  On numpy the planes' spectra are accumulated with the fused
    C++ kernels: nz forward FFTs + 1 inverse FFT per forward, 1 + nz + nz per
    pullback (the plane spectra are recomputed rather than stored).
    """

    def __init__(self, z, wavelength, pixel_size, dz=0.0, reference=1.0, method="asm", pad=True,
                 band_limit=True, name=None):
        super().__init__(name or "volume")
        self.z = np.asarray(B.to_host_float64(z, "z"), dtype=np.float64).reshape(-1)
        if self.z.size == 0:
            raise ValueError("z must hold at least one plane depth (metres)")
        self._declare("dz", dz)
        self._declare("reference", reference)
        self.static = dict(wavelength=wavelength, pixel_size=pixel_size, method=method, pad=pad,
                           band_limit=band_limit, carrier=False)

    def _check(self, o):
        if o.ndim != 3 or int(o.shape[0]) != self.z.size:
            raise ValueError(f"Volume expects an (nz={self.z.size}, ny, nx) object stack, got shape "
                             f"{tuple(o.shape)}")

    # -- numpy fast path -------------------------------------------------------
    def _plan(self, o):
        return P._make_plan(o[0], float(self.z[0]), self.static["wavelength"], self.static["pixel_size"],
                            self.static["method"], self.static["pad"], self.static["band_limit"], False)

    def forward(self, o, p):
        self._check(o)
        xp = B.namespace(o)
        dz = float(B.to_host_float64(p["dz"], "dz")) if not isinstance(p["dz"], float) else p["dz"]
        r = _value_in(p, "reference", o)
        zs = self.z + dz
        if B.is_numpy_namespace(xp) and K.have_cpu():
            plan = self._plan(o)
            w = get_num_threads()
            acc = None
            for k in range(zs.size):
                Ok = P._spectrum(plan, o[k], w)
                if acc is None:
                    acc = np.zeros_like(Ok)
                # acc += H(z_k) O_k  (H(z) = conj(H(-z)) for the carrier-free transfer function)
                K.transfer_pullback(None, Ok, acc, plan, float(-zs[k]), accumulate=True)
            u = P._ifft_crop_np(plan, acc, w)
            u = np.ascontiguousarray(u).reshape(o.shape[1:])
            return u + r, ("np", o, zs, plan, r)
        outs = [propagate(o[k, ...], float(zs[k]), **self.static) for k in range(zs.size)]
        u = outs[0]
        for v in outs[1:]:
            u = u + v
        return u + r, ("ref", o, zs, None, r)

    def backward(self, res, g):
        kind, o, zs, plan, r = res
        xp = B.namespace(g)
        gr = xp.sum(xp.real(g)) if B.is_complex(xp, g.dtype) else xp.sum(g)
        gref = float(gr) if isinstance(r, float) else xp.reshape(gr, tuple(r.shape))
        real_o = not B.is_complex(xp, o.dtype)
        if kind == "np":
            w = get_num_threads()
            n = float(plan.py * plan.px)
            G = P._spectrum(plan, np.asarray(g, dtype=plan.cdtype), w)
            go = np.empty(o.shape, dtype=o.dtype)
            tmp = np.empty_like(G)
            ddz = 0.0
            for k in range(zs.size):
                Ok = P._spectrum(plan, o[k], w)
                ddz += K.transfer_pullback(Ok, G, tmp, plan, float(zs[k]), accumulate=False) / n
                v = P._ifft_crop_np(plan, tmp, w)
                go[k] = v.real if real_o else v
            return go, {"dz": ddz, "reference": gref}
        gos, ddz = [], 0.0
        for k in range(zs.size):
            _, pb = _vjp(propagate, o[k, ...], float(zs[k]), **self.static)
            gk, dk = pb(g)
            gos.append(gk)
            ddz += float(dk)
        return xp.stack(gos, axis=0), {"dz": ddz, "reference": gref}
