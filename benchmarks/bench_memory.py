#!/usr/bin/env python
"""Peak memory of back-propagation against the number of depth planes.

Each measurement runs in a fresh Python process and reports that process's peak
resident set size (``VmHWM`` on Linux, else ``ru_maxrss``) after the imports and the input are ready
(``baseline``) and at the end (``peak``); ``peak - baseline`` is what the
computation added.  Paths:

- ``projections``: ``holography.backpropagate(output="projections")`` (streamed:
  its memory should not depend on the plane count);
- ``cli``: ``diffimaging holo reconstruct --method backprop`` on a TIFF, which
  writes the whole (nz, ny, nx) float32 volume to HDF5;
- ``stack``: ``backpropagate(output="intensity")``, the (nz, ny, nx) stack itself,
  for scale.

The figure of merit is the growth of the added memory from the smallest to the
largest plane count, as a fraction of the largest float32 stack
(nz x ny x nx x 4 bytes): near 0 for a streamed path, >= 1 for one that holds the
stack.  The baseline of the ratio is therefore the stack, measured in the same run.

Run:  python benchmarks/bench_memory.py [--size 256] [--planes 64 512] [--paths projections cli]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PATHS = ("projections", "cli", "stack")

_CHILD = r"""
import resource, sys, json
import numpy as np
path, n, nz, folder = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
import diffimaging.holography as H
from diffimaging.cli import main
rng = np.random.default_rng(0)
holo = (1 + 0.05 * rng.standard_normal((n, n))).astype(np.float32)
z = np.linspace(1e-3, 5e-3, nz)
kw = dict(wavelength=532e-9, pixel_size=2e-6)
# warm-up on a tiny problem: imports, FFT plans and thread pools are not what we measure
H.backpropagate(holo[:16, :16], z[:2], **kw)
if path == "cli":
    import tifffile
    tifffile.imwrite(folder + "/holo.tif", holo)
def mb():
    # this process's own peak (VmHWM, reset by exec); ru_maxrss would also count the
    # pages of the (large) parent that forked us
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
base = mb()
if path == "projections":
    H.backpropagate(holo, z, output="projections", **kw)
elif path == "stack":
    H.backpropagate(holo, z, output="intensity", **kw)
else:
    code = main(["holo", "reconstruct", folder + "/holo.tif", "--wavelength", "532e-9",
                 "--pixel-size", "2e-6", "--z", f"1e-3:5e-3:{nz}", "--method", "backprop",
                 "-o", folder + "/out"])
    assert code == 0, code
print(json.dumps({"baseline_mib": base, "peak_mib": mb()}))
"""


def measure(path: str, n: int, nz: int) -> dict:
    """Peak RSS [MiB] of one back-propagation of an (n, n) hologram to ``nz`` planes
    along ``path`` (one of PATHS), in a fresh process: baseline, peak, added, seconds."""
    if path not in PATHS:
        raise ValueError(f"path must be one of {PATHS}, got {path!r}")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(ROOT / "python")] + ([os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH") else [])))
    with tempfile.TemporaryDirectory(prefix="di-mem-") as folder:
        t0 = time.perf_counter()
        r = subprocess.run([sys.executable, "-c", _CHILD, path, str(n), str(nz), folder],
                           capture_output=True, text=True, env=env, timeout=900)
        seconds = time.perf_counter() - t0
    if r.returncode != 0:
        raise RuntimeError(f"{path} with {nz} planes failed ({r.returncode}):\n{r.stderr[-3000:]}")
    res = json.loads(r.stdout.strip().splitlines()[-1])
    res.update(added_mib=res["peak_mib"] - res["baseline_mib"], seconds=seconds, path=path, size=n,
               planes=nz)
    return res


def growth(rows: list[dict], n: int) -> dict:
    """Per path: added memory at the largest minus at the smallest plane count, in
    MiB and as a fraction of the largest float32 stack."""
    out = {}
    for path in sorted({r["path"] for r in rows}):
        rs = sorted((r for r in rows if r["path"] == path), key=lambda r: r["planes"])
        stack_mib = rs[-1]["planes"] * n * n * 4 / 2 ** 20
        d = rs[-1]["added_mib"] - rs[0]["added_mib"]
        out[path] = dict(growth_mib=d, stack_mib=stack_mib, fraction_of_stack=d / stack_mib,
                         planes=(rs[0]["planes"], rs[-1]["planes"]))
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=256, help="hologram side in pixels")
    ap.add_argument("--planes", type=int, nargs="+", default=[64, 512])
    ap.add_argument("--paths", nargs="+", choices=PATHS, default=list(PATHS))
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "bench_memory.json"))
    a = ap.parse_args(argv)
    rows = [measure(p, a.size, nz) for p in a.paths for nz in sorted(a.planes)]
    print(f"peak RSS of back-propagation, {a.size}x{a.size} hologram (MiB; added = peak - baseline)")
    print(f"{'path':<12} {'planes':>6} {'baseline':>9} {'peak':>9} {'added':>9} {'seconds':>8}")
    for r in rows:
        print(f"{r['path']:<12} {r['planes']:>6} {r['baseline_mib']:>9.1f} {r['peak_mib']:>9.1f} "
              f"{r['added_mib']:>9.1f} {r['seconds']:>8.1f}")
    g = growth(rows, a.size)
    print("growth of the added memory, smallest to largest plane count:")
    for path, v in g.items():
        print(f"  {path:<12} {v['growth_mib']:+8.1f} MiB = {v['fraction_of_stack']:6.1%} of the "
              f"{v['planes'][1]}-plane float32 stack ({v['stack_mib']:.0f} MiB)")
    try:
        sys.path.insert(0, str(ROOT / "python"))
        from diffimaging._backend.config import config_dict

        config = config_dict()
    except Exception as exc:  # noqa: BLE001 - the configuration is informative only
        config = {"error": repr(exc)}
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"rows": rows, "growth": g, "size": a.size, "planes": a.planes,
                               "config": config, "date": time.strftime("%Y-%m-%d %H:%M:%S")},
                              indent=1, default=str))
    print(f"-> {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
