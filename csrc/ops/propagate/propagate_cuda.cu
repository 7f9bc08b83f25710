// CUDA kernels of the free-space transfer function, fused with the spectrum
// multiply, its adjoint, the z-stack and the distance-gradient reduction.  The
// per-element formula is math/transfer.hpp's `transfer_at` (the CPU rows
// compute the same formula a row at a time); only the launch differs.  No
// pybind11 here: the launchers are bound in propagate_cuda_bind.cpp.
//
// Reductions (the z cotangents) are deterministic: every block writes the sum of
// its fixed range of elements (a fixed-shape tree in shared memory) to a scratch
// slot, and one block then adds the slots in a fixed order.  No floating-point
// atomics: the same inputs give bit-identical results on every run.
#include <cuda_runtime.h>

#include <vector>

#include "core/cuda_device.hpp"
#include "diffimaging/math/pointwise.hpp"
#include "ops/propagate/propagate_cuda.hpp"

namespace diffimaging {
namespace cuda {
namespace {

constexpr int kThreads = 256;  // threads per block (a power of two: the reduction tree)
constexpr index_t kMaxBlocks = 65535 * 8;
constexpr int kReduceBlocks = 1024;  // blocks of the first reduction pass (fixed: determinism)

int blocks_for(index_t total) {
  const index_t want = (total + kThreads - 1) / kThreads;
  return static_cast<int>(want < kMaxBlocks ? (want > 0 ? want : 1) : kMaxBlocks);
}

cudaStream_t as_stream(std::uintptr_t s) { return reinterpret_cast<cudaStream_t>(s); }

// Block-wide sum of one double per thread, in a fixed tree order; thread 0 gets it.
__device__ double block_sum(double v) {
  __shared__ double buf[kThreads];
  buf[threadIdx.x] = v;
  __syncthreads();
  for (int s = kThreads / 2; s > 0; s >>= 1) {
    if (threadIdx.x < s) buf[threadIdx.x] += buf[threadIdx.x + s];
    __syncthreads();
  }
  return buf[0];
}

// The band limits and wave constants of distance z (the limits move with |z|).
struct PlaneConst {
  BandLimits lim;
  Wave w;
};

__device__ PlaneConst plane_const(const TransferParams& p, double z) {
  TransferParams q = p;
  q.z = z;
  return {band_limits(q), wave(p.wavelength)};
}

// src and dst may be one array (in place): no __restrict__.
template <class Real>
__global__ void apply_kernel(const Real* src, Real* dst, index_t total,
                             TransferParams p, double conj_sign) {
  const PlaneConst c = plane_const(p, p.z);
  const index_t plane = p.ny * p.nx;
  for (index_t e = blockIdx.x * static_cast<index_t>(blockDim.x) + threadIdx.x; e < total;
       e += static_cast<index_t>(blockDim.x) * gridDim.x) {
    const index_t r = e % plane;
    double hr, hi, km;
    transfer_at(p, c.lim, c.w, r / p.nx, r % p.nx, p.z, conj_sign, &hr, &hi, &km);
    cmul_store<Real>(src + 2 * e, dst + 2 * e, hr, hi);
  }
}

// dst[k, b] = H(z_k) src[b] for K distances: the spectra of a z-stack in one launch.
template <class Real>
__global__ void stack_kernel(const Real* __restrict__ src, Real* __restrict__ dst,
                             const double* __restrict__ zs, index_t nz, index_t batch,
                             TransferParams p) {
  const index_t plane = p.ny * p.nx;
  const index_t per_z = batch * plane;
  const index_t total = nz * per_z;
  const Wave w = wave(p.wavelength);
  for (index_t e = blockIdx.x * static_cast<index_t>(blockDim.x) + threadIdx.x; e < total;
       e += static_cast<index_t>(blockDim.x) * gridDim.x) {
    const index_t k = e / per_z;
    const index_t s = e % per_z;  // element of the source batch
    const index_t r = s % plane;
    TransferParams q = p;
    q.z = zs[k];
    double hr, hi, km;
    transfer_at(q, band_limits(q), w, r / p.nx, r % p.nx, q.z, 1.0, &hr, &hi, &km);
    cmul_store<Real>(src + 2 * s, dst + 2 * e, hr, hi);
  }
}

// acc[b] (+)= sum_k conj(H(z_k)) G[k, b]: the adjoint of the stack, summing the
// planes in order in registers (no stack-sized temporary).
template <class Real>
__global__ void stack_adjoint_kernel(const Real* __restrict__ G, Real* __restrict__ acc,
                                     const double* __restrict__ zs, index_t nz, index_t batch,
                                     TransferParams p, bool accumulate) {
  const index_t plane = p.ny * p.nx;
  const index_t per_z = batch * plane;
  const Wave w = wave(p.wavelength);
  for (index_t e = blockIdx.x * static_cast<index_t>(blockDim.x) + threadIdx.x; e < per_z;
       e += static_cast<index_t>(blockDim.x) * gridDim.x) {
    const index_t r = e % plane;
    double sr = accumulate ? static_cast<double>(acc[2 * e]) : 0.0;
    double si = accumulate ? static_cast<double>(acc[2 * e + 1]) : 0.0;
    for (index_t k = 0; k < nz; ++k) {
      TransferParams q = p;
      q.z = zs[k];
      double hr, hi, km;
      transfer_at(q, band_limits(q), w, r / p.nx, r % p.nx, q.z, -1.0, &hr, &hi, &km);
      const double gr = static_cast<double>(G[2 * (k * per_z + e)]);
      const double gi = static_cast<double>(G[2 * (k * per_z + e) + 1]);
      sr += gr * hr - gi * hi;
      si += gr * hi + gi * hr;
    }
    acc[2 * e] = static_cast<Real>(sr);
    acc[2 * e + 1] = static_cast<Real>(si);
  }
}

// First pass of the z cotangent of plane k = blockIdx.y:
//   part[k, block] = sum over the block's elements of Re(conj(G) i kappa H U)
// with U broadcast over the batch when u_stride == 0.  Optionally also the
// pullback acc (+)= conj(H) G (single-plane calls only: nz == 1).
template <class Real>
__global__ void dz_partial_kernel(const Real* __restrict__ U, index_t u_stride,
                                  const Real* G, Real* acc,  // acc may be G (in place)
                                  const double* __restrict__ zs, double z0, index_t batch,
                                  TransferParams p, bool write_acc, bool accumulate,
                                  double* __restrict__ part) {
  const index_t plane = p.ny * p.nx;
  const index_t per_z = batch * plane;
  const index_t k = blockIdx.y;
  const double z = zs != nullptr ? zs[k] : z0;
  const PlaneConst c = plane_const(p, z);
  double sum = 0.0;
  for (index_t e = blockIdx.x * static_cast<index_t>(blockDim.x) + threadIdx.x; e < per_z;
       e += static_cast<index_t>(blockDim.x) * gridDim.x) {
    const index_t b = e / plane;
    const index_t r = e % plane;
    double hr, hi, km;
    transfer_at(p, c.lim, c.w, r / p.nx, r % p.nx, z, 1.0, &hr, &hi, &km);
    const index_t ge = k * per_z + e;
    const double gr = static_cast<double>(G[2 * ge]);
    const double gi = static_cast<double>(G[2 * ge + 1]);
    if (U != nullptr) {
      const index_t ue = b * u_stride + r;
      const double ur = static_cast<double>(U[2 * ue]);
      const double ui = static_cast<double>(U[2 * ue + 1]);
      // Re(conj(G) i kappa H U) = kappa (Gi Re(HU) - Gr Im(HU))
      sum += km * (gi * (hr * ur - hi * ui) - gr * (hi * ur + hr * ui));
    }
    if (write_acc) {
      // conj(H) G
      double ar = gr * hr + gi * hi;
      double ai = gi * hr - gr * hi;
      if (accumulate) {
        ar += static_cast<double>(acc[2 * e]);
        ai += static_cast<double>(acc[2 * e + 1]);
      }
      acc[2 * e] = static_cast<Real>(ar);
      acc[2 * e + 1] = static_cast<Real>(ai);
    }
  }
  const double s = block_sum(sum);
  if (threadIdx.x == 0) part[k * gridDim.x + blockIdx.x] = s;
}

// Second pass: out[k] = sum of part[k, 0..n) in a fixed order (one block per plane).
__global__ void dz_final_kernel(const double* __restrict__ part, index_t n,
                                double* __restrict__ out) {
  const index_t k = blockIdx.x;
  double s = 0.0;
  for (index_t i = threadIdx.x; i < n; i += blockDim.x) s += part[k * n + i];
  const double t = block_sum(s);
  if (threadIdx.x == 0) out[k] = t;
}

// Scratch of the two-pass reduction (partials and results), stream-ordered.
struct Scratch {
  double* part = nullptr;
  double* out = nullptr;
  cudaStream_t stream;
  Scratch(index_t nz, int blocks, cudaStream_t s) : stream(s) {
    check(cudaMallocAsync(reinterpret_cast<void**>(&part),
                          sizeof(double) * static_cast<size_t>(nz * blocks), s),
          "allocating the reduction scratch");
    check(cudaMallocAsync(reinterpret_cast<void**>(&out), sizeof(double) * static_cast<size_t>(nz),
                          s),
          "allocating the reduction scratch");
  }
  ~Scratch() {
    cudaFreeAsync(part, stream);
    cudaFreeAsync(out, stream);
  }
};

// Both passes of the z cotangents of nz planes; results copied to host `dz`.
template <class Real>
void dz_reduce(const Real* U, index_t u_stride, const Real* G, Real* acc, const double* zs,
               double z0, index_t nz, index_t batch, const TransferParams& p, bool write_acc,
               bool accumulate, double* dz, std::uintptr_t stream) {
  const cudaStream_t s = as_stream(stream);
  const index_t per_z = batch * p.ny * p.nx;
  const int blocks = per_z < static_cast<index_t>(kReduceBlocks) * kThreads
                         ? blocks_for(per_z)
                         : kReduceBlocks;
  Scratch scratch(nz, blocks, s);
  dim3 grid(static_cast<unsigned>(blocks), static_cast<unsigned>(nz));
  dz_partial_kernel<Real><<<grid, kThreads, 0, s>>>(U, u_stride, G, acc, zs, z0, batch, p,
                                                    write_acc, accumulate, scratch.part);
  check(cudaGetLastError(), "transfer dz (first pass) launch");
  dz_final_kernel<<<static_cast<unsigned>(nz), kThreads, 0, s>>>(scratch.part, blocks,
                                                                  scratch.out);
  check(cudaGetLastError(), "transfer dz (second pass) launch");
  check(cudaMemcpyAsync(dz, scratch.out, sizeof(double) * static_cast<size_t>(nz),
                        cudaMemcpyDeviceToHost, s),
        "copying the distance cotangents");
  check(cudaStreamSynchronize(s), "transfer dz");
}

}  // namespace

template <class Real>
void transfer_apply(const Real* src, Real* dst, index_t batch, const TransferParams& p,
                    bool conjugate, std::uintptr_t stream) {
  const index_t total = batch * p.ny * p.nx;
  if (total == 0) return;
  apply_kernel<Real><<<blocks_for(total), kThreads, 0, as_stream(stream)>>>(
      src, dst, total, p, conjugate ? -1.0 : 1.0);
  check(cudaGetLastError(), "transfer_apply launch");
}

template <class Real>
double transfer_pullback(const Real* U, index_t u_stride, const Real* G, Real* acc, index_t batch,
                         const TransferParams& p, bool accumulate, std::uintptr_t stream) {
  if (batch * p.ny * p.nx == 0) return 0.0;
  double dz = 0.0;
  dz_reduce<Real>(U, u_stride, G, acc, nullptr, p.z, 1, batch, p, true, accumulate, &dz, stream);
  return dz;
}

template <class Real>
void transfer_stack(const Real* src, Real* dst, const double* zs, index_t nz, index_t batch,
                    const TransferParams& p, std::uintptr_t stream) {
  const index_t total = nz * batch * p.ny * p.nx;
  if (total == 0) return;
  stack_kernel<Real><<<blocks_for(total), kThreads, 0, as_stream(stream)>>>(src, dst, zs, nz,
                                                                            batch, p);
  check(cudaGetLastError(), "transfer_stack launch");
}

template <class Real>
void transfer_stack_adjoint(const Real* G, Real* acc, const double* zs, index_t nz, index_t batch,
                            const TransferParams& p, bool accumulate, std::uintptr_t stream) {
  const index_t total = batch * p.ny * p.nx;
  if (total == 0) return;
  stack_adjoint_kernel<Real><<<blocks_for(total), kThreads, 0, as_stream(stream)>>>(
      G, acc, zs, nz, batch, p, accumulate);
  check(cudaGetLastError(), "transfer_stack_adjoint launch");
}

template <class Real>
void transfer_stack_dz(const Real* U, index_t u_stride, const Real* G, const double* zs,
                       index_t nz, index_t batch, const TransferParams& p, double* dz,
                       std::uintptr_t stream) {
  if (nz == 0) return;
  if (batch * p.ny * p.nx == 0) {
    for (index_t k = 0; k < nz; ++k) dz[k] = 0.0;
    return;
  }
  // the first pass puts the planes on the grid's y axis (at most 65535 per launch)
  const index_t per_z = batch * p.ny * p.nx;
  for (index_t k0 = 0; k0 < nz; k0 += 65535) {
    const index_t m = nz - k0 < 65535 ? nz - k0 : 65535;
    dz_reduce<Real>(U, u_stride, G + 2 * k0 * per_z, static_cast<Real*>(nullptr), zs + k0, 0.0,
                    m, batch, p, false, false, dz + k0, stream);
  }
}

#define DI_INSTANTIATE(Real)                                                                   \
  template void transfer_apply<Real>(const Real*, Real*, index_t, const TransferParams&, bool,  \
                                     std::uintptr_t);                                          \
  template double transfer_pullback<Real>(const Real*, index_t, const Real*, Real*, index_t,    \
                                          const TransferParams&, bool, std::uintptr_t);        \
  template void transfer_stack<Real>(const Real*, Real*, const double*, index_t, index_t,       \
                                     const TransferParams&, std::uintptr_t);                   \
  template void transfer_stack_adjoint<Real>(const Real*, Real*, const double*, index_t,        \
                                             index_t, const TransferParams&, bool,             \
                                             std::uintptr_t);                                  \
  template void transfer_stack_dz<Real>(const Real*, index_t, const Real*, const double*,       \
                                        index_t, index_t, const TransferParams&, double*,      \
                                        std::uintptr_t);
DI_INSTANTIATE(float)
DI_INSTANTIATE(double)
#undef DI_INSTANTIATE

}  // namespace cuda
}  // namespace diffimaging
