"""The FPM command line: ``fpm simulate``, ``fpm reconstruct`` (HDF5 datasets; TIFF
folders with a setup file), ``demo fpm``; the contract (exit codes, one-line
errors, outputs claimed first, manifest last, --overwrite) and the report's
figures and calibration table."""
import argparse
import importlib.util
import json
import re
from pathlib import Path

import numpy as np
import pytest

from diffimaging import fpm
from diffimaging._backend import files as F
from diffimaging.cli import _aliases, build_parser, main
from diffimaging.fpm import cli as fcli
from diffimaging.fpm import io as FIO
from diffimaging.fpm import report
from diffimaging.fpm.reconstruct import DEFAULT_LEARN

#: a tiny dataset: 7 x 7 LEDs, 16 x 16 px images (a 64 x 64 px object)
TINY = ["--leds", "7", "--shape", "16", "--photons", "2000"]
FAST = ["--iterations", "3", "--pad", "2"]
HAVE_MPL = importlib.util.find_spec("matplotlib") is not None


def _one_error_line(err):
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """``fpm simulate`` of the tiny case with two corrupted frames."""
    path = tmp_path_factory.mktemp("fpm") / "data.h5"
    assert main(["fpm", "simulate", "-o", str(path), *TINY, "--corrupted", "2", "-q"]) == 0
    return path


def test_simulate_writes_a_dataset_with_truth_and_a_manifest(dataset, tmp_path, capsys):
    data = FIO.read_dataset(dataset)
    assert data.images.shape == (49, 16, 16) and data.setup.rows == data.setup.cols == 7
    assert len(data.truth["corrupted"]) == 2 and data.truth["photons"] == 2000
    assert F.verify_manifest(Path(str(dataset) + ".manifest.json")) == []
    # --large: the big misalignment; a refused replacement of another file
    out = tmp_path / "big.h5"
    out.write_text("not mine")
    assert main(["fpm", "simulate", "-o", str(out), *TINY, "--large"]) == 2
    assert "--overwrite" in _one_error_line(capsys.readouterr().err)
    assert main(["fpm", "simulate", "-o", str(out), *TINY, "--large", "--overwrite",
                 "--obj", "bars"]) == 0
    assert "rotation +1.50 deg, height +4.00 mm" in capsys.readouterr().out
    t = FIO.read_dataset(out).truth
    assert np.allclose(np.asarray(t["setup"].offset), [600e-6, -400e-6])
    assert t["obj"] == "bars"


def test_reconstruct_an_hdf5_dataset(dataset, tmp_path, capsys):
    out = tmp_path / "rec"
    argv = ["fpm", "reconstruct", str(dataset), *FAST, "-o", str(out)]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert re.search(r"learned: offset \([-+]\d+\.\d, [-+]\d+\.\d\) um, rotation [-+]\d\.\d+ deg, "
                     r"height [-+]\d\.\d+ mm .*Zernike RMS \d\.\d+ rad, lowest-weight frames "
                     r"\d+ \(\d\.\d\d\).*; \d+\.\d s$", text, re.M), text
    assert "against the simulated truth: PSNR" in text
    names = {e["path"] for e in F.read_manifest(out / "manifest.json")["files"]}
    assert set(fcli.RECONSTRUCT_FILES) <= names
    if HAVE_MPL:
        assert set(fcli.FIGURES) <= names
    assert F.verify_manifest(out / "manifest.json") == []
    rec = FIO.read_reconstruction(out / "reconstruction.h5")
    assert rec.object.shape == (64, 64) and rec.settings["learn"] == list(DEFAULT_LEARN)
    cal = json.loads((out / "calibration.json").read_text())
    assert {"nominal", "learned", "true", "zernike", "scores", "lowest_weight_frames"} <= set(cal)
    assert cal["corrupted_frames"] == FIO.read_dataset(dataset).truth["corrupted"]
    run = F.read_manifest(out / "manifest.json")["meta"]["runs"][-1]
    assert run["inputs"] == [str(dataset.resolve())] and "psnr" in run["settings"]["scores"]
    # the same input again, nominal setup, no figures: its own outputs are replaced
    assert main(argv + ["--learn", "none", "--no-figures", "--no-calibrate", "-q"]) == 0
    rec = FIO.read_reconstruction(out / "reconstruction.h5")
    assert rec.geometry["rotation"] == rec.setup.rotation and rec.settings["learn"] == []
    assert rec.settings["calibrate"] is False
    assert F.verify_manifest(out / "manifest.json") == []


def _tiff_folder(folder, dataset, setup=True):
    import tifffile

    data = FIO.read_dataset(dataset)
    folder.mkdir()
    for j, im in enumerate(data.images):
        tifffile.imwrite(folder / f"img{j}.tif", np.round(im).astype(np.uint16))
    if setup:
        FIO.write_setup(folder / "setup.toml", data.setup)
    return data


def test_reconstruct_a_tiff_folder_and_its_user_errors(dataset, tmp_path, capsys):
    data = _tiff_folder(tmp_path / "lab", dataset)
    out = tmp_path / "rec"
    assert main(["fpm", "reconstruct", str(tmp_path / "lab"), "--iterations", "2", "--pad", "2",
                 "--no-figures", "--loss", "poisson", "-o", str(out), "-q"]) == 0
    inputs = F.read_manifest(out / "manifest.json")["meta"]["runs"][-1]["inputs"]
    assert len(inputs) == 50 and inputs[-1].endswith("setup.toml")
    rec = FIO.read_reconstruction(out / "reconstruction.h5")
    assert rec.setup == data.setup and rec.settings["loss"] == "poisson"
    # TIFFs without a setup: one line naming --setup, nothing written
    (tmp_path / "lab" / "setup.toml").rename(tmp_path / "setup.toml")
    bad = tmp_path / "bad"
    assert main(["fpm", "reconstruct", str(tmp_path / "lab" / "img*.tif"), "-o", str(bad)]) == 2
    assert "--setup" in _one_error_line(capsys.readouterr().err)
    # the wrong image count for the setup's LED grid
    FIO.write_setup(tmp_path / "nine.toml", fpm.standard_setup(rows=9, cols=9))
    assert main(["fpm", "reconstruct", str(tmp_path / "lab"), "--setup",
                 str(tmp_path / "nine.toml"), "-o", str(bad)]) == 2
    assert "holds 49 images but the LED grid" in _one_error_line(capsys.readouterr().err)
    # an HDF5 dataset carries its setup; a missing input
    assert main(["fpm", "reconstruct", str(dataset), "--setup", str(tmp_path / "setup.toml"),
                 "-o", str(bad)]) == 2
    assert "carries its setup" in _one_error_line(capsys.readouterr().err)
    assert main(["fpm", "reconstruct", str(tmp_path / "nope.h5"), "-o", str(bad)]) == 2
    assert "not found" in _one_error_line(capsys.readouterr().err)
    assert not bad.exists()
    # another input into the same folder is refused before any work
    before = (out / "reconstruction.h5").stat().st_mtime_ns
    assert main(["fpm", "reconstruct", str(dataset), *FAST, "-o", str(out)]) == 2
    assert "holds the output of" in _one_error_line(capsys.readouterr().err)
    assert (out / "reconstruction.h5").stat().st_mtime_ns == before


def test_bad_arguments_exit_2_with_one_line(dataset, tmp_path, capsys):
    run = ["fpm", "reconstruct", str(dataset), "-o", str(tmp_path / "o")]
    for extra, opt in ((["--learn", "pupils"], "--learn"), (["--iterations", "0"], "--iterations"),
                       (["--loss", "l2"], "--loss"), (["--zernike", "40"], "--zernike"),
                       (["--pad", "-1"], "--pad"), (["--background", "x"], "--background")):
        with pytest.raises(SystemExit) as e:
            main(run + extra)
        assert e.value.code == 2 and opt in _one_error_line(capsys.readouterr().err)
    for extra, opt in ((["--leds", "0"], "--leds"), (["--shape", "4"], "--shape"),
                       (["--photons", "-1"], "--photons")):
        with pytest.raises(SystemExit) as e:
            main(["fpm", "simulate", "-o", str(tmp_path / "s.h5"), *extra])
        assert e.value.code == 2 and opt in _one_error_line(capsys.readouterr().err)
    assert main(["fpm", "simulate", "-o", str(tmp_path / "s.h5"), *TINY, "--corrupted", "50"]) == 2
    assert "only 49 frames" in _one_error_line(capsys.readouterr().err)
    assert not (tmp_path / "o").exists() and not (tmp_path / "s.h5").exists()


def test_interrupt_and_internal_error_exit_codes(dataset, tmp_path, monkeypatch, capsys):
    def interrupted(*a, **k):
        raise KeyboardInterrupt

    def broken(*a, **k):
        raise RuntimeError("a bug")

    out = tmp_path / "o"
    monkeypatch.setattr(fpm, "reconstruct", interrupted)
    assert main(["fpm", "reconstruct", str(dataset), "-o", str(out)]) == 130
    assert "interrupted" in _one_error_line(capsys.readouterr().err)
    assert list(out.iterdir()) == []                  # no manifest, no partial file
    monkeypatch.setattr(fpm, "reconstruct", broken)
    assert main(["fpm", "reconstruct", str(dataset), "-o", str(out)]) == 1
    assert "internal error: RuntimeError: a bug" in _one_error_line(capsys.readouterr().err)


def test_demo_fpm_prints_the_scores_and_writes_its_outputs(tmp_path, capsys):
    args = build_parser().parse_args(_aliases(["-v", "demo", "fpm", "--quick"]))
    assert args.func is fcli.cmd_demo and args.quick
    assert _aliases(["demo", "fpm", "-o", "x"]) == ["fpm", "demo", "-o", "x"]
    assert _aliases(["demo", "-o", "fpm"]) == ["demo", "-o", "fpm"]
    out = tmp_path / "d"
    assert main(["demo", "fpm", "--quick", "--leds", "7", "--shape", "16", "--iterations", "2",
                 "--pad", "2", "--epry-iterations", "3", "-o", str(out)]) == 0
    text = capsys.readouterr().out
    methods = ("learned", "nominal", "epry") if fcli._epry() else ("learned", "nominal")
    for m in methods:
        row = rf"^{m}\s+\d+\.\d\d\s+[-\d.]+\s+\d+\.\d\d\s+[-+]\d\.\d{{3}}"
        assert re.search(row, text, re.M), text
    assert "PSNR of the learned setup: " in text and "dB vs nominal" in text
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(methods) <= set(metrics) and metrics["settings"]["leds"] == [7, 7]
    assert metrics["psnr_gain_db"]["learned-nominal"] == pytest.approx(
        metrics["learned"]["psnr"] - metrics["nominal"]["psnr"])
    assert F.verify_manifest(out / "manifest.json") == []
    names = {e["path"] for e in F.read_manifest(out / "manifest.json")["files"]}
    assert {"data.h5", "learned.h5", "nominal.h5", "calibration.json", "metrics.json"} <= names
    if HAVE_MPL:
        assert set(fcli.FIGURES) | {"objects.png"} <= names


def _actions(parser):
    for a in parser._actions:
        if isinstance(a, argparse._SubParsersAction):
            for sub in a.choices.values():
                yield from _actions(sub)
        else:
            yield parser.prog, a


def test_fpm_options_state_their_defaults():
    progs = set()
    for prog, a in _actions(build_parser()):
        if not prog.startswith("diffimaging fpm"):
            continue
        progs.add(prog)
        if isinstance(a, argparse._HelpAction) or a.dest in ("verbose", "quiet"):
            continue
        assert a.help, (prog, a.dest)
        if a.option_strings and not a.required:
            assert "default" in a.help.casefold(), (prog, a.dest)
    assert progs - {"diffimaging fpm"} == {f"diffimaging fpm {c}"
                                           for c in ("reconstruct", "simulate", "demo")}


@pytest.mark.skipif(not HAVE_MPL, reason="figures need matplotlib")
def test_report_figures_and_table_of_a_baseline(dataset, tmp_path):
    data = FIO.read_dataset(dataset)
    rec = fpm.epry(data, iterations=2)
    cal = report.calibration_table(rec)                      # no truth: no scores
    assert "scores" not in cal and cal["learned"] == cal["nominal"]
    assert len(cal["lowest_weight_frames"]) == 5 and cal["zernike"]["noll"][0] == 1
    cal = report.calibration_table(rec, data.truth)          # the truth dict is enough
    assert cal["scores"]["psnr"] > 0 and "error_rms_rad" in cal["zernike"]
    for fig in (report.plot_object(rec), report.plot_object(rec, truth=data.truth["object"]),
                report.plot_pupil(rec, truth_zernike=[0, 0, 0, 0.5]), report.plot_leds(rec),
                report.plot_weights(rec, corrupted=[3]), report.plot_loss(rec)):
        assert fig.axes
    path = report.write_calibration(tmp_path / "cal.json", rec, data)
    assert json.loads(path.read_text())["scores"]["ssim"] <= 1
    with pytest.raises(ValueError, match=".json"):
        report.write_calibration(tmp_path / "cal.csv", rec)
    with pytest.raises(TypeError, match="Reconstruction"):
        report.plot_loss(data)
