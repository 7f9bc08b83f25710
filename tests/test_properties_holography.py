"""Property-based tests (hypothesis) of diffimaging.holography's files and analysis:
read_hologram, write_volume / read_volume, the CSV and VTK writers,
find_particles and piv.

Files are random images of every pixel type, random volumes of random layouts,
and malformed files (random bytes, truncated TIFF / PNG / HDF5, empty files,
folders, HDF5 files with the wrong datasets).  The properties: a file written by
the package reads back exactly; a malformed file raises ValueError or
FileNotFoundError (never another type, never a crash, never a silently accepted
wrong array); inputs are not modified; strided and contiguous inputs give the
same result; planted particles and displacements are found.
"""
import csv
import io
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import diffimaging.holography as H

FAST = settings(max_examples=30, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.function_scoped_fixture])
FEW = settings(FAST, max_examples=15)

LAM, PX = 532e-9, 2e-6
READ_ERRORS = (ValueError, FileNotFoundError)


@pytest.fixture(scope="module")
def folder():
    with tempfile.TemporaryDirectory(prefix="di-props-") as d:
        yield Path(d)


def _fresh(folder, name):
    """A path in ``folder`` that does not exist yet (examples share the folder)."""
    p = folder / name
    if p.exists():
        p.unlink()
    return p


# ------------------------------------------------------------------ images in

GRAY_TYPES = [np.uint8, np.uint16, np.float32, np.int16]


def _image(rng, shape, dtype):
    info = np.iinfo(dtype) if np.dtype(dtype).kind in "ui" else None
    if info is not None:
        return rng.integers(info.min, info.max, size=shape, endpoint=True, dtype=dtype)
    return rng.standard_normal(shape).astype(dtype)


def _tiff_bytes(img, **kw):
    import tifffile

    buf = io.BytesIO()
    tifffile.imwrite(buf, img, **kw)
    return buf.getvalue()


def _png_bytes(img):
    import imageio.v3 as iio

    return iio.imwrite("<bytes>", img, extension=".png")


@FAST
@given(st.integers(8, 40), st.integers(8, 40), st.sampled_from(GRAY_TYPES), st.integers(0, 3),
       st.sampled_from(["tif", "png"]), st.integers(0, 2**31))
def test_read_hologram_returns_the_pixels_written(folder, ny, nx, dtype, frames, fmt, seed):
    """A grey image (or, in TIFF, a series of ``frames`` > 1 images) reads back as the
    same numbers in float64."""
    rng = np.random.default_rng(seed)
    if fmt == "png":
        dtype = dtype if dtype in (np.uint8, np.uint16) else np.uint8
        frames = 0
    shape = ((frames,) if frames > 1 else ()) + (ny, nx)
    img = _image(rng, shape, dtype)
    p = _fresh(folder, f"gray.{fmt}")
    # a grey series is written as such: tifffile's default for a (3 or 4, ny, nx)
    # uint8 array is a planar RGB(A) image, which reads as one colour image
    p.write_bytes(_tiff_bytes(img, photometric="minisblack") if fmt == "tif" else _png_bytes(img))
    got = H.read_hologram(p)
    assert got.dtype == np.float64 and got.shape == img.shape
    assert np.array_equal(got, img.astype(np.float64))
    if frames > 1:
        k = int(rng.integers(0, frames))
        assert np.array_equal(H.read_hologram(p, frame=k), img[k].astype(np.float64))


@FEW
@given(st.integers(8, 24), st.integers(8, 24), st.sampled_from(["contig", "separate", "png"]),
       st.integers(0, 2**31))
def test_read_hologram_reads_colour_as_one_grey_image(folder, ny, nx, layout, seed):
    """An RGB image (TIFF interleaved or planar, PNG) is one hologram, the mean of its
    channels (issue 9: a planar RGB TIFF (3, ny, nx) was read as a 3-frame series)."""
    rng = np.random.default_rng(seed)
    rgb = rng.integers(0, 255, size=(ny, nx, 3), endpoint=True, dtype=np.uint8)
    if layout == "png":
        p = _fresh(folder, "rgb.png")
        p.write_bytes(_png_bytes(rgb))
    else:
        p = _fresh(folder, "rgb.tif")
        data = rgb if layout == "contig" else np.moveaxis(rgb, -1, 0)
        p.write_bytes(_tiff_bytes(data, photometric="rgb", planarconfig=layout))
    got = H.read_hologram(p)
    assert got.shape == (ny, nx)
    assert np.allclose(got, rgb.astype(np.float64).mean(axis=-1))


def _valid_bytes(kind, rng):
    img = _image(rng, (16, 16), np.uint16)
    if kind == "tif":
        return _tiff_bytes(img, compression="zlib")
    if kind == "png":
        return _png_bytes(img)
    return _h5_bytes(rng)


def _h5_bytes(rng):
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "v.h5"
        H.write_volume(p, rng.standard_normal((3, 8, 8)).astype(np.float32), z=[1e-3, 2e-3, 3e-3],
                       wavelength=LAM, pixel_size=PX)
        return p.read_bytes()


@st.composite
def malformed(draw):
    """(suffix, bytes) of a broken file: random bytes, a truncated or bit-flipped valid
    file, or an empty file."""
    suffix = draw(st.sampled_from(["tif", "png", "h5"]))
    how = draw(st.sampled_from(["random", "truncated", "flipped", "empty", "header"]))
    rng = np.random.default_rng(draw(st.integers(0, 2**31)))
    good = _valid_bytes(suffix, rng)
    if how == "empty":
        return suffix, b""
    if how == "random":
        return suffix, rng.bytes(int(rng.integers(1, 4096)))
    if how == "header":   # a valid signature followed by garbage
        return suffix, good[:16] + rng.bytes(int(rng.integers(0, 512)))
    if how == "truncated":
        return suffix, good[:int(rng.integers(1, len(good)))]
    b = bytearray(good)
    for i in rng.integers(0, len(b), size=8):
        b[i] ^= 0xFF
    return suffix, bytes(b)


@FAST
@given(malformed())
def test_malformed_files_raise_value_error(folder, sb):
    """A broken image or volume raises ValueError naming the file, or reads as an array
    of the documented shape and type; nothing else."""
    suffix, data = sb
    p = _fresh(folder, f"broken.{suffix}")
    p.write_bytes(data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            if suffix == "h5":
                vol, z, attrs = H.read_volume(p)
                assert vol.ndim == 3 and np.shape(z) == (vol.shape[0],)
            else:
                img = H.read_hologram(p)
                assert img.dtype == np.float64 and img.ndim in (2, 3) and min(img.shape[-2:]) >= 8
        except ValueError as exc:
            assert str(p) in str(exc) or p.name in str(exc)


@FEW
@given(st.sampled_from(["missing", "folder"]), st.sampled_from(["read_hologram", "read_volume"]))
def test_missing_files_and_folders_raise_documented_errors(folder, what, fn):
    p = folder / "no-such-file.tif" if what == "missing" else folder
    with pytest.raises(READ_ERRORS):
        getattr(H, fn)(p)


@st.composite
def h5_files(draw):
    """An HDF5 file that is not quite a diffimaging volume: a dataset missing, of the
    wrong rank or length, not numeric, or an empty volume."""
    case = draw(st.sampled_from(["no_z", "no_volume", "2d", "4d", "z_length", "strings", "empty",
                                 "z_2d", "group"]))
    nz, ny, nx = draw(st.integers(1, 4)), draw(st.integers(1, 6)), draw(st.integers(1, 6))
    return case, (nz, ny, nx)


@FAST
@given(h5_files())
def test_read_volume_refuses_what_is_not_a_volume(folder, case_shape):
    """read_volume returns only an (nz, ny, nx) numeric volume with nz = len(z); every
    other HDF5 layout raises ValueError (issue 9: non-numeric datasets gave
    tracebacks in the CLI)."""
    import h5py

    case, (nz, ny, nx) = case_shape
    p = _fresh(folder, "odd.h5")
    with h5py.File(p, "w") as f:
        vol = np.ones((nz, ny, nx), np.float32)
        z = np.linspace(1e-3, 2e-3, nz)
        if case == "2d":
            vol = vol[0]
        elif case == "4d":
            vol = vol[None]
        elif case == "z_length":
            z = np.linspace(1e-3, 2e-3, nz + 1)
        elif case == "z_2d":
            z = z[:, None]
        elif case == "empty":
            vol = vol[:0]
            z = z[:0]
        if case == "strings":
            f.create_dataset("volume", data=np.array([b"abc"] * nz))
        elif case == "group":
            f.create_group("volume")
        elif case != "no_volume":
            f.create_dataset("volume", data=vol)
        if case != "no_z":
            f.create_dataset("z", data=z)
    with pytest.raises(ValueError):
        H.read_volume(p)


# ------------------------------------------------------------------ volumes and tables out

@FAST
@given(st.integers(1, 5), st.integers(1, 9), st.integers(1, 9),
       st.sampled_from([np.float32, np.float64, np.uint8, np.int16]),
       st.sampled_from(["contiguous", "reversed", "transposed", "sliced"]), st.integers(0, 2**31))
def test_volumes_round_trip_exactly(folder, nz, ny, nx, dtype, layout, seed):
    rng = np.random.default_rng(seed)
    base = _image(rng, (nz, 2 * ny, 2 * nx), dtype)
    vol = {"contiguous": base[:, :ny, :nx].copy(), "reversed": base[::-1, ::-2, ::-2][:, :ny, :nx],
           "transposed": np.swapaxes(base[:, :nx, :ny], 1, 2), "sliced": base[:, 1::2, ::2]}[layout]
    z = np.sort(rng.uniform(1e-4, 5e-3, nz))
    vol0, z0 = vol.copy(), z.copy()
    p = _fresh(folder, "vol.h5")
    H.write_volume(p, vol, z=z, wavelength=LAM, pixel_size=(PX, 2 * PX), dz=1e-6, method="backprop")
    assert np.array_equal(vol, vol0) and np.array_equal(z, z0)
    v, zz, attrs = H.read_volume(p)
    assert v.dtype == vol.dtype and np.array_equal(v, vol) and np.array_equal(zz, z)
    assert attrs["wavelength_m"] == LAM and tuple(attrs["pixel_size_m"]) == (PX, 2 * PX)


@FEW
@given(st.one_of(st.just(np.ones((2, 3))), st.just(np.ones((3, 4, 4))), st.just(np.ones((2, 4, 4, 1)))),
       st.sampled_from([[1e-3, 2e-3], [1e-3, np.nan], [1e-3, 2e-3, 3e-3]]),
       st.sampled_from([LAM, 532.0, -LAM, np.nan]), st.sampled_from([PX, 2.0, 0.0]))
def test_write_volume_checks_its_arguments(folder, vol, z, lam, px):
    """Only an (nz, ny, nx) volume with nz = len(z) finite depths and plausible optics
    (metres) is written; anything else raises ValueError."""
    p = _fresh(folder, "bad.h5")
    valid = (vol.ndim == 3 and len(z) == vol.shape[0] and np.all(np.isfinite(z)) and lam == LAM
             and px == PX)
    if valid:
        H.write_volume(p, vol, z=z, wavelength=lam, pixel_size=px)
        assert np.array_equal(H.read_volume(p)[0], vol)
    else:
        with pytest.raises(ValueError):
            H.write_volume(p, vol, z=z, wavelength=lam, pixel_size=px)


def _read_csv(path):
    """(column names, (N, columns) float64 values) of a table, with our reader and with
    the csv module (the rows after the commented header)."""
    cols, _ = H.read_table(path)
    with open(path, newline="") as f:
        rows = list(csv.reader(line for line in f if not line.startswith("#")))
    values = np.array([[float(v) for v in r] for r in rows[1:]], dtype=np.float64).reshape(
        -1, len(rows[0]))
    assert rows[0] == list(cols)
    assert np.array_equal(values, np.column_stack([cols[k] for k in cols]).reshape(values.shape),
                          equal_nan=True)
    return rows[0], values


finite_or_not = st.floats(allow_nan=True, allow_infinity=True, width=64)


@FAST
@given(st.integers(0, 12).flatmap(lambda n: st.tuples(
    st.lists(finite_or_not, min_size=3 * n, max_size=3 * n),
    st.lists(st.floats(-1e3, 1e3), min_size=3 * n, max_size=3 * n))))
def test_csv_tables_round_trip_exactly(folder, data):
    pos = np.asarray(data[0], dtype=np.float64).reshape(-1, 3)
    vec = np.asarray(data[1], dtype=np.float64).reshape(-1, 3)
    pos0 = pos.copy()
    p = _fresh(folder, "particles.csv")
    H.write_particles_csv(p, pos)
    head, got = _read_csv(p)
    assert head == ["particle_id", "x_m", "y_m", "z_m"]
    xyz = pos[:, [1, 0, 2]]
    assert np.array_equal(got[:, 1:], xyz, equal_nan=True) and np.array_equal(pos, pos0, equal_nan=True)
    assert np.array_equal(got[:, 0], np.arange(len(pos)))
    q = _fresh(folder, "vectors.csv")
    H.write_vectors_csv(q, pos, vec)
    head, got = _read_csv(q)
    assert head == ["x_m", "y_m", "z_m", "u_m_per_frame", "v_m_per_frame", "w_m_per_frame"]
    assert np.array_equal(got, np.hstack([xyz, vec[:, [1, 0, 2]]]), equal_nan=True)
    r = _fresh(folder, "points.vtk")
    H.write_vtk_points(r, pos, vectors=vec, scalars=vec[:, 0])
    import meshio

    m = meshio.read(r)
    assert np.array_equal(m.points, xyz, equal_nan=True)
    assert sum(len(c.data) for c in m.cells if c.type == "vertex") == len(pos)
    assert np.array_equal(m.point_data["velocity"], vec[:, [1, 0, 2]])


# ------------------------------------------------------------------ find_particles

@st.composite
def planted(draw):
    """A blurred noisy volume with 1-4 bright, well separated point particles."""
    nz, ny, nx = draw(st.integers(10, 16)), draw(st.integers(20, 32)), draw(st.integers(20, 32))
    rng = np.random.default_rng(draw(st.integers(0, 2**31)))
    count = draw(st.integers(1, 4))
    pts = []
    while len(pts) < count:
        q = (int(rng.integers(3, nz - 3)), int(rng.integers(4, ny - 4)), int(rng.integers(4, nx - 4)))
        if all(max(abs(a - b) for a, b in zip(q, r)) >= 7 for r in pts):
            pts.append(q)
        elif rng.random() < 0.05:
            break
    v = rng.normal(0.0, 0.05, (nz, ny, nx))
    for q in pts:
        v[q] += 8.0
    from scipy import ndimage

    v = ndimage.gaussian_filter(v, 1.0)
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    layout = draw(st.sampled_from(["contiguous", "reversed", "fortran"]))
    v = v.astype(dtype)
    if layout == "reversed":   # the same values, read through negative strides
        v = np.flip(np.flip(v).copy())
    elif layout == "fortran":
        v = np.asfortranarray(v)
    return v, np.asarray(pts, dtype=np.float64)


def _find(v, polarity="bright"):
    z = np.linspace(1e-3, 2e-3, v.shape[0])
    return H.find_particles(v, z, pixel_size=PX, polarity=polarity)


def _voxels(f, nz):
    dzp = 1e-3 / (nz - 1)
    return np.column_stack([(f.positions[:, 2] - 1e-3) / dzp, f.positions[:, 0] / PX,
                            f.positions[:, 1] / PX])


@FAST
@given(planted())
def test_find_particles_finds_planted_particles_and_is_pure(vp):
    v, pts = vp
    v0 = v.copy()
    f = _find(v)
    assert np.array_equal(v, v0)
    assert _same_found(f, _find(np.ascontiguousarray(v)))
    got = _voxels(f, v.shape[0])
    for q in pts:   # every planted particle within one voxel of a found one
        assert len(got) and np.min(np.max(np.abs(got - q), axis=1)) <= 1.0, (q, got)
    # dark particles: the same particles in the negated volume
    assert _same_found(_find(-v, "dark"), f)


def _same_found(a, b):
    """The same particles: numpy's sums may round differently with the memory layout
    (and alignment), so positions and peaks agree to a few ulps, not bit for bit."""
    return (len(a) == len(b) and np.allclose(a.positions, b.positions, rtol=1e-9, atol=0)
            and np.allclose(a.peak, b.peak, rtol=1e-5, atol=0))


@FAST
@given(planted(), st.sampled_from([np.nan, np.inf, -np.inf]), st.integers(0, 2**31))
def test_one_non_finite_voxel_does_not_hide_the_particles(vp, bad, seed):
    """One NaN or Inf voxel away from the particles: either a ValueError that says so,
    or the same particles found (issue 9: one NaN voxel made the threshold NaN and
    'holo particles' found nothing, exit 0)."""
    v, pts = vp
    rng = np.random.default_rng(seed)
    while True:
        q = tuple(int(rng.integers(0, s)) for s in v.shape)
        if all(max(abs(a - b) for a, b in zip(q, r)) >= 4 for r in pts):
            break
    clean = _voxels(_find(v), v.shape[0])
    w = np.array(v)
    w[q] = bad
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        try:
            f = _find(w)
        except ValueError as exc:
            assert "nan" in str(exc).lower() or "finite" in str(exc).lower() or "inf" in str(exc).lower()
            return
    got = _voxels(f, v.shape[0])
    for p in clean:
        assert len(got) and np.min(np.max(np.abs(got - p), axis=1)) <= 1.0


# ------------------------------------------------------------------ piv

@st.composite
def volume_pairs(draw):
    """Two smooth random textures, the second moved by whole voxels (dy, dx) in the
    y-x plane, with windows that fit."""
    nz, ny, nx = draw(st.integers(8, 12)), draw(st.integers(24, 40)), draw(st.integers(24, 40))
    rng = np.random.default_rng(draw(st.integers(0, 2**31)))
    from scipy import ndimage

    a = ndimage.gaussian_filter(rng.random((nz, ny + 8, nx + 8)), 1.2)
    dy, dx = draw(st.integers(-2, 2)), draw(st.integers(-2, 2))
    b = a[:, 4 - dy:4 - dy + ny, 4 - dx:4 - dx + nx]
    a = a[:, 4:4 + ny, 4:4 + nx]
    win = (draw(st.integers(4, nz)), draw(st.integers(12, min(ny, 20))), draw(st.integers(12, min(nx, 20))))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    return a.astype(dtype), b.astype(dtype), (dy, dx), win, draw(st.sampled_from([0.0, 0.25, 0.5]))


@FAST
@given(volume_pairs())
def test_piv_recovers_a_uniform_displacement_and_is_pure(pair):
    a, b, (dy, dx), win, overlap = pair
    a0, b0 = a.copy(), b.copy()
    r = H.piv(a, b, win, overlap)
    assert np.array_equal(a, a0) and np.array_equal(b, b0)
    d = r.displacement.reshape(-1, 3)
    assert r.centers.shape == r.displacement.shape and np.all(np.isfinite(d))
    med = np.median(d, axis=0)
    assert abs(med[1] - dy) < 0.5 and abs(med[2] - dx) < 0.5, (med, dy, dx)
    rs = H.piv(a[::-1].copy()[::-1], np.asfortranarray(b), win, overlap)
    assert np.array_equal(rs.displacement, r.displacement)


@FEW
@given(st.sampled_from(["shape", "window_big", "window_small", "overlap", "ndim"]))
def test_piv_bad_arguments_raise_value_error(case):
    rng = np.random.default_rng(0)
    a = rng.random((8, 16, 16))
    b, win, ov = a.copy(), (4, 8, 8), 0.5
    if case == "shape":
        b = b[:, :-1]
    elif case == "window_big":
        win = (9, 8, 8)
    elif case == "window_small":
        win = (4, 2, 8)
    elif case == "overlap":
        ov = 1.0
    elif case == "ndim":
        a, b = a[0], b[0]
    with pytest.raises(ValueError):
        H.piv(a, b, win, ov)
