"""show_config(): what this installation uses."""
from __future__ import annotations

import importlib
import sys

from . import capabilities as C
from . import kernels as K
from .threads import get_num_threads


def _gpu_visible() -> str:
    try:
        import cupy  # noqa: F401
    except Exception:
        cupy = None
    if cupy is not None:
        try:
            return "yes (cupy)" if cupy.cuda.is_available() else "no (cupy sees no device)"
        except Exception as exc:  # pragma: no cover
            return f"no ({exc.__class__.__name__})"
    n = K.cuda_device_count()
    return f"yes ({n} device(s))" if n else "no"


def _gpu_info() -> dict | None:
    """Name, compute capability, memory and driver of the current GPU (None without
    CuPy or a device)."""
    try:
        import cupy

        if not cupy.cuda.is_available():
            return None
        rt = cupy.cuda.runtime
        props = rt.getDeviceProperties(cupy.cuda.Device().id)
        name = props["name"]
        return {"name": name.decode() if isinstance(name, bytes) else str(name),
                "compute_capability": f"{props['major']}.{props['minor']}",
                "memory_gib": round(props["totalGlobalMem"] / 2**30, 1),
                "driver": rt.driverGetVersion(), "cupy_cuda_runtime": rt.runtimeGetVersion()}
    except Exception:
        return None


def config_dict() -> dict:
    """The configuration as a dict (what :func:`show_config` prints; benchmarks store it)."""
    from .. import __version__
    from . import fft

    info = {
        "version": __version__,
        "python": sys.version.split()[0],
        "cpu_kernels": K.have_cpu(),
        "cpu_threads": get_num_threads(),
        "cpu_simd": K.cpu_simd(),
        "cuda_module": K.have_cuda_module(),
        "gpu_visible": _gpu_visible(),
        "fft": {},
        "capabilities": {op: {b: cap.path for b, cap in row.items()} for op, row in C.TABLE.items()},
    }
    if K.have_cuda_module():
        info["cuda_runtime"] = K.cuda_runtime_version()
    gpu = _gpu_info()
    if gpu is not None:
        info["gpu"] = gpu
    import numpy as np

    for lib, engine in (("numpy", fft.engine(np)),
                        ("cupy", "cupy.fft (cuFFT)"),
                        ("torch", "torch.fft")):
        try:
            mod = importlib.import_module(lib)
            info["fft"][lib] = f"{engine} [{lib} {getattr(mod, '__version__', '?')}]"
        except Exception:
            info["fft"][lib] = "not installed"
    info["fft"]["other array-API"] = "xp.fft (array-API fft extension)"
    return info


def show_config() -> None:
    """Print the version, the compiled kernels in use, threads, CUDA, the FFT engines
    and the capability table (which path runs each operation for each library)."""
    c = config_dict()
    print(f"diffimaging {c['version']} (Python {c['python']})")
    if c["cpu_kernels"]:
        print(f"  CPU kernels      : compiled C++ in use ({c['cpu_simd']}), {c['cpu_threads']} threads")
    else:
        print(f"  CPU kernels      : NOT built ({K.cpu_unavailable_reason()}); using the array-API "
              f"reference path")
    if c["cuda_module"]:
        print(f"  CUDA module      : built (CUDA runtime {c['cuda_runtime']}, static)")
    else:
        print(f"  CUDA module      : not built ({K.cuda_unavailable_reason()})")
    print(f"  GPU visible      : {c['gpu_visible']}")
    if "gpu" in c:
        g = c["gpu"]
        print(f"  GPU              : {g['name']} (compute {g['compute_capability']}, "
              f"{g['memory_gib']} GiB; driver {g['driver']}, CuPy's CUDA runtime "
              f"{g['cupy_cuda_runtime']})")
    print("  FFT engines      :")
    for lib, e in c["fft"].items():
        print(f"    {lib:16s} {e}")
    print("  Capabilities (operation x array library):")
    print("    " + C.markdown_table().replace("\n", "\n    "))
