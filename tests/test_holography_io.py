"""Hologram, volume and table files; unit checks."""
import csv

import numpy as np
import pytest

from diffimaging import holography as H


def test_read_tiff_png_and_series(tmp_path):
    import imageio.v3 as iio
    import tifffile

    rng = np.random.default_rng(0)
    img = (rng.random((32, 40)) * 4000).astype(np.uint16)
    tifffile.imwrite(tmp_path / "h.tif", img)
    np.testing.assert_array_equal(H.read_hologram(tmp_path / "h.tif"), img.astype(float))
    series = (rng.random((3, 16, 16)) * 200).astype(np.uint8)
    tifffile.imwrite(tmp_path / "s.tiff", series, photometric="minisblack")
    assert H.read_hologram(tmp_path / "s.tiff").shape == (3, 16, 16)
    np.testing.assert_array_equal(H.read_hologram(tmp_path / "s.tiff", frame=1), series[1])
    rgb = np.stack([series[0]] * 3, axis=-1)
    iio.imwrite(tmp_path / "c.png", rgb)
    np.testing.assert_allclose(H.read_hologram(tmp_path / "c.png"), series[0].astype(float))


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # imageio probing its plugins
def test_bad_hologram_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        H.read_hologram(tmp_path / "missing.tif")
    (tmp_path / "junk.png").write_bytes(b"not an image at all")
    with pytest.raises(ValueError, match="cannot read"):
        H.read_hologram(tmp_path / "junk.png")
    import tifffile

    tifffile.imwrite(tmp_path / "line.tif", np.zeros((1, 100), np.uint8))
    with pytest.raises(ValueError, match="2-D image"):
        H.read_hologram(tmp_path / "line.tif")
    with pytest.raises(ValueError, match="single image"):
        tifffile.imwrite(tmp_path / "one.tif", np.zeros((16, 16), np.uint8))
        H.read_hologram(tmp_path / "one.tif", frame=0)


@pytest.mark.parametrize("kw,word", [(dict(pixel_size=2.0), "micrometres"),
                                     (dict(wavelength=532.0), "micrometres or nanometres"),
                                     (dict(pixel_size=-2e-6), "positive"),
                                     (dict(wavelength=532e-15), "small"),
                                     (dict(z=[1.0, 50.0]), "1e-3 for 1 mm")])
def test_unit_checks_name_the_mistake(kw, word):
    args = dict(wavelength=532e-9, pixel_size=2e-6, z=None)
    args.update(kw)
    with pytest.raises(ValueError, match=word):
        H.check_optics(**args)


def test_volume_hdf5_roundtrip(tmp_path):
    v = np.random.default_rng(1).random((4, 8, 9)).astype(np.float32)
    z = np.linspace(1e-3, 2e-3, 4)
    H.write_volume(tmp_path / "v.h5", v, z=z, wavelength=532e-9, pixel_size=2e-6, z_offset=1e-5)
    got, gz, attrs = H.read_volume(tmp_path / "v.h5")
    np.testing.assert_array_equal(got, v)
    np.testing.assert_array_equal(gz, z)
    # the learned offset has its own name (it was dz_m, easily read as the plane spacing)
    assert attrs["wavelength_m"] == 532e-9 and attrs["z_offset_m"] == 1e-5
    assert attrs["plane_spacing_m"] == pytest.approx(z[1] - z[0], rel=1e-12)
    np.testing.assert_array_equal(attrs["pixel_size_m"], [2e-6, 2e-6])
    with pytest.raises(ValueError, match="nz"):
        H.write_volume(tmp_path / "w.h5", v, z=z[:3], wavelength=532e-9, pixel_size=2e-6)
    with pytest.raises(ValueError, match="micrometres"):
        H.write_volume(tmp_path / "w.h5", v, z=z, wavelength=532e-9, pixel_size=2)
    (tmp_path / "bad.h5").write_bytes(b"nope")
    with pytest.raises(ValueError, match="HDF5"):
        H.read_volume(tmp_path / "bad.h5")


def test_csv_and_vtk(tmp_path):
    tab = H.ParticleTable(np.array([[1e-5, 2e-5, 1e-3], [3e-5, 4e-5, 2e-3]]), np.array([1e-5, 9e-6]))
    H.write_particles_csv(tmp_path / "p.csv", tab)
    # columns in x, y, z order (they were y, x, z) after a commented header
    rows = list(csv.reader(line for line in open(tmp_path / "p.csv") if not line.startswith("#")))
    assert rows[0] == ["particle_id", "x_m", "y_m", "z_m", "diameter_m"]
    assert float(rows[2][3]) == 2e-3 and float(rows[1][4]) == 1e-5 and float(rows[1][1]) == 2e-5
    H.write_vectors_csv(tmp_path / "v.csv", tab.positions, np.ones((2, 3)))
    cols, _ = H.read_table(tmp_path / "v.csv")
    assert list(cols) == ["x_m", "y_m", "z_m", "u_m_per_frame", "v_m_per_frame", "w_m_per_frame"]
    import meshio

    H.write_vtk_points(tmp_path / "p.vtk", tab.positions, vectors=np.ones((2, 3)), scalars=[1, 2])
    m = meshio.read(tmp_path / "p.vtk")
    assert m.points.shape == (2, 3) and m.points[0, 0] == 2e-5             # x first for ParaView
    assert {"velocity", "value", "id"} <= set(m.point_data)
