// Helpers of the pybind11 bindings (never installed, never included by a
// kernel): strict checks of numpy arguments -- dtype, C-contiguity, shapes --
// that raise ValueError (std::invalid_argument) instead of converting, and the
// typed data pointers the kernels take.  Arrays are never copied.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <complex>
#include <stdexcept>
#include <string>

#include "diffimaging/core/dispatch.hpp"
#include "diffimaging/core/thread_pool.hpp"
#include "diffimaging/math/transfer.hpp"

namespace diffimaging {
namespace bind {

namespace py = pybind11;

inline void require(bool cond, const std::string& msg) {
  if (!cond) throw std::invalid_argument(msg);
}

// The element type of a dtype, or std::invalid_argument naming the argument.
inline DType dtype_of(const py::dtype& dt, const char* name) {
  if (dt.equal(py::dtype::of<float>())) return DType::kFloat32;
  if (dt.equal(py::dtype::of<double>())) return DType::kFloat64;
  if (dt.equal(py::dtype::of<std::complex<float>>())) return DType::kComplex64;
  if (dt.equal(py::dtype::of<std::complex<double>>())) return DType::kComplex128;
  throw std::invalid_argument(std::string(name) +
                              " must be float32, float64, complex64 or complex128");
}

// The element type of a C-contiguous array (std::invalid_argument otherwise).
inline DType dtype_of(const py::array& a, const char* name) {
  require((a.flags() & py::array::c_style) != 0, std::string(name) + " must be C-contiguous");
  return dtype_of(a.dtype(), name);
}

// Extent of axis ndim - from_end (1: last axis).
inline index_t dim(const py::array& a, int from_end) { return a.shape(a.ndim() - from_end); }

// The kernels' thread count: n > 0 as given, else all hardware threads.
inline int threads(int n) { return n > 0 ? n : hardware_threads(); }

// Transfer-function parameters on the grid of the last two axes of `a`
// (the checks of the physical values are the Python layer's).
inline TransferParams transfer_params(const py::array& a, double z, double wavelength, double dy,
                                      double dx, int method, bool band_limit, bool carrier) {
  require(a.ndim() >= 2, "spectrum must have at least 2 dimensions");
  require(method == 0 || method == 1, "method must be 0 (asm) or 1 (fresnel)");
  TransferParams p;
  p.z = z;
  p.wavelength = wavelength;
  p.dy = dy;
  p.dx = dx;
  p.ny = dim(a, 2);
  p.nx = dim(a, 1);
  p.method = static_cast<Method>(method);
  p.band_limit = band_limit;
  p.carrier = carrier;
  return p;
}

// Typed data pointers (Real: float or double; complex data is interleaved).
template <class Real>
const Real* in(const py::array& a) {
  return static_cast<const Real*>(a.data());
}
template <class Real>
Real* out(py::array& a) {
  return static_cast<Real*>(a.mutable_data());
}

// An array argument that may be None.
struct OptionalArray {
  py::array array;
  bool present = false;

  explicit OptionalArray(const py::object& obj) : present(!obj.is_none()) {
    if (present) array = py::array(obj);
  }

  template <class Real>
  const Real* in() const {
    return present ? static_cast<const Real*>(array.data()) : nullptr;
  }
};

}  // namespace bind
}  // namespace diffimaging
