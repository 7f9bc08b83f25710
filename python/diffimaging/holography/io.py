"""Files: holograms in (TIFF, PNG, ...), volumes to HDF5, particle and vector tables
to CSV, particles and vectors to VTK (ParaView).  Every error names the file."""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

__all__ = ["read_hologram", "write_volume", "read_volume", "write_particles_csv",
           "write_vectors_csv", "write_vtk_points", "check_optics"]


def check_optics(wavelength, pixel_size, z=None):
    """Clear errors for values that are not in metres (the most common slip:
    a pixel size of 2 meaning 2 um, a wavelength of 532 meaning 532 nm)."""
    for name, v, lo, hi, hint in (("wavelength", wavelength, 1e-8, 2e-5, "532e-9 for 532 nm"),
                                  ("pixel_size", pixel_size, 1e-8, 1e-3, "2e-6 for 2 um")):
        vals = np.atleast_1d(np.asarray(v, dtype=np.float64))
        if not np.all(np.isfinite(vals)) or np.any(vals <= 0):
            raise ValueError(f"{name} must be positive and finite, in metres (e.g. {hint}); got {v!r}")
        if np.any(vals > hi):
            raise ValueError(f"{name} = {v!r} m is implausibly large: lengths are in metres, did you "
                             f"give micrometres or nanometres? (e.g. {hint})")
        if np.any(vals < lo):
            raise ValueError(f"{name} = {v!r} m is implausibly small: lengths are in metres "
                             f"(e.g. {hint})")
    if z is not None:
        zz = np.atleast_1d(np.asarray(z, dtype=np.float64))
        if not np.all(np.isfinite(zz)):
            raise ValueError("z must be finite, in metres")
        if np.any(np.abs(zz) > 10.0):
            raise ValueError(f"depths up to {np.abs(zz).max():g} m are implausible for holography: z is "
                             f"in metres (e.g. 1e-3 for 1 mm)")


def read_hologram(path, *, frame=None):
    """Read a hologram (2-D) or a frame series (3-D) from TIFF (tifffile) or any
    image format imageio reads (PNG, JPEG, BMP...).  Colour images are converted to
    their mean channel.  Returns a float64 array."""
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"hologram file not found: {p}")
    if not p.is_file():
        raise ValueError(f"not a file: {p}")
    try:
        if p.suffix.lower() in (".tif", ".tiff"):
            import tifffile

            data = tifffile.imread(p)
        else:
            import imageio.v3 as iio

            data = iio.imread(p)
    except Exception as exc:
        raise ValueError(f"cannot read {p} as an image ({type(exc).__name__}: {exc})") from exc
    data = np.asarray(data)
    if data.dtype.kind not in "uif" or data.dtype == bool:
        raise ValueError(f"{p}: unsupported pixel type {data.dtype}")
    if data.ndim == 3 and data.shape[-1] in (3, 4) and p.suffix.lower() not in (".tif", ".tiff"):
        data = data[..., :3].mean(axis=-1)
    if frame is not None:
        if data.ndim != 3:
            raise ValueError(f"{p}: frame={frame} given but the file holds a single image {data.shape}")
        data = data[frame]
    if data.ndim not in (2, 3) or min(data.shape[-2:]) < 8:
        raise ValueError(f"{p}: a hologram must be a 2-D image (or a 3-D frame series) of at least "
                         f"8x8 pixels, got shape {data.shape}")
    return data.astype(np.float64)


def write_volume(path, volume, *, z, wavelength, pixel_size, dz=0.0, **attrs):
    """Write a volume (nz, ny, nx) to HDF5 (dataset "volume", and "z" in metres) with
    the optical parameters as attributes (metres)."""
    import h5py

    check_optics(wavelength, pixel_size, z)
    v = np.asarray(volume)
    zz = np.asarray(z, dtype=np.float64).reshape(-1)
    if v.ndim != 3 or v.shape[0] != zz.size:
        raise ValueError(f"volume must be (nz, ny, nx) with nz = len(z) = {zz.size}, got {v.shape}")
    with h5py.File(path, "w") as f:
        f.create_dataset("volume", data=v, compression="gzip", compression_opts=4)
        f.create_dataset("z", data=zz)
        f.attrs["wavelength_m"] = float(wavelength)
        ps = np.broadcast_to(np.asarray(pixel_size, dtype=np.float64), (2,))
        f.attrs["pixel_size_m"] = ps
        f.attrs["dz_m"] = float(dz)
        f.attrs["axes"] = "z, y, x"
        for k, val in attrs.items():
            f.attrs[k] = val


def read_volume(path):
    """Read a volume written by :func:`write_volume`: returns (volume, z, attrs)."""
    import h5py

    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"volume file not found: {p}")
    try:
        with h5py.File(p, "r") as f:
            if "volume" not in f or "z" not in f:
                raise ValueError(f"{p}: not a diffimaging volume (needs datasets 'volume' and 'z')")
            return f["volume"][()], f["z"][()], dict(f.attrs)
    except OSError as exc:
        raise ValueError(f"cannot read {p} as HDF5 ({exc})") from exc


def write_particles_csv(path, particles):
    """CSV with columns y_m, x_m, z_m (and peak, size or diameter_m when present)."""
    pos = np.asarray(getattr(particles, "positions", particles), dtype=np.float64).reshape(-1, 3)
    cols = {"y_m": pos[:, 0], "x_m": pos[:, 1], "z_m": pos[:, 2]}
    for name, key in (("peak", "peak"), ("size_voxels", "size"), ("diameter_m", "diameters")):
        v = getattr(particles, key, None)
        if v is not None and len(np.atleast_1d(v)) == len(pos) and not np.all(np.isnan(np.asarray(v, float))):
            cols[name] = np.asarray(v, dtype=np.float64)
    _write_csv(path, cols)


def write_vectors_csv(path, positions, vectors, names=("y_m", "x_m", "z_m"),
                      vnames=("vy", "vx", "vz")):
    """CSV of vectors at positions (each (N, 3))."""
    p = np.asarray(positions, dtype=np.float64).reshape(-1, 3)
    v = np.asarray(vectors, dtype=np.float64).reshape(-1, 3)
    cols = {n: p[:, i] for i, n in enumerate(names)}
    cols.update({n: v[:, i] for i, n in enumerate(vnames)})
    _write_csv(path, cols)


def _write_csv(path, cols):
    keys = list(cols)
    n = len(cols[keys[0]])
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(keys)
        for i in range(n):
            w.writerow([repr(float(cols[k][i])) for k in keys])


def write_vtk_points(path, positions, vectors=None, scalars=None):
    """Legacy ASCII VTK polydata of points (x, y, z order for ParaView), with an
    optional vector field ("velocity") and scalar field ("value")."""
    p = np.asarray(positions, dtype=np.float64).reshape(-1, 3)
    xyz = p[:, [1, 0, 2]]
    lines = ["# vtk DataFile Version 3.0", "diffimaging points", "ASCII", "DATASET POLYDATA",
             f"POINTS {len(p)} double"]
    lines += [f"{float(a)!r} {float(b)!r} {float(c)!r}" for a, b, c in xyz]
    lines += [f"VERTICES {len(p)} {2 * len(p)}"] + [f"1 {i}" for i in range(len(p))]
    if vectors is not None or scalars is not None:
        lines.append(f"POINT_DATA {len(p)}")
    if vectors is not None:
        v = np.asarray(vectors, dtype=np.float64).reshape(-1, 3)[:, [1, 0, 2]]
        lines += ["VECTORS velocity double"] + [f"{float(a)!r} {float(b)!r} {float(c)!r}" for a, b, c in v]
    if scalars is not None:
        s = np.asarray(scalars, dtype=np.float64).reshape(-1)
        lines += ["SCALARS value double 1", "LOOKUP_TABLE default"] + [repr(float(x)) for x in s]
    Path(path).write_text("\n".join(lines) + "\n")
