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
#include "core/cuda_launch.cuh"
#include "diffimaging/math/pointwise.hpp"
#include "ops/propagate/propagate_cuda.hpp"

namespace diffimaging {
namespace cuda {
namespace {

constexpr int kThreads = 256;  // threads per block (a power of two: the reduction tree)
constexpr int kReduceBlocks = 1024;  // blocks of the first reduction pass (fixed: determinism)

// Block-wide sum of one double per thread, in a fixed tree order.
__device__ double block_sum(double v) {
  double a[1] = {v};
  cuda::block_sum<kThreads, 1>(a);
  return a[0];
}

// ---- the per-element formula, split for the kernels ------------------------
// transfer_at's formula (math/transfer.hpp), split in its z-independent part
// (frequencies, phase rate, evanescent cut-off: once per element) and its
// per-plane part (band limits of |z|: once per plane, staged in shared memory;
// the phase z kappa and its sine and cosine: once per element and plane).

// The z-independent part at element (i, j) of p's grid.  complex128: fftfreq
// exactly as the CPU kernels (and numpy) compute it; complex64: the frequency
// step's reciprocal is multiplied instead of divided (1 ulp of a double, far
// below the precision of the result).
struct Elem {
  double fy, fx;
  double kappa;  // phase rate [rad/m]
  double pass;   // 1 propagating, 0 evanescent
};

// The wave constants and the reciprocal frequency steps 1/(n d) of p's grid.
struct KWave : Wave {
  double inv_ndy, inv_ndx;
};

KWave kwave(const TransferParams& p) {
  KWave k;
  static_cast<Wave&>(k) = wave(p.wavelength);
  k.inv_ndy = 1.0 / (static_cast<double>(p.ny) * p.dy);
  k.inv_ndx = 1.0 / (static_cast<double>(p.nx) * p.dx);
  return k;
}

template <class Real>
__device__ double freq(index_t j, index_t n, double d, double inv_nd) {
  if (sizeof(Real) == sizeof(double)) return fftfreq(j, n, d);
  const index_t half = (n + 1) / 2;
  const index_t m = j < half ? j : j - n;
  return static_cast<double>(m) * inv_nd;
}

template <class Real>
__device__ Elem elem_at(const TransferParams& p, const KWave& w, index_t i, index_t j) {
  Elem e;
  e.fy = freq<Real>(i, p.ny, p.dy, w.inv_ndy);
  e.fx = freq<Real>(j, p.nx, p.dx, w.inv_ndx);
  e.pass = transfer_rate(p, e.fx * e.fx + e.fy * e.fy, w, &e.kappa);
  return e;
}

// The per-plane part: the distance and its band limits.
struct PlaneC {
  double z, lfy, lfx;
};

DI_HD PlaneC plane_at(const TransferParams& p, double z) {
  TransferParams q = p;
  q.z = z;
  const BandLimits l = band_limits(q);
  return {z, l.fy, l.fx};
}

// The 0/1 mask of element e in plane c (band limit and evanescent cut-off).
__device__ double mask_of(const Elem& e, const PlaneC& c) {
  return (in_band(e.fx, c.lfx) && in_band(e.fy, c.lfy)) ? e.pass : 0.0;
}

// H = m exp(i sign z kappa) of element e in plane c, in the data's precision.
// complex128: the CPU kernels' transfer_value (double phase, double sine and
// cosine); complex64: the phase in double, reduced to [-pi, pi] in double, its
// sine and cosine in float (sincos_reduced_float: ~2e-7, the precision of the
// complex64 result), and no double arithmetic or conversion after that.
template <class Real>
__device__ void phasor(double m, double z, double kappa, double sign, Real* re, Real* im);

template <>
__device__ void phasor<double>(double m, double z, double kappa, double sign, double* re,
                               double* im) {
  transfer_value(m, z, kappa, sign, re, im);
}

template <>
__device__ void phasor<float>(double m, double z, double kappa, double sign, float* re,
                              float* im) {
  float sn, cs;
  sincos_reduced_float(m * (z * kappa), &sn, &cs);
  const float mf = static_cast<float>(m);
  *re = mf * cs;
  *im = (sign < 0.0 ? -mf : mf) * sn;
}

// One interleaved complex value of the data's precision: float2 (one 8-byte
// access) for complex64; two doubles for complex128 (16-byte alignment of a
// caller's complex128 array is not guaranteed).
template <class Real>
struct Cx {
  Real re, im;
};

template <class Real>
__device__ Cx<Real> load(const Real* a, index_t e) {
  if constexpr (sizeof(Real) == sizeof(float)) {
    const float2 v = reinterpret_cast<const float2*>(a)[e];
    return {v.x, v.y};
  } else {
    return {a[2 * e], a[2 * e + 1]};
  }
}

template <class Real>
__device__ void store(Real* a, index_t e, Cx<Real> v) {
  if constexpr (sizeof(Real) == sizeof(float)) {
    reinterpret_cast<float2*>(a)[e] = make_float2(v.re, v.im);
  } else {
    a[2 * e] = v.re;
    a[2 * e + 1] = v.im;
  }
}

// (hr + i hi) v in the data's precision (complex128: cmul_store's double product).
template <class Real>
__device__ Cx<Real> cmul(Real hr, Real hi, Cx<Real> v) {
  return {v.re * hr - v.im * hi, v.re * hi + v.im * hr};
}

// Element grid of the elementwise kernels: x over the columns, y over the rows
// (grid-strided past 65535 rows); no integer division per element.
dim3 element_grid(const TransferParams& p) {
  const index_t bx = (p.nx + kThreads - 1) / kThreads;
  const index_t by = p.ny < 65535 ? p.ny : 65535;
  return dim3(static_cast<unsigned>(bx > 0 ? bx : 1), static_cast<unsigned>(by > 0 ? by : 1));
}

constexpr int kPlaneTile = 256;  // planes whose constants a block stages in shared memory

// Stage the constants of planes [k0, k0 + n) (n <= kPlaneTile) in `tile`; all the
// block's threads call it.
__device__ void stage_planes(PlaneC* tile, const TransferParams& p, const double* zs, index_t k0,
                             index_t n) {
  __syncthreads();  // the previous tile is no longer read
  for (index_t t = threadIdx.x; t < n; t += blockDim.x) tile[t] = plane_at(p, zs[k0 + t]);
  __syncthreads();
}

// dst[b] = H src[b] for every plane b of the batch (H computed once per element).
// src and dst may be one array (in place): no __restrict__.
template <class Real>
__global__ void apply_kernel(const Real* src, Real* dst, index_t batch, TransferParams p,
                             PlaneC c, KWave w, double sign) {
  const index_t j = blockIdx.x * static_cast<index_t>(blockDim.x) + threadIdx.x;
  if (j >= p.nx) return;
  const index_t plane = p.ny * p.nx;
  for (index_t i = blockIdx.y; i < p.ny; i += gridDim.y) {
    const Elem e = elem_at<Real>(p, w, i, j);
    Real hr, hi;
    phasor<Real>(mask_of(e, c), c.z, e.kappa, sign, &hr, &hi);
    for (index_t b = 0; b < batch; ++b) {
      const index_t o = b * plane + i * p.nx + j;
      store(dst, o, cmul(hr, hi, load(src, o)));
    }
  }
}

// dst[k, b] = H(z_k) src[b] for nz distances: the spectra of a z-stack in one
// launch; each thread computes its element's phase rate once for all planes.
template <class Real>
__global__ void stack_kernel(const Real* __restrict__ src, Real* __restrict__ dst,
                             const double* __restrict__ zs, index_t nz, index_t batch,
                             TransferParams p, KWave w) {
  __shared__ PlaneC tile[kPlaneTile];
  const index_t j = blockIdx.x * static_cast<index_t>(blockDim.x) + threadIdx.x;
  const bool active = j < p.nx;
  const index_t plane = p.ny * p.nx;
  const index_t per_z = batch * plane;
  for (index_t i = blockIdx.y; i < p.ny; i += gridDim.y) {
    const Elem e = elem_at<Real>(p, w, i, active ? j : 0);
    for (index_t k0 = 0; k0 < nz; k0 += kPlaneTile) {
      const index_t n = nz - k0 < kPlaneTile ? nz - k0 : kPlaneTile;
      stage_planes(tile, p, zs, k0, n);
      if (!active) continue;
      for (index_t t = 0; t < n; ++t) {
        Real hr, hi;
        phasor<Real>(mask_of(e, tile[t]), tile[t].z, e.kappa, 1.0, &hr, &hi);
        for (index_t b = 0; b < batch; ++b) {
          const index_t s = b * plane + i * p.nx + j;
          store(dst, (k0 + t) * per_z + s, cmul(hr, hi, load(src, s)));
        }
      }
    }
  }
}

// acc[b] (+)= sum_k conj(H(z_k)) G[k, b]: the adjoint of the stack, summing the
// planes in order in registers (no stack-sized temporary), in the data's
// precision (complex64 sums in float, as the CPU kernels' accumulating pullback).
template <class Real>
__global__ void stack_adjoint_kernel(const Real* __restrict__ G, Real* __restrict__ acc,
                                     const double* __restrict__ zs, index_t nz, index_t batch,
                                     TransferParams p, KWave w, bool accumulate) {
  __shared__ PlaneC tile[kPlaneTile];
  const index_t j = blockIdx.x * static_cast<index_t>(blockDim.x) + threadIdx.x;
  const bool active = j < p.nx;
  const index_t plane = p.ny * p.nx;
  const index_t per_z = batch * plane;
  for (index_t i = blockIdx.y; i < p.ny; i += gridDim.y) {
    const Elem e = elem_at<Real>(p, w, i, active ? j : 0);
    for (index_t b = 0; b < batch; ++b) {
      const index_t s = b * plane + i * p.nx + j;
      Cx<Real> sum{Real(0), Real(0)};
      if (active && accumulate) sum = load(acc, s);
      for (index_t k0 = 0; k0 < nz; k0 += kPlaneTile) {
        const index_t n = nz - k0 < kPlaneTile ? nz - k0 : kPlaneTile;
        stage_planes(tile, p, zs, k0, n);
        if (!active) continue;
        for (index_t t = 0; t < n; ++t) {
          Real hr, hi;
          phasor<Real>(mask_of(e, tile[t]), tile[t].z, e.kappa, -1.0, &hr, &hi);
          const Cx<Real> v = cmul(hr, hi, load(G, (k0 + t) * per_z + s));
          sum.re += v.re;
          sum.im += v.im;
        }
      }
      if (active) store(acc, s, sum);
    }
  }
}

// First pass of the z cotangent of plane k = blockIdx.y:
//   part[k, block] = sum over the block's elements of Re(conj(G) i kappa H U)
// with U broadcast over the batch when u_stride == 0.  Optionally also the
// pullback acc (+)= conj(H) G (single-plane calls only: nz == 1).  Block x owns
// the rows x, x + gridDim.x, ... of the (batch * ny) rows, its threads the
// columns: a fixed assignment, so the sum is the same on every run.
template <class Real>
__global__ void dz_partial_kernel(const Real* __restrict__ U, index_t u_stride,
                                  const Real* G, Real* acc,  // acc may be G (in place)
                                  const double* __restrict__ zs, double z0, index_t batch,
                                  TransferParams p, KWave w, bool write_acc, bool accumulate,
                                  double* __restrict__ part) {
  const index_t plane = p.ny * p.nx;
  const index_t per_z = batch * plane;
  const index_t k = blockIdx.y;
  const PlaneC c = plane_at(p, zs != nullptr ? zs[k] : z0);
  double sum = 0.0;
  for (index_t row = blockIdx.x; row < batch * p.ny; row += gridDim.x) {
    const index_t b = row / p.ny;
    const index_t i = row - b * p.ny;
    for (index_t j = threadIdx.x; j < p.nx; j += blockDim.x) {
      const Elem el = elem_at<Real>(p, w, i, j);
      const double m = mask_of(el, c);
      Real hr_, hi_;
      phasor<Real>(m, c.z, el.kappa, 1.0, &hr_, &hi_);
      const double hr = hr_, hi = hi_;
      const double km = m * el.kappa;
      const index_t e = row * p.nx + j;
      const index_t ge = k * per_z + e;
      const double gr = static_cast<double>(G[2 * ge]);
      const double gi = static_cast<double>(G[2 * ge + 1]);
      if (U != nullptr) {
        const index_t ue = b * u_stride + i * p.nx + j;
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
  const index_t rows = batch * p.ny;
  const int blocks = static_cast<int>(rows < kReduceBlocks ? rows : kReduceBlocks);
  Scratch scratch(nz, blocks, s);
  dim3 grid(static_cast<unsigned>(blocks), static_cast<unsigned>(nz));
  dz_partial_kernel<Real><<<grid, kThreads, 0, s>>>(U, u_stride, G, acc, zs, z0, batch, p,
                                                    kwave(p), write_acc, accumulate,
                                                    scratch.part);
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
  if (batch * p.ny * p.nx == 0) return;
  apply_kernel<Real><<<element_grid(p), kThreads, 0, as_stream(stream)>>>(
      src, dst, batch, p, plane_at(p, p.z), kwave(p), conjugate ? -1.0 : 1.0);
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
  if (nz * batch * p.ny * p.nx == 0) return;
  stack_kernel<Real><<<element_grid(p), kThreads, 0, as_stream(stream)>>>(
      src, dst, zs, nz, batch, p, kwave(p));
  check(cudaGetLastError(), "transfer_stack launch");
}

template <class Real>
void transfer_stack_adjoint(const Real* G, Real* acc, const double* zs, index_t nz, index_t batch,
                            const TransferParams& p, bool accumulate, std::uintptr_t stream) {
  if (batch * p.ny * p.nx == 0) return;
  stack_adjoint_kernel<Real><<<element_grid(p), kThreads, 0, as_stream(stream)>>>(
      G, acc, zs, nz, batch, p, kwave(p), accumulate);
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
