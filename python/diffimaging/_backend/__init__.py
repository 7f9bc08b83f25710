"""The internal layer every other layer of the package builds on.

Submodules (each name they export is public to the rest of the package; this
package is the one internal layer any module may import):

- :mod:`.namespace`    array namespace from the inputs, dtypes, devices
- :mod:`.capabilities` which path (compiled CPU kernel, CUDA, array-API reference)
  runs each operation for each array library, and :func:`route`, the one place
  that decides it
- :mod:`.fft`          the one FFT layer (backend-aware transforms, buffers, grids)
- :mod:`.kernels`      wrappers of the compiled modules ``_core`` / ``_cuda``
- :mod:`.threads`      thread count of the CPU kernels and of the FFTs
- :mod:`.validate`     argument checks shared by the public functions
- :mod:`.util`         small shape helpers (broadcasting, cotangent reduction)
- :mod:`.autodiff`     the explicit-VJP registry (:func:`vjp`, :func:`register_vjp`)
- :mod:`.config`       :func:`show_config`

The helpers of :mod:`.namespace` are re-exported here and are used as
``from .. import _backend as B; B.namespace(x)``.  (The function ``namespace``
hides the submodule of the same name as an attribute of this package: inside
``_backend`` import its names with ``from .namespace import ...``.)
"""
from __future__ import annotations

from .namespace import (complex_dtype_for, device_of, dtype_kind, is_complex, is_cupy_namespace,
                        is_numpy_namespace, is_torch_namespace, namespace, real_dtype_for,
                        to_host_float64)

__all__ = ["namespace", "is_numpy_namespace", "is_cupy_namespace", "is_torch_namespace",
           "complex_dtype_for", "real_dtype_for", "dtype_kind", "is_complex", "device_of",
           "to_host_float64"]
