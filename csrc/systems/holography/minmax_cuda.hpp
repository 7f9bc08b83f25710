// Plain C++ launcher of the CUDA min/max depth projection (no pybind11, no CUDA
// headers: the bindings include this file with the host compiler).  Pointers are
// device pointers; `stream` is a cudaStream_t passed as an integer.
#pragma once

#include <cstdint>

#include "diffimaging/core/common.hpp"

namespace diffimaging {
namespace cuda {

// The device twin of cpu::minmax_project (diffimaging/holography.hpp), with the
// same results bit for bit: for each pixel (i, j) of k complex planes (plane p,
// row i starts at planes + 2 * (p * plane_stride + i * row_stride), strides in
// complex elements, rows contiguous), v = |offset + u|^2; the running maps vmin /
// vmax ((ny, nx) contiguous) keep the smallest / largest v (strict < and >: the
// first plane wins ties, planes taken in order) and zmin / zmax the depth z[p]
// (a device array of k doubles) where it occurs.  One thread per pixel loops over
// the planes: deterministic.
template <class Real>
void minmax_project(const Real* planes, index_t k, index_t ny, index_t nx, index_t plane_stride,
                    index_t row_stride, Real offset, const double* z, Real* vmin, Real* zmin,
                    Real* vmax, Real* zmax, std::uintptr_t stream);

}  // namespace cuda
}  // namespace diffimaging
