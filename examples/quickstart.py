"""Quick start: propagate a Gaussian beam, compare with the closed form, and
recover the propagation distance from an intensity with the explicit VJPs.

Run:  python examples/quickstart.py
"""
import numpy as np

import diffimaging as di

lam, dx, n, w0 = 532e-9, 2e-6, 256, 20e-6           # metres
y = (np.arange(n) - n // 2) * dx
r2 = y[:, None] ** 2 + y[None, :] ** 2
u0 = np.exp(-r2 / w0 ** 2).astype(np.complex64)      # waist at z = 0

# 1. forward: a 16-plane stack (one forward FFT, 16 inverse FFTs)
zs = np.linspace(0.5e-3, 8e-3, 16)
stack = di.propagate(u0, zs, wavelength=lam, pixel_size=dx, carrier=False)
zr = np.pi * w0 ** 2 / lam
w_meas = [np.sqrt(2 * np.sum(r2 * np.abs(p) ** 2) / np.sum(np.abs(p) ** 2)) for p in stack]
w_theory = w0 * np.sqrt(1 + (zs / zr) ** 2)
print(f"stack {stack.shape} {stack.dtype}; beam radius error vs closed form: "
      f"{np.max(np.abs(np.array(w_meas) / w_theory - 1)):.2e} (relative)")

# 2. gradient: fit z to a measured intensity (secant-Newton iteration on dL/dz)
z_true = 3.0e-3
meas = di.intensity(di.propagate(u0, z_true, wavelength=lam, pixel_size=dx, carrier=False))
z = 2.9e-3
for it in range(30):
    out, pull = di.vjp(di.propagate, u0, z, wavelength=lam, pixel_size=dx, carrier=False)
    inten, pull_i = di.vjp(di.intensity, out)
    resid = inten - meas
    _, dz = pull(pull_i(resid)[0])                   # dL/dz for L = 0.5 ||I - meas||^2
    # 1-D Newton step using a secant estimate of the curvature
    if it == 0:
        step = 1e-12
    else:
        curv = (float(dz) - g_prev) / (z - z_prev) if z != z_prev else 1.0
        step = 1.0 / curv if curv > 0 else 1e-12
    z_prev, g_prev = z, float(dz)
    z = z - step * float(dz)
    if abs(z - z_prev) < 1e-12:
        break
print(f"recovered z = {z * 1e3:.6f} mm (true {z_true * 1e3:.6f} mm) after {it + 1} iterations")
di.show_config()
