"""Multi-slice (beam-propagation) hologram forward model with an explicit VJP.

Unlike :class:`~diffimaging.holography.Volume` (first Born: every plane scatters the
unperturbed reference independently), the illumination here passes the planes one
after the other, so a particle lies in the shadow of the particles upstream of it
and the light it scatters is scattered again downstream.
"""
from __future__ import annotations

import numbers

import numpy as np

from .. import _backend as B
from .._backend.autodiff import vjp as _vjp
from ..model import Stage, param_value
from ..ops.propagate import propagate
from .volume import plane_stack_oshape

__all__ = ["MultiSlice"]


class MultiSlice(Stage):
    """Sensor field of a stack of thin planes met one after the other (multi-slice).

    Parameters
    ----------
    z : array of nz floats [m]
        Distances of the planes to the sensor, in any order (sorted internally).
        Equal depths are allowed (a zero gap).
    wavelength : float [m]
    pixel_size : float or (dy, dx) [m]
    dz : float or Param [m]
        Global offset added to every plane's distance (the whole volume moves
        together): it lengthens only the last leg, from the closest plane to the
        sensor.  Learnable when given as a :class:`~diffimaging.Param`.
    reference : float or Param
        Real amplitude r of the incident plane wave (dimensionless, the sensor's
        field unit).  Learnable when given as a Param.
    method, pad, band_limit :
        As in :func:`diffimaging.propagate`; the propagator is always the
        carrier-free one (``carrier=False``, CONVENTIONS.md).
    name : str, optional (default "multislice")

    Input and output
    ----------------
    The input is the ``(nz, ny, nx)`` stack ``o`` of per-plane scattered fields,
    o_k = t_k - 1 (t_k the plane's complex transmittance: o_k = -1 inside an opaque
    particle, 0 elsewhere), real or complex; plane k of the stack lies at z[k].
    The output is the complex ``(ny, nx)`` sensor field U relative to the
    reference wave (complex64 for float32/complex64 input, complex128 for
    float64/complex128); follow it with :class:`~diffimaging.Intensity` for a
    hologram.  A real ``o`` gets a real cotangent.

    Model
    -----
    Number the planes j = 0 .. n-1 in order of *decreasing* z (the plane farthest
    from the sensor is met first).  The field is u = r + s: the plane wave r plus
    a deviation s that starts at s_0 = 0.  Plane j multiplies the field by
    t_j = 1 + o_j and the deviation is propagated to the next plane::

        a_j     = s_j + o_j (r + s_j)                  (= t_j u_j - r)
        s_{j+1} = P~(d_j) a_j,   d_j = z_j - z_{j+1} (gaps),  d_{n-1} = z_{n-1} + dz
        U       = r + s_n

    where P~(d) is the carrier-free propagator by d metres.  Propagating only the
    deviation is exact for the infinite plane wave (P~ maps a constant to itself)
    and keeps ``pad=True`` from diffracting the edges of a window of ones.

    Convention for r: the illumination amplitude scales the scattered light too,
    U(r, o) = r U(1, o).  For one plane U = r (1 + P~(z + dz) o), which equals
    ``Volume`` at ``reference=1`` times r (and ``Volume(reference=r)`` applied
    to ``r o``).  For weak objects U = r (1 + sum_k P~(z_k + dz) o_k) + O(o^2):
    the first-Born volume, plus the multiple-scattering terms.

    Gradients (hand-derived; gradient convention of CONVENTIONS.md), going back
    from g_{s_n} = g, with g_{a_j} = P~(d_j)^H g_{s_{j+1}}::

        g_{s_j} = conj(1 + o_j) g_{a_j}
        g_{o_j} = conj(r + s_j) g_{a_j}           (its real part for a real o)
        g_r     = Re sum g + sum_j Re sum conj(o_j) g_{a_j}
        g_dz    = the z-cotangent of the last leg's propagation

    The last leg's pullback is ``vjp(propagate, ...)``; the gaps use
    P~(d)^H = P~(-d) (the carrier-free transfer function obeys
    H(-d) = conj H(d), and the pad/crop pair is its own adjoint), which skips
    the z-gradient's extra FFT for distances that are not parameters.

    Cost (FFTs on the padded grid): 2 nz per forward (one forward and one inverse
    per plane), 2 nz + 1 per VJP (the last leg's pullback transforms its input
    once more for the dz-gradient).  The residual holds nz complex (ny, nx)
    fields besides ``o``: the deviations s_1 .. s_{nz-1} and the last exit a_{nz-1}.

    Each leg is padded, cropped and band-limited on its own, so on the padded
    grid light that leaves the (ny, nx) window between two planes is lost and
    P~(a) P~(b) differs slightly from P~(a + b); with ``pad=False`` and distances
    below N dx^2 / wavelength the chain is exact (periodic) and the difference
    from first Born is purely the multiple-scattering term.

    Example
    -------
    >>> import numpy as np, diffimaging as di
    >>> from diffimaging.holography.multislice import MultiSlice
    >>> z = np.array([1.0e-3, 1.2e-3])                     # metres to the sensor
    >>> model = di.Model(MultiSlice(z, 532e-9, 2e-6, dz=di.Param(0.0, bounds=(-5e-5, 5e-5))),
    ...                  di.Intensity())
    >>> o = np.zeros((2, 64, 64)); o[0, 30:34, 30:34] = -1; o[1, 10:13, 40:43] = -1
    >>> y = model(o)                                       # (64, 64) hologram
    >>> res = di.solve(model, y, np.zeros_like(o), method="fista", iterations=20,
    ...                regularizers=[di.L1(1e-3)], constraint=di.Box(-1, 0), progress=False)
    >>> res.x.shape, sorted(res.params)
    ((2, 64, 64), ['multislice.dz', 'multislice.reference'])
    """

    def __init__(self, z, wavelength, pixel_size, dz=0.0, reference=1.0, method="asm", pad=True,
                 band_limit=True, name=None):
        super().__init__(name or "multislice")
        self.z = np.asarray(B.to_host_float64(z, "z"), dtype=np.float64).reshape(-1)
        if self.z.size == 0:
            raise ValueError("z must hold at least one plane depth (metres)")
        if not np.all(np.isfinite(self.z)):
            raise ValueError(f"z must be finite (metres), got {self.z}")
        # planes in the order the light meets them: decreasing distance to the sensor
        self._order = np.argsort(-self.z, kind="stable")
        zs = self.z[self._order]
        self._gaps = zs[:-1] - zs[1:]
        self._zlast = float(zs[-1])
        self._declare("dz", dz)
        self._declare("reference", reference)
        self.static = dict(wavelength=wavelength, pixel_size=pixel_size, method=method, pad=pad,
                           band_limit=band_limit, carrier=False)

    def _check(self, o):
        if not hasattr(o, "shape"):
            raise ValueError(f"MultiSlice expects an (nz={self.z.size}, ny, nx) object stack, got "
                             f"{type(o).__name__}")
        self.oshape(tuple(o.shape))

    def oshape(self, ishape) -> tuple:
        """(ny, nx): the sensor plane of an (nz, ny, nx) object stack."""
        return plane_stack_oshape(type(self).__name__, self.z.size, ishape)

    @staticmethod
    def _reference(p, o, rdtype):
        """(r as a float or a 0-d array of the data's real precision, r's own shape)."""
        r = param_value(p, "reference", o)
        if isinstance(r, float):
            return r, None
        xp = B.namespace(o)
        shape = tuple(r.shape)
        if int(np.prod(shape)) != 1:
            raise ValueError(f"reference must be a scalar amplitude (the plane wave's), got shape "
                             f"{shape}")
        # the data's precision: a float64 parameter must not upcast a complex64 field
        return xp.reshape(xp.astype(r, rdtype), ()), shape

    def forward(self, o, p):
        self._check(o)
        xp = B.namespace(o)
        cdt = B.complex_dtype_for(xp, o.dtype)
        rdt = B.real_dtype_for(xp, cdt)
        v = p["dz"]
        dz = float(v) if isinstance(v, numbers.Real) else float(B.to_host_float64(v, "dz"))
        r, rshape = self._reference(p, o, rdt)
        n = self.z.size
        s = None                          # deviation from the plane wave; s_0 = 0
        devs = []                         # s_j before plane j (None for j = 0)
        pb_last = None
        for j in range(n):
            oj = xp.astype(o[int(self._order[j]), ...], cdt)
            a = oj * r if s is None else s + oj * (s + r)
            devs.append(s)
            if j < n - 1:
                s = propagate(a, float(self._gaps[j]), **self.static)
            else:
                s, pb_last = _vjp(propagate, a, self._zlast + dz, **self.static)
        return s + r, (o, r, rshape, devs, pb_last)

    def backward(self, res, g):
        o, r, rshape, devs, pb_last = res
        xp = B.namespace(g)
        n = self.z.size
        cdt = B.complex_dtype_for(xp, o.dtype)
        g = xp.astype(g, cdt) if g.dtype != cdt else g
        real_o = not B.is_complex(xp, o.dtype)
        gr = xp.sum(xp.real(g))
        gos = [None] * n
        ga, gdz = pb_last(g)
        ddz = float(gdz)
        gs = None                         # g_s_{j+1}, set by plane j + 1 for plane j
        for j in range(n - 1, -1, -1):
            if j < n - 1:
                # g_a_j = P~(d_j)^H g_s_{j+1} = P~(-d_j) g_s_{j+1}
                ga = propagate(gs, -float(self._gaps[j]), **self.static)
            k = int(self._order[j])
            oj = xp.astype(o[k, ...], cdt)
            gr = gr + xp.sum(xp.real(xp.conj(oj) * ga))
            sj = devs[j]
            go = ga * r if sj is None else xp.conj(sj + r) * ga
            gos[k] = xp.real(go) if real_o else go
            if j > 0:
                gs = xp.conj(oj + 1) * ga
        gref = float(gr) if rshape is None else xp.reshape(gr, rshape)
        return xp.stack(gos, axis=0), {"dz": ddz, "reference": gref}
