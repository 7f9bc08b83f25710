"""The realistic particle-field generator: physics against closed forms and an
independent model, the camera's statistics, the campaign's motion, bad settings."""
import numpy as np
import pytest

from diffimaging import holography as H
from diffimaging.holography import realistic as R

LAM, PX = 532e-9, 2e-6


@pytest.fixture(scope="module")
def frame():
    return R.simulate_field(R.RealisticField(shape=(128, 128), ppp=2e-3, seed=3))


def _hologram(optics, pos, dia, trans, shape, slab=50e-6):
    sc = R._scattered(optics, np.atleast_2d(pos), np.atleast_1d(dia), np.atleast_1d(trans), slab)
    return np.abs(1 + sc[optics.oy:optics.oy + shape[0], optics.ox:optics.ox + shape[1]]) ** 2


def test_opaque_disk_matches_the_package_simulator_and_the_arago_spot():
    """One opaque disk: the generator's own angular-spectrum model agrees with
    simulate_particles (a different code path) to 2 % of the fringe contrast, and the
    centre of the shadow is bright (Poisson–Arago spot: I(0) = 1 in the Fresnel
    regime for a plane wave), which a sign or carrier error would break."""
    s = R.RealisticField(shape=(128, 128))
    o = R._Optics(s)
    pos = np.array([64 * PX + 0.3e-6, 60 * PX, 2.0123e-3])
    h = _hologram(o, pos, 12e-6, 0j, s.shape)
    ref, _ = H.simulate_particles((128, 128), (pos[None], [12e-6]), wavelength=LAM, pixel_size=PX)
    contrast = np.abs(ref - 1).max()
    assert contrast > 0.1
    assert np.abs(h - ref).max() < 0.02 * contrast
    # Arago spot: a larger disk whose shadow is resolved, on axis
    pos = np.array([64 * PX, 64 * PX, 1.5e-3])
    h = _hologram(o, pos, 40e-6, 0j, s.shape)
    assert h[64, 64] == pytest.approx(1.0, abs=0.1)
    assert h[64, 64 + 8] < 0.7          # the shadow around the spot is dark


def test_offset_within_a_slab_is_exact():
    """A particle 25 um off its slab's centre gives the hologram of the same particle
    propagated directly (its own slab): the local offset propagation is exact where
    the band limit is not active (a 256^2 grid at 2 mm: its limit lies beyond the
    Nyquist frequency, so the slab's mask and the particle's are the same)."""
    s = R.RealisticField(shape=(256, 256))
    o = R._Optics(s)
    pos = np.array([128 * PX, 128 * PX, 2.02e-3])
    a = _hologram(o, pos, 10e-6, 0j, s.shape, slab=50e-6)      # offset from the slab centre
    b = _hologram(o, pos, 10e-6, 0j, s.shape, slab=1e-9)       # its own slab
    assert np.abs(b - 1).max() > 0.1
    assert np.abs(a - b).max() < 1e-3


def test_n_medium_shortens_the_wavelength():
    pos = np.array([48 * PX, 48 * PX, 2e-3])
    a = _hologram(R._Optics(R.RealisticField(shape=(96, 96), n_medium=1.33)), pos, 10e-6, 0j, (96, 96))
    b = _hologram(R._Optics(R.RealisticField(shape=(96, 96), wavelength=LAM / 1.33)), pos, 10e-6, 0j,
                  (96, 96))
    c = _hologram(R._Optics(R.RealisticField(shape=(96, 96))), pos, 10e-6, 0j, (96, 96))
    assert np.abs(a - b).max() < 1e-9 and np.abs(a - c).max() > 0.05


def test_frame_camera_statistics(frame):
    s = frame.settings
    full = 2 ** s.bits - 1
    assert frame.raw.dtype == np.uint16 and frame.raw.shape == s.shape
    assert frame.raw.max() <= full
    # a realistic exposure: mean near the requested fraction of full scale above the dark
    # level, nothing saturated but the hot pixels
    mean = (frame.background.astype(float) - frame.dark).mean() / full
    assert 0.3 < mean < 0.4
    hot = frame.raw >= full
    assert hot.sum() <= len(frame.defects)
    # non-uniform illumination: the background frame's corners differ from its centre
    bg = frame.background.astype(float) - frame.dark
    corners = np.mean([bg[:16, :16].mean(), bg[:16, -16:].mean(), bg[-16:, :16].mean(), bg[-16:, -16:].mean()])
    assert corners < 0.85 * bg[48:80, 48:80].mean()
    # the particles leave their holograms in the frame, not in the background frame
    diff = frame.raw.astype(float) - frame.background.astype(float)
    assert diff.std() > 3 * np.sqrt(2 * s.full_well * s.exposure) * full / s.full_well


def test_truth_table_sizes_and_kinds():
    s = R.RealisticField(shape=(256, 256), ppp=5e-3, seed=1)
    t = R.particle_table(s)
    assert len(t) == round(5e-3 * 256 * 256)
    assert np.all((t.diameters >= 5e-6) & (t.diameters <= 30e-6))
    assert 10e-6 < np.median(t.diameters) < 14e-6
    opaque = np.mean(t.transmission == 0)
    assert 0.7 < opaque < 0.9
    partial = np.abs(t.transmission[t.transmission != 0])
    assert np.all((partial >= 0.2) & (partial <= 0.6))
    assert np.all(t.visible) and np.all((t.positions[:, 2] >= 1e-3) & (t.positions[:, 2] <= 5e-3))
    np.testing.assert_array_equal(t.ids, np.arange(len(t)))


def test_reproducible_and_seeded():
    s = R.RealisticField(shape=(64, 64), ppp=2e-3, seed=5)
    a, b = R.simulate_field(s), R.simulate_field(s)
    np.testing.assert_array_equal(a.raw, b.raw)
    c = R.simulate_field(s.replace(seed=6))
    assert np.any(a.raw != c.raw)


def test_campaign_slow_and_fast_particles():
    s = R.RealisticField(shape=(128, 128), ppp=3e-3, seed=2)
    camp = R.simulate_campaign(s, frames=3)
    assert camp.raw.shape == (3, 128, 128) and len(camp.truth) == 3
    d = np.linalg.norm(camp.truth[2].positions - camp.truth[0].positions, axis=1) / PX
    assert camp.slow.any() and (~camp.slow).any()
    assert np.all(d[camp.slow] < 0.2)                 # nearly static: 0.02 of the flow
    assert np.percentile(d[~camp.slow], 75) > 1.0     # the others move pixels per frame
    np.testing.assert_array_equal(camp.truth[0].ids, camp.truth[2].ids)
    assert np.all(camp.truth[0].positions[:, 2] == camp.truth[2].positions[:, 2])  # about z
    assert np.any(camp.raw[0] != camp.raw[1])


def test_lensless_far_preset():
    s = R.lensless_far(shape=(128, 128), ppp=1e-3, seed=0)
    assert s.pixel_size == 10e-6 and s.z_range == (100e-3, 160e-3) and s.bits == 8
    f = R.simulate_field(s)
    assert f.raw.dtype == np.uint8
    diff = f.raw.astype(float) - f.background.astype(float)
    assert diff.std() > 1.0                           # far particles still leave fringes


@pytest.mark.parametrize("change, match", [
    (dict(bits=10), "bits"), (dict(n_medium=0.9), "n_medium"), (dict(ppp=-1), "ppp"),
    (dict(exposure=1.2), "exposure"), (dict(z_range=(5e-3, 1e-3)), "z_range"),
    (dict(shape=(4, 64)), "shape"), (dict(opaque_fraction=2), "opaque_fraction")])
def test_bad_settings(change, match):
    with pytest.raises(ValueError, match=match):
        R.RealisticField(**change)
