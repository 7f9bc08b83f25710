"""Which implementation runs each operation for each array library.

One table, :data:`TABLE`, maps (operation, array library) to a path:

- ``"kernel"``: the compiled C++ CPU kernels (``_core``) around the library's FFTs;
- ``"cuda"``: the CUDA kernels (``_cuda``) on the array's device;
- ``"reference"``: the plain array-API implementation in Python (any library).

with a one-line reason.  :func:`route` is the one place where an operation decides
its path (every operator calls it; nothing else re-derives the choice), the test
suite is parametrised from the table, and :func:`markdown_table` renders it for
the README and :func:`~.config.show_config`.

The table states what each library is designed to get; :func:`route` also checks
that the compiled module is present in this build.  Without ``_core`` a
``"kernel"`` entry runs the reference path (``show_config()`` says so).  An
operation on CuPy arrays that runs anything but a CUDA kernel — the module is not
built, or the operation has no CUDA kernel yet — warns once per operation with a
:class:`BackendFallbackWarning` naming what runs instead: the result is right, but
slower than the user may expect; it is never a silent detour.
"""
from __future__ import annotations

import warnings
from typing import NamedTuple

from . import kernels as K
from .namespace import is_cupy_namespace, is_numpy_namespace, is_torch_namespace

__all__ = ["BACKENDS", "OPERATIONS", "TABLE", "TORCH_CUDA", "Capability",
           "BackendFallbackWarning", "backend_name", "route", "markdown_table"]

KERNEL, CUDA, REFERENCE = "kernel", "cuda", "reference"
PATHS = (KERNEL, CUDA, REFERENCE)

#: the array libraries the table distinguishes ("array-api": any other library)
BACKENDS = ("numpy", "cupy", "torch", "jax", "array-api")


class Capability(NamedTuple):
    path: str
    reason: str


class BackendFallbackWarning(UserWarning):
    """An operation on a GPU array runs another path than a CUDA kernel (the message
    names which, and why)."""


_REF_ANY = Capability(REFERENCE, "array-API reference implementation (the library's own FFT "
                                 "and elementwise operations)")
_CUPY_NO_KERNEL = "no CUDA kernel for it yet: the array-API reference path runs on the GPU " \
                  "(cupy.fft and CuPy elementwise operations)"


def _row(numpy_reason: str, cupy_reason: str = _CUPY_NO_KERNEL, numpy_path: str = KERNEL,
         cupy_path: str = REFERENCE):
    return {
        "numpy": Capability(numpy_path, numpy_reason),
        "cupy": Capability(cupy_path, cupy_reason),
        "torch": _REF_ANY,
        "jax": _REF_ANY,
        "array-api": _REF_ANY,
    }


#: operation -> array library -> Capability
TABLE: dict[str, dict[str, Capability]] = {
    "propagate": _row("fused transfer-function multiply (transfer_apply / transfer_pullback) "
                      "between pruned scipy.fft transforms",
                      "CUDA transfer-function kernels (apply, pullback with a deterministic "
                      "z reduction, z-stack and its adjoint) between cupy.fft (cuFFT) "
                      "transforms, stacks in batches sized from free device memory",
                      cupy_path=CUDA),
    "bin": _row("area-integration binning and its adjoint and shift gradient (bin_forward / "
                "bin_adjoint / bin_shift_grad)",
                "CUDA binning kernels (forward, adjoint, deterministic shift gradient)",
                cupy_path=CUDA),
    "shift": _row("phase ramps are separable: scipy.fft plus two broadcast multiplies, no "
                  "kernel needed",
                  "cupy.fft (cuFFT) and a CUDA phase-ramp multiply (fourier_shift_apply)",
                  numpy_path=REFERENCE, cupy_path=CUDA),
    "intensity": _row("one threaded pass |u|^2 (intensity)", "one CUDA pass |u|^2 (intensity)",
                      cupy_path=CUDA),
    "volume": _row("the first-Born sum of all planes on one padded spectrum "
                   "(transfer_pullback accumulating)",
                   "the first-Born sum by the CUDA z-stack adjoint on cuFFT spectra, in "
                   "chunks sized from free device memory", cupy_path=CUDA),
    "backpropagate": _row("streamed planes with the fused min/max projection (minmax_project)",
                          "streamed plane batches sized from free device memory: CUDA z-stack "
                          "kernel, batched cuFFT, CUDA min/max projection", cupy_path=CUDA),
    "dh_fused": _row("half-spectrum ∂H engine (dh_accumulate / dh_backproject / prox_step_rows) "
                     "for real objects", "half-spectrum ∂H engine on cuFFT real transforms "
                     "with CUDA transfer tables, table sums / back-projections and a batched "
                     "proximal step with deterministic sums", cupy_path=CUDA),
    "fpm_fidelity": _row("intensities, prediction, per-image fidelity and the fields' "
                         "cotangent as array operations (fpm.losses.gradient; cheap next to "
                         "the partial-DFT matrix products)",
                         "one CUDA pass (fpm_fidelity: intensities, prediction, fidelity, "
                         "cotangent, deterministic per-image sums) between cuBLAS partial-DFT "
                         "products and cuFFT", numpy_path=REFERENCE, cupy_path=CUDA),
}

OPERATIONS = tuple(TABLE)


def backend_name(xp) -> str:
    """The table's name for namespace ``xp``: one of :data:`BACKENDS`."""
    if is_numpy_namespace(xp):
        return "numpy"
    if is_cupy_namespace(xp):
        return "cupy"
    if is_torch_namespace(xp):
        return "torch"
    name = getattr(xp, "__name__", "")
    if name.startswith("jax"):
        return "jax"
    return "array-api"


_warned: set[str] = set()


def _warn_once(op: str, message: str) -> None:
    if op in _warned:
        return
    _warned.add(op)
    warnings.warn(message, BackendFallbackWarning, stacklevel=3)


def route(op: str, xp) -> str:
    """The path (``"kernel"``, ``"cuda"`` or ``"reference"``) that operation ``op``
    takes for arrays of namespace ``xp`` in this build.

    A CuPy array whose operation runs no CUDA kernel warns once per operation
    (:class:`BackendFallbackWarning`, naming the path that runs instead)."""
    try:
        row = TABLE[op]
    except KeyError:
        raise ValueError(f"unknown operation {op!r}; the capability table has "
                         f"{', '.join(OPERATIONS)}") from None
    backend = backend_name(xp)
    cap = row[backend]
    if cap.path == KERNEL and not K.have_cpu():
        return REFERENCE
    if backend == "cupy":
        if not K.have_cuda_module():
            _warn_once(op, f"diffimaging.{op} on CuPy arrays: the CUDA module is not available "
                           f"({K.cuda_unavailable_reason()}); running the array-API reference "
                           f"path on the GPU instead (cupy.fft and CuPy elementwise operations)")
            return REFERENCE
        if cap.path != CUDA:
            _warn_once(op, f"diffimaging.{op} on CuPy arrays: {cap.reason}")
            return cap.path
    return cap.path


#: public functions that take torch CUDA tensors to the CUDA kernels: with the CUDA
#: module built and CuPy installed, the tensors are viewed as CuPy arrays (DLPack,
#: zero-copy), run on the ``cupy`` column's path and come back as torch tensors
#: (``_backend.cuda.via_cupy``); elsewhere torch tensors take the ``torch`` column
TORCH_CUDA = ("diffimaging.propagate", "diffimaging.bin", "diffimaging.shift",
              "diffimaging.intensity", "diffimaging.holography.backpropagate",
              "diffimaging.holography.reconstruct", "diffimaging.fpm.reconstruct")


def markdown_table() -> str:
    """The capability table as a Markdown table (operation × array library); each
    cell names the path, and the reasons follow as a list."""
    head = "| operation | " + " | ".join(BACKENDS) + " |"
    rule = "|---|" + "---|" * len(BACKENDS)
    rows = [head, rule]
    for op, row in TABLE.items():
        rows.append(f"| `{op}` | " + " | ".join(row[b].path for b in BACKENDS) + " |")
    notes = ["", "Paths: `kernel` = compiled C++ CPU kernels around the library's FFTs; "
                 "`cuda` = CUDA kernels; `reference` = plain array-API Python. Reasons:", ""]
    for op, row in TABLE.items():
        notes.append(f"- `{op}`: numpy — {row['numpy'].reason}; CuPy — {row['cupy'].reason}.")
    notes.append("- every operation on torch, JAX and other array-API libraries: "
                 f"{_REF_ANY.reason}.")
    notes.append("- torch CUDA tensors given to "
                 + ", ".join(f"`{n.removeprefix('diffimaging.')}`" for n in TORCH_CUDA)
                 + " are viewed as CuPy arrays (DLPack, zero-copy) and take the CuPy "
                   "column when the CUDA module is built and CuPy is installed; the "
                   "results come back as torch tensors.")
    return "\n".join(rows + notes)
