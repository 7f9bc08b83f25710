"""Lensless reconstruction: recovery on a small fast case (learned geometry
better than the nominal one, field better than the nominal baseline), the
schedule's building blocks (registration, height sweep, autofocus), and bad
inputs."""
import json

import numpy as np
import pytest

import diffimaging as d
from diffimaging.lensless import Captures, Reconstruction, reconstruct, simulate
from diffimaging.lensless import metrics as M
from diffimaging.lensless.reconstruct import (capture_heights, focus_offset, height_sweep,
                                              register, register_focused,
                                              whole_pixel_correction)

# a 51 um window: heights of 80-140 um keep the light of the window on the sensor
SMALL = dict(n_window=64, pad=32, K=8, photons=1e4, z_range=(80e-6, 140e-6))


@pytest.fixture(scope="module")
def small():
    return simulate(seed=11, shift_error=0.8e-6, z_error=8e-6, **SMALL)


@pytest.fixture(scope="module")
def learned(small):
    return reconstruct(small, iterations=60, schedule="joint")


def test_recovery_beats_nominal(small, learned):
    tr, P = small.truth, small.pixel_size
    assert isinstance(learned, Reconstruction)
    assert learned.field.shape == (64, 64) and learned.field.dtype == np.complex64
    nominal_shift = M.shift_rmse(small.shifts, tr["shifts"], P)
    assert M.shift_rmse(learned.shifts, tr["shifts"], P) < 0.2 * nominal_shift
    # the heights relative to one another (their common error is a matter of focus, which a
    # joint solve does not see: see test_default_schedule_finds_a_common_offset)
    assert np.std(learned.z - tr["z"]) < 0.3 * np.std(small.z - tr["z"])
    base = reconstruct(small, learn=(), iterations=60)
    np.testing.assert_array_equal(base.shifts, small.shifts)
    np.testing.assert_array_equal(base.z, small.z)
    assert M.psnr(learned.field, tr["field"]) > M.psnr(base.field, tr["field"]) + 1.0


def test_history_and_settings(small, learned):
    assert set(learned.history["stage"]) == {"joint"}
    json.dumps(learned.settings)
    np.testing.assert_array_equal(learned.nominal_shifts, small.shifts)
    np.testing.assert_array_equal(learned.nominal_z, small.z)


def test_default_schedule_finds_a_common_offset():
    """A bare image stack with its geometry; a common height error of 15 um,
    which a joint solve cannot see, is found by the default schedule's autofocus."""
    c = simulate(seed=12, shift_error=0.3e-6, z_error=3e-6, z_offset=15e-6, **SMALL)
    r = reconstruct(c.images, c.shifts, c.z, factor=2, wavelength=c.wavelength,
                    pixel_size=c.pixel_size, iterations=40)
    h = r.history
    # FISTA records accepted steps (a momentum restart records nothing)
    assert len(h["loss"]) == len(h["stage"]) <= 40
    assert h["stage"].count("field") == 4 and h["stage"].count("relative geometry") == 8
    assert set(h["stage"]) == {"field", "relative geometry", "joint"}
    cf = h["capture focus"]
    assert cf["heights"].shape == (8,) and cf["criterion"] in ("contrast", "sparsity")
    assert cf["values"][cf["criterion"]].shape == (8, cf["grid"].size)
    assert r.settings["precondition"] is True
    assert cf["used"] in ("per capture", "common offset")
    assert cf["misfit"][cf["used"]] == min(cf["misfit"].values())
    joint = reconstruct(c, iterations=40, schedule="joint")
    assert M.height_rmse(joint.z, c.truth["z"]) > 10e-6              # the offset is unseen
    assert abs(np.mean(r.z - c.truth["z"])) < 5e-6
    assert M.height_rmse(r.z, c.truth["z"]) < M.height_rmse(c.z, c.truth["z"]) / 2


def test_field_autofocus_schedule_is_kept():
    """focus="auto" runs the earlier schedule (height sweeps, then the field's autofocus)."""
    c = simulate(seed=12, shift_error=0.3e-6, z_error=3e-6, **SMALL)
    r = reconstruct(c, iterations=30, focus="auto")
    h = r.history
    assert set(h["stage"]) == {"field", "relative geometry", "joint"}
    assert len(h["heights"]) == 2 and h["heights"][0].shape == (8,)
    assert "offset" in h["focus"] and "capture focus" not in h


@pytest.mark.parametrize("obj,criterion,tol", [("bars", "contrast", 3e-6),
                                               ("camera", "sparsity", 8e-6)])
def test_capture_heights_absolute(obj, criterion, tol):
    """Each capture's own autofocus: heights 20 um off in both directions (a common
    offset included) come back within a few um (measured: 0.6-1.5 um bars, 0.6-6 um
    camera), with the criterion that suits the sample (amplitude contrast for opaque
    bars, gradient sparsity for a phase sample)."""
    c = simulate(obj=obj, seed=15, photons=1e4, shift_error=0.0, z_error=0.0, n_window=256,
                 pad=64, K=4)
    wrong = c.truth["z"] + np.array([20e-6, -20e-6, 25e-6, 15e-6])
    z, rec = capture_heights(c.images, c.shifts, wrong, factor=2, wavelength=c.wavelength,
                             pixel_size=c.pixel_size, pad=64, search=40e-6, step=2e-6)
    assert rec["criterion"] == criterion
    assert np.max(np.abs(z - c.truth["z"])) < tol
    assert abs(np.mean(z - c.truth["z"])) < 3e-6


def test_register_resolves_whole_pixels():
    c = simulate(seed=13, modulo=True, **SMALL)
    P = c.pixel_size
    est = register(c.images, c.z)
    true = c.truth["shifts"] / P
    true = true - true.mean(axis=0)
    assert np.sqrt(np.mean((est - true) ** 2)) < 0.6                  # a 32^2 sensor
    fixed = whole_pixel_correction(c.shifts, est, P)
    before = M.shift_rmse(c.shifts, c.truth["shifts"], P)
    assert before > 1.0                                               # the ambiguity is real
    assert M.shift_rmse(fixed, c.truth["shifts"], P) < 0.5 * before
    # whole-pixel moves only
    frac = np.mod((fixed - c.shifts) / P + 0.5, 1.0) - 0.5
    np.testing.assert_allclose(frac, 0.0, atol=1e-9)
    # reconstruct registers the refocused captures (register_focused), in any schedule
    r = reconstruct(c, modulo=True, iterations=5, schedule="joint")
    start = r.history["registration"]["start"]
    assert M.shift_rmse(start, c.truth["shifts"], P) < 0.5 * before
    frac = np.mod((start - c.shifts) / P + 0.5, 1.0) - 0.5
    np.testing.assert_allclose(frac, 0.0, atol=1e-9)


def test_capture_heights_rejects_secondary_foci():
    """The bar target with a +40 um common height error: two captures' contrast peaks
    at a secondary focus 132 um off; they are searched again near the others'
    common offset."""
    c = simulate(obj="bars", n_window=256, factor=2, shift_error=0.8e-6, z_error=25e-6,
                 z_offset=40e-6, photons=1e4, seed=1)
    z, rec = capture_heights(c.images, c.shifts, c.z, factor=2, wavelength=c.wavelength,
                             pixel_size=c.pixel_size, pad=64, search=100e-6, step=2e-6)
    assert rec["criterion"] == "contrast"
    assert set(rec["outliers"].tolist()) >= {11, 12}
    assert np.max(np.abs(z - c.truth["z"])) < 4e-6


@pytest.mark.parametrize("obj", ["bars", "camera"])
def test_register_focused_on_sparse_and_dense_samples(obj):
    """Registration of the refocused captures: a bar target (sparse, where raw holograms
    of neighbouring heights register 0.7 px off) and the camera sample come within a
    fraction of a pixel (measured 0.05 and 0.24 px), and the whole-pixel ambiguity
    is resolved."""
    c = simulate(obj=obj, n_window=128, pad=32, K=8, seed=13, modulo=True, photons=1e4,
                 z_range=(150e-6, 250e-6))
    P = c.pixel_size
    est = register_focused(c.images, c.shifts, c.truth["z"], factor=2,
                           wavelength=c.wavelength, pixel_size=P, pad=32)
    true = c.truth["shifts"] / P
    true = true - true.mean(axis=0)
    err = np.sqrt(np.mean((est - true) ** 2))
    assert err < 0.35
    if obj == "bars":
        assert err < 0.5 * np.sqrt(np.mean((register(c.images, c.z) - true) ** 2))
    fixed = whole_pixel_correction(c.shifts, est, P)
    before = M.shift_rmse(c.shifts, c.truth["shifts"], P)
    assert before > 1.0 and M.shift_rmse(fixed, c.truth["shifts"], P) < 0.3 * before


def test_height_sweep_and_focus_on_the_truth():
    c = simulate(seed=14, photons=None, shift_error=0.0, z_error=0.0, n_window=64, pad=32, K=4)
    pad = 32
    t = np.ones((128, 128), complex)
    t[pad:pad + 64, pad:pad + 64] = c.truth["field"]
    wrong = c.truth["z"] + np.array([12e-6, -9e-6, 5e-6, -15e-6])
    z = height_sweep(t, c.images, c.truth["shifts"], wrong, factor=2, wavelength=c.wavelength,
                     pixel_size=c.pixel_size, pad=pad, search=30e-6, step=2e-6)
    assert np.max(np.abs(z - c.truth["z"])) < 1.5e-6
    # a field seen 20 um off its plane: autofocus finds the offset
    off = 1.0 + d.propagate(t - 1.0, -20e-6, wavelength=c.wavelength, pixel_size=0.8e-6,
                            carrier=False)
    win = (slice(pad, pad + 64),) * 2
    dz, (grid, crit) = focus_offset(off, wavelength=c.wavelength, pixel_size=0.8e-6, window=win,
                                    search=60e-6, step=2e-6)
    assert dz == pytest.approx(-20e-6, abs=2e-6)
    assert grid.shape == crit.shape


def test_bad_inputs(small):
    with pytest.raises(TypeError, match="needs nominal_shifts, nominal_z"):
        reconstruct(small.images)
    with pytest.raises(ValueError, match=r"shifts must be \(K, 2\) = \(8, 2\)"):
        reconstruct(small, nominal_shifts=small.shifts[:5])
    with pytest.raises(ValueError, match="one distance or one per capture"):
        reconstruct(small, nominal_z=small.z[:3])
    with pytest.raises(ValueError, match="captures of different shapes"):
        reconstruct([np.ones((8, 8)), np.ones((8, 9))], np.zeros((2, 2)), [4e-4, 4e-4],
                    factor=2, wavelength=532e-9, pixel_size=1.6e-6)
    with pytest.raises(ValueError, match="unknown group"):
        reconstruct(small, learn=("height",))
    with pytest.raises(ValueError, match="iterations"):
        reconstruct(small, iterations=-1)
    bad = np.array(small.images)
    bad[2, 3, 4] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        reconstruct(Captures(bad, small.shifts, small.z, wavelength=small.wavelength,
                             pixel_size=small.pixel_size, factor=2))
    with pytest.raises(ValueError, match="loss"):
        reconstruct(small, loss="l3")
