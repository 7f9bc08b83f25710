"""Issue 9, file items: writers are atomic, volumes carry a completeness marker, a
full disk is a clean OSError, colour TIFFs are not frame series, decompression
bombs are refused from the header, NaN/Inf pixels are reported as such, and
every reader error names the file.  One group of tests per item."""
import csv
import errno
import json
import os
import signal
import struct
import subprocess
import sys
import textwrap
import time
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest

from diffimaging import holography as H
from diffimaging._backend.files import TEMP_SUFFIX

OPTICS = dict(wavelength=532e-9, pixel_size=2e-6)
PYTHON_DIR = str(Path(__file__).resolve().parents[1] / "python")


def _parts(folder):
    return sorted(p for p in os.listdir(folder) if p.endswith(TEMP_SUFFIX))


def _volume(nz=4, ny=16, nx=20, seed=0):
    return np.random.default_rng(seed).random((nz, ny, nx), dtype=np.float32)


def _run_child(code, *args, timeout=120):
    env = dict(os.environ, PYTHONPATH=PYTHON_DIR + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code), *map(str, args)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


# ------------------------------------------------------- item 1: every writer is atomic

def test_atomic_writers_csv_row_failure_keeps_old_file(tmp_path, monkeypatch):
    target = tmp_path / "p.csv"
    tab = np.array([[1e-5, 2e-5, 1e-3], [3e-5, 4e-5, 2e-3], [5e-5, 6e-5, 3e-3]])
    H.write_particles_csv(target, tab)
    good = target.read_bytes()

    real_writer = csv.writer

    class Failing:                          # the header, one row, then Ctrl-C
        def __init__(self, fh):
            self.w, self.n = real_writer(fh), 0

        def writerow(self, row):
            self.n += 1
            if self.n == 3:
                raise KeyboardInterrupt
            self.w.writerow(row)

    monkeypatch.setattr(csv, "writer", Failing)
    with pytest.raises(KeyboardInterrupt):
        H.write_particles_csv(target, tab * 2)
    with pytest.raises(KeyboardInterrupt):
        H.write_vectors_csv(target, tab, tab)
    assert target.read_bytes() == good and _parts(tmp_path) == []
    with pytest.raises(KeyboardInterrupt):
        H.write_vectors_csv(tmp_path / "new.csv", tab, tab)
    assert not (tmp_path / "new.csv").exists() and _parts(tmp_path) == []


def test_atomic_writers_hdf5_dataset_failure_keeps_old_file(tmp_path, monkeypatch):
    import h5py

    target = tmp_path / "v.h5"
    v = _volume()
    z = np.linspace(1e-3, 2e-3, 4)
    H.write_volume(target, v, z=z, **OPTICS)
    good = target.read_bytes()
    real = h5py.Group.create_dataset

    def failing(self, name, *a, **k):
        if name == "z":                      # after the volume was written
            raise OSError(errno.EIO, "injected failure")
        return real(self, name, *a, **k)

    monkeypatch.setattr(h5py.Group, "create_dataset", failing)
    with pytest.raises(OSError, match="injected"):
        H.write_volume(target, v * 2, z=z, **OPTICS)
    assert target.read_bytes() == good and _parts(tmp_path) == []
    monkeypatch.undo()
    got, gz, _ = H.read_volume(target)
    np.testing.assert_array_equal(got, v)


def test_atomic_writers_file_size_limit_keeps_every_old_file(tmp_path):
    # a full disk (here: a file-size limit) in the middle of each writer leaves the
    # previous complete file under the final name, for CSV, VTK and HDF5 alike
    code = """
        import errno, json, resource, signal, sys
        import numpy as np
        from diffimaging import holography as H
        d = sys.argv[1]
        n = 400
        pos = np.random.default_rng(0).random((n, 3))
        vol = np.random.default_rng(1).random((4, 64, 64), dtype=np.float32)
        z = np.linspace(1e-3, 2e-3, 4)
        writers = {
            "p.csv": lambda s: H.write_particles_csv(f"{d}/p.csv", pos * s),
            "v.csv": lambda s: H.write_vectors_csv(f"{d}/v.csv", pos * s, pos),
            "p.vtk": lambda s: H.write_vtk_points(f"{d}/p.vtk", pos * s, vectors=pos),
            "v.h5": lambda s: H.write_volume(f"{d}/v.h5", vol * s, z=z, wavelength=532e-9,
                                             pixel_size=2e-6),
        }
        for w in writers.values():
            w(1.0)
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (8192, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
        out = {}
        for name, w in writers.items():
            try:
                w(3.0)
                out[name] = "written"
            except OSError as exc:
                out[name] = [exc.errno, str(exc)]
        print(json.dumps(out))
    """
    child = _run_child(code, tmp_path)
    stdout, stderr = child.communicate(timeout=120)
    assert child.returncode == 0, stderr
    out = json.loads(stdout)
    for name, res in out.items():
        assert res[0] == errno.EFBIG and name in res[1], (name, res)
    assert _parts(tmp_path) == []
    assert len(H.read_table(tmp_path / "p.csv")[0]["x_m"]) == 400       # the old table, whole
    assert len(H.read_table(tmp_path / "v.csv")[0]["x_m"]) == 400
    import meshio

    assert len(meshio.read(tmp_path / "p.vtk").points) == 400
    vol, _, _ = H.read_volume(tmp_path / "v.h5")
    np.testing.assert_array_equal(vol, np.random.default_rng(1).random((4, 64, 64), dtype=np.float32))


def test_atomic_writers_sigterm_during_write_volume(tmp_path):
    # Python's default SIGTERM disposition kills the process without cleanup: the
    # final name must still be the old complete file (or the new complete one);
    # a leftover *.part temporary is allowed (documented in holography.io)
    target = tmp_path / "v.h5"
    old = _volume(2, 32, 32)
    H.write_volume(target, old, z=[1e-3, 2e-3], **OPTICS)
    code = """
        import sys
        import numpy as np
        from diffimaging import holography as H
        v = np.random.default_rng(2).random((48, 512, 512), dtype=np.float32)
        print("ready", flush=True)
        H.write_volume(sys.argv[1], v, z=np.linspace(1e-3, 2e-3, 48), wavelength=532e-9,
                       pixel_size=2e-6)
        print("done", flush=True)
    """
    child = _run_child(code, target)
    assert child.stdout.readline().strip() == "ready"
    time.sleep(0.3)                               # inside the (seconds-long) compression and write
    child.send_signal(signal.SIGTERM)
    child.communicate(timeout=120)
    got, z, _ = H.read_volume(target)
    if child.returncode == -signal.SIGTERM:
        np.testing.assert_array_equal(got, old)
    else:                                         # the write finished before the signal
        assert got.shape == (48, 512, 512)
    assert all(p.startswith(".v.h5.") for p in _parts(tmp_path))


def test_atomic_writers_overwrite_false_refuses(tmp_path):
    target = tmp_path / "p.csv"
    H.write_vectors_csv(target, np.zeros((1, 3)), np.ones((1, 3)))
    with pytest.raises(FileExistsError, match="refusing"):
        H.write_vectors_csv(target, np.ones((1, 3)), np.ones((1, 3)), overwrite=False)
    with pytest.raises(FileExistsError, match="refusing"):
        H.write_volume(target, _volume(), z=np.linspace(1e-3, 2e-3, 4), overwrite=False, **OPTICS)
    assert H.read_table(target)[0]["x_m"].tolist() == [0.0]


# ------------------------------------ item 2: read_volume refuses an incomplete volume

def test_volume_completeness_marker_checked(tmp_path):
    import h5py

    p = tmp_path / "v.h5"
    v = _volume()
    H.write_volume(p, v, z=np.linspace(1e-3, 2e-3, 4), polarity="dark", **OPTICS)
    with h5py.File(p, "r") as f:
        assert f.attrs["diffimaging_complete"] and list(f.attrs["diffimaging_shape"]) == [4, 16, 20]
    _, _, attrs = H.read_volume(p)
    assert "diffimaging_complete" not in attrs and attrs["polarity"] == "dark"
    # a volume whose datasets disagree with the recorded shape is incomplete
    with h5py.File(p, "a") as f:
        del f["volume"]
        f["volume"] = v[:2]
        del f["z"]
        f["z"] = np.linspace(1e-3, 2e-3, 2)
    with pytest.raises(ValueError, match=f"{p}.*incomplete"):
        H.read_volume(p)
    with h5py.File(p, "a") as f:
        f.attrs["diffimaging_complete"] = False
        f.attrs["diffimaging_shape"] = [2, 16, 20]
    with pytest.raises(ValueError, match="incomplete"):
        H.read_volume(p)


def test_volume_completeness_inconsistent_datasets_refused(tmp_path):
    import h5py

    p = tmp_path / "partial.h5"                   # what an interrupted writer can leave
    with h5py.File(p, "w") as f:
        f["volume"] = _volume()
        f["z"] = np.linspace(1e-3, 2e-3, 3)
    with pytest.raises(ValueError, match=f"{p}.*'z' holds 3 depths for 4 planes"):
        H.read_volume(p)


def test_volume_completeness_old_file_without_marker_warns(tmp_path):
    import h5py

    p = tmp_path / "old.h5"                       # as written by earlier versions
    v = _volume()
    with h5py.File(p, "w") as f:
        f.create_dataset("volume", data=v, compression="gzip")
        f["z"] = np.linspace(1e-3, 2e-3, 4)
        f.attrs["wavelength_m"] = 532e-9
        f.attrs["pixel_size_m"] = [2e-6, 2e-6]
    with pytest.warns(UserWarning, match="no completeness marker"):
        got, z, attrs = H.read_volume(p)
    np.testing.assert_array_equal(got, v)
    assert attrs["wavelength_m"] == 532e-9


# ---------------------------------- item 3: a full disk is a clean OSError, not SIGSEGV

def test_disk_full_hdf5_clean_oserror(tmp_path):
    code = """
        import json, resource, signal, sys
        import numpy as np
        from diffimaging import holography as H
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
        v = np.random.default_rng(0).random((8, 256, 256), dtype=np.float32)   # 2 MiB, incompressible
        try:
            H.write_volume(sys.argv[1], v, z=np.linspace(1e-3, 2e-3, 8), wavelength=532e-9,
                           pixel_size=2e-6)
            print(json.dumps("written"))
        except OSError as exc:
            print(json.dumps([type(exc).__name__, exc.errno, str(exc), exc.filename]))
    """
    target = tmp_path / "big.h5"
    child = _run_child(code, target)
    stdout, stderr = child.communicate(timeout=120)
    assert child.returncode == 0, f"died with {child.returncode}: {stderr[-2000:]}"
    name, err, msg, filename = json.loads(stdout)
    assert err in (errno.EFBIG, errno.ENOSPC) and str(target) in msg and filename == str(target)
    assert not target.exists() and _parts(tmp_path) == []


# --------------------------------- item 4: colour TIFFs are colour, not frame series

@pytest.mark.parametrize("layout", ["contig", "separate"])
@pytest.mark.parametrize("channels", [3, 4])
def test_planar_rgb_tiff_is_colour_not_frames(tmp_path, layout, channels):
    import tifffile

    rgb = np.random.default_rng(3).integers(0, 255, (16, 20, channels), dtype=np.uint8)
    data = rgb if layout == "contig" else np.moveaxis(rgb, -1, 0)
    extra = {"extrasamples": ["unassalpha"]} if channels == 4 else {}
    tifffile.imwrite(tmp_path / "c.tif", data, photometric="rgb", planarconfig=layout, **extra)
    if layout == "separate":
        # separate planes may be frames that tifffile stored as RGB by default: said, not silent
        with pytest.warns(UserWarning, match="photometric='minisblack'"):
            got = H.read_hologram(tmp_path / "c.tif")
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            got = H.read_hologram(tmp_path / "c.tif")
    np.testing.assert_allclose(got, rgb[..., :3].mean(axis=-1))
    # a series of colour frames: frames stay frames, samples become grey
    tifffile.imwrite(tmp_path / "s.tif", np.stack([data, data[::-1] if layout == "contig"
                                                   else data[:, ::-1]]),
                     photometric="rgb", planarconfig=layout, **extra)
    series = H.read_hologram(tmp_path / "s.tif")
    assert series.shape == (2, 16, 20)
    np.testing.assert_allclose(series[0], got)
    np.testing.assert_allclose(H.read_hologram(tmp_path / "s.tif", frame=1), got[::-1])


def test_planar_rgb_tiff_grey_series_stays_series(tmp_path):
    import tifffile

    grey = np.random.default_rng(4).integers(0, 255, (3, 16, 20), dtype=np.uint8)
    tifffile.imwrite(tmp_path / "g.tif", grey, photometric="minisblack")
    np.testing.assert_array_equal(H.read_hologram(tmp_path / "g.tif"), grey)
    np.testing.assert_array_equal(H.read_hologram(tmp_path / "g.tif", frame=-1), grey[2])
    with pytest.raises(ValueError, match="out of range"):
        H.read_hologram(tmp_path / "g.tif", frame=3)


# ------------------------------------------ item 5: decompression bombs, size limits

def _tiff_bomb(path, n):
    import tifffile

    tile = np.zeros((1024, 1024), np.uint8)
    k = -(-n // 1024)
    tifffile.imwrite(path, (tile for _ in range(k * k)), shape=(n, n), dtype=np.uint8,
                     tile=(1024, 1024), compression="zlib")


def _png_header_only(path, ny, nx):
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", nx, ny, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
                     + chunk(b"IDAT", zlib.compress(b"\0" * 1024)) + chunk(b"IEND", b""))


def test_decompression_bomb_tiff_refused_from_header(tmp_path):
    import tracemalloc

    p = tmp_path / "bomb.tif"
    _tiff_bomb(p, 20000)                         # ~420 KB declaring 20000² pixels
    assert p.stat().st_size < 1 << 20
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match=rf"{p}.*20000 x 20000 = 400,000,000 pixels.*max_pixels"):
            H.read_hologram(p)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 32 << 20                       # nothing decoded


def test_decompression_bomb_limits_overridable(tmp_path, monkeypatch):
    p = tmp_path / "big.tif"
    _tiff_bomb(p, 1100)
    with pytest.raises(ValueError, match="DIFFIMAGING_MAX_IMAGE_PIXELS"):
        H.read_hologram(p, max_pixels=1000 * 1000)
    assert H.read_hologram(p, max_pixels=np.int64(1100 * 1100)).shape == (1100, 1100)
    with pytest.raises(ValueError, match="GiB.*max_bytes"):
        H.read_hologram(p, max_bytes=1 << 20)
    monkeypatch.setenv("DIFFIMAGING_MAX_IMAGE_PIXELS", "1000000")
    with pytest.raises(ValueError, match="1,000,000"):
        H.read_hologram(p)
    assert H.read_hologram(p, max_pixels=None).shape == (1100, 1100)
    monkeypatch.setenv("DIFFIMAGING_MAX_IMAGE_PIXELS", "none")
    assert H.read_hologram(p).shape == (1100, 1100)
    monkeypatch.setenv("DIFFIMAGING_MAX_IMAGE_PIXELS", "lots")
    with pytest.raises(ValueError, match="DIFFIMAGING_MAX_IMAGE_PIXELS='lots'"):
        H.read_hologram(p)
    with pytest.raises(TypeError, match="max_pixels"):
        H.read_hologram(p, max_pixels=1e6)


def test_decompression_bomb_frame_decodes_one_frame(tmp_path):
    import tifffile

    frames = np.random.default_rng(5).integers(0, 255, (6, 32, 32), dtype=np.uint8)
    tifffile.imwrite(tmp_path / "s.tif", frames, photometric="minisblack")
    with pytest.raises(ValueError, match="6 x 32 x 32"):
        H.read_hologram(tmp_path / "s.tif", max_pixels=32 * 32)
    got = H.read_hologram(tmp_path / "s.tif", frame=4, max_pixels=32 * 32)
    np.testing.assert_array_equal(got, frames[4])


def test_decompression_bomb_png_pillow_limit_is_ours(tmp_path):
    p = tmp_path / "bomb.png"
    _png_header_only(p, 20000, 20000)            # over Pillow's own hard limit (179 M)
    with pytest.raises(ValueError, match=rf"{p} declares 20000 x 20000 = 400,000,000 pixels"):
        H.read_hologram(p)                       # our default limit (268 M) is above Pillow's
    with pytest.raises(ValueError, match=rf"{p} declares 400,000,000 pixels.*max_pixels"):
        H.read_hologram(p, max_pixels=10 ** 8)   # Pillow's error, as ours
    small = tmp_path / "small.png"
    _png_header_only(small, 100, 100)
    with pytest.raises(ValueError, match=r"100 x 100 = 10,000 pixels, more than the limit of 5,000"):
        H.read_hologram(small, max_pixels=5000)
    # raising the limit lifts Pillow's for this call: the (truncated) data is then decoded
    with pytest.raises(ValueError, match=f"cannot read {p}"):
        H.read_hologram(p, max_pixels=None, max_bytes=None)
    from PIL import Image
    assert Image.MAX_IMAGE_PIXELS is not None


# --------------------------------------------- item 6: NaN/Inf reported as such

def test_nonfinite_hologram_reported_with_count_and_position(tmp_path):
    import tifffile

    h = np.ones((3, 16, 20), np.float32)
    h[1, 5, 7] = np.nan
    h[2, 0, 0] = np.inf
    tifffile.imwrite(tmp_path / "n.tif", h, photometric="minisblack")
    with pytest.raises(ValueError, match=r"n.tif has 2 non-finite pixels .*1 NaN, 1 ±Inf.*"
                                         r"\(frame, row, col\) = \(1, 5, 7\)"):
        H.read_hologram(tmp_path / "n.tif")
    assert np.isnan(H.read_hologram(tmp_path / "n.tif", allow_nonfinite=True)[1, 5, 7])
    np.testing.assert_array_equal(H.read_hologram(tmp_path / "n.tif", frame=0), h[0])


def test_nonfinite_hologram_preprocess_says_nonfinite():
    h = np.random.default_rng(6).random((32, 32)) + 1.0
    h[3, 4] = np.nan
    with pytest.raises(ValueError, match=r"hologram has 1 non-finite pixel .*\(row, col\) = \(3, 4\)"):
        H.preprocess(h)
    bg = np.ones((32, 32))
    bg[0, 1] = -np.inf
    with pytest.raises(ValueError, match=r"background has 1 non-finite.*0 NaN, 1 ±Inf"):
        H.divide_background(np.ones((32, 32)), bg)
    with pytest.raises(ValueError, match="non-finite"):
        H.preprocess(np.ones((32, 32)), background=bg)


# ----------------------------------------- item 7: reader errors name the file

@pytest.mark.parametrize("name", ["e.tif", "e.png", "e.h5"])
def test_reader_errors_empty_file_and_folder(tmp_path, name):
    read = H.read_volume if name.endswith(".h5") else H.read_hologram
    p = tmp_path / name
    p.write_bytes(b"")
    with pytest.raises(ValueError, match=f"{p} is empty"):
        read(p)
    d = tmp_path / ("d" + name)
    d.mkdir()
    with pytest.raises(ValueError, match=f"{d} is a folder"):
        read(d)


def test_reader_errors_truncated_files(tmp_path):
    import imageio.v3 as iio
    import tifffile

    rng = np.random.default_rng(7)
    series = rng.integers(0, 255, (3, 64, 64), dtype=np.uint8)
    tifffile.imwrite(tmp_path / "s.tif", series, compression="zlib", photometric="minisblack")
    iio.imwrite(tmp_path / "s.png", rng.integers(0, 255, (64, 64), dtype=np.uint8))
    H.write_volume(tmp_path / "s.h5", _volume(), z=np.linspace(1e-3, 2e-3, 4), **OPTICS)
    for name, read in (("s.tif", H.read_hologram), ("s.png", H.read_hologram),
                       ("s.h5", H.read_volume)):
        full = (tmp_path / name).read_bytes()
        cut = tmp_path / f"cut_{name}"
        cut.write_bytes(full[: len(full) // 2])  # a zlib TIFF cut in half was read as 1 frame
        with pytest.raises(ValueError, match=f"{cut}"):
            read(cut)


def test_reader_errors_volume_datasets_and_attributes(tmp_path):
    import h5py

    p = tmp_path / "x.h5"
    with h5py.File(p, "w") as f:
        f["volume"] = np.array([["a", "b"]] * 2, dtype=object).astype("S1").reshape(1, 2, 2)
        f["z"] = [1e-3]
    with pytest.raises(ValueError, match=f"{p}: dataset 'volume' is not numeric"):
        H.read_volume(p)
    with h5py.File(p, "w") as f:
        f["volume"] = _volume()
    with pytest.raises(ValueError, match=rf"{p}: not a diffimaging volume: no dataset 'z'"):
        H.read_volume(p)
    with h5py.File(p, "w") as f:                 # no pixel size: the key is absent
        f["volume"] = _volume()
        f["z"] = np.linspace(1e-3, 2e-3, 4)
    with pytest.warns(UserWarning):
        _, z, attrs = H.read_volume(p)
    assert attrs.get("pixel_size_m") is None and attrs.get("wavelength_m") is None
    with h5py.File(p, "a") as f:
        f.attrs["pixel_size_m"] = np.nan
    with pytest.warns(UserWarning, match=f"{p}: attribute 'pixel_size_m' = .*nan.*ignored"):
        _, _, attrs = H.read_volume(p)           # unusable: dropped, so the caller asks for it
    assert "pixel_size_m" not in attrs
    with h5py.File(p, "a") as f:
        f.attrs["pixel_size_m"] = 3e-6
    with pytest.warns(UserWarning):
        _, _, attrs = H.read_volume(p)
    np.testing.assert_array_equal(attrs["pixel_size_m"], [3e-6, 3e-6])


@pytest.mark.parametrize("name", ["h.tif", "h.png", "v.h5"])
def test_reader_errors_permission_error_passes_through(tmp_path, monkeypatch, name):
    import builtins

    p = tmp_path / name
    p.write_bytes(b"\0" * 64)
    real_open = builtins.open

    def denying_open(file, *a, **k):             # chmod 000 does not stop root: deny by name
        if isinstance(file, (str, os.PathLike)) and Path(file) == p:
            raise PermissionError(errno.EACCES, "Permission denied", str(file))
        return real_open(file, *a, **k)

    monkeypatch.setattr(builtins, "open", denying_open)
    read = H.read_volume if name.endswith(".h5") else H.read_hologram
    with pytest.raises(PermissionError) as info:
        read(p)
    assert info.value.filename == str(p)


# -- streamed volumes (the CLI's back-propagation: memory independent of the planes) ------

def test_open_volume_streams_the_same_file_as_write_volume(tmp_path):
    rng = np.random.default_rng(3)
    vol = rng.random((7, 12, 10)).astype(np.float32)
    z = np.linspace(1e-3, 2e-3, 7)
    with H.open_volume(tmp_path / "s.h5", vol.shape, z=z, wavelength=532e-9, pixel_size=2e-6,
                       z_offset=1e-6, method="backprop") as w:
        for s in (4, 0):                         # any order, batches of any size
            w.write(s, vol[s:s + 4] if s == 0 else vol[4:])
        assert w.missing.size == 0
    H.write_volume(tmp_path / "w.h5", vol, z=z, wavelength=532e-9, pixel_size=2e-6, z_offset=1e-6,
                   method="backprop")
    a, za, attrs_a = H.read_volume(tmp_path / "s.h5")
    b, zb, attrs_b = H.read_volume(tmp_path / "w.h5")
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(za, zb)
    assert attrs_a["method"] == "backprop" and attrs_a["z_offset_m"] == 1e-6   # was dz_m
    assert sorted(attrs_a) == sorted(attrs_b)


def test_open_volume_incomplete_or_interrupted_leaves_nothing(tmp_path):
    z = np.linspace(1e-3, 2e-3, 4)
    target = tmp_path / "v.h5"
    with pytest.raises(ValueError, match=r"planes \[3\] of 4 were not written"):
        with H.open_volume(target, (4, 8, 8), z=z, wavelength=532e-9, pixel_size=2e-6) as w:
            w.write(0, np.zeros((3, 8, 8)))
    assert not target.exists() and not list(tmp_path.iterdir())
    with pytest.raises(KeyboardInterrupt):
        with H.open_volume(target, (4, 8, 8), z=z, wavelength=532e-9, pixel_size=2e-6) as w:
            w.write(0, np.zeros((2, 8, 8)))
            raise KeyboardInterrupt
    assert not list(tmp_path.iterdir())
    with H.open_volume(target, (4, 8, 8), z=z, wavelength=532e-9, pixel_size=2e-6) as w:
        with pytest.raises(ValueError, match="outside the volume"):
            w.write(2, np.zeros((3, 8, 8)))
        with pytest.raises(ValueError, match=r"planes must be \(k, 8, 8\)"):
            w.write(0, np.zeros((1, 8, 9)))
        w.write(0, np.ones((4, 8, 8)))
    assert H.read_volume(target)[0].sum() == 4 * 64


def test_open_volume_checks_disk_space_before_writing(tmp_path, monkeypatch):
    import errno
    import shutil
    from collections import namedtuple

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage(10**9, 10**9 - 2**20, 2**20))
    (tmp_path / "v.h5").write_bytes(b"old")
    with pytest.raises(OSError, match="not enough free disk space") as e:
        with H.open_volume(tmp_path / "v.h5", (16, 256, 256), z=np.linspace(1e-3, 2e-3, 16),
                           wavelength=532e-9, pixel_size=2e-6):
            pass
    assert e.value.errno == errno.ENOSPC and str(tmp_path / "v.h5") == e.value.filename
    assert (tmp_path / "v.h5").read_bytes() == b"old" and len(list(tmp_path.iterdir())) == 1


def test_cli_backprop_volume_is_streamed_and_equals_the_api(tmp_path):
    from diffimaging.cli import main

    rng = np.random.default_rng(0)
    holo = (1 + 0.05 * rng.standard_normal((64, 64))).astype(np.float32)
    import tifffile

    tifffile.imwrite(tmp_path / "h.tif", holo)
    z = np.linspace(1e-3, 2e-3, 7)
    assert main(["holo", "reconstruct", str(tmp_path / "h.tif"), "--wavelength", "532e-9",
                 "--pixel-size", "2e-6", "--z", "1e-3:2e-3:7", "--method", "backprop", "--chunk", "3",
                 "-o", str(tmp_path / "out")]) == 0
    got, zg, attrs = H.read_volume(tmp_path / "out" / "h.h5")
    pre, _ = H.preprocess(H.read_hologram(tmp_path / "h.tif"))
    ref = H.reconstruct(pre.astype(np.float32), z, wavelength=532e-9, pixel_size=2e-6,
                        method="backprop", output="intensity").volume
    np.testing.assert_allclose(zg, z)
    np.testing.assert_allclose(got, np.asarray(ref, dtype=np.float32), rtol=1e-6, atol=1e-7)
    assert attrs["method"] == "backprop" and attrs["polarity"] == "dark"


def test_damaged_attribute_headers_raise_value_error(tmp_path, monkeypatch):
    """HDF5's own error for damaged metadata (found by the property suite: a flipped bit
    in an attribute's datatype makes h5py raise RuntimeError while iterating the
    attributes) is reported as ValueError naming the file."""
    import h5py

    good = tmp_path / "v.h5"
    H.write_volume(good, np.zeros((2, 8, 8), np.float32), z=[1e-3, 2e-3], wavelength=532e-9,
                   pixel_size=2e-6)

    def damaged(self):
        raise RuntimeError("Error iterating over attributes (datatype has unusually large # of "
                           "unused bits)")

    monkeypatch.setattr(h5py.AttributeManager, "__iter__", damaged)
    with pytest.raises(ValueError, match=r"v\.h5 is corrupt"):
        H.read_volume(good)
