"""Realistic in-line holograms of particle fields: data to develop and set defaults on.

The forward model is written here directly with ``scipy.fft`` (its own angular-spectrum
transfer function, its own band limit, its own disk rasteriser), independently of
:func:`diffimaging.ops.propagate` and :func:`simulate_particles`, so that an error in the
package's propagation cannot hide itself in tests that use both.

What a frame contains (every part is a documented field of :class:`RealisticField`):

* particles with a log-normal size distribution, uniformly spread in depth, most of them
  opaque (large seeding particles refract the light they intercept out of the sensor's
  aperture: in the forward direction they act as absorbers), the rest partly
  transparent with a phase delay;
* an illumination that is not uniform: a Gaussian beam off the sensor's centre with two
  weak tilted parasitic waves (low-order fringes, as from reflections in windows);
* out-of-volume dust: large weakly absorbing blobs far upstream (on windows and optics),
  strongly defocused, and sharp sensor defects: hot and dead pixels and small dark spots
  on the sensor's cover glass (in focus);
* a camera: photo-response non-uniformity (per pixel and per column), a dark level with
  its own per-pixel and per-column offsets, photon shot noise, read noise, a laser
  intensity that fluctuates between frames, and 8- or 12-bit quantisation of an
  exposure that does not saturate.

The scattered field of every particle is propagated from its depth to the sensor with
the carrier-free angular-spectrum transfer function (CONVENTIONS.md) on a grid padded
to at least twice the sensor in each direction (linear, not circular, convolution),
band-limited after Matsushima & Shimobaba (2009).  Particles are grouped in depth slabs
of ``RealisticField.slab`` metres (50 um by default); each particle is first propagated
by its offset from its slab's centre on a padded local window, then the slab's plane to
the sensor: the transfer functions multiply, so every particle is propagated by its own
depth exactly (only the band-limit mask is that of its slab).

Positions are (y, x, z) in metres in sensor coordinates: pixel (i, j) sits at
(i dy, j dx); z is the distance upstream of the sensor.  ``wavelength`` is the vacuum
wavelength; the medium's refractive index ``n_medium`` sets the wavelength
``wavelength / n_medium`` of the propagation.

Example
-------
>>> from diffimaging.holography import realistic as R
>>> field = R.RealisticField(shape=(256, 256), ppp=1e-3, seed=4)
>>> frame = R.simulate_field(field)
>>> frame.raw.dtype, frame.raw.max() < 2 ** 12, len(frame.truth)
(dtype('uint16'), True, 66)
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np
import scipy.fft as sfft

from .._backend import validate as V
from .analysis.motion import move_particles, vortex
from .simulate import ParticleTable

__all__ = ["RealisticField", "RealisticFrame", "RealisticTruth", "RealisticCampaign",
           "simulate_field", "simulate_campaign", "particle_table", "lensless_far"]


@dataclass(frozen=True)
class RealisticField:
    """Settings of a realistic particle-field recording (SI units; defaults: a
    microscope-free in-line set-up with a 2 um-pixel 12-bit camera, 1-5 mm deep volume).

    Optics and sensor
        shape : (ny, nx) sensor pixels.  pixel_size : metres (float or (dy, dx)).
        wavelength : vacuum wavelength, metres (532 nm).  n_medium : refractive index of
        the medium (1.0 air; 1.33 water), the propagation uses wavelength / n_medium.
    Particles
        ppp : particles per sensor pixel (1e-3).  z_range : (near, far) depths, metres
        (1-5 mm).  diameter_median, diameter_sigma : log-normal diameters (median 12 um,
        sigma of ln d 0.35), clipped to diameter_range (5-30 um).  opaque_fraction :
        fraction of opaque particles (0.8); the others have an amplitude transmission
        uniform in transmission_range (0.2-0.6) and a phase delay uniform in
        phase_range (0-pi rad).  margin : metres beyond the sensor's edges where
        particles also lie (0: none; their fringes still reach into the frame when > 0).
    Illumination
        beam_width : 1/e^2 intensity radius of the Gaussian beam as a fraction of the
        sensor's half-diagonal (1.5: corners at ~40 % of the peak); beam_offset : its
        centre's offset from the sensor centre, fraction of the half-sizes (0.15, in a
        random direction).  fringe_amplitude : amplitude of each of two tilted
        parasitic plane waves relative to the beam (0.02: about +-8 % intensity
        fringes); fringe_periods : (min, max) fringe periods across the sensor (1-5).
    Dust and defects
        dust_per_mm2 : out-of-volume dust blobs per mm^2 of sensor (10), diameters
        uniform in dust_diameter_range (40-150 um), depths in dust_z_range (10-40 mm),
        amplitude transmission in (0.3, 0.8).  defects_per_mpx : sharp sensor defects
        per megapixel (60: a third hot pixels, a third dead pixels, a third small dark
        spots on the cover glass of radius 1-3 pixels and 30-60 % depth).
    Camera
        bits : 8 or 12.  exposure : mean signal as a fraction of full scale (0.35: the
        brightest fringes stay below saturation).  full_well : electrons at full scale
        (10000).  read_noise : electrons rms (6).  dark_level : dark offset as a fraction
        of full scale (0.02), with per-pixel (dsnu) and per-column (dsnu_column) rms
        offsets as fractions of full scale (0.001, 0.0005).  prnu, prnu_column : rms
        relative gain variation per pixel (0.01) and per column (0.003).
        laser_jitter : rms relative fluctuation of the laser power between frames
        (0.02).
    Numerics
        slab : depth slab of the forward model, metres (50 um).  seed : integer seed of
        everything (positions, fixed pattern, dust, noise).
    """

    shape: tuple = (512, 512)
    pixel_size: float = 2e-6
    wavelength: float = 532e-9
    n_medium: float = 1.0
    ppp: float = 1e-3
    z_range: tuple = (1e-3, 5e-3)
    diameter_median: float = 12e-6
    diameter_sigma: float = 0.35
    diameter_range: tuple = (5e-6, 30e-6)
    opaque_fraction: float = 0.8
    transmission_range: tuple = (0.2, 0.6)
    phase_range: tuple = (0.0, math.pi)
    margin: float = 0.0
    beam_width: float = 1.5
    beam_offset: float = 0.15
    fringe_amplitude: float = 0.02
    fringe_periods: tuple = (1.0, 5.0)
    dust_per_mm2: float = 10.0
    dust_diameter_range: tuple = (40e-6, 150e-6)
    dust_z_range: tuple = (10e-3, 40e-3)
    defects_per_mpx: float = 60.0
    bits: int = 12
    exposure: float = 0.35
    full_well: float = 10000.0
    read_noise: float = 6.0
    dark_level: float = 0.02
    dsnu: float = 0.001
    dsnu_column: float = 0.0005
    prnu: float = 0.01
    prnu_column: float = 0.003
    laser_jitter: float = 0.02
    slab: float = 50e-6
    seed: int = 0

    def __post_init__(self):
        ny, nx = self.shape
        for n in (ny, nx):
            V.integer(n, "shape", minimum=8, hint="(sensor pixels (ny, nx))", type_error=ValueError)
        V.pixel_size(self.pixel_size)
        V.wavelength(self.wavelength)
        V.n_medium(self.n_medium)
        if self.bits not in (8, 12):
            raise ValueError(f"bits must be 8 or 12 (camera bit depth), got {self.bits!r}")
        if not (0 <= self.ppp <= 0.05):
            raise ValueError(f"ppp must be particles per pixel in [0, 0.05], got {self.ppp!r}")
        if not (0 < self.exposure < 1):
            raise ValueError(f"exposure must be the mean signal as a fraction of full scale in (0, 1), "
                             f"got {self.exposure!r}")
        for name in ("z_range", "diameter_range", "dust_z_range", "dust_diameter_range"):
            lo, hi = getattr(self, name)
            if not (0 < lo <= hi and math.isfinite(hi)):
                raise ValueError(f"{name} must be a (low, high) pair of positive metres with low <= high, "
                                 f"got {getattr(self, name)!r}")
        if not (0 < self.slab <= 1e-3):
            raise ValueError(f"slab must be a depth in metres in (0, 1e-3], got {self.slab!r}")
        if not (0 <= self.opaque_fraction <= 1):
            raise ValueError(f"opaque_fraction must lie in [0, 1], got {self.opaque_fraction!r}")

    def replace(self, **changes) -> "RealisticField":
        """A copy with some settings changed (``dataclasses.replace``)."""
        return dataclasses.replace(self, **changes)


def lensless_far(**changes) -> RealisticField:
    """Preset of a lensless far-field recording: 1024^2 sensor of 10 um pixels, particles
    100-160 mm from the sensor, diameters log-normal (median 30 um, 15-80 um), 3e-4
    particles per pixel (about 300 particle images), 8-bit camera; ``changes`` override."""
    base = dict(shape=(1024, 1024), pixel_size=10e-6, z_range=(100e-3, 160e-3), ppp=3e-4,
                diameter_median=30e-6, diameter_range=(15e-6, 80e-6), dust_diameter_range=(0.3e-3, 1e-3),
                dust_z_range=(250e-3, 400e-3), dust_per_mm2=0.05, bits=8, slab=500e-6)
    base.update(changes)
    return RealisticField(**base)


class RealisticTruth(ParticleTable):
    """Ground truth of one frame: ``positions`` (N, 3) = (y, x, z) metres, ``diameters``
    (N,) metres, ``ids`` (N,) particle identities (the same particle keeps its id over a
    campaign), ``transmission`` (N,) complex amplitude transmission (0 for opaque),
    ``visible`` (N,) bool: centre on the sensor."""

    def __init__(self, positions, diameters, ids, transmission, visible):
        super().__init__(np.asarray(positions, dtype=np.float64).reshape(-1, 3),
                         np.asarray(diameters, dtype=np.float64))
        self.ids = np.asarray(ids, dtype=np.int64)
        self.transmission = np.asarray(transmission, dtype=np.complex128)
        self.visible = np.asarray(visible, dtype=bool)

    def select(self, mask) -> "RealisticTruth":
        """The rows where ``mask`` is true (e.g. ``truth.select(truth.visible)``)."""
        m = np.asarray(mask)
        return RealisticTruth(self.positions[m], self.diameters[m], self.ids[m], self.transmission[m],
                              self.visible[m])


@dataclass
class RealisticFrame:
    """One simulated recording.

    raw : (ny, nx) uint8/uint16 camera counts (dark level included).
    background : (ny, nx) raw counts of the same set-up without particles (what a lab
        records as its background frame: same dust, fixed pattern and beam, own noise).
    truth : :class:`RealisticTruth` of the particles (all; ``truth.visible`` marks
        those whose centre is on the sensor).
    dust : ParticleTable of the out-of-volume dust blobs.
    defects : (K, 2) int pixel indices (i, j) of the sharp sensor defects.
    dark : mean dark level in counts (subtract before dividing by a background).
    settings : the :class:`RealisticField` used.
    """

    raw: np.ndarray
    background: np.ndarray
    truth: RealisticTruth
    dust: ParticleTable
    defects: np.ndarray
    dark: float
    settings: RealisticField


@dataclass
class RealisticCampaign:
    """A series of frames: ``raw`` (n, ny, nx) counts, ``truth`` a list of n
    :class:`RealisticTruth` (same ids, moved), ``slow`` (N,) bool marks the slow particles,
    ``background`` one empty frame, plus ``dust``, ``defects``, ``dark`` and ``settings``
    as in :class:`RealisticFrame`."""

    raw: np.ndarray
    background: np.ndarray
    truth: list
    slow: np.ndarray
    dust: ParticleTable
    defects: np.ndarray
    dark: float
    settings: RealisticField


def particle_table(settings: RealisticField, rng=None) -> RealisticTruth:
    """Random particles for ``settings``: uniform over the sensor (plus ``margin``) and
    in depth, log-normal diameters clipped to ``diameter_range``, a fraction
    ``opaque_fraction`` opaque and the others partly transparent with a phase delay."""
    s = settings
    rng = np.random.default_rng(s.seed) if rng is None else rng
    ny, nx = s.shape
    dy, dx = V.pixel_size(s.pixel_size)
    n = int(round(s.ppp * ny * nx * ((ny * dy + 2 * s.margin) * (nx * dx + 2 * s.margin))
                  / (ny * dy * nx * dx)))
    # the sensor covers [-1/2, n - 1/2) pixels (pixel i centred on i dy)
    y = rng.uniform(-0.5 * dy - s.margin, (ny - 0.5) * dy + s.margin, n)
    x = rng.uniform(-0.5 * dx - s.margin, (nx - 0.5) * dx + s.margin, n)
    z = rng.uniform(*s.z_range, n)
    d = np.clip(s.diameter_median * np.exp(s.diameter_sigma * rng.standard_normal(n)), *s.diameter_range)
    opaque = rng.random(n) < s.opaque_fraction
    t = rng.uniform(*s.transmission_range, n) * np.exp(1j * rng.uniform(*s.phase_range, n))
    t[opaque] = 0.0
    visible = (y >= -0.5 * dy) & (y < (ny - 0.5) * dy) & (x >= -0.5 * dx) & (x < (nx - 0.5) * dx)
    return RealisticTruth(np.column_stack([y, x, z]), d, np.arange(n), t, visible)


class _Optics:
    """The padded grid, its frequencies and the band-limited carrier-free transfer function."""

    def __init__(self, s: RealisticField):
        ny, nx = s.shape
        self.dy, self.dx = V.pixel_size(s.pixel_size)
        self.lam = s.wavelength / s.n_medium
        self.py, self.px = sfft.next_fast_len(2 * ny), sfft.next_fast_len(2 * nx)
        self.oy, self.ox = (self.py - ny) // 2, (self.px - nx) // 2   # sensor pixel (0, 0) in the pad
        self.fy = sfft.fftfreq(self.py, self.dy)[:, None]
        self.fx = sfft.fftfreq(self.px, self.dx)[None, :]
        f2 = self.fy ** 2 + self.fx ** 2
        self.prop = f2 < 1.0 / self.lam ** 2
        # k_z - k, in cycles per metre, written to keep full precision (no 1/lam - sqrt(...) loss)
        self.w = np.where(self.prop, -f2 / (np.sqrt(np.clip(1.0 / self.lam ** 2 - f2, 0, None))
                                             + 1.0 / self.lam), 0.0)

    def transfer(self, z):
        """exp(i 2 pi z (sqrt(1/lam^2 - f^2) - 1/lam)), band-limited for the padded grid."""
        ly, lx = self.py * self.dy, self.px * self.dx
        fy_lim = 1.0 / (self.lam * math.sqrt((2 * z / ly) ** 2 + 1))
        fx_lim = 1.0 / (self.lam * math.sqrt((2 * z / lx) ** 2 + 1))
        mask = self.prop & (np.abs(self.fy) <= fy_lim) & (np.abs(self.fx) <= fx_lim)
        return np.where(mask, np.exp(2j * np.pi * z * self.w), 0.0)

    def paint(self, plane, y, x, radius, value, origin=None):
        """Add ``value`` x the pixel-area coverage of a disk (centre (y, x) and radius in
        metres, sensor coordinates) to ``plane`` whose pixel (0, 0) sits at pixel
        ``origin`` of the sensor (default: the padded grid's); coverage from the distance
        to the edge with a one-pixel linear ramp (the exact area to ~1 % for radii >= 1
        pixel)."""
        oy, ox = (self.oy, self.ox) if origin is None else origin
        cy, cx = y / self.dy + oy, x / self.dx + ox
        ry, rx = radius / self.dy, radius / self.dx
        h = int(math.ceil(max(ry, rx))) + 2
        i0, j0 = int(round(cy)) - h, int(round(cx)) - h
        ii = np.arange(i0, i0 + 2 * h + 1)[:, None]
        jj = np.arange(j0, j0 + 2 * h + 1)[None, :]
        r = np.sqrt(((ii - cy) / ry) ** 2 + ((jj - cx) / rx) ** 2) * min(ry, rx)
        cov = np.clip(min(ry, rx) - r + 0.5, 0.0, 1.0)
        a0, b0 = max(i0, 0), max(j0, 0)
        a1, b1 = min(i0 + 2 * h + 1, plane.shape[0]), min(j0 + 2 * h + 1, plane.shape[1])
        if a1 > a0 and b1 > b0:
            plane[a0:a1, b0:b1] += value * cov[a0 - i0:a1 - i0, b0 - j0:b1 - j0]


def _local_offset(optics: _Optics, patch, dz):
    """Propagate a small patch by ``dz`` metres (|dz| <= half a slab) on its own grid,
    zero-padded to twice its size and cropped back (the patch holds the spread)."""
    if dz == 0.0:
        return patch
    o = optics
    n0, n1 = patch.shape
    m0, m1 = sfft.next_fast_len(2 * n0), sfft.next_fast_len(2 * n1)
    fy = sfft.fftfreq(m0, o.dy)[:, None]
    fx = sfft.fftfreq(m1, o.dx)[None, :]
    f2 = fy ** 2 + fx ** 2
    prop = f2 < 1.0 / o.lam ** 2
    w = np.where(prop, -f2 / (np.sqrt(np.clip(1.0 / o.lam ** 2 - f2, 0, None)) + 1.0 / o.lam), 0.0)
    big = np.zeros((m0, m1), dtype=np.complex128)
    a0, b0 = (m0 - n0) // 2, (m1 - n1) // 2
    big[a0:a0 + n0, b0:b0 + n1] = patch
    big = sfft.ifft2(sfft.fft2(big) * np.where(prop, np.exp(2j * np.pi * dz * w), 0.0))
    return big[a0:a0 + n0, b0:b0 + n1]


def _scattered(optics: _Optics, pos, dia, trans, slab):
    """Sum over objects of P(z_p)[(t_p - 1) disk_p] on the padded grid (carrier-free).

    Objects are grouped in depth slabs of ``slab`` metres; each object's offset from its
    slab's centre is propagated on a local window first (:func:`_local_offset`), then
    the slab's plane to the sensor: the transfer functions multiply, so every object is
    propagated by its own depth (only the band-limit mask is the slab's)."""
    o = optics
    spec = np.zeros((o.py, o.px), dtype=np.complex128)
    if len(pos) == 0:
        return spec
    zmin = float(pos[:, 2].min())
    index = np.floor((pos[:, 2] - zmin) / slab).astype(np.int64)
    tan = min(o.lam * 0.5 / min(o.dy, o.dx), 0.99)
    tan = tan / math.sqrt(1 - tan * tan)
    plane = np.zeros((o.py, o.px), dtype=np.complex128)
    for k in np.unique(index):
        members = np.flatnonzero(index == k)
        zs = zmin + (k + 0.5) * slab
        plane[...] = 0.0
        for p in members:
            off = float(pos[p, 2] - zs)
            spread = abs(off) * tan / min(o.dy, o.dx)
            h = int(math.ceil(0.5 * dia[p] / min(o.dy, o.dx) + 2 * spread)) + 6
            cy, cx = int(round(pos[p, 0] / o.dy)) + o.oy, int(round(pos[p, 1] / o.dx)) + o.ox
            patch = np.zeros((2 * h + 1, 2 * h + 1), dtype=np.complex128)
            o.paint(patch, pos[p, 0] - (cy - o.oy - h) * o.dy, pos[p, 1] - (cx - o.ox - h) * o.dx,
                    0.5 * dia[p], trans[p] - 1.0, origin=(0, 0))
            patch = _local_offset(o, patch, off)
            i0, j0 = cy - h, cx - h
            a0, b0 = max(i0, 0), max(j0, 0)
            a1, b1 = min(i0 + 2 * h + 1, o.py), min(j0 + 2 * h + 1, o.px)
            if a1 > a0 and b1 > b0:
                plane[a0:a1, b0:b1] += patch[a0 - i0:a1 - i0, b0 - j0:b1 - j0]
        spec += sfft.fft2(plane, workers=-1) * o.transfer(zs)
    return sfft.ifft2(spec, workers=-1)


class _Setup:
    """Everything that does not change between the frames of a recording: the beam and
    its fringes, the dust's diffraction, the sensor defects and the fixed pattern."""

    def __init__(self, s: RealisticField, rng):
        self.s = s
        self.optics = o = _Optics(s)
        ny, nx = s.shape
        yy = (np.arange(ny)[:, None] - 0.5 * (ny - 1)) / (0.5 * ny)
        xx = (np.arange(nx)[None, :] - 0.5 * (nx - 1)) / (0.5 * nx)
        a = rng.uniform(0, 2 * np.pi)
        cy, cx = s.beam_offset * np.sin(a), s.beam_offset * np.cos(a)
        w2 = (s.beam_width * math.sqrt(2)) ** 2             # the half-diagonal is sqrt(2) here
        amp = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / w2).astype(np.complex128)
        tilt = np.ones((ny, nx), dtype=np.complex128)
        for _ in range(2):
            periods = rng.uniform(*s.fringe_periods)
            th = rng.uniform(0, 2 * np.pi)
            ky, kx = np.pi * periods * np.sin(th), np.pi * periods * np.cos(th)   # over [-1, 1]
            tilt += s.fringe_amplitude * np.exp(1j * (ky * yy + kx * xx + rng.uniform(0, 2 * np.pi)))
        self.beam = amp * tilt
        # dust far upstream, seen through the whole (padded) grid
        area_mm2 = ny * o.dy * nx * o.dx * 1e6
        nd = rng.poisson(s.dust_per_mm2 * area_mm2)
        dpos = np.column_stack([rng.uniform(0, ny * o.dy, nd), rng.uniform(0, nx * o.dx, nd),
                                rng.uniform(*s.dust_z_range, nd)])
        ddia = rng.uniform(*s.dust_diameter_range, nd)
        dt = rng.uniform(0.3, 0.8, nd).astype(np.complex128)
        self.dust = ParticleTable(dpos, ddia)
        self.dust_field = 1.0 + (_scattered(o, dpos, ddia, dt, s.slab)[o.oy:o.oy + ny, o.ox:o.ox + nx]
                                 if nd else 0.0)
        # fixed pattern: gains (PRNU, cover-glass spots) and dark offsets (DSNU)
        gain = (1 + s.prnu * rng.standard_normal((ny, nx))) * (1 + s.prnu_column * rng.standard_normal(nx))
        nk = rng.poisson(s.defects_per_mpx * ny * nx / 1e6)
        kind = rng.integers(0, 3, nk)
        ij = np.column_stack([rng.integers(0, ny, nk), rng.integers(0, nx, nk)])
        self.hot = np.zeros((ny, nx), dtype=bool)
        self.dead = np.zeros((ny, nx), dtype=bool)
        for (i, j), k in zip(ij, kind):
            if k == 0:
                self.hot[i, j] = True
            elif k == 1:
                self.dead[i, j] = True
            else:
                r = rng.uniform(1.0, 3.0)
                ii = np.arange(ny)[max(i - 4, 0):i + 5, None]
                jj = np.arange(nx)[None, max(j - 4, 0):j + 5]
                spot = np.clip(r - np.hypot(ii - i, jj - j) + 0.5, 0, 1)
                gain[ii, jj] *= 1 - rng.uniform(0.3, 0.6) * spot
        self.defects = ij
        self.gain = gain
        full = 2 ** s.bits - 1
        self.full = full
        self.offset = full * (s.dark_level + s.dsnu * rng.standard_normal((ny, nx))
                              + s.dsnu_column * rng.standard_normal(nx))
        self.dark = full * s.dark_level

    def record(self, scattered, rng):
        """Camera counts of a frame whose particles scatter ``scattered`` (relative to the
        reference; 0 for an empty frame)."""
        s = self.s
        inten = np.abs(self.beam * self.dust_field * (1.0 + scattered)) ** 2
        scale = s.exposure * s.full_well / float(np.mean(np.abs(self.beam) ** 2))
        power = max(1.0 + s.laser_jitter * rng.standard_normal(), 0.1)
        electrons = rng.poisson(np.clip(inten * self.gain * scale * power, 0, None)).astype(np.float64)
        electrons += s.read_noise * rng.standard_normal(electrons.shape)
        counts = electrons * (self.full / s.full_well) + self.offset
        counts[self.hot] = self.full
        counts[self.dead] = self.offset[self.dead]
        return np.clip(np.round(counts), 0, self.full).astype(np.uint8 if s.bits == 8 else np.uint16)

    def frame_scattered(self, truth: RealisticTruth):
        o, (ny, nx) = self.optics, self.s.shape
        return _scattered(o, truth.positions, truth.diameters, truth.transmission,
                          self.s.slab)[o.oy:o.oy + ny, o.ox:o.ox + nx]


def simulate_field(settings: RealisticField | None = None, truth: RealisticTruth | None = None
                   ) -> RealisticFrame:
    """One realistic recording of a particle field (see the module docstring).

    settings : :class:`RealisticField` (default settings when None).
    truth : particles to record (default: :func:`particle_table` of the settings).

    Returns a :class:`RealisticFrame`: ``raw`` counts, an empty ``background`` frame, the
    ``truth`` and the dust and defects.  Everything is reproducible from ``settings.seed``.
    """
    s = RealisticField() if settings is None else settings
    rng = np.random.default_rng(s.seed)
    setup = _Setup(s, rng)
    truth = particle_table(s, rng) if truth is None else truth
    raw = setup.record(setup.frame_scattered(truth), rng)
    background = setup.record(0.0, rng)
    return RealisticFrame(raw, background, truth, setup.dust, setup.defects, setup.dark, s)


def simulate_campaign(settings: RealisticField | None = None, frames=4, *, flow=None, dt=1.0,
                      slow_fraction=0.2, slow_factor=0.02) -> RealisticCampaign:
    """A campaign of ``frames`` recordings of particles carried by a flow.

    flow : a field of :mod:`diffimaging.holography.motion` (or any callable positions
        (N, 3) -> velocities (N, 3) metres per unit time).  Default: a Lamb–Oseen vortex
        about the optical axis through the sensor's centre, core radius a quarter of the
        smaller sensor side, peak speed 3 pixels per frame.
    slow_fraction : fraction of particles that are slow (settled, near a wall:
        ``slow_factor`` (0.02) times the displacement of the flow, i.e. nearly static),
        the others follow the flow.  A per-pixel median over few frames keeps the slow
        ones in the background: the case a campaign's background estimate must handle.

    Returns a :class:`RealisticCampaign`; the fixed pattern, beam and dust are those of
    one set-up, the noise and laser power change from frame to frame.
    """
    s = RealisticField() if settings is None else settings
    frames = V.integer(frames, "frames", minimum=1, type_error=ValueError)
    if not (0 <= slow_fraction <= 1):
        raise ValueError(f"slow_fraction must lie in [0, 1], got {slow_fraction!r}")
    rng = np.random.default_rng(s.seed)
    setup = _Setup(s, rng)
    t0 = particle_table(s, rng)
    ny, nx = s.shape
    dy, dx = V.pixel_size(s.pixel_size)
    if flow is None:
        flow = vortex(peak_speed=3 * min(dy, dx), core_radius=0.25 * min(ny * dy, nx * dx),
                      centre=(0.5 * (ny - 1) * dy, 0.5 * (nx - 1) * dx))
    slow = rng.random(len(t0)) < slow_fraction
    moved = move_particles(ParticleTable(t0.positions, t0.diameters), flow, frames, dt)
    truth, raws = [], []
    for tab in moved:
        p = tab.positions.copy()
        p[slow] = t0.positions[slow] + slow_factor * (p[slow] - t0.positions[slow])
        vis = (p[:, 0] >= -0.5 * dy) & (p[:, 0] < (ny - 0.5) * dy) & (p[:, 1] >= -0.5 * dx) \
            & (p[:, 1] < (nx - 0.5) * dx)
        tk = RealisticTruth(p, t0.diameters, t0.ids, t0.transmission, vis)
        truth.append(tk)
        raws.append(setup.record(setup.frame_scattered(tk), rng))
    background = setup.record(0.0, rng)
    return RealisticCampaign(np.stack(raws), background, truth, slow, setup.dust, setup.defects,
                             setup.dark, s)
