"""The ∂H forward model: a stack of per-plane scattering objects superposed at the
sensor relative to the reference wave (first Born), or its linearised intensity
(Gabor)."""
from __future__ import annotations

import numpy as np

from .. import _backend as B
from .._backend import kernels as K
from .._backend.autodiff import vjp as _vjp
from .._backend.capabilities import route
from ..model import Stage, param_value
from ..ops.propagate import Plan, propagate

__all__ = ["Volume", "plane_stack_oshape", "check_distinct_depths"]


def plane_stack_oshape(stage: str, nz: int, ishape) -> tuple:
    """Output shape (ny, nx) of a hologram stage fed an (nz, ny, nx) stack of
    planes (one per depth); a clear ValueError naming ``stage`` otherwise."""
    ishape = tuple(int(n) for n in ishape)
    if len(ishape) != 3 or ishape[0] != nz:
        raise ValueError(f"{stage} expects an (nz={nz}, ny, nx) object stack (one plane per depth "
                         f"in z), got shape {ishape}")
    return ishape[1:]


def check_distinct_depths(z, name: str = "z"):
    """ValueError naming ``name`` when the plane depths ``z`` (1-d numpy, metres)
    repeat a value.  For :func:`~diffimaging.holography.reconstruct`: two planes
    at one depth reach the sensor through the same propagator, so only their sum
    is determined (and a plane spacing of 0 leaves no room for a distance
    offset).  The :class:`Volume` stage itself accepts them (a forward model may
    superpose two objects at one depth).  Returns ``z``."""
    order = np.argsort(z, kind="stable")
    same = np.flatnonzero(np.diff(z[order]) == 0)
    if same.size:
        i, j = sorted((int(order[same[0]]), int(order[same[0] + 1])))
        raise ValueError(f"{name} has repeated depths at indices {i} and {j} ({name}[{i}] = "
                         f"{name}[{j}] = {z[i]:g} m); give each plane depth once")
    return z


def _scalar(v, name):
    return v if isinstance(v, float) else float(B.to_host_float64(v, name))


class Volume(Stage):
    """Sensor field of a particle volume (first-Born superposition):

        U = r (1 + s),   s = sum_k P~(z_k + dz) o_k

    ``o`` is the (nz, ny, nx) stack of scattered fields (o_k = t_k - 1 on plane k:
    -1 inside an opaque particle, 0 elsewhere; real for absorbers, complex for
    phase objects), ``z`` the planes' depths (metres, distances to the sensor),
    ``dz`` a global distance offset [m] and ``r`` the illumination (reference)
    amplitude, both learnable :class:`~diffimaging.Param`.  The illumination scales
    the scattered light too, so ``o`` keeps its physical range ([-1, 0] for
    absorbers) whatever the exposure.  P~ is the carrier-free propagator
    (CONVENTIONS.md).  Follow with :class:`~diffimaging.Intensity` for a hologram.

    ``linearized=True`` outputs the Gabor (linearised) hologram directly,
    ``I = r^2 (1 + 2 Re s)``: the |s|^2 term (the particles' own halo, and the
    shadows' interaction) is dropped, so the model is linear in ``o`` and the
    regularised problem convex; it breaks down where the shadows cover a
    sizeable part of the field (density above ~5e-3 particles per pixel).

    Cost on numpy (fused C++ kernels, pruned padded FFTs): nz forward FFTs + 1
    inverse per forward pass; 1 forward + nz inverse FFTs per VJP.  The distance
    gradient needs no extra transform: every plane shares the same phase rate,
    so dL/d(dz) is one reduction of the accumulated spectrum.

    Example
    -------
    >>> m = di.Model(Volume(z, 532e-9, 2e-6, dz=di.Param(0.0, bounds=(-25e-6, 25e-6))),
    ...              di.Intensity())
    >>> r = di.solve(m, hologram, np.zeros((len(z), ny, nx)), method="fista",
    ...              regularizers=[di.L1(5e-3)], constraint=di.Box(-1.0, 0.0))
    """

    def __init__(self, z, wavelength, pixel_size, dz=0.0, reference=1.0, method="asm", pad=True,
                 band_limit=True, linearized=False, name=None):
        super().__init__(name or "volume")
        self.z = np.asarray(B.to_host_float64(z, "z"), dtype=np.float64).reshape(-1)
        if self.z.size == 0 or not np.all(np.isfinite(self.z)):
            raise ValueError("z must hold at least one finite plane depth (metres)")
        self._declare("dz", dz)
        self._declare("reference", reference)
        self.linearized = bool(linearized)
        self.static = dict(wavelength=wavelength, pixel_size=pixel_size, method=method, pad=pad,
                           band_limit=band_limit, carrier=False)

    def _check(self, o):
        self.oshape(tuple(o.shape))

    def oshape(self, ishape) -> tuple:
        """(ny, nx): the sensor plane of an (nz, ny, nx) object stack."""
        return plane_stack_oshape(type(self).__name__, self.z.size, ishape)

    def _plan(self, o):
        return Plan.make(o[0], float(self.z[0]), self.static["wavelength"], self.static["pixel_size"],
                         self.static["method"], self.static["pad"], self.static["band_limit"], False,
                         op="volume")

    def _scattered(self, o, zs):
        """s (ny, nx) and, on the kernel path, the accumulated padded spectrum and the plan."""
        if route("volume", B.namespace(o)) == "kernel":
            plan = self._plan(o)
            acc = None
            for k in range(zs.size):
                Ok = plan.spectrum(o[k])
                if acc is None:
                    acc = np.zeros_like(Ok)
                # acc += H(z_k) O_k  (H(z) = conj(H(-z)) for the carrier-free transfer function)
                K.transfer_pullback(None, Ok, acc, plan, float(-zs[k]), accumulate=True)
            spec = acc.copy()
            s = plan.inverse_crop(acc)
            return np.ascontiguousarray(s).reshape(o.shape[1:]), spec, plan
        if route("volume", B.namespace(o)) == "cuda":
            return self._scattered_cuda(o, zs)
        s = None
        for k in range(zs.size):
            v = propagate(o[k, ...], float(zs[k]), **self.static)
            s = v if s is None else s + v
        return s, None, None

    def _scattered_cuda(self, o, zs):
        """The CUDA path: the spectra of the planes in memory-sized chunks, summed
        with their transfer functions by one kernel per chunk
        (``sum_k H(z_k) O_k = sum_k conj(H(-z_k)) O_k``, the stack adjoint)."""
        from .._backend import cuda_propagate as KC

        xp = B.namespace(o)
        plan = self._plan(o)
        acc = xp.empty((1, plan.py, plan.px), dtype=plan.cdtype)
        chunk = plan.stack_batch(zs.size, 1)
        for k0 in range(0, zs.size, chunk):
            k1 = min(zs.size, k0 + chunk)
            O = xp.reshape(plan.device_spectrum(o[k0:k1]), (k1 - k0, 1, plan.py, plan.px))
            KC.transfer_stack_adjoint(O, acc, KC.device_distances(-zs[k0:k1]), plan,
                                      accumulate=k0 > 0)
            del O
        spec = acc.copy()
        s = plan.inverse_crop(acc)
        return xp.reshape(s, tuple(o.shape[1:])), spec, plan

    def _backward_cuda(self, o, zs, spec, plan, gs, real_o):
        """The CUDA path of the VJP: the distance cotangent in one reduction against
        the accumulated spectrum (every plane has the same phase rate), the object's
        planes ``conj(H(z_k)) G = H(-z_k) G`` by the stack kernel in chunks."""
        from .._backend import cuda_propagate as KC

        xp = B.namespace(gs)
        G = plan.device_spectrum(gs)
        tmp = xp.empty_like(G)
        ddz = KC.transfer_pullback(spec, G, tmp, plan, 0.0, accumulate=False) / float(
            plan.py * plan.px)
        go = xp.empty(tuple(o.shape), dtype=o.dtype)
        chunk = plan.stack_batch(zs.size, 1)
        for k0 in range(0, zs.size, chunk):
            k1 = min(zs.size, k0 + chunk)
            S = xp.empty((k1 - k0, 1, plan.py, plan.px), dtype=plan.cdtype)
            KC.transfer_stack(G, S, KC.device_distances(-zs[k0:k1]), plan)
            v = xp.reshape(plan.inverse_crop(S), (k1 - k0,) + tuple(o.shape[1:]))
            go[k0:k1] = xp.real(v) if real_o else v
            del S
        return go, ddz

    def forward(self, o, p):
        self._check(o)
        xp = B.namespace(o)
        zs = self.z + _scalar(p["dz"], "dz")
        r = param_value(p, "reference", o)
        s, spec, plan = self._scattered(o, zs)
        if self.linearized:
            out = (r * r) * (1.0 + 2.0 * xp.real(s))
        else:
            out = r * (1.0 + s)
        return out, (o, zs, s, spec, plan, r)

    def backward(self, res, g):
        o, zs, s, spec, plan, r = res
        xp = B.namespace(g)
        real_o = not B.is_complex(xp, o.dtype)
        if self.linearized:
            gr = xp.sum(g * (2.0 * r) * (1.0 + 2.0 * xp.real(s)))
            gs = (2.0 * r * r) * g  # real cotangent of s = d/dRe(s); none for Im(s)
        else:
            gr = xp.sum(xp.real(g) + xp.real(xp.conj(s) * g)) if B.is_complex(xp, g.dtype) else xp.sum(g)
            gs = r * g
        gref = float(gr) if isinstance(r, float) else xp.reshape(gr, tuple(r.shape))
        if plan is not None and plan.cuda:
            go, ddz = self._backward_cuda(o, zs, spec, plan, gs, real_o)
            return go, {"dz": ddz, "reference": gref}
        if plan is not None:
            G = plan.spectrum(np.asarray(gs, dtype=plan.cdtype))
            tmp = np.empty_like(G)
            # every plane has the same phase rate d(phase)/dz, so the distance gradient is
            # one reduction against the accumulated spectrum sum_k H(z_k) O_k
            ddz = K.transfer_pullback(spec, G, tmp, plan, 0.0, accumulate=False) / float(plan.py * plan.px)
            go = np.empty(o.shape, dtype=o.dtype)
            for k in range(zs.size):
                K.transfer_pullback(None, G, tmp, plan, float(zs[k]), accumulate=False)
                v = plan.inverse_crop(tmp)
                go[k] = v.real if real_o else v
            return go, {"dz": ddz, "reference": gref}
        gos, ddz = [], 0.0
        for k in range(zs.size):
            _, pb = _vjp(propagate, o[k, ...], float(zs[k]), **self.static)
            gk, dk = pb(gs)
            gos.append(gk)
            ddz += float(dk)
        return xp.stack(gos, axis=0), {"dz": ddz, "reference": gref}
