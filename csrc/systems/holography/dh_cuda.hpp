// Plain C++ launchers of the CUDA kernels of the fused ∂H engine for real
// objects (the device twins of dh_cpu.cpp and prox_cpu.cpp; no pybind11, no
// CUDA headers).  Pointers are device pointers; `stream` is a cudaStream_t
// passed as an integer.  Spectra are half spectra: (ny, nxh) interleaved
// complex, nxh = nx / 2 + 1 columns of a real-to-complex transform of length
// p.nx (see diffimaging/holography.hpp).
#pragma once

#include <cstdint>

#include "diffimaging/math/transfer.hpp"

namespace diffimaging {
namespace cuda {

// T[k] = H(zs[k]) on the half spectrum of p's grid for nz planes ((nz, p.ny,
// nxh) complex): the band-limit mask and the phase of each plane's own depth,
// p.carrier and p.band_limit as given (the CPU's dh_accumulate of a unit
// spectrum, value for value: the same transfer_at in double precision).
template <class Real>
void dh_transfer_table(Real* T, const double* zs, index_t nz, index_t nxh, const TransferParams& p,
                       std::uintptr_t stream);

// Sr (+)= sum_k Re(T[k]) O[k], Si (+)= sum_k Im(T[k]) O[k] over `batch` planes
// of n complex elements (O, T: (batch, n); Sr, Si: (n,)); the planes are added
// in order in registers, each sum read and written once per call.
template <class Real>
void dh_accumulate_table(const Real* O, const Real* T, Real* Sr, Real* Si, index_t n,
                         index_t batch, bool accumulate, std::uintptr_t stream);

// C[k] = Re(T[k]) A + Im(T[k]) B (B null: Re(T[k]) A) for `batch` planes of n
// complex elements.
template <class Real>
void dh_backproject_table(const Real* A, const Real* B, const Real* T, Real* C, index_t n,
                          index_t batch, std::uintptr_t stream);

// The proximal step of the ∂H solvers on `planes` real (ny, nx) planes:
//   out = clip(y - step g + shift, lo, hi),  y = x + beta (x - xp)  (xp null: y = x)
// x, xp, out: (planes, ny, nx) contiguous; g: plane p, row i at
// g + p * g_plane + i * g_row (rows contiguous, g_row >= nx).  `copy` (null, or
// g itself) also receives the result, and its columns nx .. g_row - 1 are zeroed
// (the padded input of the next transform).  sums (host, 3 doubles) = (sum g (out
// - y), sum (out - y)^2, sum out), reduced in a fixed order (deterministic); the
// call synchronises the stream.
template <class Real>
void prox_step(const Real* x, const Real* xp, const Real* g, index_t g_plane, index_t g_row,
               Real* out, Real* copy, index_t planes, index_t ny, index_t nx, double beta,
               double step, double shift, double lo, double hi, double* sums,
               std::uintptr_t stream);

}  // namespace cuda
}  // namespace diffimaging
