"""Particle motion for simulated sequences: displacement fields, particle advection
and hologram sequences with their ground truth.

A *field* is a callable ``positions (N, 3) -> velocities (N, 3)``: positions are
(y, x, z) in metres (CONVENTIONS.md: pixel (i, j) of the hologram at (i dy, j dx),
z the distance to the sensor) and velocities (vy, vx, vz) in metres per frame (per
unit of the time step ``dt`` of :func:`move_particles`).  The built-in fields
(:func:`uniform`, :func:`solid_rotation`, :func:`vortex`) are :class:`Field`
objects, which also know their exact finite displacement over a time ``t``
(:meth:`Field.displacement`): particles are moved along the exact path lines, so the
truth of a simulated sequence is exact.  Any other callable is integrated with the
classical fourth-order Runge–Kutta scheme (``substeps`` steps per frame).

Sense of rotation: the rotations act on the ordered coordinates (y, x, z) of the
position tables.  A positive angle about ``"z"`` turns +y towards +x (on an image
shown with row i downwards and column j to the right: counter-clockwise), about
``"y"`` +x towards +z, and about ``"x"`` +z towards +y; e.g. about z::

    y' = yc + cos(a) (y - yc) - sin(a) (x - xc)
    x' = xc + sin(a) (y - yc) + cos(a) (x - xc),     z' = z

Example
-------
>>> from diffimaging import holography as H
>>> from diffimaging.holography import motion as M
>>> tab = H.random_particles((256, 256), 2e-6, ppp=1e-3, z_range=(1e-3, 3e-3), seed=0)
>>> field = M.solid_rotation(0.01, centre=(256e-6, 256e-6, 2e-3))      # 10 mrad per frame
>>> holos, truth = M.simulate_sequence((256, 256), tab, field, frames=3, wavelength=532e-9,
...                                    pixel_size=2e-6, gaussian_noise=0.01, seed=1)
>>> holos.shape, len(truth)
((3, 256, 256), 3)
"""
from __future__ import annotations

import numbers
from abc import ABC, abstractmethod

import numpy as np

from ..._backend.validate import integer
from ..simulate import ParticleTable, simulate_particles

__all__ = ["Field", "uniform", "solid_rotation", "vortex", "move_particles", "simulate_sequence"]

_AXES = {"z": (0, 1), "y": (1, 2), "x": (2, 0)}  # the (from, towards) coordinates a positive angle turns


def _as_positions(p, name="positions"):
    a = np.asarray(p, dtype=np.float64)
    if a.ndim != 2 or a.shape[1] != 3:
        raise ValueError(f"{name} must be an (N, 3) array of (y, x, z) positions in metres, got shape "
                         f"{a.shape}")
    return a


def _finite_scalar(v, name, unit, positive=False):
    if isinstance(v, bool) or not isinstance(v, numbers.Real) or not np.isfinite(v):
        raise ValueError(f"{name} must be a finite number ({unit}), got {v!r}")
    if positive and not v > 0:
        raise ValueError(f"{name} must be positive ({unit}), got {v!r}")
    return float(v)


def _vector(v, name, n=3, unit="metres"):
    try:
        a = np.asarray(v, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be {n} numbers ({unit}), got {v!r}") from None
    if a.size != n or not np.all(np.isfinite(a)):
        raise ValueError(f"{name} must be {n} finite numbers ({unit}), got {v!r}")
    return a


def _rk4(f, p, t, substeps):
    """Positions after integrating dp/dt = f(p) over time ``t`` with ``substeps`` RK4 steps."""
    h = t / substeps
    p = np.array(p, dtype=np.float64)
    for _ in range(substeps):
        k1 = _as_positions(f(p), "the field's output")
        k2 = np.asarray(f(p + 0.5 * h * k1), dtype=np.float64).reshape(p.shape)
        k3 = np.asarray(f(p + 0.5 * h * k2), dtype=np.float64).reshape(p.shape)
        k4 = np.asarray(f(p + h * k3), dtype=np.float64).reshape(p.shape)
        p = p + (h / 6.0) * (k1 + 2 * k2 + 2 * k3 + k4)
    return p


class Field(ABC):
    """A steady velocity field: ``field(positions)`` -> velocities (N, 3) in metres
    per frame at positions (N, 3) = (y, x, z) metres.

    :meth:`displacement` gives the finite displacement of particles after a time
    ``t`` (frames) along their path lines: exact for the built-in fields, fourth-order
    Runge–Kutta with ``substeps`` steps per unit time in this base class."""

    @abstractmethod
    def velocity(self, positions):
        """Velocities (N, 3) (vy, vx, vz) in metres per frame at ``positions`` (N, 3)
        = (y, x, z) metres (already validated)."""

    def __call__(self, positions):
        return self.velocity(_as_positions(positions))

    def displacement(self, positions, t=1.0, substeps=4):
        """Displacements (N, 3) metres of particles at ``positions`` after ``t`` frames."""
        p = _as_positions(positions)
        n = max(int(np.ceil(abs(t) * substeps)), 1)
        return _rk4(self, p, t, n) - p


class Uniform(Field):
    """Uniform translation by ``d`` = (dy, dx, dz) metres per frame."""

    def __init__(self, d):
        self.d = _vector(d, "d (the displacement (dy, dx, dz) per frame)")

    def velocity(self, positions):
        return np.broadcast_to(self.d, positions.shape).copy()

    def displacement(self, positions, t=1.0, substeps=4):
        p = _as_positions(positions)
        return np.broadcast_to(self.d * t, p.shape).copy()

    def __repr__(self):
        return f"uniform(d={tuple(self.d)})"


def _rotate_pairs(p, centre, angle, axis):
    """Rotate positions about ``axis`` through ``centre`` by ``angle`` (scalar or (N,))."""
    i, j = _AXES[axis]
    out = np.array(p, dtype=np.float64)
    a = p[:, i] - centre[i]
    b = p[:, j] - centre[j]
    c, s = np.cos(angle), np.sin(angle)
    out[:, i] = centre[i] + c * a - s * b
    out[:, j] = centre[j] + s * a + c * b
    return out


class SolidRotation(Field):
    """Rigid rotation by ``angle`` radians per frame about an axis ("z", "y" or "x")
    through ``centre`` (y, x, z) metres.  Velocity: omega x r (|v| = angle * r metres
    per frame at a distance r from the axis); displacement: the exact rotation."""

    def __init__(self, angle, centre, axis="z"):
        self.angle = _finite_scalar(angle, "angle", "radians per frame")
        self.centre = _vector(centre, "centre (a point (y, x, z) on the rotation axis)")
        if axis not in _AXES:
            raise ValueError(f"axis must be 'z' (the optical axis), 'y' or 'x', got {axis!r}")
        self.axis = axis

    def velocity(self, positions):
        i, j = _AXES[self.axis]
        v = np.zeros_like(positions)
        v[:, i] = -self.angle * (positions[:, j] - self.centre[j])
        v[:, j] = self.angle * (positions[:, i] - self.centre[i])
        return v

    def displacement(self, positions, t=1.0, substeps=4):
        p = _as_positions(positions)
        return _rotate_pairs(p, self.centre, self.angle * t, self.axis) - p

    def __repr__(self):
        return f"solid_rotation(angle={self.angle}, centre={tuple(self.centre)}, axis={self.axis!r})"


# Lamb–Oseen: v(r) = G / (2 pi r) (1 - exp(-r^2 / rc^2)) peaks at r = _LO_R rc with
# v_max = _LO_V G / (2 pi rc); _LO_R solves 1 + 2 s^2 = exp(s^2)
_LO_R = 1.1209064228
_LO_V = (1.0 - np.exp(-_LO_R ** 2)) / _LO_R  # 0.638 (= 0.715 G / (2 pi r_peak))


class Vortex(Field):
    """Axisymmetric vortex about the z axis through ``centre`` (planar: vz = 0).

    ``model="lamb-oseen"`` (default): azimuthal speed
    ``v(r) = G / (2 pi r) (1 - exp(-r^2 / rc^2))`` (metres per frame) with the
    circulation ``G`` (m^2 per frame) and the core radius ``rc`` (metres); the peak
    speed ``0.638 G / (2 pi rc)`` is reached at ``r = 1.121 rc``.
    ``model="rankine"``: solid rotation ``v = G r / (2 pi rc^2)`` inside ``rc``,
    ``G / (2 pi r)`` outside; peak ``G / (2 pi rc)`` at ``r = rc``.
    The sense is that of a positive rotation about z (+y towards +x).  Every particle
    keeps its distance to the axis and turns by ``v(r) / r`` radians per frame, so
    the displacement is exact."""

    def __init__(self, circulation, core_radius, centre, model="lamb-oseen"):
        self.circulation = _finite_scalar(circulation, "circulation", "m^2 per frame")
        self.core_radius = _finite_scalar(core_radius, "core_radius", "metres", positive=True)
        c = np.asarray(centre, dtype=np.float64).reshape(-1) if centre is not None else None
        if c is None or c.size not in (2, 3) or not np.all(np.isfinite(c)):
            raise ValueError(f"centre must be (y, x) or (y, x, z) in metres (a point on the vortex "
                             f"axis), got {centre!r}")
        self.centre = np.concatenate([c[:2], [c[2] if c.size == 3 else 0.0]])
        if model not in ("lamb-oseen", "rankine"):
            raise ValueError(f"model must be 'lamb-oseen' or 'rankine', got {model!r}")
        self.model = model

    @property
    def peak_speed(self):
        """Largest azimuthal speed, metres per frame."""
        g = self.circulation / (2 * np.pi * self.core_radius)
        return g * (_LO_V if self.model == "lamb-oseen" else 1.0)

    def angular_velocity(self, r):
        """Angular velocity v(r) / r in radians per frame at distances ``r`` (metres)."""
        r = np.asarray(r, dtype=np.float64)
        g, rc = self.circulation / (2 * np.pi), self.core_radius
        r2 = r * r
        with np.errstate(divide="ignore", invalid="ignore"):
            if self.model == "lamb-oseen":
                q = r2 / (rc * rc)
                # (1 - exp(-q)) / r^2 -> 1 / rc^2 at the axis
                w = np.where(q > 1e-8, -np.expm1(-q) / np.where(q > 1e-8, r2, 1.0), 1.0 / (rc * rc))
            else:
                w = np.where(r <= rc, 1.0 / (rc * rc), 1.0 / np.where(r > 0, r2, 1.0))
        return g * w

    def speed(self, r):
        """Azimuthal speed v(r) in metres per frame at distances ``r`` (metres)."""
        return self.angular_velocity(r) * np.asarray(r, dtype=np.float64)

    def velocity(self, positions):
        y = positions[:, 0] - self.centre[0]
        x = positions[:, 1] - self.centre[1]
        w = self.angular_velocity(np.hypot(y, x))
        return np.column_stack([-w * x, w * y, np.zeros_like(w)])

    def displacement(self, positions, t=1.0, substeps=4):
        p = _as_positions(positions)
        w = self.angular_velocity(np.hypot(p[:, 0] - self.centre[0], p[:, 1] - self.centre[1]))
        return _rotate_pairs(p, self.centre, w * t, "z") - p

    def __repr__(self):
        return (f"vortex(circulation={self.circulation}, core_radius={self.core_radius}, "
                f"centre={tuple(self.centre[:2])}, model={self.model!r})")


def uniform(d) -> Uniform:
    """Uniform translation by ``d`` = (dy, dx, dz) metres per frame."""
    return Uniform(d)


def solid_rotation(angle, centre, axis="z") -> SolidRotation:
    """Rigid rotation by ``angle`` radians per frame about the axis ``axis`` ("z": the
    optical axis, "y" or "x") through ``centre`` = (y, x, z) metres.  A positive angle
    turns +y towards +x about z, +x towards +z about y, +z towards +y about x (see
    the module docstring).  Particles are moved by the exact rotation.

    >>> f = solid_rotation(0.02, centre=(256e-6, 256e-6, 2e-3))
    >>> f.displacement([[256e-6, 356e-6, 2e-3]])   # 100 um from the axis: a 2 um chord
    """
    return SolidRotation(angle, centre, axis)


def vortex(circulation=None, core_radius=None, centre=None, *, peak_speed=None,
           model="lamb-oseen") -> Vortex:
    """Lamb–Oseen vortex (default; or ``model="rankine"``) about the z axis through
    ``centre`` = (y, x) or (y, x, z) metres, with core radius ``core_radius`` metres.

    Strength as the ``circulation`` G in m^2 per frame or as ``peak_speed`` in metres
    per frame (the largest azimuthal speed: ``0.638 G / (2 pi rc)`` at ``r = 1.121 rc``
    for Lamb–Oseen, ``G / (2 pi rc)`` at ``r = rc`` for Rankine).  The azimuthal
    speed of Lamb–Oseen is ``v(r) = G / (2 pi r) (1 - exp(-r^2 / rc^2))``; the sense
    is that of a positive rotation about z (+y towards +x).

    >>> f = vortex(peak_speed=3e-6, core_radius=100e-6, centre=(256e-6, 256e-6))
    >>> f.speed(1.1209 * 100e-6)     # ~3e-6 m per frame
    """
    if (circulation is None) == (peak_speed is None):
        raise ValueError("give exactly one of circulation (m^2 per frame) or peak_speed (metres per "
                         "frame)")
    if core_radius is None:
        raise ValueError("core_radius (metres) is required")
    if centre is None:
        raise ValueError("centre ((y, x) metres, a point on the vortex axis) is required")
    if peak_speed is not None:
        v = _finite_scalar(peak_speed, "peak_speed", "metres per frame")
        rc = _finite_scalar(core_radius, "core_radius", "metres", positive=True)
        circulation = v * 2 * np.pi * rc / (_LO_V if model == "lamb-oseen" else 1.0)
    return Vortex(circulation, core_radius, centre, model)


def _table(particles):
    if isinstance(particles, ParticleTable):
        pos, dia = particles.positions, particles.diameters
    elif isinstance(particles, tuple) and len(particles) == 2:
        pos, dia = particles
    else:
        raise ValueError("particles (table) must be a ParticleTable or a (positions (N, 3), diameters "
                         f"(N,)) pair in metres, got {type(particles).__name__}")
    pos = _as_positions(pos, "particle positions")
    if not np.all(np.isfinite(pos)):
        raise ValueError("particle positions must be finite")
    try:
        dia = np.broadcast_to(np.asarray(dia, dtype=np.float64), (len(pos),)).copy()
    except ValueError:
        raise ValueError(f"particle diameters must be (N,) = ({len(pos)},) metres, got shape "
                         f"{np.shape(dia)}") from None
    return pos, dia


def move_particles(table, field, frames=2, dt=1.0, *, substeps=4):
    """Advect particles through a steady velocity field.

    Parameters
    ----------
    table : ParticleTable (or (positions (N, 3), diameters (N,)) in metres): frame 0
    field : a :class:`Field` (:func:`uniform`, :func:`solid_rotation`, :func:`vortex`:
        moved exactly, e.g. by the exact rotation) or any callable positions (N, 3)
        metres -> velocities (N, 3) metres per unit time, integrated with the
        classical fourth-order Runge–Kutta scheme, ``substeps`` steps per frame
        (local error O((dt / substeps)^5) per step)
    frames : number of frames (>= 1) returned
    dt : time between frames, in the field's unit of time (1: the field is in
        metres per frame)

    Returns
    -------
    list of ``frames`` ParticleTable: frame 0 a copy of the input, frame k the
    particles at time k dt (same order and diameters; particles that leave the field of
    view are kept).

    Example
    -------
    >>> seq = move_particles(tab, solid_rotation(0.01, (256e-6, 256e-6, 2e-3)), frames=3)
    >>> seq[2].positions - seq[0].positions          # two frames of rotation
    """
    pos, dia = _table(table)
    frames = integer(frames, "frames", minimum=1, type_error=ValueError)
    dt = _finite_scalar(dt, "dt", "time between frames, in the field's unit of time")
    substeps = integer(substeps, "substeps", minimum=1, hint="(RK4 steps per frame)", type_error=ValueError)
    if not callable(field):
        raise ValueError(f"field must be callable (positions (N, 3) -> velocities (N, 3)), got "
                         f"{type(field).__name__}")
    out = [ParticleTable(pos.copy(), dia.copy())]
    p = pos
    for _ in range(1, int(frames)):
        if isinstance(field, Field):
            # the built-in fields are steady: the exact flow map over k dt from frame 0
            # (no accumulated rounding)
            p = pos + field.displacement(pos, len(out) * dt)
        else:
            p = _rk4(field, p, dt, int(substeps)) if len(p) else p.copy()
        if not np.all(np.isfinite(p)):
            raise ValueError("the field produced non-finite positions")
        out.append(ParticleTable(p.copy(), dia.copy()))
    return out


def simulate_sequence(shape, particles, field, frames=2, *, dt=1.0, substeps=4, **simulate_kwargs):
    """Hologram sequence of particles moving through ``field``.

    The particles are moved with :func:`move_particles` and each frame is simulated
    with :func:`simulate_particles` (``simulate_kwargs``: ``wavelength``,
    ``pixel_size`` (metres), ``kind``, noise options, ...).  Frame k gets its own noise
    seed, derived from ``seed`` (``numpy.random.SeedSequence(seed).spawn``), so the
    noise differs between frames yet the sequence is reproducible; ``seed=None``
    gives fresh noise.

    Returns
    -------
    holograms : (frames, ny / bin, nx / bin) float64
    truth : list of ``frames`` ParticleTable (positions (y, x, z) metres)

    Example
    -------
    >>> holos, truth = simulate_sequence((256, 256), tab, solid_rotation(0.01, (256e-6, 256e-6, 0)),
    ...                                  frames=2, wavelength=532e-9, pixel_size=2e-6,
    ...                                  gaussian_noise=0.01, seed=3)
    """
    if len(shape) != 2 or min(int(s) for s in shape) < 1:
        raise ValueError(f"shape must be (ny, nx) pixels, got {shape!r}")
    if "return_field" in simulate_kwargs:
        raise ValueError("return_field is not supported by simulate_sequence")
    seed = simulate_kwargs.pop("seed", None)
    tables = move_particles(particles, field, frames, dt, substeps=substeps)
    if seed is None:
        seeds = [None] * len(tables)
    else:
        seeds = [int(s.generate_state(1)[0]) for s in np.random.SeedSequence(seed).spawn(len(tables))]
    holos, truth = [], []
    for tab, s in zip(tables, seeds):
        h, t = simulate_particles(shape, tab, seed=s, **simulate_kwargs)
        holos.append(h)
        truth.append(t)
    return np.stack(holos), truth
