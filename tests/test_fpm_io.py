"""Files of FPM: the PtyLab layout, TIFF folders with a TOML setup, reconstructions."""
from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
import tifffile

from diffimaging.fpm import Dataset, Reconstruction, Setup
from diffimaging.fpm import io as fio


def _setup(**kw):
    d = dict(rows=3, cols=3, pitch=4e-3, height=80e-3, wavelength=520e-9, na=0.1,
             pixel_size=6.5e-6, magnification=4.0, upsampling=2)
    d.update(kw)
    return Setup(**d)


def _images(J, n=16):
    """Image j is filled with the value j (so the order is visible)."""
    rng = np.random.default_rng(0)
    return np.arange(J, dtype=np.float64)[:, None, None] + 0.01 * rng.random((J, n, n))


def _rec(setup=None):
    s = setup or _setup(offset=(1e-4, -2e-4), rotation=0.01)
    rng = np.random.default_rng(1)
    obj = (rng.random((32, 32)) + 1j * rng.random((32, 32))).astype(np.complex128)
    pupil = np.ones((16, 16), complex) * np.exp(0.1j)
    geometry = dict(offset=np.array([2e-4, -1e-4]), rotation=0.02, height=81e-3, pitch=4.1e-3)
    history = {"loss": [3.0, 2.0, 1.5], "stage": ["geometry", "object", "object"],
               "time": [0.1, 0.2, 0.3], "stages": {"geometry": {"iterations": 1,
                                                                "grad": np.array([1.0, 2.0])}},
               "callback": object()}
    return Reconstruction(object=obj, pupil=pupil, zernike=np.array([0.0, 0.1, -0.2]),
                          noll=[4, 5, 6], setup=s, geometry=geometry,
                          brightness=np.linspace(1, 2, 9), background=0.25,
                          noise=np.linspace(0.5, 1.5, 9), history=history,
                          settings={"iterations": 3, "learn": ["object", "pupil"]})


# ----------------------------------------------------------------------------- setup files

def test_setup_toml_round_trip(tmp_path):
    s = _setup(offset=(1.25e-4, -3.5e-4), rotation=0.0123, upsampling=3)
    for name in ("s.toml", "s.json"):
        p = fio.write_setup(tmp_path / name, s)
        assert fio.read_setup(p) == s
    text = (tmp_path / "s.toml").read_text()
    assert "pitch" in text and "offset" in text


def test_setup_errors(tmp_path):
    base = ("rows = 3\ncols = 3\npitch = 4e-3\nheight = 80e-3\nwavelength = 520e-9\nna = 0.1\n"
            "pixel_size = 6.5e-6\nmagnification = 4.0\n")
    p = tmp_path / "setup.toml"
    p.write_text(base + "pich = 1\n")
    with pytest.raises(ValueError, match=r"setup\.toml.*unknown key.*pich"):
        fio.read_setup(p)
    p.write_text(base.replace("pitch = 4e-3", "pitch = 4.0"))
    with pytest.raises(ValueError, match=r"setup\.toml: pitch = 4\.0 m .*millimetres"):
        fio.read_setup(p)
    p.write_text(base.replace("height = 80e-3", "height = 80"))
    with pytest.raises(ValueError, match=r"setup\.toml: height = 80 m .*millimetres"):
        fio.read_setup(p)
    p.write_text(base.replace("na = 0.1\n", ""))
    with pytest.raises(ValueError, match=r"setup\.toml.*missing key.*'na'"):
        fio.read_setup(p)
    p.write_text(base + 'order = "spiral"\n')
    with pytest.raises(ValueError, match=r"setup\.toml.*'order'.*spiral"):
        fio.read_setup(p)


# ----------------------------------------------------------------------------- datasets

def test_dataset_round_trip_with_truth(tmp_path):
    s = _setup(offset=(1e-4, -2e-4), rotation=0.03)
    truth = {"object": np.ones((32, 32), np.complex64) * (1 + 2j), "setup": _setup(),
             "zernike": np.zeros(9), "background": 0.5, "corrupted": np.array([1, 4])}
    ds = Dataset(_images(9), s, truth)
    p = fio.write_dataset(tmp_path / "d.h5", ds)
    back = fio.read_dataset(p)
    assert back.setup == s
    np.testing.assert_array_equal(back.images, ds.images)
    assert back.truth["setup"] == _setup()
    assert back.truth["object"].dtype == np.complex64
    np.testing.assert_array_equal(back.truth["object"], truth["object"])
    np.testing.assert_array_equal(back.truth["corrupted"], [1, 4])
    assert back.truth["background"] == 0.5
    with h5py.File(p) as f:      # the PtyLab fields are there, encoder (y, x) row-major
        np.testing.assert_allclose(f["encoder"][()], s.led_positions()[:, :2])
        assert f["dxd"][()] == s.pixel_size and f["zled"][()] == s.height
        assert f["NA"][()] == s.na and f["ptychogram"].shape == (9, 16, 16)
    with pytest.raises(FileExistsError):
        fio.write_dataset(p, ds, overwrite=False)


def _ptylab(path, enc, images, **over):
    fields = dict(wavelength=520e-9, dxd=6.5e-6, zled=80e-3, magnification=4.0, NA=0.1)
    fields.update(over)
    with h5py.File(path, "w") as f:
        f["ptychogram"] = images
        f["encoder"] = enc
        for k, v in fields.items():
            if v is None:
                continue
            if k == "magnification":
                f.attrs[k] = v                 # a scalar as an attribute
            else:
                f[k] = np.array([v])           # as MATLAB writes it: shape (1,)
    return path


def test_ptylab_layout_fits_a_rotated_offset_grid(tmp_path):
    true = _setup(rows=4, cols=5, pitch=3.5e-3, offset=(0.7e-3, -1.1e-3), rotation=0.12)
    pos = true.led_positions()[:, :2]
    J = true.n_leds
    perm = np.random.default_rng(3).permutation(J)
    images = _images(J)
    p = _ptylab(tmp_path / "pty.hdf5", pos[perm], images[perm], upsampling=np.int64(2))
    ds = fio.read_dataset(p)
    s = ds.setup
    assert (s.rows, s.cols, s.upsampling) == (4, 5, 2)
    assert abs(s.pitch - 3.5e-3) < 1e-9 and abs(s.rotation - 0.12) < 1e-9
    np.testing.assert_allclose(s.offset, (0.7e-3, -1.1e-3), atol=1e-9)
    assert (s.wavelength, s.pixel_size, s.height, s.na, s.magnification) == (
        520e-9, 6.5e-6, 80e-3, 0.1, 4.0)
    np.testing.assert_array_equal(ds.images, images)        # back in row-major order
    # (2, J) as MATLAB stores it
    p2 = _ptylab(tmp_path / "pty_t.h5", pos[perm].T, images[perm])
    np.testing.assert_array_equal(fio.read_dataset(p2).images, images)


def test_ptylab_grid_errors(tmp_path):
    true = _setup(rows=3, cols=4, pitch=4e-3)
    pos = true.led_positions()[:, :2]
    images = _images(12)
    bad = pos.copy()
    bad[5] += [0, 1.6e-3]                                 # 0.4 pitch off
    p = _ptylab(tmp_path / "off.h5", bad, images)
    with pytest.raises(ValueError, match=r"off\.h5.*not on a regular grid: LED 5 .*pitch from its node \(row 1, column 1\)"):
        fio.read_dataset(p)
    keep = np.delete(np.arange(12), [5, 6])               # two interior holes
    p = _ptylab(tmp_path / "holes.h5", pos[keep], images[keep])
    with pytest.raises(ValueError, match=r"holes\.h5.*holes: 2 of the 3 x 4 nodes"):
        fio.read_dataset(p)
    dup = np.concatenate([pos, pos[[3]] + [1e-5, 0]])
    p = _ptylab(tmp_path / "dup.h5", dup, _images(13))
    with pytest.raises(ValueError, match=r"dup\.h5.*LEDs 3 and 12 fall on the same node"):
        fio.read_dataset(p)
    p = _ptylab(tmp_path / "nona.h5", pos, images, NA=None)
    with pytest.raises(ValueError, match=r"nona\.h5: missing 'NA'"):
        fio.read_dataset(p)
    p = _ptylab(tmp_path / "flip.h5", pos, images, orientation=1)
    with pytest.raises(ValueError, match=r"flip\.h5: 'orientation' = 1"):
        fio.read_dataset(p)
    p = _ptylab(tmp_path / "mm.h5", pos * 1e3, images)
    with pytest.raises(ValueError, match=r"mm\.h5: 'encoder' .* metres"):
        fio.read_dataset(p)


def test_fit_led_grid_direct():
    s = _setup(rows=1, cols=5, pitch=5e-3, rotation=-0.05, offset=(2e-3, 1e-3))
    g = fio.fit_led_grid(s.led_positions()[:, :2])
    assert (g["rows"], g["cols"]) == (1, 5)
    assert abs(g["rotation"] + 0.05) < 1e-12 and abs(g["pitch"] - 5e-3) < 1e-12
    np.testing.assert_array_equal(g["index"], np.arange(5))


def _tiff_folder(folder, images, order):
    folder.mkdir()
    for k, img in enumerate(images):
        tifffile.imwrite(folder / f"img{k}.tif", img.astype(np.float32))
    s = _setup()
    fio.write_setup(folder / "setup.toml", s, order=order)
    return s


@pytest.mark.parametrize("order", ["row-major", "column-major", "serpentine"])
def test_tiff_folder_orders(tmp_path, order):
    rows = cols = 3
    images = _images(9)                                    # images[j]: LED j (row-major)
    r, c = np.divmod(np.arange(9), cols)
    if order == "row-major":
        files = np.arange(9)
    elif order == "column-major":
        files = np.lexsort((r, c))                         # column by column
    else:
        files = np.array([r_ * cols + (c_ if r_ % 2 == 0 else cols - 1 - c_)
                          for r_ in range(rows) for c_ in range(cols)])
    s = _tiff_folder(tmp_path / "imgs", images[files], order)
    ds = fio.read_dataset(tmp_path / "imgs")
    assert ds.setup == s and ds.images.dtype == np.float64
    np.testing.assert_allclose(ds.images, images.astype(np.float32))


def test_tiff_natural_sort_multipage_and_setup_object(tmp_path):
    images = _images(9)
    d = tmp_path / "m"
    d.mkdir()
    kw = dict(photometric="minisblack")
    tifffile.imwrite(d / "img2.tif", images[4:].astype(np.float32), **kw)     # 5 pages
    tifffile.imwrite(d / "img10.tif", images[4:].astype(np.float32) * 0, **kw)
    tifffile.imwrite(d / "img1.tif", images[:4].astype(np.float32), **kw)
    with pytest.raises(ValueError, match=r"14 images .* 3 x 3 = 9 LEDs"):
        fio.read_dataset(d, setup=_setup())
    (d / "img10.tif").unlink()
    ds = fio.read_dataset([str(d / "img*.tif")], setup=_setup())
    np.testing.assert_allclose(ds.images, images.astype(np.float32))


def test_tiff_errors(tmp_path):
    images = _images(8)
    d = tmp_path / "few"
    d.mkdir()
    for k, img in enumerate(images):
        tifffile.imwrite(d / f"img{k}.tif", img.astype(np.float32))
    with pytest.raises(ValueError, match="no setup"):
        fio.read_dataset(d)
    fio.write_setup(d / "setup.toml", _setup())
    with pytest.raises(ValueError, match=r"8 images but the LED grid of .*setup\.toml is 3 x 3 = 9"):
        fio.read_dataset(d)
    with pytest.raises(ValueError, match="carries its setup"):
        p = fio.write_dataset(tmp_path / "d.h5", Dataset(_images(9), _setup()))
        fio.read_dataset(p, setup=_setup())


# ----------------------------------------------------------------------------- reconstructions

def test_reconstruction_round_trip(tmp_path):
    rec = _rec()
    p = fio.write_reconstruction(tmp_path / "rec.h5", rec)
    back = fio.read_reconstruction(p)
    np.testing.assert_array_equal(back.object, rec.object)
    np.testing.assert_array_equal(back.pupil, rec.pupil)
    np.testing.assert_array_equal(back.zernike, rec.zernike)
    assert back.noll == [4, 5, 6] and back.setup == rec.setup
    for k in ("rotation", "height", "pitch"):
        assert back.geometry[k] == rec.geometry[k]
    np.testing.assert_array_equal(back.geometry["offset"], rec.geometry["offset"])
    np.testing.assert_array_equal(back.brightness, rec.brightness)
    np.testing.assert_array_equal(back.noise, rec.noise)
    assert back.background == 0.25 and back.settings == rec.settings
    assert back.history["loss"] == [3.0, 2.0, 1.5]
    assert back.history["stage"] == rec.history["stage"]
    assert back.history["stages"] == {"geometry": {"iterations": 1, "grad": [1.0, 2.0]}}
    assert "callback" not in back.history
    with h5py.File(p) as f:
        assert f["amplitude"].shape == (32, 32) and f["y"].attrs["units"] == "m"
        np.testing.assert_allclose(f["x"][1], rec.setup.object_pixel_size)
        np.testing.assert_allclose(f["led_positions"][()], rec.led_positions())
        np.testing.assert_allclose(f["nominal_led_positions"][()], rec.setup.led_positions())
        np.testing.assert_allclose(f["wavevectors"][()], rec.wavevectors())
        np.testing.assert_allclose(f["weights"][()], rec.weights)
        assert f.attrs["nominal_pitch"] == rec.setup.pitch and f.attrs["pitch"] == 4.1e-3
        assert json.loads(f.attrs["setup"]) == rec.setup.to_dict()
        assert f.attrs["diffimaging_version"]


def test_reconstruction_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        fio.read_reconstruction(tmp_path / "none.h5")
    p = fio.write_dataset(tmp_path / "d.h5", Dataset(_images(9), _setup()))
    with pytest.raises(ValueError, match=r"d\.h5: not an FPM reconstruction"):
        fio.read_reconstruction(p)


def test_write_images(tmp_path):
    rec = _rec()
    paths = fio.write_images(tmp_path / "out", rec)
    assert sorted(q.name for q in paths) == ["out_amplitude.png", "out_amplitude.tif",
                                              "out_phase.png", "out_phase.tif"]
    amp = tifffile.imread(tmp_path / "out_amplitude.tif")
    assert amp.dtype == np.float32
    np.testing.assert_allclose(amp, np.abs(rec.object), rtol=1e-6)
    with tifffile.TiffFile(tmp_path / "out_phase.tif") as t:
        desc = json.loads(t.pages[0].description)
    assert desc["pixel_size_m"] == rec.setup.object_pixel_size
