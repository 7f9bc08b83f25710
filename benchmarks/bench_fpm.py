#!/usr/bin/env python
"""Uncertainty-aware Fourier ptychography: speed and quality.

Speed (CPU numpy, complex64, the standard size: 15 x 15 LEDs, 64^2 camera
images, up-sampling 4, pad 8 -> an 80^2 camera grid and a 320^2 object grid):

- ``pass``: one full pass of :func:`diffimaging.fpm.reconstruct` over all 225
  LEDs in batches of 25 (forward, VJP for the object, the geometry and the
  Zernike terms, the preconditioned object steps, the brightness updates);
- ``model``: one forward + VJP of :func:`diffimaging.fpm.model` (fused stages,
  all LEDs at once, every parameter's cotangent);
- ``fft floor``: the FFTs an FFT-based pass needs, measured in the same run:
  J forward FFTs of the object grid and J inverse FFTs of the camera grid
  (forward), the same again for the VJP — each speed is also given as a ratio
  to it.  Median of ``--repeat`` runs after a warm-up.

Quality on the generator of issue 12 (:func:`diffimaging.fpm.simulate`: the
sample extends 32 camera pixels beyond the field, 0.3 mm LEDs):

- ``standard``: misalignment (200, -150) um, 0.5 deg, +1.5 mm; Zernike
  (1.0, 0.5, -0.3, 0.3, 0.2, 0, 0, 0.2, 0) rad; brightness +-15 %; 5000 photons;
  learned (defaults), frozen at nominal (``learn=()``), and the EPRY baseline;
- ``large``: (600, -400) um, 1.5 deg, +4 mm, with and without the calibration stage;
- ``photons200``: 200 photons, Poisson against L2-amplitude fidelity;
- ``corrupted``: three corrupted frames: the ranks of their learned weights and
  the PSNR against the clean case;
- ``oracle`` (only when named): the model's best fit on this generator — started at
  the true geometry, pupil and LED size, learning the object and the brightnesses
  (pads 8 and 16) — against the loss of the true images (the realisation's floor).

Scores: :func:`diffimaging.fpm.metrics.score` (amplitude PSNR and SSIM against
the truth band-limited to the synthetic aperture, registered, 2 camera pixels
of border left out; wave-vector errors in spectral pixels; rotation, height,
Zernike RMS over Noll >= 4), the final loss over the noise floor (the loss's
per-pixel expectation under Poisson noise, :func:`diffimaging.fpm.losses.expected`).

Run:  PYTHONPATH=python python benchmarks/bench_fpm.py [--iterations 250] [--cases standard large ...]
      [--quick] [--out benchmarks/results/bench_fpm.json]
      (each 250-pass reconstruction takes ~2 min on 2 cores; all cases ~20 min;
      --quick: 9 x 9 LEDs, 32^2 images, 60 passes)
"""
from __future__ import annotations

import argparse
import json
import math
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

try:
    import diffimaging  # noqa: F401
except ImportError:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "python"))

import scipy.fft

import diffimaging as d
from diffimaging import fpm
from diffimaging._backend.config import config_dict
from diffimaging._backend.threads import get_num_threads
from diffimaging.fpm import losses as FL
from diffimaging.fpm import metrics

CASES = ("speed", "standard", "large", "photons200", "corrupted")
#: extra cases, run only when named: ``oracle`` — the reconstruction started at the true
#: geometry, pupil and LED size, learning only the object and the brightnesses, for pads
#: 8 and 16: the lowest loss the model reaches on this generator, against the loss of the
#: true images on the same noisy data (the realisation's own noise floor)
EXTRA = ("oracle",)
LARGE = dict(offset=(600e-6, -400e-6), rotation=math.radians(1.5), height_error=4e-3)


def _median_time(fn, repeat):
    fn()
    ts = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return float(np.median(ts))


def speed(setup, shape, repeat, pad=8):
    data = fpm.simulate(setup=setup, shape=shape, seed=0)
    from diffimaging.fpm.reconstruct import _Context

    ctx = _Context(data.images, setup, pad=pad, M=9, loss="amplitude", background=0.0,
                   cdt=np.complex64, rdt=np.float32, batch=25)
    st = ctx.start(setup.geometry())
    learn = ("pupil", "leds", "brightness")

    def one_pass():
        ctx.passes(st, 1, learn=learn, warmup=0)

    J = setup.n_leds
    NY, NX = ctx.NY, ctx.NX
    ny, nx = ctx.n_low
    m = fpm.model(setup.rows, setup.cols, pitch=setup.pitch, height=setup.height,
                  wavelength=setup.wavelength, na=setup.na, pixel_size=setup.pixel_size,
                  magnification=setup.magnification, upsampling=setup.upsampling,
                  learn=fpm.LEARNABLE)
    o = st.o.copy()

    def model_grad():
        y, pb = d.vjp(m, o)
        pb(np.ones_like(y))

    big = np.ones((J, NY, NX), np.complex64)
    small = np.ones((J, ny, nx), np.complex64)
    w = get_num_threads()

    def floor():
        for _ in range(2):
            scipy.fft.fft2(big, overwrite_x=True, workers=w)
            scipy.fft.ifft2(small, overwrite_x=True, workers=w)

    t_pass = _median_time(one_pass, repeat)
    t_model = _median_time(model_grad, repeat)
    t_floor = _median_time(floor, repeat)
    return dict(leds=J, camera_grid=[ny, nx], object_grid=[NY, NX], pass_s=t_pass,
                model_grad_s=t_model, fft_floor_s=t_floor, pass_over_floor=t_pass / t_floor,
                model_over_floor=t_model / t_floor)


def _scores(rec, data, loss="amplitude"):
    s = metrics.score(rec, data)
    fl = rec.history.get("final_loss")
    if fl is not None:
        s["final_loss"] = fl
        s["loss_over_floor"] = fl / FL.expected(loss)
    s["seconds"] = rec.history.get("seconds")
    cal = rec.history.get("calibration")
    if cal:
        s["calibration_accepted"] = cal.get("accepted")
    return s


def _epry():
    try:
        from diffimaging.fpm.classical import epry
    except ImportError:
        return None
    return epry


def run_case(name, setup, shape, iterations, seed):
    out = {}
    kw = dict(setup=setup, shape=shape, seed=seed)
    if name == "standard":
        data = fpm.simulate(**kw)
        rec = fpm.reconstruct(data, iterations=iterations)
        out["learned"] = _scores(rec, data)
        frozen = fpm.reconstruct(data, iterations=iterations, learn=())
        out["frozen"] = _scores(frozen, data)
        out["learned_minus_frozen_db"] = out["learned"]["psnr"] - out["frozen"]["psnr"]
        epry = _epry()
        if epry is not None:
            t = time.perf_counter()
            e = epry(data, iterations=30)
            e.history["seconds"] = time.perf_counter() - t
            out["epry"] = _scores(e, data)
            out["learned_minus_epry_db"] = out["learned"]["psnr"] - out["epry"]["psnr"]
    elif name == "large":
        data = fpm.simulate(**kw, **LARGE)
        rec = fpm.reconstruct(data, iterations=iterations)
        out["calibrated"] = _scores(rec, data)
        plain = fpm.reconstruct(data, iterations=iterations, calibrate=False)
        out["plain"] = _scores(plain, data)
    elif name == "photons200":
        data = fpm.simulate(**kw, photons=200.0)
        for loss in ("poisson", "amplitude"):
            rec = fpm.reconstruct(data, iterations=iterations, loss=loss)
            out[loss] = _scores(rec, data, loss)
        out["poisson_minus_amplitude_db"] = out["poisson"]["psnr"] - out["amplitude"]["psnr"]
    elif name == "oracle":
        from diffimaging.fpm.reconstruct import _Context

        data = fpm.simulate(**kw)
        truth = data.truth["setup"]
        clean = fpm.simulate(**kw, photons=None).images * data.truth["scale"]
        floor = float(np.mean(FL.per_image(clean, data.images, "amplitude"))) / data.images[0].size
        rho = truth.illumination_na() / truth.na
        edge = (rho >= 0.9) & (rho < 1.1)
        out["loss_of_truth_per_px"] = floor
        for pad in (8, 16):
            ctx = _Context(data.images, truth, pad=pad, M=9, loss="amplitude", background=0.0,
                           cdt=np.complex64, rdt=np.float32, batch=25, led_size=0.3e-3)
            geo = dict(truth.geometry(), led_size=0.3e-3)
            st = ctx.start(geo)
            st.zern = np.asarray(data.truth["zernike"], dtype=np.float64)
            n = min(iterations, 120)
            ctx.passes(st, n, learn=("brightness",), warmup=min(40, n // 8))
            per = st.vals / ctx.n_pix
            out[f"pad{pad}"] = dict(passes=n, loss_per_px=float(per.mean()),
                                    over_truth=float(per.mean()) / floor,
                                    edge_ring_per_px=float(np.median(per[edge]))
                                    if edge.any() else float("nan"),
                                    rest_per_px=float(np.median(per[rho >= 1.5]))
                                    if (rho >= 1.5).any() else float("nan"))
    elif name == "corrupted":
        bad = fpm.simulate(**kw, corrupted=3)
        clean = fpm.simulate(**kw, corrupted=0)
        rb = fpm.reconstruct(bad, iterations=iterations)
        rc = fpm.reconstruct(clean, iterations=iterations)
        order = np.argsort(rb.weights)
        ranks = [int(np.flatnonzero(order == j)[0]) for j in bad.truth["corrupted"]]
        out.update(corrupted=bad.truth["corrupted"], kinds=bad.truth["corruption"],
                   weight_ranks=ranks, weights=[float(rb.weights[j])
                                                for j in bad.truth["corrupted"]],
                   lowest=order[:5].tolist(), with_bad=_scores(rb, bad), clean=_scores(rc, clean))
        out["psnr_drop_db"] = out["clean"]["psnr"] - out["with_bad"]["psnr"]
    return out


def _git():
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, cwd=Path(__file__).parent).stdout.strip()
    except OSError:
        return ""


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iterations", type=int, default=250)
    ap.add_argument("--cases", nargs="+", default=list(CASES), choices=CASES + EXTRA)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "bench_fpm.json"))
    a = ap.parse_args(argv)
    if a.quick:
        setup, shape, iters = fpm.standard_setup(rows=9, cols=9), (32, 32), min(a.iterations, 60)
    else:
        setup, shape, iters = fpm.standard_setup(), (64, 64), a.iterations
    result = dict(git=_git(), machine=platform.platform(), threads=get_num_threads(),
                  config=config_dict(), iterations=iters, shape=list(shape),
                  leds=[setup.rows, setup.cols], cases={})
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    for case in a.cases:
        t = time.perf_counter()
        if case == "speed":
            r = speed(setup, shape, a.repeat)
            print(f"speed: pass {r['pass_s']:.3f} s ({r['pass_over_floor']:.2f} x FFT floor "
                  f"{r['fft_floor_s']:.3f} s), model forward+VJP {r['model_grad_s']:.3f} s "
                  f"({r['model_over_floor']:.2f} x)", flush=True)
        else:
            r = run_case(case, setup, shape, iters, a.seed)
            print(f"{case} ({time.perf_counter() - t:.0f} s):", flush=True)
            for k, v in r.items():
                if isinstance(v, dict) and "psnr" not in v:
                    print(f"  {k}: " + ", ".join(f"{a} {b:.4g}" for a, b in v.items()), flush=True)
                elif isinstance(v, dict):
                    print(f"  {k:10s} psnr {v['psnr']:6.2f} ssim {v['ssim']:.3f} k_max "
                          f"{v['k_max']:.3f} px rot {v['rotation_error']:+.4f} deg height "
                          f"{v['height_error'] * 1e6:+8.1f} um zernike {v['zernike_rms']:.4f} "
                          f"loss/floor {v.get('loss_over_floor', float('nan')):.2f} "
                          f"({v.get('seconds') or 0:.0f} s)", flush=True)
                else:
                    print(f"  {k}: {v}", flush=True)
        result["cases"][case] = r
        Path(a.out).write_text(json.dumps(result, indent=1, default=float))
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
