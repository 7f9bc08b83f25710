"""Operators: the differentiable building blocks of every imaging model.

- :mod:`.propagate` — free-space propagation (:func:`~.propagate.propagate`), the
  transfer function (:func:`~.propagate.transfer_function`, its one formula
  :func:`~.propagate.transfer_kappa`) and the padded-grid :class:`~.propagate.Plan`
  that other propagators build on;
- :mod:`.binning` — exact area-integration pixel binning (:func:`~.binning.bin`);
- :mod:`.shift` — periodic sub-pixel translation (:func:`~.shift.shift`) and
  :func:`~.shift.intensity`.

Each operator registers its hand-derived VJP (:func:`diffimaging.vjp`) and takes the
path the capability table gives it (:func:`diffimaging._backend.capabilities.route`).
The functions are re-exported at the top level (``diffimaging.propagate``, ...).
"""
