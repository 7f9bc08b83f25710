"""The lensless command line: ``lensless simulate``, ``lensless reconstruct`` (HDF5
capture sets; TIFF folders with a geometry file or flags), ``demo lensless``; the
contract (exit codes, one-line errors, outputs claimed first, manifest last,
--overwrite), and the README's walkthrough."""
import argparse
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import diffimaging
from diffimaging import holography as H
from diffimaging._backend import files as F
from diffimaging.cli import _aliases, build_parser, main
from diffimaging.holography import cli as hcli
from diffimaging.lensless import cli as lcli
from diffimaging.lensless import io as LIO

README = Path(__file__).resolve().parents[1] / "README.md"
#: a small, fast capture set: 8 captures of 32x32 sensor pixels
SMALL = ["--window", "64", "--captures", "8"]


def _one_error_line(err):
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


@pytest.fixture(scope="module")
def capset(tmp_path_factory):
    path = tmp_path_factory.mktemp("caps") / "caps.h5"
    assert main(["lensless", "simulate", "-o", str(path), *SMALL, "-q"]) == 0
    return path


def test_simulate_writes_a_capture_set_and_its_manifest(capset, tmp_path, capsys):
    caps = LIO.read_captures(capset)
    assert caps.K == 8 and caps.sensor_shape == (32, 32) and caps.factor == 2
    assert {"shifts", "z", "field"} <= set(caps.truth)
    assert F.verify_manifest(capset.with_name("caps.h5.manifest.json")) == []
    out = tmp_path / "s.h5"
    assert main(["lensless", "simulate", "-o", str(out), *SMALL, "--object", "bars", "--window",
                 "128", "--photons", "none", "--seed", "3"]) == 0
    assert "8 captures of 64x64 px (bars" in capsys.readouterr().out
    assert LIO.read_captures(out).truth["targets"]
    # a file of unknown origin is not replaced without --overwrite
    other = tmp_path / "other.h5"
    other.write_bytes(b"x")
    assert main(["lensless", "simulate", "-o", str(other), *SMALL]) == 2
    assert "does not record it as an output" in _one_error_line(capsys.readouterr().err)
    assert other.read_bytes() == b"x"
    assert main(["lensless", "simulate", "-o", str(other), *SMALL, "--overwrite", "-q"]) == 0
    assert capsys.readouterr().out == ""
    with pytest.raises(SystemExit) as e:
        main(["lensless", "simulate", "-o", str(other), "--z-range", "5e-4:1e-4"])
    assert e.value.code == 2 and "--z-range" in _one_error_line(capsys.readouterr().err)


def test_reconstruct_an_hdf5_set_end_to_end(capset, tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["lensless", "reconstruct", str(capset), "--iterations", "5", "-o", str(out)]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "8 captures of 32x32 px" in text and "against the simulated truth: PSNR" in text
    names = {e["path"] for e in F.read_manifest(out / "manifest.json")["files"]}
    assert set(lcli.RECONSTRUCT_FILES) <= names
    assert F.verify_manifest(out / "manifest.json") == []
    rec, attrs = LIO.read_reconstruction(out / "reconstruction.h5")
    assert rec.field.shape == (64, 64) and attrs["learned"] == "shift,z"
    assert not np.array_equal(rec.shifts, rec.nominal_shifts)          # learned
    doc = F.read_manifest(out / "manifest.json")
    settings = doc["meta"]["runs"][-1]["settings"]
    assert settings["learn"] == ["shift", "z"] and "psnr_db" in settings["scores"]
    assert doc["meta"]["runs"][-1]["inputs"] == [str(capset.resolve())]
    # the same input again: its own outputs are replaced; --learn none keeps the nominal geometry
    assert main(argv + ["--learn", "none", "-q"]) == 0
    rec, _ = LIO.read_reconstruction(out / "reconstruction.h5")
    assert np.array_equal(rec.shifts, rec.nominal_shifts) and np.array_equal(rec.z, rec.nominal_z)
    # the solver's options reach reconstruct and the records
    assert main(argv + ["--modulo", "--tv", "0.002", "--z-search", "30e-6", "-q"]) == 0
    rec, _ = LIO.read_reconstruction(out / "reconstruction.h5")
    assert rec.settings["modulo"] is True and rec.settings["tv"] == pytest.approx(0.002)
    assert rec.settings["z_search"] == pytest.approx(30e-6)
    run = F.read_manifest(out / "manifest.json")["meta"]["runs"][-1]["settings"]
    assert run["modulo"] is True and run["tv"] == pytest.approx(0.002)
    # another input into the same folder is refused before any work, then allowed by --overwrite
    other = tmp_path / "other.h5"
    LIO.write_captures(other, LIO.read_captures(capset))
    before = (out / "reconstruction.h5").stat().st_mtime_ns
    assert main(["lensless", "reconstruct", str(other), "--iterations", "2", "-o", str(out)]) == 2
    assert "holds the output of" in _one_error_line(capsys.readouterr().err)
    assert (out / "reconstruction.h5").stat().st_mtime_ns == before
    assert main(["lensless", "reconstruct", str(other), "--iterations", "2", "-o", str(out),
                 "--overwrite", "-q"]) == 0


def _tiff_set(folder, capset):
    """The simulated set as 12-bit TIFF files, as a camera writes them."""
    import tifffile

    caps = LIO.read_captures(capset)
    folder.mkdir()
    for k, im in enumerate(caps.images):
        counts = np.clip(np.round(im * 2000), 0, 4095).astype(np.uint16)
        tifffile.imwrite(folder / f"cap{k}.tif", counts)
    return caps


def test_reconstruct_a_tiff_folder_with_a_toml_geometry_or_flags(capset, tmp_path, capsys):
    caps = _tiff_set(tmp_path / "run", capset)
    np.savetxt(tmp_path / "stage.txt", caps.shifts, header="sy sx (m)")
    (tmp_path / "run" / "geometry.toml").write_text(
        f"wavelength = {caps.wavelength!r}\npixel_size = {caps.pixel_size!r}\nfactor = 2\n"
        f"z = {caps.z.tolist()!r}\nshifts_file = \"../stage.txt\"\n")
    assert main(["lensless", "reconstruct", str(tmp_path / "run"), "--iterations", "3", "-o",
                 str(tmp_path / "a"), "-q"]) == 0
    inputs = F.read_manifest(tmp_path / "a" / "manifest.json")["meta"]["runs"][-1]["inputs"]
    assert len(inputs) == 10                                 # 8 TIFFs, the geometry, its shifts
    assert inputs[8].endswith("geometry.toml") and inputs[9].endswith("stage.txt")
    rec, _ = LIO.read_reconstruction(tmp_path / "a" / "reconstruction.h5")
    assert np.allclose(rec.nominal_shifts, caps.shifts)
    # the same geometry as flags, on a glob pattern
    z = ",".join(repr(v) for v in caps.z.tolist())
    flags = ["--shifts", str(tmp_path / "stage.txt"), "--z", z, "--wavelength", "532e-9",
             "--pixel-size", "1.6e-6", "--factor", "2"]
    assert main(["lensless", "reconstruct", str(tmp_path / "run" / "cap*.tif"), *flags,
                 "--geometry", str(tmp_path / "run" / "geometry.toml"), "--iterations", "3",
                 "-o", str(tmp_path / "b"), "-q"]) == 0
    # without a geometry: the missing values are named with their flags
    os.remove(tmp_path / "run" / "geometry.toml")
    assert main(["lensless", "reconstruct", str(tmp_path / "run"), "--iterations", "3", "-o",
                 str(tmp_path / "c"), "--z", "4e-4"]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert "lacks wavelength, pixel_size, factor, shifts" in line and "--pixel-size" in line
    assert not (tmp_path / "c").exists()


def test_user_errors_are_one_line_and_write_nothing(capset, tmp_path, capsys):
    run = ["lensless", "reconstruct", str(capset), "-o", str(tmp_path / "o")]
    for extra, words in ((["--z", "400"], "400e-6 for 400 um"),
                         (["--shifts", str(tmp_path / "missing.csv")],
                          "shifts file (--shifts) not found"),
                         (["--pixel-size", "1.6"], "micrometres")):
        assert main(run + extra) == 2, extra
        assert words in _one_error_line(capsys.readouterr().err)
    assert main(["lensless", "reconstruct", str(tmp_path / "nope.h5"), "-o", str(tmp_path / "o")]) == 2
    assert "not found" in _one_error_line(capsys.readouterr().err)
    for extra, opt in ((["--learn", "shifts"], "--learn"), (["--iterations", "0"], "--iterations"),
                       (["--z", "x"], "--z"), (["--factor", "0"], "--factor"),
                       (["--tv", "-1"], "--tv"), (["--z-search", "0"], "--z-search")):
        with pytest.raises(SystemExit) as e:
            main(run + extra)
        assert e.value.code == 2 and opt in _one_error_line(capsys.readouterr().err)
    assert not (tmp_path / "o").exists()


def test_interrupt_and_internal_error_exit_codes(capset, tmp_path, monkeypatch, capsys):
    import diffimaging.lensless as L

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    def broken(*a, **k):
        raise RuntimeError("a bug")

    out = tmp_path / "o"
    monkeypatch.setattr(L, "reconstruct", interrupted)
    assert main(["lensless", "reconstruct", str(capset), "-o", str(out)]) == 130
    assert "interrupted" in _one_error_line(capsys.readouterr().err)
    assert sorted(p.name for p in out.iterdir()) == []           # no manifest, no partial file
    monkeypatch.setattr(L, "reconstruct", broken)
    assert main(["lensless", "reconstruct", str(capset), "-o", str(out)]) == 1
    assert "internal error: RuntimeError: a bug" in _one_error_line(capsys.readouterr().err)


def test_demo_lensless_runs_and_plain_demo_is_still_holography(tmp_path, capsys):
    assert build_parser().parse_args(["demo"]).func is hcli.cmd_demo
    assert build_parser().parse_args(_aliases(["-v", "demo", "lensless"])).func is lcli.cmd_demo
    assert _aliases(["demo", "-o", "x"]) == ["demo", "-o", "x"]
    out = tmp_path / "d"
    # the bar target needs a larger window: refused before any work
    assert main(["demo", "lensless", "-o", str(out), "--window", "64"]) == 2
    assert "--objects camera" in _one_error_line(capsys.readouterr().err)
    assert not out.exists()
    assert main(["demo", "lensless", "-o", str(out), "--window", "64", "--iterations", "3",
                 "--objects", "camera"]) == 0
    text = capsys.readouterr().out
    for method in ("learned", "nominal", "classical"):
        assert re.search(rf"{method}\s+PSNR \d+\.\d+ dB, shift RMSE", text), text
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["camera"]) == {"learned", "nominal", "classical"}
    assert metrics["camera"]["learned"]["height_rmse_m"] < 1e-4
    assert F.verify_manifest(out / "manifest.json") == []
    names = {e["path"] for e in F.read_manifest(out / "manifest.json")["files"]}
    assert {"captures_camera.h5", "learned_camera.h5", "nominal_camera.h5", "classical_camera.h5",
            "calibration.csv", "metrics.json"} <= names


def _actions(parser):
    for a in parser._actions:
        if isinstance(a, argparse._SubParsersAction):
            for sub in a.choices.values():
                yield from _actions(sub)
        else:
            yield parser.prog, a


def test_lensless_options_state_their_defaults():
    progs = set()
    for prog, a in _actions(build_parser()):
        if not prog.startswith("diffimaging lensless"):
            continue
        progs.add(prog)
        if isinstance(a, argparse._HelpAction) or a.dest in ("verbose", "quiet"):
            continue
        assert a.help, (prog, a.dest)
        if a.option_strings and not a.required:
            assert "default" in a.help.casefold(), (prog, a.dest)
    assert progs - {"diffimaging lensless"} == {f"diffimaging lensless {c}"
                                                for c in ("reconstruct", "simulate", "demo")}


def test_readme_lensless_walkthrough_runs_as_written(tmp_path, monkeypatch):
    """The README's lensless walkthrough: its Python block writes the lab folder, its
    bash block (run by bash, with ``diffimaging`` the command line of this
    interpreter) reconstructs it and a simulated set."""
    text = README.read_text(encoding="utf-8")
    part = text[text.index("### Lensless imaging from the command line"):]
    py = re.search(r"```python\n(.*?)```", part, re.S).group(1)
    sh = re.search(r"```bash\n(.*?)```", part, re.S).group(1)
    monkeypatch.chdir(tmp_path)
    exec(compile(py, "README lensless walkthrough", "exec"), {"__name__": "__readme__"})
    shim = tmp_path / "bin" / "diffimaging"
    shim.parent.mkdir()
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m diffimaging "$@"\n')
    shim.chmod(0o755)
    env = dict(os.environ, PATH=f"{shim.parent}{os.pathsep}{os.environ['PATH']}",
               PYTHONPATH=os.pathsep.join([str(Path(diffimaging.__file__).parents[1])]
                                          + ([os.environ["PYTHONPATH"]] if "PYTHONPATH" in os.environ
                                             else [])))
    r = subprocess.run(["bash", "-euo", "pipefail", "-c", sh], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "present and unchanged" in r.stdout
    assert "against the simulated truth: PSNR" in r.stdout
    cols, meta = H.read_table(tmp_path / "lab-rec" / "calibration.csv")
    assert len(cols["capture"]) == 8 and "summary" in meta
    rec2, _ = LIO.read_reconstruction(tmp_path / "lab-rec2" / "reconstruction.h5")
    learned = np.column_stack([cols["learned_sy_m"], cols["learned_sx_m"]])
    assert np.allclose(rec2.nominal_shifts, learned) and np.allclose(rec2.shifts, learned)
