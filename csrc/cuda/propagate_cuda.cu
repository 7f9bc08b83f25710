// CUDA kernels for the free-space transfer function.  The per-element math is
// the same header code as the CPU loop (diffimaging/transfer.hpp); only the
// launch differs.  No pybind11 here (see the launchers in diffimaging/cuda.hpp).
#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

#include "diffimaging/cuda.hpp"

namespace diffimaging {
namespace cuda {
namespace {

void check(cudaError_t err, const char* what) {
  if (err != cudaSuccess)
    throw std::runtime_error(std::string("diffimaging CUDA: ") + what + ": " +
                             cudaGetErrorString(err));
}

template <class Real>
__global__ void transfer_apply_kernel(const Real* __restrict__ src, Real* __restrict__ dst,
                                      index_t total, TransferParams p, double fy_limit,
                                      double fx_limit, double conj_sign) {
  const double inv_l = 1.0 / p.wavelength;
  const double inv_l2 = inv_l * inv_l;
  for (index_t e = blockIdx.x * static_cast<index_t>(blockDim.x) + threadIdx.x; e < total;
       e += static_cast<index_t>(blockDim.x) * gridDim.x) {
    const index_t j = e % p.nx;
    const index_t i = (e / p.nx) % p.ny;
    const double fx = fftfreq(j, p.nx, p.dx);
    const double fy = fftfreq(i, p.ny, p.dy);
    double kappa;
    bool ok = transfer_kappa(p, inv_l, inv_l2, fx * fx + fy * fy, &kappa);
    ok = ok && fabs(fx) <= fx_limit && fabs(fy) <= fy_limit;
    double sn = 0.0, cs = 0.0;
    if (ok) sincos(p.z * kappa, &sn, &cs);
    sn *= conj_sign;
    const double re = static_cast<double>(src[2 * e]);
    const double im = static_cast<double>(src[2 * e + 1]);
    dst[2 * e] = static_cast<Real>(re * cs - im * sn);
    dst[2 * e + 1] = static_cast<Real>(re * sn + im * cs);
  }
}

}  // namespace

int device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no driver" error
    return 0;
  }
  return n;
}

int runtime_version() {
  int v = 0;
  cudaRuntimeGetVersion(&v);
  return v;
}

template <class Real>
void transfer_apply(const Real* src, Real* dst, index_t batch, const TransferParams& p,
                    bool conjugate, std::uintptr_t stream) {
  const index_t total = batch * p.ny * p.nx;
  if (total == 0) return;
  const double fy_limit = p.band_limit ? band_limit_frequency(p, p.ny, p.dy) : INFINITY;
  const double fx_limit = p.band_limit ? band_limit_frequency(p, p.nx, p.dx) : INFINITY;
  const int threads = 256;
  const index_t want = (total + threads - 1) / threads;
  const int blocks = static_cast<int>(want < 65535 * 8 ? want : 65535 * 8);
  transfer_apply_kernel<Real><<<blocks, threads, 0, reinterpret_cast<cudaStream_t>(stream)>>>(
      src, dst, total, p, fy_limit, fx_limit, conjugate ? -1.0 : 1.0);
  check(cudaGetLastError(), "transfer_apply launch");
}

template void transfer_apply<float>(const float*, float*, index_t, const TransferParams&, bool,
                                    std::uintptr_t);
template void transfer_apply<double>(const double*, double*, index_t, const TransferParams&, bool,
                                     std::uintptr_t);

}  // namespace cuda
}  // namespace diffimaging
