// Public C++ API of the element-wise kernels (CPU, no Python).  Complex arrays
// are interleaved (re, im) pairs of Real; `nthreads` <= 0 means all hardware
// threads.
#pragma once

#include "diffimaging/core/common.hpp"

namespace diffimaging {
namespace cpu {

// |u|^2 of n complex values (interleaved) into n reals.
template <class Real>
void intensity(const Real* u, Real* out, index_t n, int nthreads);

// dst[b, i, :] = src[b, i, :nx] for i < ny: the top-left (ny, nx) block of each
// (src_ny, src_nx) plane, `ncomp` Reals per element, threaded (first touch of a
// freshly allocated dst is spread over the threads).  src may have a row stride
// `src_row` >= nx and a plane stride `src_plane` (in elements).
template <class Real>
void crop_copy(const Real* src, index_t src_plane, index_t src_row, Real* dst, index_t batch,
               index_t ny, index_t nx, int ncomp, int nthreads);

}  // namespace cpu
}  // namespace diffimaging
