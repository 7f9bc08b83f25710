"""The C++ core for C++ programs: where its headers and CMake package are.

The wheel ships the Python-free C++ core of the kernels -- headers
(``diffimaging/propagate.hpp``, ``diffimaging/binning.hpp``, ...), a static
library and a CMake package exporting the target ``diffimaging::core``::

    cmake -S app -B build -Ddiffimaging_DIR="$(python -c 'import diffimaging.cpp as c; print(c.get_cmake_dir())')"

    # app/CMakeLists.txt
    find_package(diffimaging CONFIG REQUIRED)
    target_link_libraries(app PRIVATE diffimaging::core)

The same package is installed by a plain CMake build of the repository
without Python (``cmake -DDIFFIMAGING_PYTHON=OFF``; see the README).
"""
from __future__ import annotations

from pathlib import Path

__all__ = ["get_include", "get_cmake_dir"]

_PACKAGE = Path(__file__).resolve().parent


def _installed(path: Path, what: str) -> str:
    if not path.is_dir():
        raise FileNotFoundError(
            f"the C++ core's {what} are not installed at {path}: this copy of diffimaging was "
            "not installed from a wheel (pip install), e.g. it runs from a source tree")
    return str(path)


def get_include() -> str:
    """Directory of the C++ headers (the one to add to the include path).

    Holds ``diffimaging/diffimaging.hpp`` and the headers it includes.  Raises
    ``FileNotFoundError`` when the package was not installed from a wheel.
    """
    return _installed(_PACKAGE / "include", "headers")


def get_cmake_dir() -> str:
    """Directory of ``diffimagingConfig.cmake``: pass it as ``diffimaging_DIR`` to CMake.

    Raises ``FileNotFoundError`` when the package was not installed from a wheel.
    """
    return _installed(_PACKAGE / "lib" / "cmake" / "diffimaging", "CMake files")
