"""Hologram series (holography.process_series and 'holo series'): the Dask run equals
the sequential one, a resumed run does no work, a corrupt frame is reported while
the rest completes, a worker killed mid-run loses no frame and duplicates none."""
import json
import os
import signal
import threading
import time

import numpy as np
import pytest

from diffimaging import holography as H
from diffimaging._backend import files as F
from diffimaging.holography.series import SeriesSettings, process_series, series_frames

from conftest import gpu_available as _gpu

PX, LAM = 2e-6, 532e-9


@pytest.fixture(scope="module")
def frames(tmp_path_factory):
    """8 tiny frames (64^2, 10 particles moving 1.5 px down and 0.5 px right per frame)
    as 16-bit TIFFs, and the true displacement per frame [m]."""
    tifffile = pytest.importorskip("tifffile")
    d = tmp_path_factory.mktemp("series")
    n = 64
    tab = H.random_particles((n, n), PX, count=10, z_range=(1.0e-3, 1.5e-3), margin=8 * PX, seed=3)
    step = np.array([1.5 * PX, 0.5 * PX, 0.0])
    holos, _ = H.simulate_sequence((n, n), tab, H.motion.uniform(tuple(step)), frames=8,
                                   wavelength=LAM, pixel_size=PX, gaussian_noise=0.01, seed=4)
    for i, h in enumerate(holos):
        tifffile.imwrite(d / f"f_{i:03d}.tif", (h * 1000).astype(np.uint16))
    return d, step


def _settings(**kw):
    return dict(dict(wavelength=LAM, pixel_size=PX, z=np.linspace(0.95e-3, 1.55e-3, 13),
                     iterations=20, dt=0.01), **kw)


def _tables(out):
    """The series tables' rows (the '#' header holds the time of writing)."""
    return tuple([line for line in (out / name).read_text().splitlines()
                  if not line.startswith("#")] for name in ("particles.csv", "vectors.csv"))


def test_sequential_series_finds_the_particles_and_their_motion(frames, tmp_path):
    d, step = frames
    r = process_series(str(d / "*.tif"), _settings(), out=tmp_path / "seq", progress=False)
    assert (r.total, r.frames, r.pairs, r.failed, r.skipped) == (8, 8, 7, {}, 0)
    assert abs(r.dz) < 20e-6                                # calibrated once, recorded
    state = json.loads((tmp_path / "seq" / "series.json").read_text())
    assert state["dz"]["frame"] == "f_000.tif"
    # a calibration recording instead of a frame of the series: the same offset here
    r2 = process_series(str(d / "*.tif"), _settings(calibrate=str(d / "f_000.tif")),
                        out=tmp_path / "cal", progress=False)
    assert r2.dz == r.dz
    assert F.verify_manifest(r.manifest) == []
    parts, _ = H.read_table(r.particles)
    per_frame = np.bincount(parts["frame"], minlength=8)
    assert np.all(per_frame >= 6) and np.all(per_frame <= 12), per_frame   # some leave the field
    vec, _ = H.read_table(r.vectors)
    v = np.median(np.column_stack([vec["v_m_per_s"], vec["u_m_per_s"], vec["w_m_per_s"]]),
                  axis=0) * 0.01                             # (vy, vx, vz) m per frame
    np.testing.assert_allclose(v[:2], step[:2], atol=0.35 * PX)
    # volumes are not kept by default: a frame file holds particles only
    import h5py

    with h5py.File(tmp_path / "seq" / "frames" / "frame_00000.h5") as f:
        assert "volume" not in f and f["positions"].shape[1] == 3


def test_dask_series_equals_the_sequential_one_and_resume_does_no_work(frames, tmp_path):
    pytest.importorskip("distributed")
    d, _ = frames
    seq = process_series(str(d / "*.tif"), _settings(), out=tmp_path / "seq", progress=False)
    par = process_series(str(d / "*.tif"), _settings(), out=tmp_path / "dask", workers=2,
                         progress=False)
    assert (par.frames, par.pairs, par.failed) == (8, 7, {})
    assert _tables(tmp_path / "dask") == _tables(tmp_path / "seq")
    before = {p.name: F.sha256(p) for p in (tmp_path / "dask" / "frames").iterdir()}
    again = process_series(str(d / "*.tif"), _settings(), out=tmp_path / "dask", workers=2,
                           progress=False)
    assert (again.processed, again.skipped, again.frames, again.pairs) == (0, 8, 8, 7)
    assert {p.name: F.sha256(p) for p in (tmp_path / "dask" / "frames").iterdir()} == before
    assert seq.dz == par.dz


def test_resume_redoes_only_what_is_missing_or_changed(frames, tmp_path):
    d, _ = frames
    out = tmp_path / "r"
    process_series(str(d / "*.tif"), _settings(), out=out, progress=False)
    ref = _tables(out)
    (out / "frames" / "frame_00002.h5").unlink()                    # lost
    with open(out / "frames" / "frame_00005.h5", "r+b") as fh:      # damaged
        fh.seek(100)
        fh.write(b"\0" * 16)
    (out / "frames" / ".frame_00006.h5.abc.part").write_bytes(b"x")  # a killed write's leftover
    r = process_series(str(d / "*.tif"), _settings(), out=out, progress=False)
    assert (r.processed, r.skipped, r.frames) == (2, 6, 8)
    assert _tables(out) == ref
    assert not list((out / "frames").glob("*.part"))
    with pytest.raises(ValueError, match="other settings"):
        process_series(str(d / "*.tif"), _settings(iterations=21), out=out, progress=False)


def test_kept_volumes_give_piv_vectors_between_frames(frames, tmp_path):
    d, step = frames
    r = process_series(str(d / "*.tif"), _settings(keep="volume", piv_window=(8, 16, 16)),
                       out=tmp_path / "v", progress=False, figure=False)
    assert r.frames == 8 and (tmp_path / "v" / "piv.csv").is_file()
    piv, _ = H.read_table(tmp_path / "v" / "piv.csv")
    assert set(piv["frame"]) == set(range(7))
    good = piv["outlier"] == 0
    v = np.median(np.column_stack([piv["v_m_per_s"][good], piv["u_m_per_s"][good]]),
                  axis=0) * 0.01                                     # m per frame, lateral
    np.testing.assert_allclose(v, step[:2], atol=0.5 * PX)
    assert F.verify_manifest(r.manifest) == []


def test_a_corrupt_frame_is_reported_and_the_rest_completes(frames, tmp_path):
    d, _ = frames
    src = tmp_path / "frames"
    src.mkdir()
    for p in sorted(d.glob("*.tif")):
        (src / p.name).write_bytes(p.read_bytes())
    bad = src / "f_003.tif"
    bad.write_bytes(bad.read_bytes()[:300])                          # truncated
    r = process_series(str(src), _settings(), out=tmp_path / "out", progress=False, retries=1)
    assert list(r.failed) == ["f_003.tif"]
    assert "f_003.tif" in r.failed["f_003.tif"]                       # the error names the file
    assert r.frames == 7 and r.pairs == 5                            # 2-3 and 3-4 are missing
    man = F.read_manifest(r.manifest)
    assert man["meta"]["failed"] == r.failed


def test_a_worker_killed_mid_run_loses_no_frame_and_duplicates_none(frames, tmp_path):
    distributed = pytest.importorskip("distributed")
    d, _ = frames
    out = tmp_path / "k"
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       dashboard_address=None)
    client = distributed.Client(cluster)
    result = {}
    try:
        def run():
            result["r"] = process_series(str(d / "*.tif"), _settings(iterations=60), out=out,
                                         client=client, progress=False)

        t = threading.Thread(target=run)
        t.start()
        state = out / "series.json"
        deadline = time.time() + 60
        killed = False
        while time.time() < deadline and t.is_alive():
            try:
                done = len(json.loads(state.read_text())["done"])
            except (OSError, ValueError, KeyError):
                done = 0
            if 1 <= done < 8:
                pids = client.run(os.getpid)
                os.kill(next(iter(pids.values())), signal.SIGKILL)   # one worker, mid-run
                killed = True
                break
            time.sleep(0.02)
        t.join(120)
        assert killed, "the run ended before a worker could be killed"
    finally:
        client.close()
        cluster.close()
    r = result["r"]
    assert (r.frames, r.pairs, r.failed) == (8, 7, {})
    names = sorted(p.name for p in (out / "frames").iterdir())
    assert names == [f"frame_{i:05d}.h5" for i in range(8)]          # each frame once
    assert F.verify_manifest(r.manifest) == []


def test_series_settings_and_frames_are_checked(frames, tmp_path):
    d, _ = frames
    with pytest.raises(ValueError, match="method must be 'dh' or 'backprop'"):
        SeriesSettings(**_settings(method="fast"))
    with pytest.raises(ValueError, match="keep='projections' needs method='backprop'"):
        SeriesSettings(**_settings(keep="projections"))
    with pytest.raises(ValueError, match="keep='volume' needs method='dh'"):
        SeriesSettings(**_settings(keep="volume", method="backprop"))
    with pytest.raises(ValueError, match="unknown series settings \\['wavelenght'\\]"):
        SeriesSettings.from_any(dict(_settings(), wavelenght=1.0))
    assert SeriesSettings(**_settings()).device == ("gpu" if _gpu() else "cpu")   # auto
    with pytest.raises(ValueError, match="device must be 'auto', 'cpu' or 'gpu'"):
        SeriesSettings(**_settings(device="tpu"))
    with pytest.raises(ValueError, match="dt must be the time between frames"):
        SeriesSettings(**_settings(dt=0))
    with pytest.raises(ValueError, match="calibrate must be a frame index"):
        SeriesSettings(**_settings(calibrate=1.5))
    with pytest.raises(FileNotFoundError, match="calibration recording .* does not exist"):
        process_series(str(d / "*.tif"), _settings(calibrate=str(tmp_path / "none.tif")),
                       out=tmp_path / "c", progress=False)
    with pytest.raises(FileNotFoundError, match="no frames found"):
        series_frames(str(tmp_path / "*.tif"))
    assert [n for _, n in series_frames(str(d))] == [None] * 8


def test_holo_series_command(frames, tmp_path):
    from diffimaging.cli import main

    d, _ = frames
    out = tmp_path / "cli"
    rc = main(["holo", "series", str(d / "*.tif"), "--wavelength", "532e-9", "--pixel-size",
               "2e-6", "--z", "0.95e-3:1.55e-3:13", "--iterations", "20", "--dt", "0.01",
               "--method", "backprop", "--keep", "projections", "--workers", "0", "-o",
               str(out)])
    assert rc == 0
    assert F.verify_manifest(out / "manifest.json") == []
    import h5py

    with h5py.File(out / "frames" / "frame_00003.h5") as f:
        assert set(f["projections"]) == {"min", "max", "argmin_z", "argmax_z"}
    assert (out / "series.png").is_file()
