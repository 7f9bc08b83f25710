"""Issue 9, command line and analysis: one regression test per item (exit codes,
outputs and manifests, NaN volumes, PIV depths and dt, absent pixel size, demo
arguments, edge cases of the analysis API)."""
import json
import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from diffimaging import holography as H
from diffimaging._backend import files as F
from diffimaging.cli import main
from diffimaging.holography import cli as hcli

LAM, PX = 532e-9, 2e-6
ROOT = Path(__file__).resolve().parents[1]


def _volume(path, nz=8, shape=(24, 24), *, seed=0, z=None, **attrs):
    rng = np.random.default_rng(seed)
    v = np.zeros((nz,) + shape, np.float32)
    for _ in range(6):
        k, i, j = rng.integers(1, nz - 1), rng.integers(3, shape[0] - 3), rng.integers(3, shape[1] - 3)
        v[k, i, j] = 1.0
    v += 0.01 * rng.standard_normal(v.shape).astype(np.float32)
    z = np.linspace(1e-3, 1.7e-3, nz) if z is None else z
    H.write_volume(path, v, z=z, wavelength=LAM, pixel_size=PX, method="dh", polarity="bright", **attrs)
    return v


def _one_error_line(err):
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


# -- item 1: exit codes --------------------------------------------------------------

@pytest.mark.parametrize("exc, code, words", [
    (PermissionError(13, "Permission denied", "/data/out.h5"), 2, "Permission denied: /data/out.h5"),
    (FileExistsError("out.h5 exists"), 2, "out.h5 exists"),
    (IsADirectoryError(21, "Is a directory", "out"), 2, "Is a directory: out"),
    (OSError(27, "File too large", "big.h5"), 2, "File too large writing big.h5: free disk space"),
    (OSError(28, "No space left on device", "v.h5"), 2, "No space left on device writing v.h5"),
    (MemoryError("Unable to allocate 12.0 GiB"), 2, "out of memory (Unable to allocate 12.0 GiB)"),
    (TypeError("bad type"), 2, "bad type"),
    (KeyError("pixel_size_m"), 1, "internal error: KeyError"),
    (RuntimeError("boom"), 1, "internal error: RuntimeError: boom (rerun with -v"),
    (KeyboardInterrupt(), 130, "interrupted (Ctrl-C)"),
])
def test_item1_exit_codes(monkeypatch, capsys, tmp_path, exc, code, words):
    def fail(args):
        raise exc

    monkeypatch.setattr(hcli, "cmd_particles", fail)
    assert main(["holo", "particles", "v.h5", "-o", str(tmp_path / "p.csv")]) == code
    line = _one_error_line(capsys.readouterr().err)
    assert line.startswith("diffimaging: ") and words in line


def test_item1_verbose_prints_the_traceback(monkeypatch, capsys, tmp_path):
    def fail(args):
        raise RuntimeError("boom")

    monkeypatch.setattr(hcli, "cmd_piv", fail)
    assert main(["-v", "piv", "a.h5", "b.h5", "-o", str(tmp_path / "v.csv")]) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and "RuntimeError: boom" in err
    # -v is accepted after the command too
    assert main(["piv", "a.h5", "b.h5", "-o", str(tmp_path / "v.csv"), "-v"]) == 1
    assert "Traceback" in capsys.readouterr().err


def test_item1_argument_errors_are_one_line_exit_2(capsys):
    with pytest.raises(SystemExit) as e:
        main(["piv", "a.h5", "b.h5", "--dt", "nan", "-o", "v.csv"])
    assert e.value.code == 2
    line = _one_error_line(capsys.readouterr().err)
    assert line.startswith("diffimaging: error: argument --dt")


def test_item1_help_documents_the_exit_codes(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    for words in ("exit codes", "130", "internal error", "manifest"):
        assert words in out


def test_item1_sigterm_exits_130_without_partial_files(tmp_path):
    """A SIGTERM in the middle of an atomic write: exit 130, one line, the
    temporary file removed, nothing under the final name."""
    script = tmp_path / "run.py"
    script.write_text(f"""
import sys, time
sys.path.insert(0, {str(ROOT / 'python')!r})
from diffimaging._backend import files
from diffimaging.holography import cli as hcli
from diffimaging.cli import main

def slow(args):
    with files.atomic_open({str(tmp_path / 'p.csv')!r}) as fh:
        fh.write("partial")
        fh.flush()
        print("writing", flush=True)
        time.sleep(30)
    return 0

hcli.cmd_particles = slow
raise SystemExit(main(["holo", "particles", "v.h5", "-o", {str(tmp_path / 'p.csv')!r}]))
""")
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stdout.readline().strip() == "writing"
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert "terminated (SIGTERM)" in _one_error_line(err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.py"]


def test_item1_sigterm_handler_only_in_the_main_thread(monkeypatch, tmp_path):
    monkeypatch.setattr(hcli, "cmd_particles", lambda args: 0)
    before = signal.getsignal(signal.SIGTERM)
    codes = []
    t = threading.Thread(target=lambda: codes.append(main(["holo", "particles", "v.h5", "-o", "p.csv"])))
    t.start()
    t.join()
    assert codes == [0] and signal.getsignal(signal.SIGTERM) is before
    assert main(["holo", "particles", "v.h5", "-o", "p.csv"]) == 0
    assert signal.getsignal(signal.SIGTERM) is before   # restored


# -- item 2: outputs, manifests, name collisions ----------------------------------------

def _holograms(tmp_path, names):
    import tifffile

    tab = H.random_particles((48, 48), PX, count=4, z_range=(1.5e-3, 2e-3), margin=8 * PX, seed=1)
    h, _ = H.simulate_particles((48, 48), tab, wavelength=LAM, pixel_size=PX)
    paths = []
    for name in names:
        p = tmp_path / name
        p.parent.mkdir(parents=True, exist_ok=True)
        tifffile.imwrite(p, (h * 1000).astype(np.uint16))
        paths.append(str(p))
    return paths


def _reconstruct(paths, out, *extra):
    return main(["holo", "reconstruct", *paths, "--method", "backprop", "--wavelength", "532e-9",
                 "--pixel-size", "2e-6", "--z", "1.4e-3:2.1e-3:8", "-o", str(out), *extra])


def test_item2_outputs_manifest_and_name_collisions(tmp_path, capsys):
    a, b = _holograms(tmp_path, ["a/x.tif", "b/x.tif"])
    out = tmp_path / "out"
    # two inputs of one name: refused up front, naming both; nothing written
    assert _reconstruct([a, b], out) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert a in line and b in line and "rename" in line
    assert not (out / "x.h5").exists()
    # a run writes its manifest last: outputs, inputs, settings
    assert _reconstruct([a], out) == 0
    assert F.verify_manifest(out / "manifest.json") == []
    doc = F.read_manifest(out / "manifest.json")
    assert [e["path"] for e in doc["files"]] == ["x.h5"]
    assert doc["meta"]["inputs"] == [str(Path(a).resolve())]
    assert doc["meta"]["settings"]["method"] == "backprop"
    assert doc["meta"]["outputs"]["x.h5"]["inputs"] == [str(Path(a).resolve())]
    before = (out / "x.h5").read_bytes()
    # another input of the same name in a later run: refused unless --overwrite
    capsys.readouterr()
    assert _reconstruct([b], out) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert "holds the output of" in line and "--overwrite" in line
    assert (out / "x.h5").read_bytes() == before
    # the same input again: allowed; another name: added, the earlier entry kept
    assert _reconstruct([a], out) == 0
    (c,) = _holograms(tmp_path, ["c/y.tif"])
    assert _reconstruct([c], out) == 0
    doc = F.read_manifest(out / "manifest.json")
    assert sorted(e["path"] for e in doc["files"]) == ["x.h5", "y.h5"]
    assert F.verify_manifest(out / "manifest.json") == []
    assert _reconstruct([b], out, "--overwrite") == 0
    doc = F.read_manifest(out / "manifest.json")
    assert doc["meta"]["outputs"]["x.h5"]["inputs"] == [str(Path(b).resolve())]
    # a file of unknown origin is not replaced
    (d,) = _holograms(tmp_path, ["d/z.tif"])
    (out / "z.h5").write_bytes(b"mine")
    assert _reconstruct([d], out) == 2
    assert (out / "z.h5").read_bytes() == b"mine"


def test_item2_single_file_outputs_have_a_manifest(tmp_path):
    _volume(tmp_path / "v.h5")
    _volume(tmp_path / "w.h5", seed=1)
    csv, vtk = tmp_path / "p.csv", tmp_path / "p.vtk"
    assert main(["holo", "particles", str(tmp_path / "v.h5"), "-o", str(csv), "--vtk", str(vtk)]) == 0
    man = tmp_path / "p.csv.manifest.json"
    assert F.verify_manifest(man) == []
    doc = F.read_manifest(man)
    assert sorted(e["path"] for e in doc["files"]) == ["p.csv", "p.vtk"]
    assert doc["meta"]["inputs"] == [str((tmp_path / "v.h5").resolve())]
    # the particles of another volume do not replace these unless asked
    assert main(["holo", "particles", str(tmp_path / "w.h5"), "-o", str(csv)]) == 2
    assert main(["holo", "particles", str(tmp_path / "w.h5"), "-o", str(csv), "--overwrite"]) == 0
    assert main(["piv", str(tmp_path / "v.h5"), str(tmp_path / "w.h5"), "--window", "8",
                 "-o", str(tmp_path / "v.csv")]) == 0
    assert F.verify_manifest(tmp_path / "v.csv.manifest.json") == []


def test_item2_demo_writes_json_and_figures_atomically(monkeypatch, tmp_path):
    """metrics.json and the figures go through the atomic writers (a failure while
    writing leaves nothing under the final name) and are listed in the manifest."""
    pytest.importorskip("matplotlib")
    import matplotlib.pyplot as plt

    fig = plt.figure()
    assert hcli._savefig(fig, tmp_path / "f.png") == "f.png"
    assert (tmp_path / "f.png").read_bytes()[:4] == b"\x89PNG"

    def broken(self, *a, **k):
        raise OSError(28, "No space left on device")

    fig = plt.figure()
    monkeypatch.setattr(type(fig), "savefig", broken)
    with pytest.raises(OSError):
        hcli._savefig(fig, tmp_path / "g.png")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.png"]


# -- item 3: NaN voxel --------------------------------------------------------------

def test_item3_nan_voxel_is_reported_not_zero_particles(tmp_path, capsys):
    rng = np.random.default_rng(0)
    v = 0.01 * rng.standard_normal((6, 16, 16))
    v[3, 8, 8] = 1.0
    z = np.linspace(1e-3, 1.5e-3, 6)
    assert len(H.find_particles(v, z, pixel_size=PX)) == 1
    v[2, 5, 7] = np.nan
    v[4, 1, 1] = np.inf
    with pytest.raises(ValueError, match=r"2 non-finite .* \(z, y, x\) = \(2, 5, 7\)"):
        H.find_particles(v, z, pixel_size=PX)
    with pytest.raises(ValueError, match=r"non-finite .* \(y, x\) = \(5, 7\)"):
        H.find_particles({"max": v[2], "argmax_z": np.zeros((16, 16))}, pixel_size=PX)
    H.write_volume(tmp_path / "v.h5", v, z=z, wavelength=LAM, pixel_size=PX, polarity="bright")
    assert main(["holo", "particles", str(tmp_path / "v.h5"), "-o", str(tmp_path / "p.csv")]) == 2
    assert "(2, 5, 7)" in _one_error_line(capsys.readouterr().err)
    assert not (tmp_path / "p.csv").exists()


# -- item 4: PIV depths and dt ----------------------------------------------------------

def test_item4_piv_depth_axis_and_dt(tmp_path, capsys):
    rng = np.random.default_rng(2)
    a = rng.random((8, 16, 16))
    r = H.piv(a, np.roll(a, 1, axis=2), 8)
    assert r.shape == (8, 16, 16)
    z = np.linspace(1e-3, 1.7e-3, 8)
    pos, vel = r.vectors(z, PX, dt=0.5)
    np.testing.assert_allclose(np.median(vel[:, 1]), PX / 0.5, rtol=0.1)
    np.testing.assert_allclose(pos[:, 2].min(), z[0] + r.centers[0, 0, 0, 0] * (z[1] - z[0]))
    with pytest.raises(ValueError, match="1 depths for a volume of 8 planes"):
        r.vectors([1e-3], PX)
    with pytest.raises(ValueError, match="coincident"):
        r.vectors(np.full(8, 1e-3), PX)
    for dt in (0, -1, float("nan")):
        with pytest.raises(ValueError, match="dt"):
            r.vectors(z, PX, dt)
        with pytest.raises(ValueError, match="dt"):
            r.velocity((1e-5, PX, PX), dt)
    with pytest.raises(ValueError, match="too small for 3-D PIV"):
        H.piv(a[:1], a[:1], 4)
    # the CLI: a z dataset of one depth for an 8-plane volume, and z that differ
    _volume(tmp_path / "a.h5")
    _volume(tmp_path / "b.h5", seed=1)
    import h5py

    with h5py.File(tmp_path / "b.h5", "a") as f:
        del f["z"]
        f["z"] = [1e-3]
    assert main(["piv", str(tmp_path / "a.h5"), str(tmp_path / "b.h5"), "--window", "8",
                 "-o", str(tmp_path / "v.csv")]) == 2
    # refused by read_volume (the file's own z) or by the PIV depth check, whichever first
    assert re.search(r"b\.h5.*1 depths for (a volume of )?8 planes",
                     _one_error_line(capsys.readouterr().err))
    _volume(tmp_path / "c.h5", seed=1, z=np.linspace(2e-3, 2.7e-3, 8))
    assert main(["piv", str(tmp_path / "a.h5"), str(tmp_path / "c.h5"), "--window", "8",
                 "-o", str(tmp_path / "v.csv")]) == 2
    assert "share their depths" in _one_error_line(capsys.readouterr().err)
    for dt in ("0", "-1", "nan"):
        with pytest.raises(SystemExit) as e:
            main(["piv", str(tmp_path / "a.h5"), str(tmp_path / "a.h5"), "--dt", dt, "-o", "v.csv"])
        assert e.value.code == 2
    assert not (tmp_path / "v.csv").exists()


# -- item 5: volume without pixel size ----------------------------------------------------

@pytest.mark.parametrize("how", ["missing", "nan", "text"])
def test_item5_volume_without_pixel_size_asks_for_it(tmp_path, capsys, how):
    import h5py

    _volume(tmp_path / "v.h5")
    _volume(tmp_path / "w.h5", seed=1)
    for name in ("v.h5", "w.h5"):
        with h5py.File(tmp_path / name, "a") as f:
            if how == "missing":
                del f.attrs["pixel_size_m"]
            elif how == "nan":
                f.attrs["pixel_size_m"] = [np.nan, np.nan]
            else:
                f.attrs["pixel_size_m"] = "unknown"
    for out, argv in (("p.csv", ["holo", "particles", str(tmp_path / "v.h5")]),
                      ("v.csv", ["piv", str(tmp_path / "v.h5"), str(tmp_path / "w.h5"), "--window", "8"])):
        assert main(argv + ["-o", str(tmp_path / out)]) == 2
        assert "pass --pixel-size" in _one_error_line(capsys.readouterr().err)
        assert main(argv + ["-o", str(tmp_path / out), "--pixel-size", "2e-6"]) == 0
    # the attribute helper: absent, None and NaN alike mean "not recorded"
    for attrs in ({}, {"pixel_size_m": None}, {"pixel_size_m": np.nan}):
        assert hcli._attr_positive(attrs, "pixel_size_m") is None


# -- item 6: demo arguments -------------------------------------------------------------

def test_item6_demo_and_simulate_arguments(capsys):
    for argv in (["--size", "8"], ["--ppp", "0"], ["--ppp", "nan"], ["--iterations", "-5"],
                 ["--iterations", "0"], ["--seed", "-1"]):
        with pytest.raises(SystemExit) as e:
            main(["demo", "-o", "unused"] + argv)
        assert e.value.code == 2
        line = _one_error_line(capsys.readouterr().err)
        assert f"argument {argv[0]}" in line
    assert not Path("unused").exists()
    # at the root: the simulators name the argument instead of numpy's "high - low < 0"
    with pytest.raises(ValueError, match="margin"):
        H.random_particles((8, 8), PX, count=8, margin=8 * PX)
    with pytest.raises(ValueError, match="z_range"):
        H.random_particles((64, 64), PX, count=8, z_range=(2e-3, 1e-3))
    with pytest.raises(ValueError, match="diameter_range"):
        H.random_particles((64, 64), PX, count=8, diameter_range=(-1e-6, 1e-6))
    with pytest.raises(ValueError, match="ppp"):
        H.random_particles((64, 64), PX, ppp=float("nan"))
    with pytest.raises(ValueError, match="count"):
        H.random_particles((64, 64), PX, count=-3)
    with pytest.raises(ValueError, match="shape"):
        H.random_particles((0, 64), PX, count=1)
    tab = H.random_particles((16, 16), PX, count=np.int64(2), z_range=(1e-3, 2e-3))
    with pytest.raises(ValueError, match="gaussian_noise"):
        H.simulate_particles((16, 16), tab, wavelength=LAM, pixel_size=PX, gaussian_noise=-0.1)
    with pytest.raises(ValueError, match="diameters"):
        H.simulate_particles((16, 16), (tab.positions, [0.0, 1e-5]), wavelength=LAM, pixel_size=PX)
    with pytest.raises(ValueError, match="wavelength"):
        H.simulate_particles((16, 16), tab, wavelength=float("nan"), pixel_size=PX)
    with pytest.raises(ValueError, match="bits"):
        H.simulate_particles((16, 16), tab, wavelength=LAM, pixel_size=PX, bits=0)


def test_item6_demo_minimum_size_runs(tmp_path):
    assert main(["demo", "-o", str(tmp_path / "d"), "--size", str(hcli.DEMO_MIN_SIZE),
                 "--iterations", "3"]) == 0
    assert F.verify_manifest(tmp_path / "d" / "manifest.json") == []
    names = {e["path"] for e in F.read_manifest(tmp_path / "d" / "manifest.json")["files"]}
    assert {"metrics.json", "volume_a.h5", "piv.csv", "ptv.csv"} <= names
    json.loads((tmp_path / "d" / "metrics.json").read_text())


# -- item 7: edge cases of the analysis API ----------------------------------------------

def test_item7_analysis_edge_cases():
    z = np.linspace(1e-3, 1.5e-3, 6)
    empty = np.zeros((6, 16, 16))
    # a volume without particles: no particles, no links, NaN PIV vectors — no traceback
    assert len(H.find_particles(empty, z, pixel_size=PX)) == 0
    found = H.find_particles(empty, z, pixel_size=PX)
    assert len(H.link(found, found, 1e-5).pairs) == 0
    m = H.match(found, found, 1e-5, 1e-5)
    assert len(m.pairs) == 0 and np.isnan(m.recall)
    r = H.piv(empty, empty, 4)
    assert np.all(np.isnan(r.displacement)) and r.outlier.all()
    # bad numbers, shapes and empty inputs name the argument
    with pytest.raises(ValueError, match="empty volume"):
        H.find_particles(np.zeros((0, 8, 8)), [], pixel_size=PX)
    with pytest.raises(ValueError, match="threshold"):
        H.find_particles(empty, z, pixel_size=PX, threshold=float("nan"))
    with pytest.raises(ValueError, match="threshold"):
        H.find_particles(empty, z, pixel_size=PX, threshold="high")
    with pytest.raises(ValueError, match="k must"):
        H.find_particles(empty, z, pixel_size=PX, k=-1)
    with pytest.raises(ValueError, match="neighborhood"):
        H.find_particles(empty, z, pixel_size=PX, neighborhood=(0, 3, 3))
    with pytest.raises(ValueError, match="finite depths"):
        H.find_particles(empty, np.full(6, np.nan), pixel_size=PX)
    with pytest.raises(ValueError, match="pixel_size"):
        H.find_particles(empty, z, pixel_size=-PX)
    with pytest.raises(ValueError, match="vol_b .* non-finite"):
        H.piv(empty, np.full_like(empty, np.nan), 4)
    with pytest.raises(ValueError, match="window must be 3 integer"):
        H.piv(empty, empty, (4.5, 4, 4))
    with pytest.raises(ValueError, match="overlap"):
        H.piv(empty, empty, 4, float("nan"))
    with pytest.raises(ValueError, match="outlier_threshold"):
        H.piv(empty, empty, 4, outlier_threshold=0)
    with pytest.raises(ValueError, match="max_distance"):
        H.link(found, found, float("nan"))
    with pytest.raises(ValueError, match="frame_a"):
        H.link(np.zeros((3, 2)), found, 1e-5)
    with pytest.raises(ValueError, match="lateral_tol"):
        H.match(found, found, 0, 1e-5)


def test_item7_piv_cli_on_empty_volumes_reports_no_peaks(tmp_path, capsys):
    z = np.linspace(1e-3, 1.7e-3, 8)
    for name in ("a.h5", "b.h5"):
        H.write_volume(tmp_path / name, np.zeros((8, 16, 16), np.float32), z=z, wavelength=LAM,
                       pixel_size=PX, polarity="dark")
    assert main(["piv", str(tmp_path / "a.h5"), str(tmp_path / "b.h5"), "--window", "8",
                 "-o", str(tmp_path / "v.csv")]) == 0
    out = capsys.readouterr().out
    assert "without a correlation peak" in out


def test_item7_reconstruct_checks_every_input_up_front(tmp_path, capsys):
    (a,) = _holograms(tmp_path, ["a.tif"])
    assert _reconstruct([a, str(tmp_path / "missing.tif")], tmp_path / "out") == 2
    assert "missing.tif" in _one_error_line(capsys.readouterr().err)
    assert not (tmp_path / "out" / "a.h5").exists()      # no work before the check
    assert _reconstruct([a, a], tmp_path / "out") == 2
    assert "given twice" in _one_error_line(capsys.readouterr().err)
    with pytest.raises(SystemExit):
        _reconstruct([a], tmp_path / "out", "--chunk", "0")
    if os.name == "posix":
        with pytest.raises(SystemExit):
            main(["holo", "reconstruct", a, "--wavelength", "nan", "--pixel-size", "2e-6",
                  "--z", "1e-3:2e-3:3", "-o", str(tmp_path / "o")])


def test_verify_command_tells_complete_from_partial_output(tmp_path, capsys):
    """The manifest a run writes last is checked by ``diffimaging verify``."""
    from diffimaging.files import write_manifest

    (tmp_path / "a.csv").write_text("y_m,x_m,z_m\n")
    (tmp_path / "b.h5").write_bytes(b"x" * 100)
    write_manifest(tmp_path / "manifest.json", [tmp_path / "a.csv", tmp_path / "b.h5"], run="t")
    assert main(["verify", str(tmp_path)]) == 0
    assert "all 2 files present and unchanged" in capsys.readouterr().out
    (tmp_path / "b.h5").write_bytes(b"x" * 50)              # truncated
    assert main(["verify", str(tmp_path / "manifest.json")]) == 2
    cap = capsys.readouterr()
    assert "b.h5: 50 bytes, the manifest says 100" in cap.out
    assert "1 of the 2 files" in _one_error_line(cap.err)
    (tmp_path / "b.h5").write_bytes(b"y" * 100)             # same size, other contents
    assert main(["verify", str(tmp_path), "--no-checksum"]) == 0
    assert main(["verify", str(tmp_path)]) == 2
    assert "contents changed" in capsys.readouterr().out
    empty = tmp_path / "unfinished"
    empty.mkdir()
    assert main(["verify", str(empty)]) == 2
    assert "did not finish" in _one_error_line(capsys.readouterr().err)


def test_find_particles_min_separation_is_applied():
    """``min_separation`` was accepted and silently ignored: of two particles closer
    than it, only the stronger is kept now."""
    vol = np.zeros((9, 40, 40))
    vol[4, 10, 10] = 5.0                       # strong
    vol[4, 10, 16] = 3.0                       # weaker, 6 px = 12 um away
    vol[4, 30, 30] = 4.0                       # far from both
    z = np.linspace(1e-3, 1.8e-3, 9)
    kw = dict(pixel_size=2e-6, threshold=1.0, neighborhood=(3, 3, 3))
    assert len(H.find_particles(vol, z, **kw).positions) == 3
    f = H.find_particles(vol, z, min_separation=15e-6, **kw)
    np.testing.assert_allclose(f.positions[:, :2], [[20e-6, 20e-6], [60e-6, 60e-6]], atol=1e-7)
    assert len(H.find_particles(vol, z, min_separation=10e-6, **kw).positions) == 3
    for bad in (0.0, -1e-6, float("nan"), "1e-5"):
        with pytest.raises((ValueError, TypeError), match="min_separation"):
            H.find_particles(vol, z, min_separation=bad, **kw)
