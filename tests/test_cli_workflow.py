"""The command line in a campaign: series inputs, a stated background, sensor
coordinates, PIV and PTV over series, projections-only output, depth and medium
checks, and the command-line conventions (logging, -q, --version, help)."""
import argparse
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from diffimaging import __version__
from diffimaging import holography as H
from diffimaging._backend import files as F
from diffimaging.cli import build_parser, main
from diffimaging.holography import cli as hcli
from diffimaging.holography.backprop import check_depth_range
from diffimaging.holography.preprocess import MEDIAN_MAX_CONTRAST, background_contrast

LAM, PX = 532e-9, 2e-6
ROOT = Path(__file__).resolve().parents[1]
OPTICS = ["--wavelength", "532e-9", "--pixel-size", "2e-6"]


def _series(n_frames, shift_px, shape=(64, 64), count=12, seed=0):
    """Frames of particles moving by ``shift_px`` per frame along x, on a non-uniform
    illumination, 12-bit counts."""
    yy, xx = np.mgrid[:shape[0], :shape[1]]
    illum = 1 + 0.3 * np.exp(-((yy - 20) ** 2 + (xx - 40) ** 2) / 800.0)
    tab = H.random_particles(shape, PX, count=count, z_range=(1.5e-3, 2.5e-3), margin=8 * PX, seed=seed)
    out = []
    for k in range(n_frames):
        t = H.ParticleTable(tab.positions + [0.0, k * shift_px * PX, 0.0], tab.diameters)
        h, _ = H.simulate_particles(shape, t, wavelength=LAM, pixel_size=PX, gaussian_noise=0.01, seed=k)
        out.append(np.clip(h * illum * 1500, 0, 4095).astype(np.uint16))
    return np.array(out), tab


def _backprop(inputs, out, *extra, z="1.4e-3:2.6e-3:7"):
    return main(["holo", "reconstruct", *inputs, "--method", "backprop", *OPTICS, "--z", z,
                 "-o", str(out), *extra])


# -- item 5: series inputs and a stated background ------------------------------------------

def test_background_is_stated_and_a_short_median_warns(tmp_path, capsys):
    import tifffile

    frames, _ = _series(4, 0.5)                      # 4 frames of slow particles, one file
    tifffile.imwrite(tmp_path / "run.tif", frames, photometric="minisblack")
    assert _backprop([str(tmp_path / "run.tif")], tmp_path / "o") == 0
    cap = capsys.readouterr()
    # 4 frames: the default is the per-frame low-pass (a median would keep the slow
    # particles and remove them from the data), said on stdout and in the manifest
    assert "background: lowpass" in cap.out and "warning" not in cap.err
    doc = F.read_manifest(tmp_path / "o" / "manifest.json")
    used = doc["meta"]["runs"][-1]["settings"]["background_used"]
    assert used["method"] == "lowpass" and used["frames"] == 4 and used["chosen"] == "auto"
    assert sorted(e["path"] for e in doc["files"]) == [f"run_{i:04d}.h5" for i in range(4)]
    _, _, attrs = H.read_volume(tmp_path / "o" / "run_0000.h5")
    assert attrs["background"] == "lowpass"
    # asked for a median over these frames: done, with warnings naming the problem
    assert _backprop([str(tmp_path / "run.tif")], tmp_path / "m", "--background", "median") == 0
    cap = capsys.readouterr()
    assert "background: median" in cap.out
    assert "only 4 frames" in cap.err and "fringe contrast" in cap.err
    used = F.read_manifest(tmp_path / "m" / "manifest.json")["meta"]["runs"][-1]["settings"]
    assert used["background_used"]["median_contrast"] > MEDIAN_MAX_CONTRAST
    # -q: errors only (no result lines, no warnings)
    assert _backprop([str(tmp_path / "run.tif")], tmp_path / "q", "--background", "median", "-q") == 0
    cap = capsys.readouterr()
    assert cap.out == "" and cap.err == ""


def test_background_contrast_tells_slow_from_fast_particles():
    slow, _ = _series(12, 0.3, count=20)
    fast, _ = _series(12, 6.0, count=20)
    r_slow = background_contrast(slow, np.median(slow, axis=0))
    r_fast = background_contrast(fast, np.median(fast, axis=0))
    assert r_slow > MEDIAN_MAX_CONTRAST > r_fast
    assert background_contrast(fast, np.full(fast.shape[1:], 7.0)) == 0.0   # a flat background
    with pytest.raises(ValueError, match="does not match"):
        background_contrast(fast, np.ones((3, 3)))


def test_folder_glob_and_explicit_background_file(tmp_path, capsys):
    import tifffile

    frames, _ = _series(12, 5.0)
    d = tmp_path / "run"
    d.mkdir()
    for k in (1, 2, 10):
        tifffile.imwrite(d / f"f{k}.tif", frames[k])
    (d / "notes.txt").write_text("not an image")
    assert _backprop([str(d)], tmp_path / "o") == 0
    doc = F.read_manifest(tmp_path / "o" / "manifest.json")
    # natural order (f2 before f10), image files only
    assert [Path(p).name for p in doc["meta"]["inputs"]] == ["f1.tif", "f2.tif", "f10.tif"]
    # a quoted glob, expanded by the command; 12 frames of one size: the median
    for k in range(12):
        tifffile.imwrite(tmp_path / f"g{k}.tif", frames[k])
    capsys.readouterr()
    assert _backprop([str(tmp_path / "g*.tif")], tmp_path / "g") == 0
    cap = capsys.readouterr()
    assert "background: median (12 frames)" in cap.out and "warning" not in cap.err
    assert len(list((tmp_path / "g").glob("g*.h5"))) == 12
    # a background FILE and none
    assert _backprop([str(d / "f1.tif")], tmp_path / "b", "--background", str(d / "f2.tif")) == 0
    assert "from " + str((d / "f2.tif").resolve()) in capsys.readouterr().out
    assert _backprop([str(d / "f1.tif")], tmp_path / "n", "--background", "none") == 0
    assert H.read_volume(tmp_path / "n" / "f1.h5")[2]["background"] == "none"
    for bad in ([str(tmp_path / "nothing*.tif")], [str(tmp_path / "o")]):
        assert _backprop(bad, tmp_path / "x") == 2
    assert "no file matches" in capsys.readouterr().err
    assert _backprop([str(d / "f1.tif")], tmp_path / "x", "--background", "median") == 2
    assert "at least 3 frames" in capsys.readouterr().err


def test_positions_are_in_sensor_coordinates_after_the_crop(tmp_path):
    """A 119^2 hologram is cropped to 112^2 (3 pixels off each side): positions are
    on the original sensor."""
    import tifffile

    n = 119
    assert H.crop_fast(np.zeros((n, n)))[1] == (3, 3)
    tab = H.random_particles((n, n), PX, count=8, z_range=(2e-3, 2e-3), margin=16 * PX, seed=3)
    tab = H.ParticleTable(tab.positions, np.full(len(tab), 16e-6))
    h, _ = H.simulate_particles((n, n), tab, wavelength=LAM, pixel_size=PX, gaussian_noise=0.005, seed=1)
    tifffile.imwrite(tmp_path / "h.tif", (h * 1000).astype(np.uint16))
    assert _backprop([str(tmp_path / "h.tif")], tmp_path / "o", z="1.8e-3:2.2e-3:9") == 0
    vol = tmp_path / "o" / "h.h5"
    assert list(H.read_volume(vol)[2]["crop_offset_px"]) == [3, 3]
    assert main(["holo", "particles", str(vol), "--diameter", "16e-6", "-o", str(tmp_path / "p.csv")]) == 0
    found = hcli._read_positions_csv(tmp_path / "p.csv")
    m = H.match(found, tab, lateral_tol=1.5 * PX, axial_tol=200e-6)
    assert m.recall >= 0.75                  # without the offset: 3 px off, none within 1.5 px
    lateral = found[m.pairs[:, 0], :2] - tab.positions[m.pairs[:, 1], :2]
    assert np.all(np.abs(np.median(lateral, axis=0)) < 0.75 * PX)


# -- PIV and PTV over series ----------------------------------------------------------------

def _blobs(shift, shape=(16, 48, 48), n=120, seed=0):
    """A volume of Gaussian particle images moved by ``shift`` (dz, dy, dx) voxels."""
    rng = np.random.default_rng(seed)
    c = rng.uniform([2, 2, 2], np.array(shape) - 2, (n, 3)) + np.asarray(shift)
    zz, yy, xx = np.meshgrid(*[np.arange(s) for s in shape], indexing="ij")
    v = np.zeros(shape, np.float32)
    for z0, y0, x0 in c:
        v += np.exp(-((zz - z0) ** 2 + (yy - y0) ** 2 + (xx - x0) ** 2) / 2.0).astype(np.float32)
    return v


def test_piv_series_passes_and_anisotropic_windows(tmp_path, capsys):
    z = np.linspace(1e-3, 1.15e-3, 16)
    for k in range(3):
        H.write_volume(tmp_path / f"v{k}.h5", _blobs((0, 0, 1.3 * k)), z=z, wavelength=LAM,
                       pixel_size=PX, polarity="bright", crop_offset_px=np.array([5, 7]))
    vols = [str(tmp_path / f"v{k}.h5") for k in range(3)]
    assert main(["piv", *vols, "--window", "8,16,16", "--smooth", "0", "-o", str(tmp_path / "v.csv")]) == 0
    assert "2 pairs" in capsys.readouterr().out
    errors = []
    for i in range(2):
        cols, _ = H.read_table(tmp_path / f"v_{i:04d}.csv")
        vx, x = cols["u_m_per_frame"], cols["x_m"]            # no --dt: metres per frame
        errors.append(np.sqrt(np.mean((vx / PX - 1.3) ** 2)))
        # the first window centre (7.5 voxels) on the sensor: the crop offset added back
        assert x.min() == pytest.approx((7.5 + 7) * PX, rel=1e-9)
    assert max(errors) < 0.15                          # 3 passes of window deformation
    doc = F.read_manifest(tmp_path / "v.csv.manifest.json")
    s = doc["meta"]["runs"][-1]["settings"]
    assert s["passes"] == 3 and s["window_used"] == [8, 16, 16]
    assert doc["meta"]["outputs"]["v_0001.csv"]["inputs"] == [str(Path(v).resolve()) for v in vols[1:]]
    # one pass: the plain correlation, biased towards whole voxels
    assert main(["piv", *vols[:2], "--passes", "1", "--smooth", "0", "-o", str(tmp_path / "w.csv")]) == 0
    one = np.sqrt(np.mean((H.read_table(tmp_path / "w.csv")[0]["u_m_per_frame"] / PX - 1.3) ** 2))
    assert one > errors[0]
    for bad in ("8,16", "3", "8,x,8"):
        with pytest.raises(SystemExit):
            main(["piv", *vols, "--window", bad, "-o", str(tmp_path / "x.csv")])
    assert main(["piv", vols[0], "-o", str(tmp_path / "x.csv")]) == 2
    assert "at least 2 volumes" in capsys.readouterr().err


def test_ptv_links_particles_into_tracks(tmp_path, capsys):
    rng = np.random.default_rng(1)
    pos = rng.uniform([0, 0, 1e-3], [200e-6, 200e-6, 2e-3], (30, 3))
    step = np.array([3e-6, -2e-6, 5e-6])
    for k in range(4):
        H.write_particles_csv(tmp_path / f"p{k}.csv", pos + k * step)
    tables = [str(tmp_path / f"p{k}.csv") for k in range(4)]
    assert main(["ptv", *tables, "--max-distance", "8e-6", "--max-axial-distance", "20e-6",
                 "--dt", "0.5", "-o", str(tmp_path / "t.csv"), "--vtk", str(tmp_path / "t.vtk")]) == 0
    assert "90 links in 30 tracks over 4 frames" in capsys.readouterr().out
    cols, meta = H.read_table(tmp_path / "t.csv")
    assert len(cols["track_id"]) == 90 and meta["dt_s"] == 0.5
    u = np.column_stack([cols["u_m_per_s"], cols["v_m_per_s"], cols["w_m_per_s"]])
    np.testing.assert_allclose(u, np.broadcast_to(step[[1, 0, 2]] / 0.5, u.shape), atol=1e-12)
    # one id per particle across the frames
    by_track = {}
    for t, f in zip(cols["track_id"], cols["frame"]):
        by_track.setdefault(int(t), []).append(int(f))
    assert len(by_track) == 30 and all(sorted(f) == [0, 1, 2] for f in by_track.values())
    meshio = pytest.importorskip("meshio")
    m = meshio.read(tmp_path / "t.vtk")          # the tracks as lines through their points
    assert sum(len(c.data) for c in m.cells if c.type == "line") == 60
    assert F.verify_manifest(tmp_path / "t.csv.manifest.json") == []
    (tmp_path / "bad.csv").write_text("a,b\n1,2\n")
    assert main(["ptv", tables[0], str(tmp_path / "bad.csv"), "--max-distance", "8e-6",
                 "-o", str(tmp_path / "u.csv")]) == 2
    assert "no column 'y'" in capsys.readouterr().err


# -- item 4, CLI side: projections-only output --------------------------------------------

def test_projections_output_and_particles(tmp_path, capsys):
    import tifffile

    tab = H.random_particles((64, 64), PX, count=5, z_range=(2e-3, 2e-3), margin=12 * PX, seed=2)
    tab = H.ParticleTable(tab.positions, np.full(len(tab), 16e-6))
    h, _ = H.simulate_particles((64, 64), tab, wavelength=LAM, pixel_size=PX, gaussian_noise=0.005)
    tifffile.imwrite(tmp_path / "h.tif", (h * 1000).astype(np.uint16))
    assert _backprop([str(tmp_path / "h.tif")], tmp_path / "o", "--save", "projections",
                     z="1.6e-3:2.4e-3:33") == 0
    f = tmp_path / "o" / "h.projections.h5"
    import h5py

    with h5py.File(f, "r") as fh:
        # the four maps, the depths searched and the sensor coordinates (y, x)
        assert sorted(fh.keys()) == ["argmax_z", "argmin_z", "max", "min", "x", "y", "z"]
        assert fh["min"].shape == (64, 64) and fh.attrs["n_medium"] == 1.0
    assert not (tmp_path / "o" / "h.h5").exists()
    assert F.verify_manifest(tmp_path / "o" / "manifest.json") == []
    assert main(["holo", "particles", str(f), "--diameter", "16e-6", "-o", str(tmp_path / "p.csv")]) == 0
    found = hcli._read_positions_csv(tmp_path / "p.csv")
    # the same particles as the API's streamed projections of the same hologram
    pre, _ = H.preprocess(H.read_hologram(tmp_path / "h.tif"))
    proj = H.backpropagate(pre.astype(np.float32), np.linspace(1.6e-3, 2.4e-3, 33), wavelength=LAM,
                           pixel_size=PX)
    api = H.find_particles(proj, pixel_size=PX, polarity="dark", diameter=16e-6, wavelength=LAM)
    np.testing.assert_allclose(found, api.positions, rtol=0, atol=1e-3 * PX)
    assert H.match(found, tab, lateral_tol=2 * PX, axial_tol=150e-6).recall >= 0.6
    capsys.readouterr()
    assert main(["holo", "reconstruct", str(tmp_path / "h.tif"), *OPTICS, "--z", "1e-3:2e-3:3",
                 "--save", "projections", "-o", str(tmp_path / "x")]) == 2
    assert "needs --method backprop" in capsys.readouterr().err


# -- z ranges, the learned offset, the medium -----------------------------------------------

def test_depths_in_millimetres_are_refused_before_any_work(tmp_path, capsys):
    import tifffile

    tifffile.imwrite(tmp_path / "h.tif", np.full((64, 64), 1000, np.uint16))
    assert main(["holo", "reconstruct", str(tmp_path / "h.tif"), *OPTICS, "--z", "1:5:81",
                 "-o", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "--z" in err and "millimetres" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()
    with pytest.raises(ValueError, match="millimetres"):
        H.reconstruct(np.ones((64, 64), np.float32), [1.0, 2.0], wavelength=LAM, pixel_size=PX)
    with pytest.raises(ValueError, match="millimetres"):
        H.backpropagate(np.ones((64, 64), np.float32), [1.0], wavelength=LAM, pixel_size=PX)
    # set-ups that are used: a lensless field (1024^2, 10 um pixels, 0.1-0.16 m) and a
    # microscope (0.05 um pixels, 512^2, depths to 26 um in water)
    check_depth_range([0.1, 0.16], (1024, 1024), wavelength=LAM, pixel_size=10e-6)
    check_depth_range([8e-6, 26e-6], (512, 512), wavelength=LAM, pixel_size=0.05e-6, n_medium=1.33)
    check_depth_range([1e-3, 5e-3], (64, 64), wavelength=LAM, pixel_size=PX)


def test_offset_on_its_bound_warns():
    tab = H.random_particles((64, 64), PX, count=6, z_range=(1e-3, 1e-3), margin=8 * PX, seed=0)
    h, _ = H.simulate_particles((64, 64), tab, wavelength=LAM, pixel_size=PX)
    with pytest.warns(UserWarning, match="sits on its upper bound"):
        H.reconstruct(h.astype(np.float32), [0.8e-3], wavelength=LAM, pixel_size=PX, iterations=5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")          # the true distance inside the range: silent
        H.reconstruct(h.astype(np.float32), [1.02e-3], wavelength=LAM, pixel_size=PX, iterations=5)


def test_n_medium_is_the_wavelength_in_the_medium(tmp_path, capsys):
    import tifffile

    rng = np.random.default_rng(0)
    h = (1 + 0.05 * rng.standard_normal((48, 48))).astype(np.float64)
    z = np.linspace(1e-3, 2e-3, 3)
    a = H.backpropagate(h, z, wavelength=LAM, pixel_size=PX, output="intensity", n_medium=1.33)
    b = H.backpropagate(h, z, wavelength=LAM / 1.33, pixel_size=PX, output="intensity")
    c = H.backpropagate(h, z, wavelength=LAM, pixel_size=PX, output="intensity")
    np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
    assert np.max(np.abs(a - c)) > 1e-3
    rec = H.reconstruct(h, z, wavelength=LAM, pixel_size=PX, method="backprop", n_medium=1.33)
    assert rec.n_medium == 1.33 and rec.wavelength == LAM
    for bad in (0.9, 3.5, float("nan")):
        with pytest.raises(ValueError, match="n_medium"):
            H.backpropagate(h, z, wavelength=LAM, pixel_size=PX, n_medium=bad)
    with pytest.raises(TypeError, match="n_medium"):
        H.reconstruct(h, z, wavelength=LAM, pixel_size=PX, n_medium="water")
    tifffile.imwrite(tmp_path / "h.tif", (h * 1000).astype(np.uint16))
    assert _backprop([str(tmp_path / "h.tif")], tmp_path / "o", "--n-medium", "1.33") == 0
    assert H.read_volume(tmp_path / "o" / "h.h5")[2]["n_medium"] == 1.33
    assert F.read_manifest(tmp_path / "o" / "manifest.json")["meta"]["settings"]["n_medium"] == 1.33
    with pytest.raises(SystemExit):
        _backprop([str(tmp_path / "h.tif")], tmp_path / "o", "--n-medium", "0.5")


# -- item 7: conventions ----------------------------------------------------------------------

def test_version_and_python_dash_m(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0 and capsys.readouterr().out.strip() == f"diffimaging {__version__}"
    env = {"PYTHONPATH": str(ROOT / "python"), "PATH": "/usr/bin:/bin"}
    r = subprocess.run([sys.executable, "-m", "diffimaging", "--version"], capture_output=True,
                       text=True, env=env, timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == f"diffimaging {__version__}"
    r = subprocess.run([sys.executable, "-m", "diffimaging", "piv"], capture_output=True, text=True,
                       env=env, timeout=120)
    assert r.returncode == 2 and r.stderr.startswith("diffimaging: error:")


def _actions(parser):
    for a in parser._actions:
        if isinstance(a, argparse._SubParsersAction):
            for sub in a.choices.values():
                yield from _actions(sub)
        else:
            yield parser.prog, a


def test_every_argument_has_help_and_states_its_default():
    missing = []
    for prog, a in _actions(build_parser()):
        if isinstance(a, (argparse._HelpAction, argparse._VersionAction)) or a.dest in ("verbose", "quiet"):
            continue
        text = a.help or ""
        if not text:
            missing.append(f"{prog} {a.dest}: no help")
        elif a.option_strings and not a.required and "default" not in text.casefold():
            missing.append(f"{prog} {a.dest}: no default in its help")
    assert missing == []


def test_logging_levels_and_no_bars_off_a_terminal(tmp_path, capsys):
    import tifffile

    frames, _ = _series(2, 3.0, shape=(48, 48))
    tifffile.imwrite(tmp_path / "a.tif", frames[0])
    assert _backprop([str(tmp_path / "a.tif")], tmp_path / "o") == 0
    cap = capsys.readouterr()
    assert cap.err == ""                       # no bars into a log file, no messages
    assert _backprop([str(tmp_path / "a.tif")], tmp_path / "o", "-v") == 0
    err = capsys.readouterr().err
    assert "diffimaging: info: background: Gaussian low-pass" in err and "manifest ->" in err
    assert "it/s" not in err and "\r" not in err
