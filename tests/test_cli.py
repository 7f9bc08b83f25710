"""The command line end to end on tiny cases."""
import csv
import json

import numpy as np
import pytest

from diffimaging import holography as H
from diffimaging.cli import main

LAM, PX = 532e-9, 2e-6


def test_demo_writes_outputs(tmp_path, capsys):
    assert main(["demo", "-o", str(tmp_path / "d"), "--size", "96", "--ppp", "2e-3",
                 "--iterations", "25"]) == 0
    out = capsys.readouterr().out
    assert "recall" in out and "PIV" in out and "PTV" in out and "calibration" in out
    m = json.loads((tmp_path / "d" / "metrics.json").read_text())
    assert m["particles"] == round(2e-3 * 96 * 96)
    # the deliberately wrong (+3 %) recording distance is learned back
    assert abs(m["calibration"]["error_percent"]) < 0.2
    assert m["frame_a"]["recall"] >= 0.4 and m["frame_a"]["precision"] >= 0.4   # 25 iterations, 96^2
    assert m["piv"]["lateral_rmse_px"] < 1.0
    assert m["ptv"]["links"] > 0 and m["ptv"]["correct"] >= 0.5        # 0.69 measured (16 links)
    for f in ("volume_a.h5", "particles_a.csv", "particles_b.csv", "piv.csv", "piv.vtk", "ptv.csv",
              "hologram.png", "volume.png", "distance.png", "piv.png"):
        assert (tmp_path / "d" / f).stat().st_size > 0


def test_reconstruct_particles_piv_pipeline(tmp_path):
    import tifffile

    tab = H.random_particles((96, 96), PX, count=25, z_range=(1.5e-3, 2.5e-3), margin=8 * PX, seed=4)
    for name, shift in (("a", 0.0), ("b", 2 * PX)):
        t = H.ParticleTable(tab.positions + [0.0, shift, 0.0], tab.diameters)
        h, _ = H.simulate_particles((96, 96), t, wavelength=LAM, pixel_size=PX)
        tifffile.imwrite(tmp_path / f"{name}.tif", (h * 1000).astype(np.uint16))
    rc = main(["holo", "reconstruct", str(tmp_path / "a.tif"), str(tmp_path / "b.tif"),
               "--wavelength", "532e-9", "--pixel-size", "2e-6", "--z", "1.4e-3:2.6e-3:25",
               "-o", str(tmp_path / "vol")])
    assert rc == 0
    vol, z, attrs = H.read_volume(tmp_path / "vol" / "a.h5")
    assert vol.shape[0] == 25 and attrs["wavelength_m"] == 532e-9
    assert attrs["method"] == "dh" and attrs["polarity"] == "bright" and vol.min() >= 0
    # the distance is learned on the first hologram and held for the second
    _, zb, attrs_b = H.read_volume(tmp_path / "vol" / "b.h5")
    np.testing.assert_array_equal(z, zb)
    assert z[0] - 1.4e-3 == pytest.approx(attrs["z_offset_m"])        # the learned offset
    assert main(["holo", "particles", str(tmp_path / "vol" / "a.h5"), "-o", str(tmp_path / "p.csv"),
                 "--vtk", str(tmp_path / "p.vtk")]) == 0
    cols, meta = H.read_table(tmp_path / "p.csv")
    assert list(cols)[:4] == ["particle_id", "x_m", "y_m", "z_m"] and len(cols["x_m"]) > 0
    assert meta["wavelength_m"] == 532e-9
    # PIV at this low density (25 particles) correlates the back-propagated volumes
    assert main(["holo", "reconstruct", str(tmp_path / "a.tif"), str(tmp_path / "b.tif"),
                 "--method", "backprop", "--wavelength", "532e-9", "--pixel-size", "2e-6",
                 "--z", "1.4e-3:2.6e-3:25", "-o", str(tmp_path / "bp")]) == 0
    assert main(["piv", str(tmp_path / "bp" / "a.h5"), str(tmp_path / "bp" / "b.h5"),
                 "--window", "8", "-o", str(tmp_path / "v.csv")]) == 0
    cols, _ = H.read_table(tmp_path / "v.csv")
    u = next(k for k in cols if k.startswith("u_m_per_"))      # per s (--dt) or per frame
    # the x displacement of 2 pixels (4 um per frame) dominates where particles are
    assert np.median(cols[u]) == pytest.approx(2 * PX, rel=0.5)
    assert "outlier" in cols and "peak_ratio" in cols


def test_cli_errors(tmp_path, capsys):
    assert main(["holo", "reconstruct", str(tmp_path / "missing.tif"), "--wavelength", "532e-9",
                 "--pixel-size", "2e-6", "--z", "1e-3:2e-3:5", "-o", str(tmp_path)]) == 2
    assert "not found" in capsys.readouterr().err
    assert main(["holo", "reconstruct", "x.tif", "--wavelength", "532e-9", "--pixel-size", "2",
                 "--z", "1e-3:2e-3:5", "-o", str(tmp_path)]) == 2
    assert "micrometres" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["holo", "reconstruct", "x.tif", "--wavelength", "532e-9", "--pixel-size", "2e-6",
              "--z", "1mm", "-o", str(tmp_path)])
