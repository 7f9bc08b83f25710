"""show_config(): what this installation uses."""
from __future__ import annotations

import importlib
import sys

from . import _kernels as K
from ._threads import get_num_threads


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


def config_dict() -> dict:
    from . import __version__

    info = {
        "version": __version__,
        "python": sys.version.split()[0],
        "cpu_kernels": K.have_cpu(),
        "cpu_threads": get_num_threads(),
        "cpu_simd": (K._core.simd() if K.have_cpu() else None),
        "cuda_module": K.have_cuda_module(),
        "gpu_visible": _gpu_visible(),
        "fft": {},
    }
    if K.have_cuda_module():
        info["cuda_runtime"] = K._cuda.runtime_version()
    for lib, engine in (("numpy", "scipy.fft (pocketfft) with worker threads"),
                        ("cupy", "cupy.fft (cuFFT); operators run the array-API reference path"),
                        ("torch", "torch.fft (array-API reference path)")):
        try:
            mod = importlib.import_module(lib)
            info["fft"][lib] = f"{engine} [{lib} {getattr(mod, '__version__', '?')}]"
        except Exception:
            info["fft"][lib] = "not installed"
    info["fft"]["other array-API"] = "xp.fft (array-API fft extension, reference path)"
    return info


def show_config() -> None:
    """Print the version, the compiled kernels in use, threads, CUDA and FFT engines."""
    c = config_dict()
    print(f"diffimaging {c['version']} (Python {c['python']})")
    if c["cpu_kernels"]:
        print(f"  CPU kernels      : compiled C++ in use ({c['cpu_simd']}), {c['cpu_threads']} threads")
    else:
        print(f"  CPU kernels      : NOT built ({K._core_error}); using the array-API reference path")
    if c["cuda_module"]:
        print(f"  CUDA module      : built (CUDA runtime {c['cuda_runtime']}, static)")
    else:
        print(f"  CUDA module      : not built ({K._cuda_error})")
    print(f"  GPU visible      : {c['gpu_visible']}")
    print("  FFT engines      :")
    for lib, e in c["fft"].items():
        print(f"    {lib:16s} {e}")
