"""PTV linking."""
import numpy as np
import pytest

from diffimaging import holography as H


def _rotation(pos, angle, centre):
    c, s = np.cos(angle), np.sin(angle)
    y, x = pos[:, 0] - centre[0], pos[:, 1] - centre[1]
    return np.column_stack([centre[0] + c * y - s * x, centre[1] + s * y + c * x, pos[:, 2]])


def test_link_solid_rotation_with_prediction():
    rng = np.random.default_rng(0)
    n = 3000  # a thin slab: mean lateral spacing ~18 um
    a = np.column_stack([rng.uniform(0, 1e-3, n), rng.uniform(0, 1e-3, n), rng.uniform(1e-3, 1.02e-3, n)])
    ang = 0.02
    b = _rotation(a, ang, (5e-4, 5e-4)) + rng.normal(0, 0.2e-6, (n, 3))
    perm = rng.permutation(n)
    b = b[perm]
    # displacements up to 14 um, comparable to the spacing; with the predicted displacement
    # (e.g. from PIV) a 3 um search radius links them all correctly
    pred = lambda p: _rotation(p, ang, (5e-4, 5e-4)) - p  # noqa: E731
    links = H.link(a, b, max_distance=3e-6, predictor=pred)
    inv = np.argsort(perm)
    correct = np.mean(links.pairs[:, 1] == inv[links.pairs[:, 0]])
    assert len(links.pairs) >= 0.99 * n and correct >= 0.99
    np.testing.assert_allclose(links.displacement, b[links.pairs[:, 1]] - a[links.pairs[:, 0]])
    np.testing.assert_allclose(links.velocity(0.01), links.displacement / 0.01)
    # without the prediction the same search radius links only the slow particles near the centre
    plain = H.link(a, b, max_distance=3e-6)
    assert len(plain.pairs) < 0.5 * n


def test_link_one_to_one_and_errors():
    a = np.array([[0.0, 0.0, 0.0], [0.0, 1e-6, 0.0]])
    b = np.array([[0.0, 0.4e-6, 0.0]])
    links = H.link(a, b, max_distance=1e-6)
    assert len(links.pairs) == 1 and tuple(links.pairs[0]) == (0, 0)
    assert len(H.link(a, np.zeros((0, 3)), 1e-6).pairs) == 0
    with pytest.raises(ValueError, match="max_distance"):
        H.link(a, b, 0.0)
    with pytest.raises(ValueError, match="frame_b"):
        H.link(a, np.zeros((2, 2)), 1e-6)
