// CUDA kernel of Fourier ptychography's fidelity step: intensities, the
// prediction, the per-image fidelity and the fields' cotangent in one pass
// (the array-API path takes some twenty elementwise passes and reductions).
// The formulas are diffimaging.fpm.losses'; one block per image sums its
// pixels in a fixed order (deterministic).  No pybind11 here.
#include <cuda_runtime.h>

#include "core/cuda_device.hpp"
#include "core/cuda_launch.cuh"
#include "systems/fpm/fidelity_cuda.hpp"

namespace diffimaging {
namespace cuda {
namespace {

constexpr int kThreads = 256;  // a power of two: the reduction tree
constexpr double kEps = 1e-6;  // fpm.losses._EPS: mu is clipped there
constexpr double kDelta = 1.0;  // fpm.losses._DELTA (sqrt-photons)

// The per-pixel fidelity v and dv/dmu of fpm.losses._terms, in Real.
template <class Real>
__device__ void terms(FpmLoss loss, Real mu, Real y, Real* v, Real* d) {
  const Real m = mu < Real(kEps) ? Real(kEps) : mu;
  const Real yy = y > Real(0) ? y : Real(0);
  if (loss == FpmLoss::kPoisson) {
    const Real ylog = yy > Real(0) ? yy * log(yy / m) : Real(0);
    *v = Real(2) * (m - yy) + Real(2) * ylog;
    *d = Real(2) * (Real(1) - yy / m);
    return;
  }
  const Real sm = sqrt(m);
  const Real r = sm - sqrt(yy);
  if (loss == FpmLoss::kAmplitude) {
    *v = r * r;
    *d = r / sm;
    return;
  }
  const Real ar = fabs(r);
  if (ar <= Real(kDelta)) {
    *v = r * r;
    *d = r / sm;
  } else {
    *v = Real(2 * kDelta) * ar - Real(kDelta * kDelta);
    *d = (r > Real(0) ? Real(kDelta) : (r < Real(0) ? -Real(kDelta) : Real(0))) / sm;
  }
}

template <class Real>
__global__ void fidelity_kernel(const Real* __restrict__ psi, const Real* __restrict__ y,
                                const Real* __restrict__ mask, const double* __restrict__ a,
                                const double* __restrict__ w, Real background, FpmLoss loss,
                                index_t n, Real* __restrict__ gpsi, double* __restrict__ vals) {
  const index_t j = blockIdx.x;
  const Real aj = static_cast<Real>(a[j]);
  const Real scale = static_cast<Real>(2.0 * a[j] * w[j]);
  const Real* p = psi + 2 * j * n;
  const Real* yj = y + j * n;
  Real* g = gpsi + 2 * j * n;
  double acc = 0.0;
  for (index_t e = threadIdx.x; e < n; e += blockDim.x) {
    const Real re = p[2 * e], im = p[2 * e + 1];
    const Real mu = aj * (re * re + im * im) + background;
    Real v, d;
    terms<Real>(loss, mu, yj[e], &v, &d);
    const Real mk = mask[e];
    acc += static_cast<double>(v * mk);
    const Real s = scale * d * mk;
    g[2 * e] = s * re;
    g[2 * e + 1] = s * im;
  }
  double sum[1] = {acc};
  block_sum<kThreads, 1>(sum);
  if (threadIdx.x == 0) vals[j] = sum[0];
}

}  // namespace

template <class Real>
void fpm_fidelity(const Real* psi, const Real* y, const Real* mask, const double* a,
                  const double* w, double background, FpmLoss loss, index_t J, index_t n,
                  Real* gpsi, double* vals, std::uintptr_t stream) {
  if (J <= 0) return;
  const cudaStream_t s = as_stream(stream);
  double* dvals = nullptr;
  check(cudaMallocAsync(reinterpret_cast<void**>(&dvals), sizeof(double) * J, s),
        "allocating the fpm_fidelity sums");
  int status = cudaSuccess;
  // at most 65535 images per launch (grid.x is not the limit, but keep launches modest)
  for (index_t j0 = 0; j0 < J && status == cudaSuccess; j0 += 65535) {
    const index_t m = J - j0 < 65535 ? J - j0 : 65535;
    fidelity_kernel<Real><<<static_cast<unsigned>(m), kThreads, 0, s>>>(
        psi + 2 * j0 * n, y + j0 * n, mask, a + j0, w + j0, static_cast<Real>(background), loss,
        n, gpsi + 2 * j0 * n, dvals + j0);
    status = cudaGetLastError();
  }
  if (status == cudaSuccess)
    status = cudaMemcpyAsync(vals, dvals, sizeof(double) * J, cudaMemcpyDeviceToHost, s);
  cudaFreeAsync(dvals, s);
  check(status, "fpm_fidelity");
  check(cudaStreamSynchronize(s), "fpm_fidelity");
}

template void fpm_fidelity<float>(const float*, const float*, const float*, const double*,
                                  const double*, double, FpmLoss, index_t, index_t, float*,
                                  double*, std::uintptr_t);
template void fpm_fidelity<double>(const double*, const double*, const double*, const double*,
                                   const double*, double, FpmLoss, index_t, index_t, double*,
                                   double*, std::uintptr_t);

}  // namespace cuda
}  // namespace diffimaging
