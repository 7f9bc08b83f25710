// Public C++ API of the binning kernels (CPU, no Python): exact area
// integration by an integer factor with sub-pixel shifts, its adjoint and the
// shift cotangent.  Weights: diffimaging/math/binning.hpp.  Arrays are
// C-contiguous; `nthreads` <= 0 means all hardware threads.
#pragma once

#include "diffimaging/core/common.hpp"

namespace diffimaging {
namespace cpu {

// Exact area-integration binning by an integer factor f, with a sub-pixel
// shift (sy, sx) per batch element (shifts: batch x 2 doubles, or null for no
// shift).  in: (batch, ny, nx) with batch stride `in_stride` (0 = broadcast);
// out: (batch, ny / f, nx / f).  `scale` multiplies the result (1/f^2 = mean).
// Complex data: ncomp = 2 (interleaved), real: ncomp = 1.
template <class Real>
void bin_forward(const Real* in, index_t in_stride, Real* out, index_t batch, index_t ny,
                 index_t nx, int ncomp, index_t f, const double* shifts, index_t shift_stride,
                 double scale, int nthreads);

// Adjoint of bin_forward: g (batch, ny/f, nx/f) -> out (batch, ny, nx).
template <class Real>
void bin_adjoint(const Real* g, Real* out, index_t batch, index_t ny, index_t nx, int ncomp,
                 index_t f, const double* shifts, index_t shift_stride, double scale,
                 int nthreads);

// Cotangent of the shifts: dshift[b] = (d/dsy, d/dsx) of sum Re(conj(g) * bin(in)).
template <class Real>
void bin_shift_grad(const Real* in, index_t in_stride, const Real* g, double* dshift,
                    index_t batch, index_t ny, index_t nx, int ncomp, index_t f,
                    const double* shifts, index_t shift_stride, double scale, int nthreads);

}  // namespace cpu
}  // namespace diffimaging
