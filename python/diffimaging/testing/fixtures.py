"""pytest fixtures over the available array libraries.

Import them into a test module or a ``conftest.py``::

    from diffimaging.testing.fixtures import backend  # noqa: F401

    def test_thing(backend):
        x = backend.asarray(np.ones((4, 4)))
        ...
"""
from __future__ import annotations

import pytest

from .backends import available_backends
from .backends import backend as _backend

__all__ = ["backend"]


@pytest.fixture(params=available_backends())
def backend(request):
    """A :class:`~diffimaging.testing.Backend` for each library installed here."""
    return _backend(request.param)
