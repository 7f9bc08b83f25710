// CUDA kernel of the free-space transfer function.  The per-element formula is
// the CPU rows' (diffimaging/math/transfer.hpp); only the launch differs.  No
// pybind11 here: the launcher is bound in propagate_cuda_bind.cpp.
#include <cuda_runtime.h>

#include "core/cuda_device.hpp"
#include "diffimaging/math/frequency.hpp"
#include "ops/propagate/propagate_cuda.hpp"

namespace diffimaging {
namespace cuda {
namespace {

template <class Real>
__global__ void transfer_apply_kernel(const Real* __restrict__ src, Real* __restrict__ dst,
                                      index_t total, TransferParams p, BandLimits lim,
                                      double conj_sign) {
  const Wave w = wave(p.wavelength);
  for (index_t e = blockIdx.x * static_cast<index_t>(blockDim.x) + threadIdx.x; e < total;
       e += static_cast<index_t>(blockDim.x) * gridDim.x) {
    const index_t j = e % p.nx;
    const index_t i = (e / p.nx) % p.ny;
    const double fx = fftfreq(j, p.nx, p.dx);
    const double fy = fftfreq(i, p.ny, p.dy);
    double kappa;
    const double pass = transfer_rate(p, fx * fx + fy * fy, w, &kappa);
    const double m = (in_band(fx, lim.fx) && in_band(fy, lim.fy)) ? pass : 0.0;
    double hr, hi;
    transfer_value(m, p.z, kappa, conj_sign, &hr, &hi);
    const double re = static_cast<double>(src[2 * e]);
    const double im = static_cast<double>(src[2 * e + 1]);
    dst[2 * e] = static_cast<Real>(re * hr - im * hi);
    dst[2 * e + 1] = static_cast<Real>(re * hi + im * hr);
  }
}

}  // namespace

template <class Real>
void transfer_apply(const Real* src, Real* dst, index_t batch, const TransferParams& p,
                    bool conjugate, std::uintptr_t stream) {
  const index_t total = batch * p.ny * p.nx;
  if (total == 0) return;
  const int threads = 256;
  const index_t want = (total + threads - 1) / threads;
  const int blocks = static_cast<int>(want < 65535 * 8 ? want : 65535 * 8);
  transfer_apply_kernel<Real><<<blocks, threads, 0, reinterpret_cast<cudaStream_t>(stream)>>>(
      src, dst, total, p, band_limits(p), conjugate ? -1.0 : 1.0);
  check(cudaGetLastError(), "transfer_apply launch");
}

template void transfer_apply<float>(const float*, float*, index_t, const TransferParams&, bool,
                                    std::uintptr_t);
template void transfer_apply<double>(const double*, double*, index_t, const TransferParams&, bool,
                                     std::uintptr_t);

}  // namespace cuda
}  // namespace diffimaging
