// CUDA kernels of the fused ∂H engine for real objects (the device twins of
// dh_cpu.cpp's table kernels and prox_cpu.cpp): transfer tables on the half
// spectrum, the sensor spectra of a batch of planes, the plane cotangents, and
// the proximal step with its line-search sums.  No pybind11 here: the
// launchers are bound in dh_cuda_bind.cpp.
//
// The sums of prox_step are deterministic: every block adds its fixed set of
// rows (a fixed-shape tree in shared memory) into a scratch slot, one block then
// adds the slots in order.  No floating-point atomics.
#include <cuda_runtime.h>

#include "core/cuda_device.hpp"
#include "core/cuda_launch.cuh"
#include "systems/holography/dh_cuda.hpp"

namespace diffimaging {
namespace cuda {
namespace {

constexpr int kThreads = 256;        // threads per block (a power of two: the reduction tree)
constexpr int kReduceBlocks = 1024;  // blocks of the first reduction pass (fixed: determinism)

int blocks_for(index_t total) { return grid_blocks(total, kThreads); }

// T[k, i, j] = H(z_k) at element (i, j < nxh) of p's grid (the non-negative
// x frequencies of a real transform are the full grid's first nxh columns).
template <class Real>
__global__ void table_kernel(Real* __restrict__ T, const double* __restrict__ zs, index_t nxh,
                             TransferParams p) {
  const index_t j = blockIdx.x * static_cast<index_t>(blockDim.x) + threadIdx.x;
  if (j >= nxh) return;
  const index_t k = blockIdx.z;
  TransferParams q = p;
  q.z = zs[k];
  const BandLimits lim = band_limits(q);
  const Wave w = wave(p.wavelength);
  for (index_t i = blockIdx.y; i < p.ny; i += gridDim.y) {
    double hr, hi, km;
    transfer_at(q, lim, w, i, j, q.z, 1.0, &hr, &hi, &km);
    const index_t e = (k * p.ny + i) * nxh + j;
    T[2 * e] = static_cast<Real>(hr);
    T[2 * e + 1] = static_cast<Real>(hi);
  }
}

template <class Real>
__global__ void accumulate_kernel(const Real* __restrict__ O, const Real* __restrict__ T,
                                  Real* __restrict__ Sr, Real* __restrict__ Si, index_t n,
                                  index_t batch, bool accumulate) {
  for (index_t e = blockIdx.x * static_cast<index_t>(blockDim.x) + threadIdx.x; e < n;
       e += static_cast<index_t>(blockDim.x) * gridDim.x) {
    Real ar = 0, ai = 0, br = 0, bi = 0;
    if (accumulate) {
      ar = Sr[2 * e];
      ai = Sr[2 * e + 1];
      br = Si[2 * e];
      bi = Si[2 * e + 1];
    }
    for (index_t k = 0; k < batch; ++k) {
      const index_t o = k * n + e;
      const Real hr = T[2 * o], hi = T[2 * o + 1], x = O[2 * o], y = O[2 * o + 1];
      ar += hr * x;
      ai += hr * y;
      br += hi * x;
      bi += hi * y;
    }
    Sr[2 * e] = ar;
    Sr[2 * e + 1] = ai;
    Si[2 * e] = br;
    Si[2 * e + 1] = bi;
  }
}

template <class Real>
__global__ void backproject_kernel(const Real* __restrict__ A, const Real* __restrict__ B,
                                   const Real* __restrict__ T, Real* __restrict__ C, index_t n,
                                   index_t batch) {
  for (index_t e = blockIdx.x * static_cast<index_t>(blockDim.x) + threadIdx.x; e < n;
       e += static_cast<index_t>(blockDim.x) * gridDim.x) {
    const Real ar = A[2 * e], ai = A[2 * e + 1];
    const Real br = B != nullptr ? B[2 * e] : Real(0);
    const Real bi = B != nullptr ? B[2 * e + 1] : Real(0);
    for (index_t k = 0; k < batch; ++k) {
      const index_t o = k * n + e;
      const Real hr = T[2 * o], hi = T[2 * o + 1];
      C[2 * o] = hr * ar + hi * br;
      C[2 * o + 1] = hr * ai + hi * bi;
    }
  }
}

// First pass of prox_step: block b owns rows b, b + gridDim.x, ... of the
// planes * ny rows, its threads the columns.
template <class Real>
__global__ void prox_kernel(const Real* __restrict__ x, const Real* __restrict__ xp, const Real* g,
                            index_t g_plane, index_t g_row, Real* __restrict__ out, Real* copy,
                            index_t planes, index_t ny, index_t nx, Real beta, Real step,
                            Real shift, Real lo, Real hi, double* __restrict__ part) {
  double acc[3] = {0.0, 0.0, 0.0};
  for (index_t row = blockIdx.x; row < planes * ny; row += gridDim.x) {
    const index_t p = row / ny;
    const index_t i = row - p * ny;
    const index_t o = row * nx;
    const Real* gr = g + p * g_plane + i * g_row;
    Real* cr = copy == nullptr ? nullptr : copy + p * g_plane + i * g_row;
    for (index_t j = threadIdx.x; j < nx; j += blockDim.x) {
      const Real xj = x[o + j];
      const Real y = xp == nullptr ? xj : xj + beta * (xj - xp[o + j]);
      const Real gj = gr[j];
      Real v = y - step * gj + shift;
      v = v < lo ? lo : v;
      v = v > hi ? hi : v;
      out[o + j] = v;
      if (cr != nullptr) cr[j] = v;
      const Real d = v - y;
      acc[0] += static_cast<double>(gj * d);
      acc[1] += static_cast<double>(d * d);
      acc[2] += static_cast<double>(v);
    }
    if (cr != nullptr)
      for (index_t j = nx + threadIdx.x; j < g_row; j += blockDim.x) cr[j] = Real(0);
  }
  block_sum<kThreads, 3>(acc);
  if (threadIdx.x == 0)
    for (int c = 0; c < 3; ++c) part[3 * blockIdx.x + c] = acc[c];
}

__global__ void sum3_kernel(const double* __restrict__ part, index_t n, double* __restrict__ out) {
  double acc[3] = {0.0, 0.0, 0.0};
  for (index_t i = threadIdx.x; i < n; i += blockDim.x)
    for (int c = 0; c < 3; ++c) acc[c] += part[3 * i + c];
  block_sum<kThreads, 3>(acc);
  if (threadIdx.x == 0)
    for (int c = 0; c < 3; ++c) out[c] = acc[c];
}

}  // namespace

template <class Real>
void dh_transfer_table(Real* T, const double* zs, index_t nz, index_t nxh, const TransferParams& p,
                       std::uintptr_t stream) {
  if (nz <= 0 || nxh <= 0 || p.ny <= 0) return;
  index_t done = 0;
  while (done < nz) {  // at most 65535 planes on the grid's z axis per launch
    const index_t m = nz - done < 65535 ? nz - done : 65535;
    const dim3 grid(static_cast<unsigned>((nxh + kThreads - 1) / kThreads),
                    static_cast<unsigned>(p.ny < 65535 ? p.ny : 65535), static_cast<unsigned>(m));
    table_kernel<Real><<<grid, kThreads, 0, as_stream(stream)>>>(T + 2 * done * p.ny * nxh,
                                                                 zs + done, nxh, p);
    check(cudaGetLastError(), "dh_transfer_table launch");
    done += m;
  }
}

template <class Real>
void dh_accumulate_table(const Real* O, const Real* T, Real* Sr, Real* Si, index_t n,
                         index_t batch, bool accumulate, std::uintptr_t stream) {
  if (n <= 0) return;
  accumulate_kernel<Real><<<blocks_for(n), kThreads, 0, as_stream(stream)>>>(O, T, Sr, Si, n,
                                                                            batch, accumulate);
  check(cudaGetLastError(), "dh_accumulate_table launch");
}

template <class Real>
void dh_backproject_table(const Real* A, const Real* B, const Real* T, Real* C, index_t n,
                          index_t batch, std::uintptr_t stream) {
  if (n <= 0 || batch <= 0) return;
  backproject_kernel<Real><<<blocks_for(n), kThreads, 0, as_stream(stream)>>>(A, B, T, C, n,
                                                                             batch);
  check(cudaGetLastError(), "dh_backproject_table launch");
}

template <class Real>
void prox_step(const Real* x, const Real* xp, const Real* g, index_t g_plane, index_t g_row,
               Real* out, Real* copy, index_t planes, index_t ny, index_t nx, double beta,
               double step, double shift, double lo, double hi, double* sums,
               std::uintptr_t stream) {
  sums[0] = sums[1] = sums[2] = 0.0;
  const index_t rows = planes * ny;
  if (rows <= 0 || nx <= 0) return;
  const cudaStream_t s = as_stream(stream);
  const int blocks = static_cast<int>(rows < kReduceBlocks ? rows : kReduceBlocks);
  double* part = nullptr;
  check(cudaMallocAsync(reinterpret_cast<void**>(&part),
                        sizeof(double) * (3 * static_cast<size_t>(blocks) + 3), s),
        "allocating the prox_step reduction scratch");
  prox_kernel<Real><<<blocks, kThreads, 0, s>>>(
      x, xp, g, g_plane, g_row, out, copy, planes, ny, nx, static_cast<Real>(beta),
      static_cast<Real>(step), static_cast<Real>(shift), static_cast<Real>(lo),
      static_cast<Real>(hi), part);
  int status = cudaGetLastError();
  if (status == cudaSuccess) {
    sum3_kernel<<<1, kThreads, 0, s>>>(part, blocks, part + 3 * blocks);
    status = cudaGetLastError();
  }
  if (status == cudaSuccess)
    status = cudaMemcpyAsync(sums, part + 3 * blocks, 3 * sizeof(double), cudaMemcpyDeviceToHost,
                             s);
  cudaFreeAsync(part, s);
  check(status, "prox_step");
  check(cudaStreamSynchronize(s), "prox_step");
}

#define DI_INSTANTIATE(Real)                                                                     \
  template void dh_transfer_table<Real>(Real*, const double*, index_t, index_t,                  \
                                        const TransferParams&, std::uintptr_t);                  \
  template void dh_accumulate_table<Real>(const Real*, const Real*, Real*, Real*, index_t,        \
                                          index_t, bool, std::uintptr_t);                        \
  template void dh_backproject_table<Real>(const Real*, const Real*, const Real*, Real*, index_t, \
                                           index_t, std::uintptr_t);                             \
  template void prox_step<Real>(const Real*, const Real*, const Real*, index_t, index_t, Real*,   \
                                Real*, index_t, index_t, index_t, double, double, double, double, \
                                double, double*, std::uintptr_t);
DI_INSTANTIATE(float)
DI_INSTANTIATE(double)
#undef DI_INSTANTIATE

}  // namespace cuda
}  // namespace diffimaging
