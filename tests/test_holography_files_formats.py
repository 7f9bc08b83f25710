"""Files the users' own tools open: self-describing HDF5 volumes (xarray), CSV tables
with a commented header (pandas, numpy, our reader), VTK read back by meshio and by
an independent parse of the VTK XML, with a PIV grid on which a vorticity can be
computed."""
import json
import re
import warnings
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from diffimaging import holography as H
from diffimaging.holography.analysis.piv import PIVResult

OPTICS = dict(wavelength=532e-9, pixel_size=(2e-6, 3e-6))


def _volume(nz=4, ny=8, nx=9):
    return np.random.default_rng(1).random((nz, ny, nx)).astype(np.float32)


# ----------------------------------------------------------------------------- HDF5

def _structure(path):
    """Datasets (name, shape, attribute names, attached scales) and the file's
    attribute names, values left out (a listing like ``h5dump -H``)."""
    import h5py

    with h5py.File(path, "r") as f:
        datasets = {}
        for name, d in f.items():
            scales = [[s.name for s in d.dims[i].values()] for i in range(d.ndim)]
            datasets[name] = (d.shape, sorted(k for k in d.attrs if k not in ("DIMENSION_LIST",
                                                                              "REFERENCE_LIST")),
                              scales, d.is_scale)
        return datasets, sorted(f.attrs)


def test_volume_is_self_describing(tmp_path):
    import h5py

    z = np.linspace(1.2e-3, 2.1e-3, 4)
    H.write_volume(tmp_path / "v.h5", _volume(), z=z, n_medium=1.33, z_offset=-2.5e-5,
                   crop_offset_px=(10, 20), settings={"iterations": 50, "z_m": [1.2e-3, 2.1e-3]},
                   method="dh", polarity="bright", **OPTICS)
    with h5py.File(tmp_path / "v.h5", "r") as f:
        d = f["volume"]
        assert [d.dims[i].label for i in range(3)] == ["z", "y", "x"]
        assert [d.dims[i][0].name for i in range(3)] == ["/z", "/y", "/x"]
        for name in "zyx":
            assert f[name].is_scale and f[name].attrs["units"] == "m"
        np.testing.assert_array_equal(f["z"][()], z)
        # sensor coordinates: the crop offset (10, 20) pixels is added back
        np.testing.assert_allclose(f["y"][()], (10 + np.arange(8)) * 2e-6, rtol=1e-15)
        np.testing.assert_allclose(f["x"][()], (20 + np.arange(9)) * 3e-6, rtol=1e-15)
        assert "∂H" in d.attrs["long_name"] and d.attrs["units"] == "1"
        a = f.attrs
        assert a["wavelength_m"] == 532e-9 and a["n_medium"] == 1.33
        np.testing.assert_array_equal(a["pixel_size_m"], [2e-6, 3e-6])
        # the plane spacing and the learned offset, each under its own name
        assert a["plane_spacing_m"] == pytest.approx(3e-4, rel=1e-12)
        assert a["z_offset_m"] == -2.5e-5 and "dz_m" not in a
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", a["created"])
        assert json.loads(a["settings"]) == {"iterations": 50, "z_m": [1.2e-3, 2.1e-3]}
    _, _, attrs = H.read_volume(tmp_path / "v.h5")
    assert attrs["settings"] == {"iterations": 50, "z_m": [1.2e-3, 2.1e-3]}
    assert attrs["z_offset_m"] == -2.5e-5 and attrs["n_medium"] == 1.33
    # back-propagated volumes say what their values are too
    H.write_volume(tmp_path / "b.h5", _volume(), z=z, method="backprop", **OPTICS)
    with h5py.File(tmp_path / "b.h5", "r") as f:
        assert "back-propagated intensity" in f["volume"].attrs["long_name"]
        assert f.attrs["n_medium"] == 1.0 and f.attrs["z_offset_m"] == 0.0


def test_both_volume_writers_write_one_structure(tmp_path):
    import diffimaging

    v, z = _volume(), np.linspace(1e-3, 2e-3, 4)
    kw = dict(z=z, n_medium=1.33, z_offset=1e-5, crop_offset_px=(2, 3), settings={"a": 1},
              method="backprop", **OPTICS)
    H.write_volume(tmp_path / "w.h5", v, **kw)
    with H.open_volume(tmp_path / "o.h5", v.shape, **kw) as w:
        w.write(0, v)
    assert _structure(tmp_path / "w.h5") == _structure(tmp_path / "o.h5")
    a, b = H.read_volume(tmp_path / "w.h5"), H.read_volume(tmp_path / "o.h5")
    np.testing.assert_array_equal(a[0], b[0])
    assert a[2]["diffimaging_version"] == diffimaging.__version__
    assert {k: str(x) for k, x in a[2].items() if k != "created"} == \
           {k: str(x) for k, x in b[2].items() if k != "created"}


def test_volume_opens_in_xarray_with_named_dims(tmp_path):
    xr = pytest.importorskip("xarray")
    pytest.importorskip("h5netcdf")
    z = np.linspace(1e-3, 2e-3, 4)
    v = _volume()
    H.write_volume(tmp_path / "v.h5", v, z=z, n_medium=1.33, crop_offset_px=(1, 2), method="dh",
                   **OPTICS)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ds = xr.open_dataset(tmp_path / "v.h5", engine="h5netcdf", phony_dims="access")
    with ds:
        assert ds["volume"].dims == ("z", "y", "x")
        assert not [d for d in ds.dims if str(d).startswith("phony_dim")]
        np.testing.assert_array_equal(ds["z"].values, z)
        np.testing.assert_allclose(ds["x"].values, (2 + np.arange(9)) * 3e-6, rtol=1e-15)
        assert all(ds[c].attrs["units"] == "m" for c in "zyx")
        assert ds.attrs["n_medium"] == 1.33 and "∂H" in ds["volume"].attrs["long_name"]
        np.testing.assert_array_equal(ds["volume"].values, v)
        # selecting by position in metres, as a user would
        plane = ds["volume"].sel(z=z[2])
        np.testing.assert_array_equal(plane.values, v[2])


def test_older_volume_files_read_dz_as_the_offset(tmp_path):
    import h5py

    v, z = _volume(), np.linspace(1e-3, 2e-3, 4)
    with h5py.File(tmp_path / "old.h5", "w") as f:     # the layout before this version
        f["volume"] = v
        f["z"] = z
        f.attrs.update(wavelength_m=532e-9, pixel_size_m=[2e-6, 2e-6], dz_m=-3e-5, axes="z, y, x",
                       diffimaging_shape=np.array(v.shape), diffimaging_complete=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got, gz, attrs = H.read_volume(tmp_path / "old.h5")
    np.testing.assert_array_equal(got, v)
    assert attrs["z_offset_m"] == -3e-5 and "dz_m" not in attrs
    # the old keyword still works, with a deprecation warning, and means the offset
    with pytest.warns(DeprecationWarning, match="z_offset"):
        H.write_volume(tmp_path / "d.h5", v, z=z, dz=2e-5, **OPTICS)
    assert H.read_volume(tmp_path / "d.h5")[2]["z_offset_m"] == 2e-5


@pytest.mark.parametrize("n", [0.9, 3.5, float("nan"), "water", True])
def test_n_medium_is_checked_and_named(tmp_path, n):
    with pytest.raises(ValueError, match="n_medium"):
        H.write_volume(tmp_path / "v.h5", _volume(), z=np.linspace(1e-3, 2e-3, 4), n_medium=n,
                       **OPTICS)
    with pytest.raises(ValueError, match="n_medium"):
        H.check_optics(532e-9, 2e-6, n_medium=n)
    assert not (tmp_path / "v.h5").exists()


def test_volume_header_errors_name_the_argument(tmp_path):
    kw = dict(z=np.linspace(1e-3, 2e-3, 4), **OPTICS)
    with pytest.raises(ValueError, match="reserved"):
        H.write_volume(tmp_path / "v.h5", _volume(), plane_spacing_m=1.0, **kw)
    with pytest.raises(ValueError, match="crop_offset_px"):
        H.write_volume(tmp_path / "v.h5", _volume(), crop_offset_px=(-1, 0), **kw)
    with pytest.raises(TypeError, match="settings"):
        H.write_volume(tmp_path / "v.h5", _volume(), settings={"f": object()}, **kw)
    with pytest.raises(ValueError, match="z_offset"):
        H.write_volume(tmp_path / "v.h5", _volume(), z_offset=float("inf"), **kw)


# ----------------------------------------------------------------------------- CSV

def _found(n=5, seed=0):
    rng = np.random.default_rng(seed)
    from diffimaging.holography.analysis.particles import FoundParticles

    return FoundParticles(rng.random((n, 3)) * [1e-3, 2e-3, 5e-3], rng.random(n) * 20,
                          rng.integers(1, 40, n), 5.0, 0.1)


def test_particle_table_round_trip_with_header(tmp_path):
    f = _found()
    H.write_particles_csv(tmp_path / "p.csv", f, frame=7, n_medium=1.33, meta={"source": "a.h5"},
                          **OPTICS)
    text = (tmp_path / "p.csv").read_text()
    assert text.startswith("# description: ")
    head = [line for line in text.splitlines() if not line.startswith("#")][0]
    assert head == "particle_id,frame,x_m,y_m,z_m,peak,size_voxels"
    cols, meta = H.read_table(tmp_path / "p.csv")
    np.testing.assert_array_equal(cols["particle_id"], np.arange(5))
    np.testing.assert_array_equal(cols["frame"], [7] * 5)
    assert cols["frame"].dtype == np.int64 and cols["size_voxels"].dtype == np.int64
    np.testing.assert_array_equal(cols["x_m"], f.positions[:, 1])      # exactly
    np.testing.assert_array_equal(cols["y_m"], f.positions[:, 0])
    np.testing.assert_array_equal(cols["z_m"], f.positions[:, 2])
    np.testing.assert_array_equal(cols["peak"], f.peak)
    np.testing.assert_array_equal(cols["size_voxels"], f.size)
    assert meta["wavelength_m"] == 532e-9 and meta["pixel_size_m"] == [2e-6, 3e-6]
    assert meta["n_medium"] == 1.33 and meta["source"] == "a.h5" and "dt_s" not in meta
    assert "metres" in meta["columns"]["x_m"] and set(meta["columns"]) == set(cols)
    import diffimaging

    assert meta["diffimaging_version"] == diffimaging.__version__ and meta["created"][:2] == "20"


def test_vector_table_units_flags_and_ids(tmp_path):
    rng = np.random.default_rng(2)
    pos, vel = rng.random((6, 3)), rng.normal(size=(6, 3))
    out, ratio = np.array([0, 1, 0, 0, 1, 0], bool), rng.random(6) + 1
    H.write_vectors_csv(tmp_path / "v.csv", pos, vel, dt=2e-3, outlier=out, peak_ratio=ratio,
                        track_id=np.arange(6) // 2, frame=np.arange(6) % 2)
    cols, meta = H.read_table(tmp_path / "v.csv")
    assert list(cols) == ["track_id", "frame", "x_m", "y_m", "z_m", "u_m_per_s", "v_m_per_s",
                          "w_m_per_s", "outlier", "peak_ratio"]
    np.testing.assert_array_equal(np.column_stack([cols["y_m"], cols["x_m"], cols["z_m"]]), pos)
    np.testing.assert_array_equal(np.column_stack([cols["v_m_per_s"], cols["u_m_per_s"],
                                                   cols["w_m_per_s"]]), vel)
    np.testing.assert_array_equal(cols["outlier"], out.astype(int))
    np.testing.assert_array_equal(cols["peak_ratio"], ratio)
    np.testing.assert_array_equal(cols["track_id"], [0, 0, 1, 1, 2, 2])
    assert meta["dt_s"] == 2e-3 and "metres per second" in meta["columns"]["u_m_per_s"]
    # without dt the unit is per frame, and said so
    H.write_vectors_csv(tmp_path / "f.csv", pos, vel)
    cols, meta = H.read_table(tmp_path / "f.csv")
    assert list(cols) == ["x_m", "y_m", "z_m", "u_m_per_frame", "v_m_per_frame", "w_m_per_frame"]
    assert "dt_s" not in meta
    with pytest.raises(ValueError, match="one value per row"):
        H.write_vectors_csv(tmp_path / "g.csv", pos, vel, outlier=out[:3])
    with pytest.raises(ValueError, match="dt"):
        H.write_vectors_csv(tmp_path / "g.csv", pos, vel, dt=0.0)
    with pytest.raises(ValueError, match="one row each"):
        H.write_vectors_csv(tmp_path / "g.csv", pos, vel[:4])
    assert not (tmp_path / "g.csv").exists()


@pytest.mark.filterwarnings("ignore:Input line:UserWarning")   # numpy on the comment lines
def test_tables_open_in_numpy_and_pandas(tmp_path):
    H.write_particles_csv(tmp_path / "p.csv", _found(), **OPTICS)
    a = np.loadtxt(tmp_path / "p.csv", delimiter=",", usecols=(1, 2, 3), dtype=str)  # '#': comments
    assert list(a[0]) == ["x_m", "y_m", "z_m"]
    np.testing.assert_array_equal(a[1:].astype(float), _found().positions[:, [1, 0, 2]])
    pd = pytest.importorskip("pandas")
    df = pd.read_csv(tmp_path / "p.csv", comment="#")
    assert list(df.columns[:5]) == ["particle_id", "x_m", "y_m", "z_m", "peak"]
    np.testing.assert_array_equal(df["z_m"].to_numpy(), _found().positions[:, 2])


def test_read_table_errors_name_file_and_line(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        H.read_table(tmp_path / "missing.csv")
    (tmp_path / "a.csv").write_text("# description: \"x\"\nx_m,y_m\n1.0,2.0\n3.0\n")
    with pytest.raises(ValueError, match=r"a\.csv, line 4: 1 values for 2 columns"):
        H.read_table(tmp_path / "a.csv")
    (tmp_path / "b.csv").write_text("particle_id,x_m\n1,2.0\n1.5,3.0\n")
    with pytest.raises(ValueError, match=r"line 3: column 'particle_id'.*integer"):
        H.read_table(tmp_path / "b.csv")
    (tmp_path / "c.csv").write_text("# only: 1\n")
    with pytest.raises(ValueError, match="no column names"):
        H.read_table(tmp_path / "c.csv")
    # an empty table keeps its columns and header
    H.write_particles_csv(tmp_path / "e.csv", np.zeros((0, 3)))
    cols, meta = H.read_table(tmp_path / "e.csv")
    assert list(cols) == ["particle_id", "x_m", "y_m", "z_m"] and cols["x_m"].size == 0


# ----------------------------------------------------------------------------- VTK

def test_points_and_particles_read_back_with_meshio(tmp_path):
    meshio = pytest.importorskip("meshio")
    f = _found()
    for name in ("p.vtk", "p.vtu"):
        H.write_particles_vtk(tmp_path / name, f, frame=3)
        m = meshio.read(tmp_path / name)
        np.testing.assert_array_equal(m.points, f.positions[:, [1, 0, 2]])     # x, y, z
        assert m.cells[0].type == "vertex" and len(m.cells[0].data) == 5
        np.testing.assert_array_equal(m.point_data["particle_id"], np.arange(5))
        np.testing.assert_array_equal(m.point_data["frame"], [3] * 5)
        np.testing.assert_array_equal(m.point_data["peak"], f.peak)
        np.testing.assert_array_equal(m.point_data["size_voxels"], f.size)
    assert (tmp_path / "p.vtk").read_bytes().startswith(b"# vtk DataFile Version 4.2\n")
    vel = np.arange(15.0).reshape(5, 3)
    H.write_vtk_points(tmp_path / "q.vtk", f.positions, vectors=vel, scalars=f.peak,
                       point_data={"cluster": np.array([0, 0, 1, 1, 2])})
    m = meshio.read(tmp_path / "q.vtk")
    np.testing.assert_array_equal(m.point_data["velocity"], vel[:, [1, 0, 2]])
    np.testing.assert_array_equal(m.point_data["value"], f.peak)
    np.testing.assert_array_equal(m.point_data["id"], np.arange(5))
    np.testing.assert_array_equal(m.point_data["cluster"], [0, 0, 1, 1, 2])
    H.write_vtk_points(tmp_path / "none.vtk", np.zeros((0, 3)))             # no particles
    assert len(meshio.read(tmp_path / "none.vtk").points) == 0


def test_tracks_are_points_joined_in_frame_order(tmp_path):
    meshio = pytest.importorskip("meshio")
    pos = np.arange(18.0).reshape(6, 3) * 1e-5
    track, frame = np.array([1, 0, 1, 0, 1, 2]), np.array([2, 0, 0, 1, 1, 0])
    H.write_tracks_vtk(tmp_path / "t.vtk", pos, track, frame, vectors=pos, dt=1e-3)
    m = meshio.read(tmp_path / "t.vtk")
    lines = {tuple(c) for b in m.cells if b.type == "line" for c in b.data}
    assert lines == {(1, 3), (2, 4), (4, 0)}        # track 0: 1 -> 3; track 1: 2 -> 4 -> 0
    np.testing.assert_array_equal(m.point_data["track_id"], track)
    np.testing.assert_array_equal(m.point_data["velocity_m_per_s"], pos[:, [1, 0, 2]])
    with pytest.raises(ValueError, match="unique"):
        H.write_tracks_vtk(tmp_path / "u.vtk", pos, np.zeros(6), np.zeros(6))


def _rotation_piv(omega, dt, px, z):
    """A PIVResult of a solid rotation about the optical axis through (yc, xc):
    (vx, vy) = omega (-(y - yc), x - xc) metres per second, on a (3, 5, 6) grid of
    window centres (voxels), displacements in voxels for frames dt apart."""
    dy, dx = px
    dz = z[1] - z[0]
    k, i, j = np.meshgrid(np.arange(3) * 4 + 2, np.arange(5) * 8 + 4, np.arange(6) * 8 + 4,
                          indexing="ij")
    centers = np.stack([k, i, j], axis=-1).astype(float)
    y, x = i * dy, j * dx
    yc, xc = 20 * dy, 24 * dx
    vx, vy = -omega * (y - yc), omega * (x - xc)
    disp = np.stack([np.zeros_like(vx), vy * dt / dy, vx * dt / dx], axis=-1)
    outlier = np.zeros(k.shape, bool)
    outlier[1, 2, 3] = True
    return PIVResult(centers, disp, np.full(k.shape, 1.5), outlier, shape=(12, 40, 48))


def _read_vti(path):
    """An independent reader of VTK XML ImageData with raw appended data: returns the
    (origin, spacing, extent) and the point arrays as (nz, ny, nx[, ncomp]) arrays."""
    raw = path.read_bytes()
    head, _, tail = raw.partition(b"<AppendedData")
    root = ET.fromstring(head + b"</VTKFile>")
    assert root.get("type") == "ImageData" and root.get("header_type") == "UInt64"
    order = "<" if root.get("byte_order") == "LittleEndian" else ">"
    data = tail[tail.index(b"_") + 1:]
    image = root.find("ImageData")
    ext = [int(v) for v in image.get("WholeExtent").split()]
    n = [ext[1] - ext[0] + 1, ext[3] - ext[2] + 1, ext[5] - ext[4] + 1]
    types = {"Float64": "f8", "Int8": "i1", "Float32": "f4", "Int64": "i8"}
    arrays = {}
    for a in image.iter("DataArray"):
        off = int(a.get("offset"))
        size = int(np.frombuffer(data[off:off + 8], order + "u8")[0])
        values = np.frombuffer(data[off + 8:off + 8 + size], order + types[a.get("type")])
        comp = int(a.get("NumberOfComponents", "1"))
        shape = n[::-1] + ([comp] if comp > 1 else [])   # x varies fastest
        arrays[a.get("Name")] = values.reshape(shape)
    return ([float(v) for v in image.get("Origin").split()],
            [float(v) for v in image.get("Spacing").split()], n, arrays)


def _vorticity_z(vx, vy, spacing):
    """d vy / dx - d vx / dy of (nz, ny, nx) components on a grid (dx, dy, dz)."""
    return np.gradient(vy, spacing[0], axis=2) - np.gradient(vx, spacing[1], axis=1)


def test_piv_grid_as_image_data_gives_the_vorticity(tmp_path):
    omega, dt, px = 40.0, 2e-3, (2e-6, 3e-6)
    z = np.linspace(1e-3, 1.11e-3, 12)
    r = _rotation_piv(omega, dt, px, z)
    H.write_piv_vtk(tmp_path / "piv.vti", r, z=z, pixel_size=px, dt=dt)
    assert not list(tmp_path.glob(".*"))             # no temporary file left
    origin, spacing, n, arrays = _read_vti(tmp_path / "piv.vti")
    assert n == [6, 5, 3]                           # windows along x, y, z
    np.testing.assert_allclose(origin, [4 * 3e-6, 4 * 2e-6, z[2]], rtol=1e-12)
    np.testing.assert_allclose(spacing, [8 * 3e-6, 8 * 2e-6, 4 * (z[1] - z[0])], rtol=1e-9)
    v = arrays["velocity_m_per_s"]
    w = _vorticity_z(v[..., 0], v[..., 1], spacing)
    np.testing.assert_allclose(w, 2 * omega, rtol=1e-9)     # solid rotation: vorticity 2 omega
    assert arrays["outlier"][1, 2, 3] == 1 and arrays["outlier"].sum() == 1
    np.testing.assert_array_equal(arrays["peak_ratio"], 1.5)
    # the same vectors as a point cloud carry no grid: the reason for the grid
    pos, vel = r.vectors(z, px, dt)
    np.testing.assert_allclose(v.reshape(-1, 3), vel[:, [1, 0, 2]], rtol=1e-12)


def test_piv_grid_as_hexahedra_gives_the_vorticity(tmp_path):
    meshio = pytest.importorskip("meshio")
    omega, px = -15.0, (2e-6, 2e-6)
    z = np.linspace(2e-3, 2.2e-3, 12)
    r = _rotation_piv(omega, 1.0, px, z)
    H.write_piv_vtk(tmp_path / "piv.vtk", r, z=z, pixel_size=px)       # per frame
    m = meshio.read(tmp_path / "piv.vtk")
    assert [b.type for b in m.cells] == ["hexahedron"] and len(m.cells[0].data) == 5 * 4 * 2
    pts = m.points.reshape(3, 5, 6, 3)                   # x varies fastest
    spacing = [pts[0, 0, 1, 0] - pts[0, 0, 0, 0], pts[0, 1, 0, 1] - pts[0, 0, 0, 1],
               pts[1, 0, 0, 2] - pts[0, 0, 0, 2]]
    # each hexahedron joins the 8 corners of one grid cell
    corners = m.points[m.cells[0].data[0]] - m.points[m.cells[0].data[0][0]]
    np.testing.assert_allclose(np.abs(corners).max(axis=0), spacing, rtol=1e-12)
    v = m.point_data["velocity_m_per_frame"].reshape(3, 5, 6, 3)
    np.testing.assert_allclose(_vorticity_z(v[..., 0], v[..., 1], spacing), 2 * omega, rtol=1e-9)
    assert m.point_data["outlier"].reshape(3, 5, 6)[1, 2, 3] == 1
    # one plane of windows: quads
    flat = PIVResult(r.centers[:1], r.displacement[:1], r.peak_ratio[:1], r.outlier[:1],
                     shape=r.shape)
    H.write_piv_vtk(tmp_path / "flat.vtk", flat, z=z, pixel_size=px)
    assert [b.type for b in meshio.read(tmp_path / "flat.vtk").cells] == ["quad"]


def test_vtk_writers_are_atomic(tmp_path):
    pytest.importorskip("meshio")
    target = tmp_path / "p.vtk"
    H.write_vtk_points(target, np.ones((2, 3)))
    before = target.read_bytes()
    with pytest.raises(FileExistsError):
        H.write_vtk_points(target, np.zeros((3, 3)), overwrite=False)
    with pytest.raises(ValueError, match="one vector per point"):
        H.write_vtk_points(target, np.zeros((3, 3)), vectors=np.zeros((2, 3)))
    z = np.linspace(1e-3, 1.11e-3, 12)
    r = _rotation_piv(1.0, 1.0, (2e-6, 2e-6), z)
    with pytest.raises(FileExistsError):
        H.write_piv_vtk(target, r, z=z, pixel_size=2e-6, overwrite=False)
    assert target.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["p.vtk"]


def test_projections_file_is_self_describing(tmp_path):
    """The streamed back-propagation's 2-D maps: read back exactly, sensor coordinates
    with the crop offset, units per map, optics and version; opens in xarray as four
    (y, x) variables; a volume is not taken for projections."""
    xr = pytest.importorskip("xarray")
    pytest.importorskip("h5netcdf")
    LAM, PX = 532e-9, 2e-6
    rng = np.random.default_rng(0)
    maps = {k: rng.random((5, 7)).astype(np.float32) for k in H.io.PROJECTIONS}
    z = np.linspace(1e-3, 2e-3, 11)
    p = tmp_path / "p.h5"
    H.write_projections(p, maps, z=z, wavelength=LAM, pixel_size=PX, n_medium=1.33,
                        crop_offset_px=(3, 2), settings={"chunk": 8})
    got, zz, attrs = H.read_projections(p)
    for k in H.io.PROJECTIONS:
        np.testing.assert_array_equal(got[k], maps[k])
    np.testing.assert_array_equal(zz, z)
    assert attrs["n_medium"] == 1.33 and attrs["polarity"] == "dark"
    assert list(attrs["crop_offset_px"]) == [3, 2] and "diffimaging_version" in attrs
    with xr.open_dataset(p, engine="h5netcdf", phony_dims="access") as ds:
        assert ds["min"].dims == ("y", "x") and ds["argmin_z"].attrs["units"] == "m"
        np.testing.assert_allclose(ds["y"].values, (3 + np.arange(5)) * PX)
        np.testing.assert_allclose(ds["x"].values, (2 + np.arange(7)) * PX)
    H.write_volume(tmp_path / "v.h5", np.zeros((2, 4, 4), np.float32), z=z[:2], wavelength=LAM,
                   pixel_size=PX)
    with pytest.raises(ValueError, match="not a projections file"):
        H.read_projections(tmp_path / "v.h5")
    with pytest.raises(ValueError, match="argmax_z"):
        H.write_projections(tmp_path / "q.h5", {"min": maps["min"]}, z=z, wavelength=LAM,
                            pixel_size=PX)
