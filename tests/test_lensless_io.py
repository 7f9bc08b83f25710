"""Files of lensless imaging: capture sets (HDF5; images + JSON/TOML geometry),
reconstructions (HDF5, TIFF, PNG), the calibration table and the figures."""
import json

import h5py
import numpy as np
import pytest

from diffimaging import holography as H
from diffimaging.lensless import Captures, Reconstruction
from diffimaging.lensless import io as LIO
from diffimaging.lensless import report as R

LAM, P = 532e-9, 1.6e-6
SHIFTS = np.array([[0.0, 0.0], [0.0, 0.8e-6], [0.8e-6, 0.0], [0.8e-6, 0.8e-6]])
Z = np.array([350e-6, 400e-6, 450e-6, 500e-6])


def _captures(K=4, shape=(24, 32), truth=True):
    rng = np.random.default_rng(1)
    images = (1 + 0.1 * rng.standard_normal((K,) + shape)).astype(np.float32)
    t = {}
    if truth:
        field = np.exp(0.3j * rng.standard_normal((2 * shape[0], 2 * shape[1])))
        t = dict(shifts=SHIFTS[:K] + 1e-7, z=Z[:K] + 5e-6, field=field, photons=None, pad=64,
                 obj="bars", targets=[{"gain": 1.0, "box": [1, 2, 3, 4], "orientation": "vertical",
                                       "bars": np.array([1.5, 2.5, 3.5])}])
    return Captures(images, SHIFTS[:K], Z[:K], wavelength=LAM, pixel_size=P, factor=2, truth=t)


def _reconstruction(caps):
    ny, nx = caps.sensor_shape
    rng = np.random.default_rng(2)
    shape = (2 * ny, 2 * nx)
    field = (0.8 + 0.1 * rng.random(shape)) * np.exp(1j * rng.uniform(-3, 3, shape))
    return Reconstruction(field=field.astype(np.complex64), shifts=caps.shifts + [[1e-7, -2e-7]],
                          z=caps.z + 3e-6, nominal_shifts=caps.shifts.copy(),
                          nominal_z=caps.z.copy(), history={"loss": [3.0, 2.0, 1.5]},
                          settings={"learn": ["shift", "z"], "iterations": 3, "pad": 64})


# -- capture sets: HDF5 -------------------------------------------------------------------

def test_hdf5_capture_set_round_trip_with_units_and_truth(tmp_path):
    caps = _captures()
    path = LIO.write_captures(tmp_path / "c.h5", caps)
    got = LIO.read_captures(path)
    assert got.images.dtype == np.float32 and np.array_equal(got.images, caps.images)
    assert np.array_equal(got.shifts, caps.shifts) and np.array_equal(got.z, caps.z)
    assert (got.wavelength, got.pixel_size, got.factor, got.n_medium) == (LAM, P, 2, 1.0)
    assert np.array_equal(got.truth["field"], caps.truth["field"])
    assert np.array_equal(got.truth["shifts"], caps.truth["shifts"])
    assert got.truth["photons"] is None and got.truth["pad"] == 64 and got.truth["obj"] == "bars"
    assert got.truth["targets"][0]["bars"] == [1.5, 2.5, 3.5]
    with h5py.File(path, "r") as f:
        assert f["nominal_shifts"].attrs["units"] == "m" and f["nominal_z"].attrs["units"] == "m"
        assert f["captures"].attrs["units"] == "1"
        assert f.attrs["wavelength_units"] == "m" and f.attrs["pixel_size_units"] == "m"
        assert f.attrs["factor"] == 2 and "diffimaging_version" in f.attrs
        assert np.allclose(f["x"][()], np.arange(32) * P)
    # keywords override single values of the file
    assert LIO.read_captures(path, n_medium=1.33, z=420e-6).n_medium == 1.33
    assert np.all(LIO.read_captures(path, z=420e-6).z == 420e-6)
    with pytest.raises(FileExistsError):
        LIO.write_captures(path, caps, overwrite=False)


def test_capture_set_opens_as_a_labelled_dataset_in_xarray(tmp_path):
    xr = pytest.importorskip("xarray")
    pytest.importorskip("h5netcdf")
    LIO.write_captures(tmp_path / "c.h5", _captures(truth=False))
    with xr.open_dataset(tmp_path / "c.h5", engine="h5netcdf", phony_dims="access") as ds:
        assert ds["captures"].dims == ("capture", "y", "x")
        assert ds["nominal_shifts"].dims == ("capture", "axis")
        assert list(ds["axis"].values) == ["y", "x"]
        assert ds["x"].attrs["units"] == "m" and float(ds["x"][1]) == pytest.approx(P)
        assert ds.attrs["wavelength"] == LAM


def test_hdf5_capture_set_errors_name_the_file_and_the_dataset(tmp_path):
    LIO.write_captures(tmp_path / "c.h5", _captures(truth=False))
    bad = tmp_path / "bad.h5"
    with h5py.File(bad, "w") as f:
        f["captures"] = np.ones((2, 8, 8))
        f["nominal_z"] = [4e-4, 4e-4]
    with pytest.raises(ValueError, match=r"bad.h5.*no dataset 'nominal_shifts'"):
        LIO.read_captures(bad)
    with h5py.File(bad, "a") as f:
        f["nominal_shifts"] = np.zeros((2, 2))
        f["nominal_shifts"].attrs["units"] = "um"
    with pytest.raises(ValueError, match="in 'um'.*metres"):
        LIO.read_captures(bad)
    with h5py.File(bad, "a") as f:
        f["nominal_shifts"].attrs["units"] = "m"
    with pytest.raises(ValueError, match="lacks wavelength, pixel_size, factor.*--wavelength"):
        LIO.read_captures(bad)
    assert LIO.read_captures(bad, wavelength=LAM, pixel_size=P, factor=2).K == 2
    (tmp_path / "junk.h5").write_bytes(b"not hdf5 at all")
    with pytest.raises(ValueError, match="cannot read .*junk.h5 as HDF5"):
        LIO.read_captures(tmp_path / "junk.h5")
    with pytest.raises(ValueError, match="carries its geometry"):
        LIO.read_captures(tmp_path / "c.h5", tmp_path / "geometry.json")


# -- capture sets: images + geometry ------------------------------------------------------

def _write_tiffs(folder, images, names=None):
    import tifffile

    folder.mkdir(exist_ok=True)
    names = names or [f"cap{k}.tif" for k in range(len(images))]
    for name, im in zip(names, images):
        tifffile.imwrite(folder / name, im)
    return [folder / n for n in names]


def _counts(K=4, shape=(24, 32)):
    """12-bit captures under an uneven illumination (what a camera gives)."""
    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[:shape[0], :shape[1]]
    illum = 1 + 0.4 * np.exp(-((yy - 5) ** 2 + (xx - 25) ** 2) / 200.0)
    sample = 1 + 0.2 * rng.standard_normal((K,) + shape)
    return np.clip(1500 * illum * sample, 0, 4095).astype(np.uint16), illum, sample


def test_tiff_folder_with_json_geometry_is_read_in_natural_order(tmp_path):
    counts, _, _ = _counts(K=11)
    shifts = np.tile(SHIFTS, (3, 1))[:11]
    # cap2 before cap10: natural order, not the alphabetical one
    _write_tiffs(tmp_path / "run", counts, [f"cap{k}.tif" for k in range(11)])
    (tmp_path / "run" / "geometry.json").write_text(json.dumps(
        {"wavelength": LAM, "pixel_size": P, "factor": 2, "n_medium": 1.33, "z": 400e-6,
         "shifts": shifts.tolist()}))
    caps = LIO.read_captures(tmp_path / "run")
    assert caps.K == 11 and caps.n_medium == 1.33 and np.all(caps.z == 400e-6)
    assert np.array_equal(caps.shifts, shifts)
    assert caps.images.dtype == np.float32
    assert np.allclose(caps.images.mean(axis=(1, 2)), 1.0, rtol=1e-5)        # unit mean
    ratio = caps.images[10] / caps.images[2]
    assert np.allclose(ratio, counts[10] / counts[2] * counts[2].mean() / counts[10].mean(), rtol=1e-4)


def test_toml_geometry_with_a_shifts_file_and_a_glob(tmp_path):
    counts, _, _ = _counts()
    _write_tiffs(tmp_path, counts)
    (tmp_path / "stage.csv").write_text("# stage positions\nsy_m,sx_m\n"
                                        + "".join(f"{a},{b}\n" for a, b in SHIFTS.tolist()))
    (tmp_path / "set.toml").write_text(
        "wavelength = 532e-9\npixel_size = 1.6e-6\nfactor = 2\n"
        "z = [350e-6, 400e-6, 450e-6, 500e-6]\nshifts_file = \"stage.csv\"\n")
    caps = LIO.read_captures(str(tmp_path / "cap*.tif"), tmp_path / "set.toml")
    assert np.array_equal(caps.shifts, SHIFTS) and np.array_equal(caps.z, Z)
    # the same with everything given as keywords, no geometry file
    caps2 = LIO.read_captures([tmp_path / f"cap{k}.tif" for k in range(4)], shifts=SHIFTS, z=Z,
                              wavelength=LAM, pixel_size=P, factor=2)
    assert np.array_equal(caps2.images, caps.images)


def test_a_flat_field_removes_the_illumination(tmp_path):
    counts, illum, sample = _counts()
    files = _write_tiffs(tmp_path, counts)
    flat = tmp_path / "flat.tif"
    import tifffile

    tifffile.imwrite(flat, (1500 * illum).astype(np.float32))
    caps = LIO.read_captures(files, shifts=SHIFTS, z=Z, wavelength=LAM, pixel_size=P, factor=2,
                             background=flat)
    expect = np.clip(1500 * illum * sample, 0, 4095).astype(np.uint16) / (1500 * illum)
    expect /= expect.mean(axis=(1, 2), keepdims=True)
    assert np.allclose(caps.images, expect, atol=2e-3)
    plain = LIO.read_captures(files, shifts=SHIFTS, z=Z, wavelength=LAM, pixel_size=P, factor=2)
    blob = illum > 1.2                                   # the bright part of the illumination
    assert plain.images[:, blob].mean() / plain.images[:, ~blob].mean() > 1.2
    assert caps.images[:, blob].mean() / caps.images[:, ~blob].mean() == pytest.approx(1, abs=0.03)
    with pytest.raises(ValueError, match="same sensor region"):
        LIO.read_captures(files, shifts=SHIFTS, z=Z, wavelength=LAM, pixel_size=P, factor=2,
                          background=np.ones((8, 8)))


def test_bad_image_inputs_give_clear_errors(tmp_path):
    counts, _, _ = _counts()
    files = _write_tiffs(tmp_path, counts)
    geo = dict(wavelength=LAM, pixel_size=P, factor=2, z=4e-4, shifts=SHIFTS.tolist())

    def read(**changes):
        g = dict(geo, **changes)
        g = {k: v for k, v in g.items() if v is not None}
        (tmp_path / "g.json").write_text(json.dumps(g))
        return LIO.read_captures(files, tmp_path / "g.json")

    assert read().K == 4
    with pytest.raises(ValueError, match="3 shifts for 4 captures"):
        read(shifts=SHIFTS[:3].tolist())
    with pytest.raises(ValueError, match=r"2 heights z for 4 captures"):
        read(z=[4e-4, 5e-4])
    with pytest.raises(ValueError, match=r"\[sy, sx\] pairs"):
        read(shifts=[[0, 0, 0]] * 4)
    with pytest.raises(ValueError, match="lacks factor.*--factor"):
        read(factor=None)
    with pytest.raises(ValueError, match="micrometres"):
        read(pixel_size=1.6)                              # 1.6 meaning 1.6 um
    with pytest.raises(ValueError, match="400e-6 for 400 um"):
        read(z=400)                                       # 400 meaning 400 um
    with pytest.raises(ValueError, match="0.5e-6 for 0.5 um"):
        read(shifts=(SHIFTS * 1e6).tolist())              # micrometres
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['wavelenght'\]"):
        read(wavelenght=LAM)
    with pytest.raises(ValueError, match="'factor' must be an integer"):
        read(factor=2.5)
    (tmp_path / "g.toml").write_text("wavelength = \n")
    with pytest.raises(ValueError, match="g.toml is not valid TOML"):
        LIO.read_captures(files, tmp_path / "g.toml")
    with pytest.raises(FileNotFoundError, match="geometry file not found"):
        LIO.read_captures(files, tmp_path / "missing.json")
    other = _write_tiffs(tmp_path / "o", [np.ones((20, 32), np.uint16) * 100])
    with pytest.raises(ValueError, match=r"share one size.*24x32.*20x32"):
        LIO.read_captures(files + other, shifts=np.zeros((5, 2)), z=4e-4, wavelength=LAM,
                          pixel_size=P, factor=2)
    with pytest.raises(FileNotFoundError, match="no file matches"):
        LIO.read_captures(str(tmp_path / "nothing*.tif"))
    with pytest.raises(ValueError, match="cap0.tif is given twice"):
        LIO.read_captures(files + files[:1], tmp_path / "g.json")
    LIO.write_captures(tmp_path / "c.h5", _captures(truth=False))
    with pytest.raises(ValueError, match="c.h5 is an HDF5 capture set: give it alone"):
        LIO.read_captures([tmp_path / "c.h5", tmp_path / "c.h5"])


def test_read_shifts_formats(tmp_path):
    (tmp_path / "a.txt").write_text("# sy sx (m)\n0 0\n0 8e-7\n\n8e-7 0\n")
    assert np.array_equal(LIO.read_shifts(tmp_path / "a.txt"), SHIFTS[:3])
    (tmp_path / "b.json").write_text(json.dumps({"shifts": SHIFTS.tolist()}))
    assert np.array_equal(LIO.read_shifts(tmp_path / "b.json"), SHIFTS)
    (tmp_path / "c.json").write_text(json.dumps(SHIFTS.tolist()))
    assert np.array_equal(LIO.read_shifts(tmp_path / "c.json"), SHIFTS)
    (tmp_path / "d.csv").write_text("0,0,0\n1e-7,0,0\n")
    with pytest.raises(ValueError, match="two columns"):
        LIO.read_shifts(tmp_path / "d.csv")
    (tmp_path / "e.csv").write_text("y_px,x_px\n0,0\n")
    with pytest.raises(ValueError, match="name them sy_m, sx_m"):
        LIO.read_shifts(tmp_path / "e.csv")


# -- reconstructions ------------------------------------------------------------------------

def test_reconstruction_file_round_trip_and_attributes(tmp_path):
    caps = _captures()
    rec = _reconstruction(caps)
    path = LIO.write_reconstruction(tmp_path / "r.h5", rec, caps)
    got, attrs = LIO.read_reconstruction(path)
    assert got.field.dtype == np.complex64
    assert np.allclose(got.field, rec.field, atol=1e-6)
    for k in ("shifts", "nominal_shifts", "z", "nominal_z"):
        assert np.array_equal(getattr(got, k), getattr(rec, k))
    assert list(got.history["loss"]) == [3.0, 2.0, 1.5]
    assert got.settings == rec.settings and attrs["learned"] == "shift,z"
    assert attrs["hr_pixel_size"] == pytest.approx(P / 2) and attrs["wavelength"] == LAM
    with h5py.File(path, "r") as f:
        assert f["phase"].attrs["units"] == "rad" and f["amplitude"].attrs["units"] == "1"
        assert f["shifts"].attrs["units"] == "m" and f["z"].attrs["units"] == "m"
        assert np.allclose(f["y"][()], np.arange(48) * P / 2) and f["y"].attrs["units"] == "m"
    with pytest.raises(ValueError, match="pass the captures"):
        LIO.write_reconstruction(tmp_path / "r2.h5", rec)
    with pytest.raises(TypeError, match="Reconstruction"):
        LIO.write_reconstruction(tmp_path / "r2.h5", rec.field, caps)


def test_reconstruction_opens_in_xarray_with_metre_coordinates(tmp_path):
    xr = pytest.importorskip("xarray")
    pytest.importorskip("h5netcdf")
    caps = _captures()
    LIO.write_reconstruction(tmp_path / "r.h5", _reconstruction(caps), caps)
    with xr.open_dataset(tmp_path / "r.h5", engine="h5netcdf", phony_dims="access") as ds:
        assert ds["amplitude"].dims == ("y", "x") and ds["phase"].dims == ("y", "x")
        assert float(ds["x"][2]) == pytest.approx(2 * P / 2)
        assert ds["shifts"].dims == ("capture", "axis") and ds["loss"].dims == ("iteration",)
        assert json.loads(ds.attrs["settings"])["iterations"] == 3


def test_field_images_tiff_and_png(tmp_path):
    import tifffile
    from PIL import Image

    caps = _captures()
    rec = _reconstruction(caps)
    paths = LIO.write_field_images(tmp_path / "field", rec.field, caps.hr_pixel_size)
    assert sorted(p.name for p in paths) == ["field_amplitude.png", "field_amplitude.tif",
                                             "field_phase.png", "field_phase.tif"]
    with tifffile.TiffFile(tmp_path / "field_phase.tif") as t:
        page = t.pages[0]
        assert page.dtype == np.float32
        assert np.allclose(page.asarray(), np.angle(rec.field), atol=1e-6)
        desc = json.loads(page.description)
        assert desc["units"] == "rad" and desc["pixel_size_m"] == pytest.approx(0.8e-6)
        num, den = page.tags["XResolution"].value
        assert num / den == pytest.approx(0.01 / 0.8e-6)           # pixels per cm
    png = np.asarray(Image.open(tmp_path / "field_amplitude.png"))
    assert png.dtype == np.uint8 and png.shape == rec.field.shape and png.max() == 255
    with pytest.raises(ValueError, match="formats"):
        LIO.write_field_images(tmp_path / "f", rec.field, 1e-6, formats=("jpg",))


# -- calibration table and figures --------------------------------------------------------

def test_calibration_table_csv_and_json(tmp_path):
    caps = _captures()
    rec = _reconstruction(caps)
    R.write_calibration(tmp_path / "cal.csv", rec, caps)
    R.write_calibration(tmp_path / "cal.json", rec, caps)
    cols, meta = H.read_table(tmp_path / "cal.csv")
    assert np.array_equal(cols["capture"], np.arange(4))
    assert np.allclose(cols["delta_sy_px"], 1e-7 / P) and np.allclose(cols["delta_sx_px"], -2e-7 / P)
    assert np.allclose(cols["delta_z_m"], 3e-6)
    assert np.array_equal(cols["true_z_m"], caps.truth["z"])
    assert meta["pixel_size_m"] == P and meta["learned"] == ["shift", "z"]
    assert "delta_sx_px" in meta["columns"]
    s = meta["summary"]
    assert s["common_shift_px"] == pytest.approx([1e-7 / P, -2e-7 / P])
    assert s["shift_change_rms_px"] == pytest.approx(0, abs=1e-9)
    doc = json.loads((tmp_path / "cal.json").read_text())
    assert doc["table"]["learned_z_m"] == pytest.approx(rec.z.tolist())
    assert doc["summary"] == s
    # the learned positions of a calibration serve as the nominal ones of the next run
    assert np.array_equal(LIO.read_shifts(tmp_path / "cal.csv"), rec.shifts)
    with pytest.raises(ValueError, match=".csv or .json"):
        R.write_calibration(tmp_path / "cal.txt", rec, caps)


def test_figures_are_written_without_touching_pyplot(tmp_path):
    plt = pytest.importorskip("matplotlib.pyplot")
    caps = _captures()
    rec = _reconstruction(caps)
    before = plt.get_fignums()
    R.plot_captures(caps, tmp_path / "c.png")
    R.plot_fields({"truth": caps.truth["field"], "learned": rec.field}, caps.hr_pixel_size,
                  tmp_path / "f.png")
    fig = R.plot_calibration(rec, caps.pixel_size, tmp_path / "k.png", truth=caps.truth)
    assert plt.get_fignums() == before
    assert len(fig.axes) == 2 and fig.axes[0].get_xlabel() == "sx (sensor pixels)"
    for name in ("c.png", "f.png", "k.png"):
        assert (tmp_path / name).read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(ValueError, match="at least one"):
        R.plot_fields({}, 1e-6)
    # the global phase is not measured: a field off by a constant phase looks the same
    fig = R.plot_fields({"a": rec.field, "b": rec.field * np.exp(2.5j)}, caps.hr_pixel_size)
    phase = [ax.images[0].get_array() for ax in fig.axes if ax.get_title().endswith("phase")]
    assert len(phase) == 2 and np.allclose(phase[0], phase[1], atol=1e-5)


def test_fields_of_other_array_libraries_are_written_alike(tmp_path):
    import tifffile

    xp = pytest.importorskip("array_api_strict")
    caps = _captures()
    rec = _reconstruction(caps)
    LIO.write_field_images(tmp_path / "np", rec.field, caps.hr_pixel_size, formats=("tif",))
    LIO.write_field_images(tmp_path / "xp", xp.asarray(rec.field), caps.hr_pixel_size,
                           formats=("tif",))
    for part in ("amplitude", "phase"):
        a = tifffile.imread(tmp_path / f"np_{part}.tif")
        assert np.array_equal(a, tifffile.imread(tmp_path / f"xp_{part}.tif"))
    torch = pytest.importorskip("torch")
    t = torch.from_numpy(rec.field).conj()                     # a lazily conjugated view
    rec.field = t
    LIO.write_reconstruction(tmp_path / "t.h5", rec, caps)
    got, _ = LIO.read_reconstruction(tmp_path / "t.h5")
    assert np.allclose(got.field, np.conj(_reconstruction(caps).field), atol=1e-6)
