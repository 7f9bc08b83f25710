// Non-owning views of the arrays the kernels work on.  A view is a pointer and
// a shape; it never allocates, copies or frees.
#pragma once

#include <complex>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "diffimaging/core/common.hpp"

namespace diffimaging {

// A C-contiguous stack of `batch` planes of ny x nx elements of type T
// (row-major: element (b, i, j) is data[(b * ny + i) * nx + j]).
template <class T>
struct PlaneView {
  T* data = nullptr;
  index_t batch = 0;
  index_t ny = 0;
  index_t nx = 0;

  index_t size() const { return batch * ny * nx; }

  // The same planes, read-only.
  template <class U = T, class = std::enable_if_t<!std::is_const<U>::value>>
  operator PlaneView<const U>() const {
    return {data, batch, ny, nx};
  }
};

// Complex planes: std::complex<Real> is laid out as interleaved (re, im), which
// is how the kernels read it (see interleaved()).
template <class Real>
using ComplexPlanes = PlaneView<std::complex<Real>>;

template <class Real>
using ConstComplexPlanes = PlaneView<const std::complex<Real>>;

// The Real* (interleaved re, im) pointer of complex data.
template <class Real>
const Real* interleaved(const std::complex<Real>* p) {
  return reinterpret_cast<const Real*>(p);
}
template <class Real>
Real* interleaved(std::complex<Real>* p) {
  return reinterpret_cast<Real*>(p);
}

// Throws std::invalid_argument unless a and b have one shape.
template <class A, class B>
void require_same_shape(const PlaneView<A>& a, const PlaneView<B>& b, const char* a_name,
                        const char* b_name) {
  if (a.batch != b.batch || a.ny != b.ny || a.nx != b.nx)
    throw std::invalid_argument(std::string(a_name) + " and " + b_name +
                                " must have the same (batch, ny, nx) shape");
  if (a.batch < 0 || a.ny < 0 || a.nx < 0)
    throw std::invalid_argument(std::string(a_name) + " has a negative extent");
}

}  // namespace diffimaging
