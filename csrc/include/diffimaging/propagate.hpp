// Public C++ API of the free-space propagation kernels (CPU, no Python).
//
// The kernels multiply spectra by the transfer function H of
// diffimaging/math/transfer.hpp, generated on the fly: they do not transform.
// Spectra are in the FFT's own (unshifted) order on a p.ny x p.nx grid of
// frequencies fftfreq(n, d).  Complex arrays are C-contiguous interleaved
// (re, im) pairs of Real (float or double); `nthreads` <= 0 means all hardware
// threads.
#pragma once

#include "diffimaging/core/view.hpp"
#include "diffimaging/math/transfer.hpp"

namespace diffimaging {
namespace cpu {

// dst[b, i, j] = H(fy_i, fx_j) * src[b, i, j]  (conj(H) when `conjugate`),
// for b < batch on a p.ny x p.nx frequency grid.  src may equal dst.
template <class Real>
void transfer_apply(const Real* src, Real* dst, index_t batch, const TransferParams& p,
                    bool conjugate, int nthreads);

// The same on views, with checks: src and dst must have one shape whose (ny,
// nx) is p's grid, and p must be physical (wavelength, dy, dx > 0 and finite,
// z finite).  Throws std::invalid_argument otherwise.  src.data may equal dst.data.
template <class Real>
void transfer_apply(ConstComplexPlanes<Real> src, ComplexPlanes<Real> dst, const TransferParams& p,
                    bool conjugate, int nthreads);

// Throws std::invalid_argument unless p describes a physical transfer function
// (the checks of the view form of transfer_apply).
void check_transfer_params(const TransferParams& p);

// Pullback of the transfer-function multiply, fused:
//   returns  sum_{b,i,j} Re( conj(G) * (i kappa) * H * U )       (double accumulation)
//   and sets acc = conj(H) * G   (acc += conj(H) * G when `accumulate`).
// U may be null (then the z-reduction is skipped and 0 is returned).  acc may
// equal G when not accumulating.  `u_batch_stride` is 0 when U is shared by
// every batch element (one spectrum broadcast over a stack), else p.ny*p.nx.
// The sum is over one slot per chunk of rows, so its bits depend on nthreads.
template <class Real>
double transfer_pullback(const Real* U, index_t u_batch_stride, const Real* G, Real* acc,
                         index_t batch, const TransferParams& p, bool accumulate, int nthreads);

// Which row kernels this build and CPU use ("AVX2/FMA transfer rows" or
// "baseline SIMD transfer rows").
const char* transfer_rows_isa();

}  // namespace cpu
}  // namespace diffimaging
