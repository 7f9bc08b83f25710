// Plain C++ launcher of the CUDA kernel of Fourier ptychography's fidelity step
// (no pybind11, no CUDA headers).  Pointers are device pointers; `stream` is a
// cudaStream_t passed as an integer.
#pragma once

#include <cstdint>

#include "diffimaging/core/common.hpp"

namespace diffimaging {
namespace cuda {

// The fidelities of diffimaging.fpm.losses (0 amplitude, 1 poisson, 2 huber).
enum class FpmLoss : int { kAmplitude = 0, kPoisson = 1, kHuber = 2 };

// For J images of n pixels: mu = a_j |psi|^2 + background, the per-pixel fidelity
// v(mu, y) and its derivative d(mu, y) (fpm.losses' formulas, mu clipped at
// 1e-6), masked by mask (n,); then
//   vals[j] = sum_pixels mask v            (host, J doubles, fixed-order sums)
//   gpsi    = 2 a_j w_j mask d psi          (the cotangent of the fields)
// in one pass.  psi, gpsi: (J, n) interleaved complex; y: (J, n) real; mask: (n,)
// real; a, w: (J,) doubles on the device.  Deterministic (one block per image,
// a fixed tree); the call synchronises the stream.
template <class Real>
void fpm_fidelity(const Real* psi, const Real* y, const Real* mask, const double* a,
                  const double* w, double background, FpmLoss loss, index_t J, index_t n,
                  Real* gpsi, double* vals, std::uintptr_t stream);

}  // namespace cuda
}  // namespace diffimaging
