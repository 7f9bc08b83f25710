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
    H.write_volume(tmp_path / "v.h5", v, z=z, wavelength=532e-9, pixel_size=2e-6, dz=1e-5)
    got, gz, attrs = H.read_volume(tmp_path / "v.h5")
    np.testing.assert_array_equal(got, v)
    np.testing.assert_array_equal(gz, z)
    assert attrs["wavelength_m"] == 532e-9 and attrs["dz_m"] == 1e-5
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
    rows = list(csv.reader(open(tmp_path / "p.csv")))
    assert rows[0] == ["y_m", "x_m", "z_m", "diameter_m"]
    assert float(rows[2][2]) == 2e-3 and float(rows[1][3]) == 1e-5
    H.write_vectors_csv(tmp_path / "v.csv", tab.positions, np.ones((2, 3)))
    assert list(csv.reader(open(tmp_path / "v.csv")))[0] == ["y_m", "x_m", "z_m", "vy", "vx", "vz"]
    H.write_vtk_points(tmp_path / "p.vtk", tab.positions, vectors=np.ones((2, 3)), scalars=[1, 2])
    text = (tmp_path / "p.vtk").read_text().splitlines()
    assert text[4] == "POINTS 2 double" and text[5].split()[0] == repr(2e-5)  # x first for ParaView
    assert "VECTORS velocity double" in text and "SCALARS value double 1" in text
