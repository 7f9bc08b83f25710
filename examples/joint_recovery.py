"""Worked example: recover an amplitude object and its propagation distance
together from one in-line intensity (differentiable imaging).

The distance starts 10 % off. A global stage scans the loss over a grid of
distances; L-BFGS then refines the object and the distance jointly, with the
object constrained to a passive amplitude (0 <= x <= 1).

Run:  python examples/joint_recovery.py [-o OUT_DIR]
Writes joint_recovery.png (loss and distance trajectory, object, error) into OUT_DIR.
"""
import argparse
from pathlib import Path

import numpy as np

import diffimaging as di

ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
ap.add_argument("-o", "--out", default=".", help="output folder (default: current)")
args = ap.parse_args()

lam, px, n = 532e-9, 2e-6, 128                       # metres, pixels
rng = np.random.default_rng(0)
yy, xx = np.mgrid[:n, :n]
amp = np.ones((n, n))
for _ in range(12):                                  # absorbing disks, 30 % transmission
    cy, cx, r = rng.uniform(15, n - 15), rng.uniform(15, n - 15), rng.uniform(3, 8)
    amp[(yy - cy) ** 2 + (xx - cx) ** 2 < r ** 2] = 0.3

z_true = 1.0e-3
model = di.Model(
    di.Propagate(di.Param(1.1 * z_true, bounds=(0.5e-3, 2e-3)), wavelength=lam, pixel_size=px),
    di.Intensity(),
)
y = model(amp, {"propagate.z": z_true})             # the measured hologram

result = di.solve(model, y, np.ones_like(amp), method="lbfgs", iterations=400,
                  constraint=di.Box(0.0, 1.0),
                  search={"propagate.z": np.linspace(0.85e-3, 1.15e-3, 61)})
z = float(result.params["propagate.z"])
err = np.linalg.norm(result.x - amp) / np.linalg.norm(amp)
print(f"global stage best z = {result.search['best']['propagate.z'] * 1e3:.4f} mm")
print(f"recovered z = {z * 1e3:.5f} mm (true {z_true * 1e3:.5f} mm, error {abs(z / z_true - 1):.1e})")
print(f"object relative error {err:.4f} after {result.iterations} iterations ({result.message or 'done'})")

try:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
except ImportError:
    print("matplotlib is not installed (pip install matplotlib): no figure written")
else:
    h = result.history
    fig, ax = plt.subplots(2, 3, figsize=(13, 7.5))
    ax[0, 0].plot(np.array(result.search["values"])[:, 0] * 1e3, result.search["loss"], ".-")
    ax[0, 0].axvline(z_true * 1e3, color="k", ls=":", label="true")
    ax[0, 0].set(xlabel="z [mm]", ylabel="loss", title="global stage", yscale="log")
    ax[0, 0].legend()
    ax[0, 1].semilogy(h["loss"])
    ax[0, 1].set(xlabel="iteration", ylabel="loss", title="L-BFGS loss")
    ax[0, 2].plot(np.array(h["params"]["propagate.z"]).ravel() * 1e3)
    ax[0, 2].axhline(z_true * 1e3, color="k", ls=":")
    ax[0, 2].set(xlabel="iteration", ylabel="z [mm]", title="distance trajectory")
    for a, img, title in ((ax[1, 0], y, "hologram |u|^2"), (ax[1, 1], result.x, "recovered amplitude"),
                          (ax[1, 2], result.x - amp, f"error (rel. {err:.3f})")):
        im = a.imshow(img, cmap="gray" if a is not ax[1, 2] else "RdBu")
        a.set_title(title)
        a.axis("off")
        fig.colorbar(im, ax=a, shrink=0.8)
    fig.tight_layout()
    out = Path(args.out) / "joint_recovery.png"
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=90)
    print(f"wrote {out}")
