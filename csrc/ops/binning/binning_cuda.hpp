// Plain C++ launchers of the CUDA binning kernels (no pybind11, no CUDA
// headers: the bindings include this file with the host compiler).
//
// Same arguments and semantics as the CPU API (diffimaging/binning.hpp), with
// every array pointer a device pointer:
// - in / g / out: C-contiguous (batch, ny, nx) or (batch, ny/f, nx/f) arrays of
//   Real (ncomp = 1) or interleaved complex (ncomp = 2), Real = float or double;
// - in_stride: batch stride of the input in elements, 0 (one image broadcast
//   over the batch) or ny * nx;
// - shifts: device pointer to batch x 2 doubles (sy, sx) in input pixels, read
//   at b * shift_stride (shift_stride 0: one shift for every batch element,
//   2: one per element); null = no shift (bin_shift_grad then differentiates
//   at zero shift);
// - scale multiplies the result (1/f^2 = mean);
// - stream: a cudaStream_t passed as an integer (0 = legacy default stream).
// The launchers are asynchronous on `stream`; they throw std::runtime_error
// with the CUDA error string when a launch or an allocation fails.
#pragma once

#include <cstdint>

#include "diffimaging/core/common.hpp"

namespace diffimaging {
namespace cuda {

// out (batch, ny/f, nx/f) = scale * exact area binning of in by f.
template <class Real>
void bin_forward(const Real* in, index_t in_stride, Real* out, index_t batch, index_t ny,
                 index_t nx, int ncomp, index_t f, const double* shifts, index_t shift_stride,
                 double scale, std::uintptr_t stream);

// Adjoint of bin_forward: g (batch, ny/f, nx/f) -> out (batch, ny, nx), every
// element written (0 where no output pixel reaches).
template <class Real>
void bin_adjoint(const Real* g, Real* out, index_t batch, index_t ny, index_t nx, int ncomp,
                 index_t f, const double* shifts, index_t shift_stride, double scale,
                 std::uintptr_t stream);

// dshift (device, batch x 2 doubles) = (d/dsy, d/dsx) of sum Re(conj(g) * bin(in))
// per batch element.  Deterministic: a fixed-order two-pass reduction in double
// (per-block partial sums in a stream-ordered scratch buffer, then a fixed-order
// sum of the partials); no floating-point atomics, so repeated calls give
// bit-identical results.
template <class Real>
void bin_shift_grad(const Real* in, index_t in_stride, const Real* g, double* dshift,
                    index_t batch, index_t ny, index_t nx, int ncomp, index_t f,
                    const double* shifts, index_t shift_stride, double scale,
                    std::uintptr_t stream);

// Number of blocks (per batch element) of the first pass of bin_shift_grad for
// `outputs` = (ny/f) * (nx/f) output pixels and `batch` elements; exposed for
// tests and documentation (the scratch holds batch * blocks * 2 doubles).
index_t bin_shift_grad_blocks(index_t outputs, index_t batch);

}  // namespace cuda
}  // namespace diffimaging
