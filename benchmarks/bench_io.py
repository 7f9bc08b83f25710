"""Cost of data safety in the file layer: atomic, verified writes and guarded reads.

Times, interleaved in one run (median of ``--repeat``), each against the plain
library call it replaces:

- ``write_volume`` (HDF5 built in memory, written under a temporary name, fsync,
  rename, completeness marker) vs a plain ``h5py`` write of the same datasets
  with the same gzip level straight to the final name;
- ``open_volume`` (the CLI's streamed back-propagation output: ``--chunk`` planes
  at a time into the temporary file) vs the same plain write;
- ``read_volume`` (completeness and consistency checks) vs a plain ``h5py`` read;
- ``read_hologram`` of a 16-bit TIFF (header limits, colour/series metadata,
  NaN check, float64) vs ``tifffile.imread(...).astype(float64)``.

Two volumes: a back-propagated intensity stack (noise-like, compresses little)
and a sparse one (mostly zeros, as an L1-regularised ∂H volume).

    python benchmarks/bench_io.py            # ~1 min on 2 cores
    python benchmarks/bench_io.py --quick    # smoke test
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "python"))

import h5py  # noqa: E402
import tifffile  # noqa: E402

from diffimaging import holography as H  # noqa: E402

KW = dict(wavelength=532e-9, pixel_size=2e-6)


def _plain_write(path, vol, z):
    with h5py.File(path, "w") as f:
        f.create_dataset("volume", data=vol, compression="gzip", compression_opts=4)
        f.create_dataset("z", data=z)
        f.attrs["wavelength_m"] = KW["wavelength"]
        f.attrs["pixel_size_m"] = [KW["pixel_size"]] * 2


def _plain_read(path):
    with h5py.File(path, "r") as f:
        return f["volume"][()], f["z"][()]


def _streamed(path, vol, z, chunk=16):
    with H.open_volume(path, vol.shape, z=z, **KW) as w:
        for s in range(0, vol.shape[0], chunk):
            w.write(s, vol[s:s + chunk])


def _volumes(nz, n, seed=0):
    rng = np.random.default_rng(seed)
    dense = (1 + 0.2 * rng.standard_normal((nz, n, n))).astype(np.float32) ** 2
    sparse = np.zeros((nz, n, n), np.float32)
    k = max(nz * n * n // 2000, 1)
    sparse.reshape(-1)[rng.choice(sparse.size, k, replace=False)] = rng.random(k, dtype=np.float32)
    return {"dense": dense, "sparse": sparse}


def _time(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--planes", type=int, default=64)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--image", type=int, default=2048, help="TIFF side in pixels")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="16 planes of 256², 1024² TIFF, 2 repeats")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "bench_io.json"))
    a = ap.parse_args(argv)
    if a.quick:
        a.planes, a.size, a.image, a.repeat = 16, 256, 1024, 2
    z = np.linspace(1e-3, 5e-3, a.planes)
    rows = []
    with tempfile.TemporaryDirectory(prefix="di-bench-io-") as d:
        d = Path(d)
        for kind, vol in _volumes(a.planes, a.size).items():
            cases = {"plain h5py write": lambda: _plain_write(d / "p.h5", vol, z),
                     "write_volume": lambda: H.write_volume(d / "w.h5", vol, z=z, **KW),
                     "open_volume (16-plane chunks)": lambda: _streamed(d / "s.h5", vol, z),
                     "plain h5py read": lambda: _plain_read(d / "p.h5"),
                     "read_volume": lambda: H.read_volume(d / "w.h5")}
            times = {k: [] for k in cases}
            for _ in range(a.repeat):                       # interleaved rounds
                for k, fn in cases.items():
                    times[k].append(_time(fn))
            med = {k: statistics.median(v) for k, v in times.items()}
            mib = vol.nbytes / 2 ** 20
            for k in cases:
                base = med["plain h5py read" if "read" in k else "plain h5py write"]
                rows.append(dict(volume=kind, what=k, seconds=med[k], ratio=med[k] / base,
                                 mib=mib, file_mib=(d / ("w.h5" if "read" in k else "p.h5")).stat().st_size
                                 / 2 ** 20, times=times[k]))
        img = np.random.default_rng(1).integers(0, 4096, (a.image, a.image), dtype=np.uint16)
        tifffile.imwrite(d / "h.tif", img)
        cases = {"tifffile.imread + float64": lambda: tifffile.imread(d / "h.tif").astype(np.float64),
                 "read_hologram": lambda: H.read_hologram(d / "h.tif")}
        times = {k: [] for k in cases}
        for _ in range(a.repeat):
            for k, fn in cases.items():
                times[k].append(_time(fn))
        base = statistics.median(times["tifffile.imread + float64"])
        for k in cases:
            m = statistics.median(times[k])
            rows.append(dict(volume=f"tiff {a.image}²", what=k, seconds=m, ratio=m / base,
                             mib=img.nbytes / 2 ** 20, file_mib=(d / "h.tif").stat().st_size / 2 ** 20,
                             times=times[k]))
    print(f"{'data':<12} {'what':<32} {'MiB':>7} {'file MiB':>9} {'median s':>9} {'ratio':>6}")
    for r in rows:
        print(f"{r['volume']:<12} {r['what']:<32} {r['mib']:>7.1f} {r['file_mib']:>9.1f} "
              f"{r['seconds']:>9.3f} {r['ratio']:>6.2f}")
    from diffimaging._backend.config import config_dict

    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"rows": rows, "planes": a.planes, "size": a.size, "image": a.image,
                               "repeat": a.repeat, "config": config_dict(),
                               "date": time.strftime("%Y-%m-%d %H:%M:%S")}, indent=1, default=str))
    print(f"-> {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
