"""The C++ core used from C++: an installed core found with find_package(diffimaging).

The programs in tests/cpp are built against a core prefix -- the one named by
``DIFFIMAGING_CORE_PREFIX`` (CI installs it), else one configured, built and
installed here without Python (``cmake -DDIFFIMAGING_PYTHON=OFF``).  The
transfer kernel's output is compared with the Python package's
``transfer_function(...) * spectrum``.
"""
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

import diffimaging as di

ROOT = Path(__file__).resolve().parents[1]


def _cxx_compiler():
    for name in filter(None, (os.environ.get("CXX"), "c++", "g++", "clang++")):
        if shutil.which(name.split()[0]):
            return name
    return None


def _run(cmd, **kw):
    res = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if res.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, cmd))} failed ({res.returncode}):\n"
                             f"{res.stdout[-4000:]}\n{res.stderr[-4000:]}")
    return res


def _cmake_configure(src, build, *defs):
    gen = ["-G", "Ninja"] if shutil.which("ninja") else []
    _run(["cmake", "-S", str(src), "-B", str(build), *gen, "-DCMAKE_BUILD_TYPE=Release", *defs])
    _run(["cmake", "--build", str(build), "-j2"])


@pytest.fixture(scope="module")
def programs(tmp_path_factory):
    """Directory of the built tests/cpp programs."""
    if shutil.which("cmake") is None:
        pytest.skip("cmake is not installed: cannot build the C++ embedding programs")
    if _cxx_compiler() is None:
        pytest.skip("no C++ compiler (c++, g++ or clang++ on PATH, or CXX): cannot build the "
                    "C++ embedding programs")
    tmp = tmp_path_factory.mktemp("cpp")
    prefix = os.environ.get("DIFFIMAGING_CORE_PREFIX")
    if not prefix:
        prefix = tmp / "prefix"
        _cmake_configure(ROOT, tmp / "core", "-DDIFFIMAGING_PYTHON=OFF",
                         f"-DCMAKE_INSTALL_PREFIX={prefix}")
        _run(["cmake", "--install", str(tmp / "core")])
    _cmake_configure(ROOT / "tests" / "cpp", tmp / "app", f"-DCMAKE_PREFIX_PATH={prefix}")
    return tmp / "app"


def test_thread_pool_and_view_checks(programs):
    out = _run([str(programs / "pool_check")]).stdout
    assert "all pool checks passed" in out


@pytest.mark.parametrize("method,carrier,band_limit,conjugate,shape,z", [
    ("asm", True, True, False, (2, 33, 48), 2e-3),
    ("asm", False, True, True, (1, 64, 40), -1.5e-3),
    ("asm", False, False, False, (3, 17, 17), 5e-4),
    ("fresnel", True, True, False, (1, 40, 51), 1e-2),
    ("fresnel", False, False, True, (2, 24, 30), 3e-3),
])
def test_transfer_kernel_matches_python(programs, tmp_path, method, carrier, band_limit,
                                        conjugate, shape, z):
    rng = np.random.default_rng(8)
    spectrum = rng.standard_normal(shape) + 1j * rng.standard_normal(shape)
    lam, dy, dx = 532e-9, 2e-6, 2.5e-6
    src, dst = tmp_path / "in.bin", tmp_path / "out.bin"
    spectrum.astype("<c16").tofile(src)
    _run([str(programs / "transfer_spectrum"), str(src), str(dst), *map(str, shape), repr(z),
          repr(lam), repr(dy), repr(dx), method, str(int(carrier)), str(int(band_limit)),
          str(int(conjugate)), "3"])
    got = np.fromfile(dst, dtype="<c16").reshape(shape)
    H = di.transfer_function(shape[1:], z, wavelength=lam, pixel_size=(dy, dx), method=method,
                             band_limit=band_limit, carrier=carrier)
    want = (np.conj(H) if conjugate else H) * spectrum
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12 * np.abs(spectrum).max())
    assert np.array_equal(got == 0, want == 0)  # the same components are cut off


def test_transfer_program_rejects_bad_arguments(programs, tmp_path):
    src = tmp_path / "in.bin"
    np.zeros((1, 4, 4), "<c16").tofile(src)
    res = subprocess.run([str(programs / "transfer_spectrum"), str(src), str(tmp_path / "o.bin"),
                          "1", "4", "4", "1e-3", "0", "1e-6", "1e-6", "asm", "1", "1", "0", "1"],
                         capture_output=True, text=True)
    assert res.returncode == 2 and "wavelength" in res.stderr


def test_installed_package_ships_the_core(tmp_path):
    import diffimaging.cpp as cpp

    try:
        cmake_dir = cpp.get_cmake_dir()
    except FileNotFoundError as exc:
        assert "not installed" in str(exc)
        pytest.skip("diffimaging runs from a source tree: its C++ core is not installed with it")
    include = Path(cpp.get_include())
    assert (include / "diffimaging" / "propagate.hpp").is_file()
    for header in include.rglob("*.hpp"):  # the installed API is Python-free
        assert "pybind11" not in header.read_text(), header
    if shutil.which("cmake") is None or _cxx_compiler() is None:
        pytest.skip("cmake or a C++ compiler is missing: cannot build against the installed core")
    _cmake_configure(ROOT / "tests" / "cpp", tmp_path / "app", f"-Ddiffimaging_DIR={cmake_dir}")
    assert "all pool checks passed" in _run([str(tmp_path / "app" / "pool_check")]).stdout
