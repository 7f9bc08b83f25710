"""Particle detection in reconstructed volumes or their projections."""
from __future__ import annotations

import math
import numbers
import warnings

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree

from ..._backend import validate as V
from ..._backend.namespace import to_numpy
from ..simulate import ParticleTable
from .piv import plane_spacing

__all__ = ["find_particles", "FoundParticles"]

# fraction of a peak that bounds its axial extent: low enough that the two lobes of a
# split image (∂H, large particles) join into one profile
_AXIAL = 0.15
# fraction of a peak above which its axial profile is averaged for the depth (half height:
# the long, asymmetric profile of back-propagated intensity biases a lower cut by 200-600 um)
_DEPTH = 0.5
# kernel width of the density of the peaks' log10 heights (0.05 decade = 12 %)
_BW = 0.05
# a valley in that density counts when both modes around it are this much denser
_VALLEY = 1.3
# a particle's own image spans at least this many estimated diameters: the sparse ∂H
# image is about half the particle's size (realistic fields, 5-30 um particles: the
# estimated diameter is 4.5-5.5 um for a 12 um median); weaker peaks inside it are
# lobes of the same particle
_OWN_IMAGE = 1.5


class FoundParticles(ParticleTable):
    """Detected particles: ``positions`` (N, 3) = (y, x, z) in metres, ``peak``
    (N,) signal at the peak (in units of the noise level sigma), ``size`` (N,)
    pixels of the in-plane image above half the peak, ``threshold`` used (signal
    units), ``noise`` (sigma), ``diameter`` (metres: the given or estimated particle
    diameter used for the lateral window) and ``axial_extent`` (planes: the measured
    axial length of a particle image used for the axial window)."""

    def __init__(self, positions, peak, size, threshold, noise, diameter=float("nan"),
                 axial_extent=float("nan")):
        super().__init__(np.asarray(positions, dtype=np.float64).reshape(-1, 3),
                         np.full(len(positions), np.nan))
        self.peak = np.asarray(peak, dtype=np.float64)
        self.size = np.asarray(size, dtype=np.int64)
        self.threshold = float(threshold)
        self.noise = float(noise)
        self.diameter = float(diameter)
        self.axial_extent = float(axial_extent)

    def _replace_scales(self, diameter, axial_extent):
        self.diameter, self.axial_extent = float(diameter), float(axial_extent)
        return self

    def __repr__(self):
        return (f"FoundParticles(n={len(self)}, threshold={self.threshold:.3g} "
                f"(noise sigma {self.noise:.3g}))")


def _otsu(values, bins=256, valley=False):
    """Otsu's threshold (maximum between-class variance) of a 1-d sample; with
    ``valley``, the valley-emphasis variant (Ng 2006: the criterion weighted by one
    minus the histogram's density at the threshold), which prefers a threshold in a
    valley and does not split a large class when the other is small."""
    hist, edges = np.histogram(values, bins=bins)
    centers = 0.5 * (edges[:-1] + edges[1:])
    w0 = np.cumsum(hist)
    w1 = w0[-1] - w0
    m0 = np.cumsum(hist * centers)
    mu0 = m0 / np.maximum(w0, 1)
    mu1 = (m0[-1] - m0) / np.maximum(w1, 1)
    between = w0 * w1 * (mu0 - mu1) ** 2
    if valley:
        between = between * (1.0 - hist / max(hist.sum(), 1))
    return float(centers[int(np.argmax(between[:-1]))])


def _window(neighborhood):
    """The local-maximum window: 2 or 3 positive integer sizes (voxels)."""
    nb = tuple(np.atleast_1d(neighborhood))
    if len(nb) not in (2, 3) or not all(isinstance(n, (numbers.Integral, np.integer))
                                        and not isinstance(n, bool) and n >= 1 for n in nb):
        raise ValueError(f"neighborhood must be 2 or 3 positive integer sizes in voxels ((z,) y, x), "
                         f"got {neighborhood!r}")
    return tuple(int(n) for n in nb)


def _signal(data):
    """The volume as a real float array without a float64 copy: float32 and float64
    volumes are used as they are, complex ones as their modulus in the matching real
    precision, integers as float32.  Arrays of other libraries (CuPy, torch on a GPU)
    are copied to the host: the search runs there."""
    v = to_numpy(data)
    if np.iscomplexobj(v):
        return np.abs(v)
    if v.dtype.kind == "f":
        return v
    if v.dtype.kind not in "biu":
        raise ValueError(f"data must be a real or complex numeric volume, got dtype {v.dtype}")
    return v.astype(np.float32)


def _background(v, sign, max_samples=250_000):
    """Background level and noise of the signed signal from an evenly strided sample of
    at most ``max_samples`` voxels (median and 1.4826 x MAD; the sample is float64,
    the volume is not copied).  Returns (median, sigma, mad_is_zero, sample)."""
    flat = v.reshape(-1)
    step = max(1, flat.size // max_samples)
    smp = sign * flat[::step].astype(np.float64)
    med = float(np.median(smp))
    mad = 1.4826 * float(np.median(np.abs(smp - med)))
    if mad > 0:
        return med, mad, False, smp
    return med, float(np.std(smp)) or 1.0, True, smp


def _local_maxima(v, sign, window, floor, check, chunk_bytes=8 * 2 ** 20):
    """Voxels that are the extremum of their ``window`` and beyond ``floor`` (in the
    signed signal), found a few planes at a time (about ``chunk_bytes`` of volume, at
    least one plane) with a halo of half a window, so the temporaries stay a few
    planes large; each chunk is checked to be finite (``check`` raises with the
    volume's count and first index).  Returns (indices (K, 3), signed values)."""
    nz = v.shape[0]
    hz = window[0] // 2
    chunk = max(1, chunk_bytes // max(v[0].nbytes, 1))
    flt = ndimage.maximum_filter if sign > 0 else ndimage.minimum_filter
    idx_parts, val_parts = [], []
    for z0 in range(0, nz, chunk):
        a, b = max(z0 - hz, 0), min(z0 + chunk + hz, nz)
        sl = v[a:b]
        if not np.isfinite(sl).all():
            check()
        ext = flt(sl, size=window, mode="nearest")
        peak = sl == ext
        peak &= (sl > floor) if sign > 0 else (sl < -floor)
        peak[:z0 - a] = False
        peak[z0 - a + chunk:] = False
        idx = np.argwhere(peak)
        val_parts.append(sign * sl[tuple(idx.T)].astype(np.float64))
        idx[:, 0] += a
        idx_parts.append(idx)
    return np.concatenate(idx_parts), np.concatenate(val_parts)


def _shape(v, sign, med, k, i, j, half, rmax=None):
    """Shape of one particle image around voxel (k, i, j) of the signed signal above
    ``med`` (a window of ``half`` pixels each side): the in-plane region connected to
    the peak above half its height (its equivalent diameter in pixels and its
    elongation, the ratio of the principal axes), the axial extent in planes above
    ``_AXIAL`` of the peak of the 3 x 3 maximum along z, and the centre (z, y, x) in
    voxels: the centroids above half height along z (within the extent) and in the
    plane.  Returns (diameter, elongation, extent, centre)."""
    a0, b0 = max(i - half, 0), max(j - half, 0)
    w = sign * v[k, a0:i + half + 1, b0:j + half + 1].astype(np.float64) - med
    top = w[i - a0, j - b0]
    lab, _ = ndimage.label(w > 0.5 * top)
    reg = lab == lab[i - a0, j - b0]
    if rmax is not None:
        gy, gx = np.ogrid[a0 - i:a0 - i + w.shape[0], b0 - j:b0 - j + w.shape[1]]
        reg &= gy * gy + gx * gx <= rmax * rmax
    yy, xx = np.nonzero(reg)
    area = len(yy)
    if area > 2:
        ev = np.linalg.eigvalsh(np.cov(np.vstack([yy, xx])))
        elong = math.sqrt(ev[1] / max(ev[0], 1.0 / 12.0))
    else:
        elong = 1.0
    prof = (sign * v[:, max(i - 1, 0):i + 2, max(j - 1, 0):j + 2]).max(axis=(1, 2)).astype(np.float64) - med
    lo = hi = k
    while lo > 0 and prof[lo - 1] > _AXIAL * top:
        lo -= 1
    while hi < len(prof) - 1 and prof[hi + 1] > _AXIAL * top:
        hi += 1
    wz = np.clip(prof[lo:hi + 1] - _DEPTH * top, 0, None)
    zc = float(np.sum(np.arange(lo, hi + 1) * wz) / np.sum(wz)) if wz.sum() > 0 else float(k)
    wl = np.clip(w - 0.5 * top, 0, None) * reg
    tot = wl.sum()
    yc = float((np.arange(w.shape[0])[:, None] * wl).sum() / tot) + a0 if tot > 0 else float(i)
    xc = float((np.arange(w.shape[1])[None, :] * wl).sum() / tot) + b0 if tot > 0 else float(j)
    return 2 * math.sqrt(area / math.pi), elong, hi - lo + 1, (zc, yc, xc)


def _suppress(coords, peak, half_extent, p=np.inf):
    """Indices (in the input order) kept when, strongest first, every particle within
    ``half_extent`` (per axis) of a kept one is dropped: a box (``p=inf``, Chebyshev)
    or a ball (``p=2``, Euclidean)."""
    scaled = np.asarray(coords, dtype=np.float64) / np.maximum(np.asarray(half_extent, float), 1e-300)
    order = np.argsort(-np.asarray(peak), kind="stable")
    tree = cKDTree(scaled)
    dropped = np.zeros(len(scaled), dtype=bool)
    keep = []
    for i in order:
        if dropped[i]:
            continue
        keep.append(i)
        dropped[tree.query_ball_point(scaled[i], 1.0, p=p)] = True
    return np.sort(np.asarray(keep, dtype=np.intp))


def find_particles(data, z=None, *, pixel_size=None, polarity=None, threshold="auto", k=5.0,
                   neighborhood=None, diameter=None, wavelength=None, n_medium=1.0,
                   min_separation=None, max_elongation=3.0, max_size=2.5):
    """Find particles in a reconstructed volume (or its projections), with sub-voxel
    positions, an automatic threshold and a size/shape filter.

    Parameters
    ----------
    data : a :class:`Reconstruction` (its volume or projections, depths, pixel size,
        origin and polarity are used), an (nz, ny, nx) volume (e.g. the ∂H particle
        map, or a back-propagated intensity stack; float32 volumes are read in place,
        never copied to float64), or the dict of projections from :func:`backpropagate`
        (``min``/``argmin_z`` for ``polarity="dark"``, ``max``/``argmax_z`` for
        ``"bright"``): detection is then 2-D and each particle's depth is read from the
        depth map at its pixel.
    z : (nz,) equally spaced depths of the volume's planes, metres (needed for volumes)
    pixel_size : float or (dy, dx), metres (taken from a Reconstruction)
    polarity : "bright" (particles are maxima, the default) or "dark" (minima, e.g.
        opaque particles in back-propagated intensity); a Reconstruction knows its own
    threshold : "auto" or a number in the signal's units (see Notes).
    k : noise sigmas of the automatic threshold's floor (5: one Gaussian false alarm in
        about 3.5 million voxels).
    neighborhood : (z, y, x) voxels (or (y, x) in 2-D): the window within which one
        particle is kept (the strongest).  Default: measured from the data (Notes).
    diameter : particle diameter [m] for the lateral window; default: estimated from
        the data (``FoundParticles.diameter``).  wavelength, n_medium : accepted for a
        Reconstruction's optics (the vacuum wavelength and the medium's index); the
        windows are measured, not derived from them.
    min_separation : metres, optional: of two particles closer than this (3-D distance
        of the refined positions) only the stronger is kept.
    max_elongation : in-plane principal-axis ratio above which a peak is rejected
        (fringe arcs of out-of-focus particles are long and thin; 3).
    max_size : in-plane equivalent diameter at half height, in units of the estimated
        particle diameter, above which a peak is rejected (broad blobs of dust and
        illumination; 2.5).

    Notes
    -----
    The rule, in the order applied (every step works on float32 data in place; the
    local-maximum search runs 8 planes at a time, so the memory beyond the volume is a
    few planes):

    1. Background level and noise from an evenly strided sample of the voxels: median
       and 1.4826 x MAD (particles are sparse).  Sparse (L1-regularised) volumes,
       where the MAD is 0, use Otsu's threshold of the voxels above the median (at
       most half the strongest voxel's height) as the floor instead.
    2. Candidates: local extrema in a (3, 5, 5) window above median + 3 sigma.
    3. Scales from the data: of the strongest candidates off the end planes (up to 30
       above median + k sigma, at least 5), the median in-plane equivalent diameter at
       half height (``FoundParticles.diameter``, metres, unless ``diameter`` is given)
       and the median axial extent above 0.15 of its height
       (``FoundParticles.axial_extent``, planes): a particle's reconstructed image is
       elongated along z by about its depth of field D^2 / lambda, and a back-
       propagated or ∂H image of an opaque particle often splits into two lobes
       around its centre.
    4. Maxima on the first or last plane are rejected when the volume spans at least
       three axial extents (a focus must be bracketed by planes on both sides: choose
       a depth range with a margin); in shorter volumes they are kept.
    5. One particle per box of half sizes (axial extent / 2, diameter, diameter)
       voxels, the strongest kept; its depth is the centroid of its axial profile
       above half its height, within the extent (the middle of the lobes when both
       reach it), its lateral position the centroid of its in-plane image above half
       height (in a projection, within 0.75 diameter of the peak: images of particles
       at other depths overlap there); the same box once more on these centres (two
       lobes of one image refine to one centre).  In a projection the depth is the
       median of the depth map over the particle's disk.
    6. Rejected: images longer than ``max_elongation`` or wider than ``max_size``
       diameters.  Of the peaks kept by the threshold (step 7), a weaker one whose
       centre lies inside a stronger particle's own image (its half-height diameter,
       at least 1.5 estimated diameters, and half an axial extent) is a lobe of it
       and is dropped.
    7. Automatic threshold on the remaining peaks: a peak counts when it exceeds
       median + ``k`` sigma and the threshold of the peaks' heights read from the
       density of their logarithms (the valley between the residue of weak fringes,
       twin images and noise and the particles; the knee of the residue's tail when
       the particles are only a shoulder on it, as in dense fields): see
       ``_peak_threshold``.  When no peak rises above the noise floor, a warning says
       so (a back-propagated dense field's fringes raise the measured sigma).

    The signal must be finite: a NaN or Inf voxel raises ``ValueError`` with the count
    and the first index.

    Returns
    -------
    FoundParticles with ``.positions`` (N, 3) (y, x, z) in metres (pixel (i, j) at
    (i dy, j dx), plus the Reconstruction's origin), ``.peak`` (in noise sigmas above
    the background), ``.size`` (pixels of the in-plane image above half height),
    ``.threshold``, ``.noise``, ``.diameter`` (metres) and ``.axial_extent`` (planes).
    """
    if hasattr(data, "polarity") and hasattr(data, "z") and hasattr(data, "projections"):
        rec = data
        data = rec.projections if rec.volume is None else rec.volume
        z = rec.z if z is None else z
        pixel_size = rec.pixel_size if pixel_size is None else pixel_size
        polarity = rec.polarity if polarity is None else polarity
        wavelength = rec.wavelength if wavelength is None else wavelength
        origin = tuple(getattr(rec, "origin", (0.0, 0.0)))
    else:
        origin = (0.0, 0.0)
    if pixel_size is None:
        raise ValueError("pixel_size (metres) is required unless data is a Reconstruction")
    if not (isinstance(threshold, str) and threshold == "auto") and (
            isinstance(threshold, (bool, str)) or not isinstance(threshold, numbers.Real)
            or not np.isfinite(threshold)):
        raise ValueError(f"threshold must be 'auto' or a finite number in the signal's units, got "
                         f"{threshold!r}")
    if (isinstance(k, bool) or not isinstance(k, numbers.Real) or not np.isfinite(k) or k <= 0):
        raise ValueError(f"k must be a positive number of noise sigmas, got {k!r}")
    if min_separation is not None:
        min_separation = V.positive_scalar(min_separation, "min_separation")
    if diameter is not None:
        diameter = V.positive_scalar(diameter, "diameter")
        if diameter >= 1e-2:
            raise ValueError(f"diameter must be a particle diameter in metres (e.g. 10e-6), got "
                             f"{diameter!r}")
    if wavelength is not None:
        V.wavelength(wavelength)
    n_medium = V.n_medium(n_medium)
    for name, val, lo in (("max_elongation", max_elongation, 1.0), ("max_size", max_size, 0.0)):
        if isinstance(val, bool) or not isinstance(val, numbers.Real) or not (math.isfinite(val)
                                                                              and val > lo):
            raise ValueError(f"{name} must be a finite number > {lo:g}, got {val!r}")
    polarity = "bright" if polarity is None else polarity
    dy, dx = V.pixel_size(pixel_size)
    if polarity not in ("bright", "dark"):
        raise ValueError(f"polarity must be 'bright' or 'dark', got {polarity!r}")
    sign = 1.0 if polarity == "bright" else -1.0
    zmap = None
    if isinstance(data, dict):
        key, zkey = ("max", "argmax_z") if polarity == "bright" else ("min", "argmin_z")
        if key not in data or zkey not in data:
            raise ValueError(f"projections need the keys {key!r} and {zkey!r} (from backpropagate)")
        img = _signal(data[key])
        zmap = to_numpy(data[zkey])
        if img.ndim != 2 or img.size == 0 or zmap.shape != img.shape:
            raise ValueError(f"projections {key!r} and {zkey!r} must be non-empty (ny, nx) images of "
                             f"one shape, got {img.shape} and {zmap.shape}")
        V.check_finite(img, f"the projection {key!r}", ("y", "x"), hint=V.CORRUPT_VOLUME)
        V.check_finite(zmap, f"the depth map {zkey!r}", ("y", "x"), hint=V.CORRUPT_VOLUME)
        v = img[None]
        z0, dz = 0.0, 1.0
        user_nb = None if neighborhood is None else (1,) + _window(neighborhood)[-2:]
    else:
        v = _signal(data)
        if v.ndim != 3:
            raise ValueError(f"data must be an (nz, ny, nx) volume or a projections dict, got shape "
                             f"{v.shape}")
        if v.size == 0:
            raise ValueError(f"data is an empty volume, shape {v.shape}")
        if z is None:
            raise ValueError("z (the depths of the volume's planes, metres) is required for a volume")
        zs = np.asarray(z, dtype=np.float64).reshape(-1)
        z0, dz = plane_spacing(zs, v.shape[0])
        user_nb = None if neighborhood is None else _window(neighborhood)
        if user_nb is not None and len(user_nb) == 2:
            user_nb = (3,) + user_nb
    nz = v.shape[0]
    med, sigma, sparse, smp = _background(v, sign)
    if isinstance(threshold, str):
        floor = med + 3.0 * sigma
        if sparse:
            above = smp[smp > med]
            # Otsu's threshold of the voxels above the background, at most half the
            # strongest voxel's height (when particles are most of those voxels)
            top = float(v.max()) if sign > 0 else -float(v.min())
            floor = min(_otsu(above), med + 0.5 * (top - med)) if above.size >= 2 else med
            sigma = float(np.std(above)) if above.size >= 2 else 1.0
    else:
        floor = sign * float(threshold)
    del smp
    first = user_nb if user_nb is not None else (min(3, nz), 5, 5)
    idx, val = _local_maxima(v, sign, first, floor, lambda: V.check_finite(
        v, "data (the volume)", ("z", "y", "x"), what="voxel", hint=V.CORRUPT_VOLUME))
    empty = FoundParticles(np.zeros((0, 3)), [], [], sign * floor, sigma,
                           diameter=diameter if diameter is not None else float("nan"),
                           axial_extent=float("nan"))
    if len(idx) == 0:
        return empty
    order = np.argsort(-val, kind="stable")
    idx, val = idx[order], val[order]
    # maxima on the first or last plane: a focus there is not bracketed by planes on
    # both sides (particles outside the range pile up on the end planes)
    inner = (idx[:, 0] > 0) & (idx[:, 0] < nz - 1) if nz >= 3 else np.ones(len(idx), dtype=bool)
    pool = np.flatnonzero(inner) if inner.any() else np.arange(len(idx))
    # scales of a particle image, from the strongest candidates off the end planes (up
    # to 30 of those above the noise floor median + k sigma, at least 5)
    strong = int(np.count_nonzero(val[pool] > (floor if sparse else med + k * sigma)))
    probe = [_shape(v, sign, med, *idx[n], 16) for n in pool[:min(max(min(strong, 30), 5), len(pool))]]
    d_px = (diameter / min(dy, dx) if diameter is not None
            else max(float(np.median([p[0] for p in probe])), 1.0))
    lz = max(float(np.median([p[2] for p in probe])), 1.0) if nz > 1 else 1.0
    if nz >= 3 * lz:
        # the volume spans several particle-image lengths, so a range with a margin was
        # possible: end-plane maxima are rejected (kept in shorter volumes)
        idx, val = idx[inner], val[inner]
        if len(idx) == 0:
            return empty._replace_scales(d_px * min(dy, dx), lz)
    if user_nb is not None:
        half = (user_nb[0] // 2, user_nb[1] // 2, user_nb[2] // 2)
    else:
        r = max(d_px, 1.5)
        half = (max(0.5 * lz, 1.0) if nz > 1 else 0.0, r, r)
    keep = _suppress(idx, val, half)
    idx, val = idx[keep], val[keep]
    # peaks below the noise floor median + k sigma can never be accepted: their shapes
    # are not measured (their heights still describe the residue for the threshold)
    auto = isinstance(threshold, str)
    low = val <= (med + k * sigma) if auto and not sparse else np.zeros(len(val), dtype=bool)
    residue = val[low]
    idx, val = idx[~low], val[~low]
    if auto and len(idx) == 0 and len(residue) and sigma > 2 * _pixel_noise(v):
        warnings.warn(f"find_particles: none of the {len(residue)} peaks rises above the noise "
                      f"floor (median + k sigma, k = {k:g}, sigma = {sigma:.3g} measured from the "
                      f"data): the volume's background is dominated by structure, e.g. the "
                      f"fringes of a dense field in back-propagated intensity.  Try the ∂H "
                      f"reconstruction (method='dh'), a smaller k or a manual threshold",
                      UserWarning, stacklevel=2)
    win = int(math.ceil(max(3 * d_px, 8)))
    # in a 2-D projection the images of particles at different depths overlap: the
    # centre and size are measured within one diameter and a half of the peak
    rmax = max(0.75 * d_px, 2.0) if zmap is not None else None
    shapes = [_shape(v, sign, med, *p, win, rmax) for p in idx]
    # the lobes of one particle image refine to one centre: once more on the centres
    keep = _suppress(np.array([p[3] for p in shapes]).reshape(-1, 3), val, half)
    idx, val, shapes = idx[keep], val[keep], [shapes[n] for n in keep]
    eqd = np.array([p[0] for p in shapes])
    elong = np.array([p[1] for p in shapes])
    ok = (elong <= max_elongation) & (eqd <= max_size * d_px + 1.0)
    if auto:
        heights = np.concatenate([residue, val[ok]]) - med
        thr = max(med + k * sigma if not sparse else floor, _peak_threshold(heights) + med)
        ok &= val > thr
    else:
        thr = floor
    idx, val, shapes = idx[ok], val[ok], [p for p, o in zip(shapes, ok) if o]
    if len(idx) > 1:
        # a weaker peak inside a stronger particle's own image is a lobe of it (large
        # particles: their ∂H images are rings or split disks wider than the box)
        keep = _outside_own_images(np.array([p[3] for p in shapes]), val,
                                   np.array([p[0] for p in shapes]), _OWN_IMAGE * d_px, half[0])
        idx, val, shapes = idx[keep], val[keep], [shapes[n] for n in keep]
    if len(idx) == 0:
        return empty._replace_scales(d_px * min(dy, dx), lz)
    sub = np.array([p[3] for p in shapes])
    size = np.array([int(round(math.pi * (p[0] / 2) ** 2)) for p in shapes])
    peak = (val - med) / sigma
    if zmap is None:
        zz = z0 + sub[:, 0] * dz
    else:
        iy = np.clip(np.round(sub[:, 1]).astype(int), 0, v.shape[1] - 1)
        ix = np.clip(np.round(sub[:, 2]).astype(int), 0, v.shape[2] - 1)
        # depth: median of the depth map over the 3x3 pixels around the peak
        # depth: median of the depth map over the particle's disk (its diameter): the
        # pixels of a large particle's image reach their extremum at its focus, fringes
        # of its neighbours at others
        zz = np.array([_disk_median(zmap, a, b, max(int(round(0.5 * d_px)), 1)) for a, b in zip(iy, ix)])
    pos = np.column_stack([sub[:, 1] * dy + origin[0], sub[:, 2] * dx + origin[1], zz])
    if min_separation is not None and len(pos) > 1:
        keep = _suppress(pos, peak, min_separation, p=2)
        pos, peak, size = pos[keep], peak[keep], size[keep]
    return FoundParticles(pos, peak, size, sign * thr, sigma, diameter=d_px * min(dy, dx),
                          axial_extent=lz)


def _outside_own_images(centres, peak, eqd, d_min, half_z):
    """Indices (in the input order) kept when, strongest first, every particle whose
    centre lies within a kept particle's own image is dropped: laterally within its
    in-plane equivalent diameter ``eqd`` (pixels; at least ``d_min``) and axially
    within ``half_z`` planes (at least one).  ``centres`` are (z, y, x) voxels."""
    order = np.argsort(-np.asarray(peak), kind="stable")
    tree = cKDTree(centres[:, 1:])
    rad = np.maximum(eqd, d_min)
    dropped = np.zeros(len(centres), dtype=bool)
    keep = []
    for i in order:
        if dropped[i]:
            continue
        keep.append(i)
        for j in tree.query_ball_point(centres[i, 1:], rad[i]):
            if j != i and abs(centres[j, 0] - centres[i, 0]) <= max(half_z, 1.0):
                dropped[j] = True
    return np.sort(np.asarray(keep, dtype=np.intp))


def _pixel_noise(v):
    """Noise level of the pixels alone: 1.4826 x MAD of the differences of neighbouring
    pixels along x in the middle plane, / sqrt(2) (smooth structure such as fringes
    cancels in the differences; white noise does not)."""
    d = np.diff(v[v.shape[0] // 2].astype(np.float64), axis=-1).reshape(-1)
    return 1.4826 * float(np.median(np.abs(d - np.median(d)))) / math.sqrt(2)


def _disk_median(img, i, j, r):
    """Median of ``img`` over the disk of radius ``r`` pixels around pixel (i, j)."""
    y0, x0 = max(i - r, 0), max(j - r, 0)
    blk = img[y0:i + r + 1, x0:j + r + 1]
    gy, gx = np.ogrid[y0 - i:y0 - i + blk.shape[0], x0 - j:x0 - j + blk.shape[1]]
    return float(np.median(blk[gy * gy + gx * gx <= r * r]))


def _peak_threshold(values):
    """Automatic threshold of the candidate peaks' heights above the background (0:
    every candidate is kept), from the density of their log10 heights (Gaussian kernel
    of 0.05 decade on a histogram): the heights spread over a decade (sizes, depths,
    transmissions) and the residue peaks (noise, fringes, twin images) form a mode of
    their own, decaying towards the particles.

    1. Fewer than 8 heights, or heights within 12 % of each other (one narrow mode: the
       noise floor has already removed the residue): 0.
    2. Two modes: the deepest valley of the density with both modes around it at least
       1.3 times denser and at least 3 peaks above it; the threshold is the valley
       lowered by half the spread of the upper mode (its lower tail is kept).
    3. One mode: when the density's maximum lies beyond the lowest third of the range
       (a mode of particles; the residue was below the floor), 0.  Otherwise the particles are a
       shoulder on the residue's decaying tail (dense fields): the knee of the tail by
       the triangle rule (Zack 1977: the point of the density farthest below the line
       from its maximum to the end of the tail).

    Measured on realistic ∂H volumes (:mod:`..realistic`, 256^2, 89 planes, seeds 7
    and 11): a valley at 1e-4 to 2e-3 particles per pixel; at 5e-3 the particles are a
    shoulder of the residue (rule 3, recall/precision 0.63-0.70 / 0.78-0.80 where the
    former rule found none)."""
    x = np.log10(np.asarray(values, dtype=np.float64))
    x = x[np.isfinite(x)]
    if x.size < 8 or x.std() < 0.05:
        return 0.0
    step = _BW / 4
    edges = np.arange(x.min() - 3 * _BW, x.max() + 3 * _BW + step, step)
    hist, _ = np.histogram(x, edges)
    f = ndimage.gaussian_filter1d(hist.astype(np.float64), _BW / step, mode="constant")
    g = 0.5 * (edges[:-1] + edges[1:])
    inner = np.arange(1, len(f) - 1)
    valleys = inner[(f[inner] <= f[inner - 1]) & (f[inner] < f[inner + 1])]
    best, score = None, _VALLEY
    for i in valleys:
        if np.count_nonzero(x > g[i]) < 3:
            continue
        depth = min(f[:i].max(), f[i + 1:].max()) / max(f[i], 1e-300)
        if depth >= score:
            best, score = i, depth
    if best is not None:
        return float(10 ** (g[best] - 0.5 * x[x > g[best]].std()))
    i0 = int(np.argmax(f))
    if g[-1] - g[i0] < 2 * (g[i0] - g[0]):
        return 0.0
    t = (g[i0:] - g[i0]) / (g[-1] - g[i0])
    return float(10 ** g[i0 + int(np.argmax((1.0 - t) - f[i0:] / f[i0]))])
