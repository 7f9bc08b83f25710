"""Exploration: the ∂H inverse problem on a small simulated case.

96^2 hologram, 10 opaque particles (8-12 um) at 1.5-2.5 mm, 1 % Gaussian noise,
21 planes 50 um apart at the true depths (no offset learned yet), L1 sparsity,
Box(-1, 0) on o = t - 1; FISTA and Adam, 400 iterations; particles found with a
fixed threshold on -o and matched within 2 pixels / 30 um.

Run:  python benchmarks/dh_small_case.py
"""
import numpy as np, time, diffimaging as di
from diffimaging import holography as H
from diffimaging.holography import Volume
LAM, PX = 532e-9, 2e-6
n=96
tab=H.random_particles((n,n),PX,count=10,z_range=(1.5e-3,2.5e-3),margin=12*PX,seed=3)
holo,truth=H.simulate_particles((n,n),tab,wavelength=LAM,pixel_size=PX,gaussian_noise=0.01,seed=1)
zs=np.arange(1.5e-3,2.5e-3+1e-9,50e-6)
m=di.Model(Volume(zs, LAM, PX, dz=di.Param(0.0, bounds=(-0.1e-3,0.1e-3), fixed=True), reference=di.Param(1.0, fixed=True)), di.Intensity())
for method, its, kw in [("fista", 400, {}), ("adam", 400, {"step": {"x": 0.02}})]:
    t=time.time()
    r=di.solve(m, holo, np.zeros((len(zs),n,n)), method=method, iterations=its, regularizers=[di.L1(5e-3)], constraint=di.Box(-1.0,0.0), progress=False, **kw)
    s=-r.x
    print(method, "loss %.3g -> %.3g"%(r.history['loss'][0], r.history['loss'][-1]), "nonzero frac %.4f"%np.mean(s>0.05), "%.1fs"%(time.time()-t))
    for thr in ("auto", 0.2, 0.4):
        f=H.find_particles(s, zs, pixel_size=PX, neighborhood=(5,7,7), threshold=thr)
        print("  thr",thr, H.match(f,truth,2*PX,30e-6))
