// CUDA kernels of |u|^2 and of the Fourier-shift phase-ramp multiply.  The
// per-element math is in diffimaging/math/pointwise.hpp (host and device); the
// kernels are grid-stride loops over the elements.  No pybind11 here: the
// launchers are bound in pointwise_cuda_bind.cpp.
#include <cuda_runtime.h>

#include "core/cuda_device.hpp"
#include "core/cuda_launch.cuh"
#include "diffimaging/math/frequency.hpp"
#include "diffimaging/math/pointwise.hpp"
#include "ops/pointwise/pointwise_cuda.hpp"

namespace diffimaging {
namespace cuda {
namespace {

constexpr int kThreads = 256;

// Blocks of kThreads for `total` elements (grid-stride loops cover the rest).
int blocks_for(index_t total) { return grid_blocks(total, kThreads); }

template <class Real>
__global__ void intensity_kernel(const Real* __restrict__ u, Real* __restrict__ out, index_t n) {
  for (index_t e = blockIdx.x * static_cast<index_t>(blockDim.x) + threadIdx.x; e < n;
       e += static_cast<index_t>(blockDim.x) * gridDim.x) {
    out[e] = abs2<Real>(u[2 * e], u[2 * e + 1]);
  }
}

// src and dst may be the same array: no __restrict__.
template <class Real>
__global__ void fourier_shift_kernel(const Real* src, Real* dst, index_t total, index_t ny,
                                     index_t nx, double dy, double dx,
                                     const double* __restrict__ shifts, index_t shift_stride,
                                     double sign) {
  for (index_t e = blockIdx.x * static_cast<index_t>(blockDim.x) + threadIdx.x; e < total;
       e += static_cast<index_t>(blockDim.x) * gridDim.x) {
    const index_t j = e % nx;
    const index_t r = e / nx;  // row of the whole stack: b * ny + i
    const index_t i = r % ny;
    const index_t b = r / ny;
    const double* s = shifts + b * shift_stride;
    double c, sn;
    shift_ramp(fftfreq(i, ny, dy), fftfreq(j, nx, dx), s[0], s[1], sign, &c, &sn);
    cmul_store<Real>(src + 2 * e, dst + 2 * e, c, sn);
  }
}

}  // namespace

template <class Real>
void intensity(const Real* u, Real* out, index_t n, std::uintptr_t stream) {
  if (n <= 0) return;
  intensity_kernel<Real><<<blocks_for(n), kThreads, 0, as_stream(stream)>>>(
      u, out, n);
  check(cudaGetLastError(), "intensity launch");
}

template <class Real>
void fourier_shift_apply(const Real* src, Real* dst, index_t batch, index_t ny, index_t nx,
                         double dy, double dx, const double* shifts, index_t shift_stride,
                         bool conjugate, std::uintptr_t stream) {
  const index_t total = batch * ny * nx;
  if (total <= 0) return;
  fourier_shift_kernel<Real>
      <<<blocks_for(total), kThreads, 0, as_stream(stream)>>>(
          src, dst, total, ny, nx, dy, dx, shifts, shift_stride, conjugate ? -1.0 : 1.0);
  check(cudaGetLastError(), "fourier_shift_apply launch");
}

template void intensity<float>(const float*, float*, index_t, std::uintptr_t);
template void intensity<double>(const double*, double*, index_t, std::uintptr_t);
template void fourier_shift_apply<float>(const float*, float*, index_t, index_t, index_t, double,
                                         double, const double*, index_t, bool, std::uintptr_t);
template void fourier_shift_apply<double>(const double*, double*, index_t, index_t, index_t,
                                          double, double, const double*, index_t, bool,
                                          std::uintptr_t);

}  // namespace cuda
}  // namespace diffimaging
