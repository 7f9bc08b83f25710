// CUDA kernels of exact area-integration binning: forward, adjoint and the
// shift cotangent, for real (ncomp = 1) and interleaved complex (ncomp = 2)
// data in float or double.  No pybind11 here: the launchers are bound in
// binning_cuda_bind.cpp.
//
// How: the weights are computed on the fly from the host/device functions of
// diffimaging/math/binning.hpp (bin_first_input, bin_weight,
// bin_first_output), the same formulas as the CPU tables, so no tables are
// built.  Every sum is accumulated in double; grid-stride loops of 256 threads.
// - forward: one thread per output pixel gathers its (f+1) x (f+1) input taps
//   (f x f without a shift);
// - adjoint: one thread per input pixel gathers the at most 2 x 2 output
//   pixels it contributes to (no atomics, every element written once);
// - shift cotangent: one thread per output pixel computes its term, and the
//   per-batch sums are a two-pass reduction: pass 1 reduces each block's terms
//   in a fixed shared-memory tree and writes one partial (dsy, dsx) per
//   (batch element, block) to a scratch buffer; pass 2 adds each batch
//   element's partials in block order.  Which thread handles which pixel and
//   the order of every addition depend only on the shapes, never on timing,
//   and there are no floating-point atomics: the result is bit-identical from
//   run to run.  The scratch (batch * blocks * 2 doubles) is allocated with
//   cudaMallocAsync / cudaFreeAsync on the caller's stream (cudaMalloc /
//   cudaFree after a stream synchronisation on devices without stream-ordered
//   memory pools).
#include <cuda_runtime.h>

#include <cstddef>
#include <stdexcept>

#include "core/cuda_device.hpp"
#include "core/cuda_launch.cuh"
#include "diffimaging/math/binning.hpp"
#include "ops/binning/binning_cuda.hpp"

namespace diffimaging {
namespace cuda {
namespace {

constexpr int kThreads = 256;               // threads per block (all kernels)
constexpr index_t kMaxGridY = 65535;        // batch elements per launch row (gridDim.y)
constexpr index_t kTargetBlocks = 4096;     // blocks in flight for the reduction pass 1
constexpr index_t kMaxReduceBlocks = 1024;  // blocks per batch element in pass 1

int blocks_for(index_t total) { return grid_blocks(total, kThreads); }

__device__ __forceinline__ index_t first_element() {
  return blockIdx.x * static_cast<index_t>(blockDim.x) + threadIdx.x;
}

__device__ __forceinline__ index_t element_step() {
  return static_cast<index_t>(blockDim.x) * gridDim.x;
}

// Shift (sy, sx) of batch element b; (0, 0) without shifts.
__device__ __forceinline__ void shift_of(const double* shifts, index_t shift_stride, index_t b,
                                         double* sy, double* sx) {
  if (shifts == nullptr) {
    *sy = 0.0;
    *sx = 0.0;
    return;
  }
  *sy = shifts[b * shift_stride];
  *sx = shifts[b * shift_stride + 1];
}

// v = sum_u w_x(l, j) img[i, j] over the (f + 1) columns j of output column l:
// row i of the image binned along x (0 when row i is outside the image).
template <class Real, int NC>
__device__ __forceinline__ void x_binned(const Real* img, index_t i, index_t l, index_t ny,
                                         index_t nx, index_t f, double sx, double* v) {
  for (int c = 0; c < NC; ++c) v[c] = 0.0;
  if (i < 0 || i >= ny) return;
  const Real* row = img + i * nx * NC;
  const index_t j0 = bin_first_input(l, f, sx);
  for (index_t u = 0; u <= f; ++u) {
    const index_t j = j0 + u;
    const double w = bin_weight(l, j, f, sx, nx);  // 0 outside the image
    if (w == 0.0) continue;
    for (int c = 0; c < NC; ++c) v[c] += w * static_cast<double>(row[j * NC + c]);
  }
}

// v = sum_q w_y(k, i) img[i, j] over the (f + 1) rows i of output row k:
// column j of the image binned along y (0 when column j is outside the image).
template <class Real, int NC>
__device__ __forceinline__ void y_binned(const Real* img, index_t k, index_t j, index_t ny,
                                         index_t nx, index_t f, double sy, double* v) {
  for (int c = 0; c < NC; ++c) v[c] = 0.0;
  if (j < 0 || j >= nx) return;
  const index_t i0 = bin_first_input(k, f, sy);
  for (index_t q = 0; q <= f; ++q) {
    const index_t i = i0 + q;
    const double w = bin_weight(k, i, f, sy, ny);  // 0 outside the image
    if (w == 0.0) continue;
    for (int c = 0; c < NC; ++c) v[c] += w * static_cast<double>(img[(i * nx + j) * NC + c]);
  }
}

// ------------------------------------------------------------------ forward

template <class Real, int NC>
__global__ void bin_forward_kernel(const Real* __restrict__ in, index_t in_stride,
                                   Real* __restrict__ out, index_t batch, index_t ny, index_t nx,
                                   index_t f, const double* __restrict__ shifts,
                                   index_t shift_stride, double scale) {
  const index_t my = ny / f, mx = nx / f;
  const index_t total = batch * my * mx;
  for (index_t e = first_element(); e < total; e += element_step()) {
    const index_t l = e % mx;
    const index_t k = (e / mx) % my;
    const index_t b = e / (mx * my);
    const Real* img = in + b * in_stride * NC;
    double acc[NC];
    for (int c = 0; c < NC; ++c) acc[c] = 0.0;
    if (shifts == nullptr) {
      // rows k f .. k f + f - 1, columns l f .. l f + f - 1 (all inside the image)
      for (index_t q = 0; q < f; ++q) {
        const Real* row = img + ((k * f + q) * nx + l * f) * NC;
        for (index_t u = 0; u < f; ++u)
          for (int c = 0; c < NC; ++c) acc[c] += static_cast<double>(row[u * NC + c]);
      }
    } else {
      double sy, sx;
      shift_of(shifts, shift_stride, b, &sy, &sx);
      const index_t i0 = bin_first_input(k, f, sy);
      for (index_t q = 0; q <= f; ++q) {
        const index_t i = i0 + q;
        const double wy = bin_weight(k, i, f, sy, ny);  // 0 outside the image
        if (wy == 0.0) continue;
        double v[NC];
        x_binned<Real, NC>(img, i, l, ny, nx, f, sx, v);
        for (int c = 0; c < NC; ++c) acc[c] += wy * v[c];
      }
    }
    for (int c = 0; c < NC; ++c) out[e * NC + c] = static_cast<Real>(scale * acc[c]);
  }
}

// ------------------------------------------------------------------ adjoint

template <class Real, int NC>
__global__ void bin_adjoint_kernel(const Real* __restrict__ g, Real* __restrict__ out,
                                   index_t batch, index_t ny, index_t nx, index_t f,
                                   const double* __restrict__ shifts, index_t shift_stride,
                                   double scale) {
  const index_t my = ny / f, mx = nx / f;
  const index_t total = batch * ny * nx;
  for (index_t e = first_element(); e < total; e += element_step()) {
    const index_t j = e % nx;
    const index_t i = (e / nx) % ny;
    const index_t b = e / (nx * ny);
    const Real* gb = g + b * my * mx * NC;
    double acc[NC];
    for (int c = 0; c < NC; ++c) acc[c] = 0.0;
    if (shifts == nullptr) {
      // input (i, j) lies in output (i / f, j / f) with weight 1, or in none
      // (the trailing rows/columns beyond my f, mx f)
      const index_t k = i / f, l = j / f;
      if (k < my && l < mx)
        for (int c = 0; c < NC; ++c) acc[c] = static_cast<double>(gb[(k * mx + l) * NC + c]);
    } else {
      double sy, sx;
      shift_of(shifts, shift_stride, b, &sy, &sx);
      const index_t k0 = bin_first_output(i, f, sy);
      const index_t l0 = bin_first_output(j, f, sx);
      for (index_t k = k0; k <= k0 + 1; ++k) {
        if (k < 0 || k >= my) continue;
        const double wy = bin_weight(k, i, f, sy, ny);
        if (wy == 0.0) continue;
        for (index_t l = l0; l <= l0 + 1; ++l) {
          if (l < 0 || l >= mx) continue;
          const double wx = bin_weight(l, j, f, sx, nx);
          if (wx == 0.0) continue;
          const double w = wy * wx;
          for (int c = 0; c < NC; ++c)
            acc[c] += w * static_cast<double>(gb[(k * mx + l) * NC + c]);
        }
      }
    }
    for (int c = 0; c < NC; ++c) out[e * NC + c] = static_cast<Real>(scale * acc[c]);
  }
}

// --------------------------------------------------------- shift cotangent

// Pass 1.  Block (p, r) handles batch elements b = r, r + gridDim.y, ...; for
// each, its threads sum the terms of output pixels e = p * 256 + t,
// e += blocks * 256, reduce them in a fixed tree and write
// partial[(b * blocks + p) * 2 + {0, 1}] = (sum dsy, sum dsx), unscaled.
//
// The term of output pixel (k, l) (d/ds of the integral of the
// piecewise-constant image over the pixel's window is the value at the
// window's far edge minus the value at its near edge, as in the CPU kernel):
//   dsx: Re(conj(g[k, l]) * (Y(k, jr) - Y(k, jl))), jl = floor(l f + sx),
//        jr = floor((l + 1) f + sx), Y = the image binned along y;
//   dsy: Re(conj(g[k, l]) * (X(iu, l) - X(il, l))), il = floor(k f + sy),
//        iu = floor((k + 1) f + sy), X = the image binned along x.
template <class Real, int NC>
__global__ void bin_shift_grad_partial_kernel(const Real* __restrict__ in, index_t in_stride,
                                              const Real* __restrict__ g,
                                              double* __restrict__ partial, index_t batch,
                                              index_t ny, index_t nx, index_t f,
                                              const double* __restrict__ shifts,
                                              index_t shift_stride, index_t blocks) {
  __shared__ double sdy[kThreads];
  __shared__ double sdx[kThreads];
  const index_t my = ny / f, mx = nx / f;
  const index_t n = my * mx;
  const int t = static_cast<int>(threadIdx.x);
  for (index_t b = blockIdx.y; b < batch; b += gridDim.y) {  // uniform within the block
    const Real* img = in + b * in_stride * NC;
    const Real* gb = g + b * n * NC;
    double sy, sx;
    shift_of(shifts, shift_stride, b, &sy, &sx);
    double dy = 0.0, dx = 0.0;
    for (index_t e = blockIdx.x * static_cast<index_t>(kThreads) + t; e < n;
         e += blocks * kThreads) {
      const index_t k = e / mx, l = e % mx;
      double gv[NC];
      for (int c = 0; c < NC; ++c) gv[c] = static_cast<double>(gb[e * NC + c]);
      double lo[NC], hi[NC];
      // d/dsx: the near (left) edge of the window lies in column floor(l f + sx),
      // the far (right) edge in floor((l + 1) f + sx) = bin_first_input(l + 1)
      y_binned<Real, NC>(img, k, bin_first_input(l, f, sx), ny, nx, f, sy, lo);
      y_binned<Real, NC>(img, k, bin_first_input(l + 1, f, sx), ny, nx, f, sy, hi);
      for (int c = 0; c < NC; ++c) dx += gv[c] * (hi[c] - lo[c]);
      // d/dsy: rows floor(k f + sy) (near edge) and floor((k + 1) f + sy) (far edge)
      x_binned<Real, NC>(img, bin_first_input(k, f, sy), l, ny, nx, f, sx, lo);
      x_binned<Real, NC>(img, bin_first_input(k + 1, f, sy), l, ny, nx, f, sx, hi);
      for (int c = 0; c < NC; ++c) dy += gv[c] * (hi[c] - lo[c]);
    }
    sdy[t] = dy;
    sdx[t] = dx;
    __syncthreads();
    for (int s = kThreads / 2; s > 0; s >>= 1) {  // fixed tree: deterministic
      if (t < s) {
        sdy[t] += sdy[t + s];
        sdx[t] += sdx[t + s];
      }
      __syncthreads();
    }
    if (t == 0) {
      partial[(b * blocks + blockIdx.x) * 2] = sdy[0];
      partial[(b * blocks + blockIdx.x) * 2 + 1] = sdx[0];
    }
    __syncthreads();  // sdy / sdx are reused for the next batch element
  }
}

// Pass 2: dshift[b] = scale * (sum of the partials of b, in block order).
__global__ void bin_shift_grad_finish_kernel(const double* __restrict__ partial,
                                             double* __restrict__ dshift, index_t batch,
                                             index_t blocks, double scale) {
  for (index_t b = first_element(); b < batch; b += element_step()) {
    double sy = 0.0, sx = 0.0;
    for (index_t p = 0; p < blocks; ++p) {
      sy += partial[(b * blocks + p) * 2];
      sx += partial[(b * blocks + p) * 2 + 1];
    }
    dshift[2 * b] = scale * sy;
    dshift[2 * b + 1] = scale * sx;
  }
}

// Stream-ordered device scratch, freed on the same stream (also when a launch
// throws).  Devices without memory pools get cudaMalloc, and cudaFree after
// the stream has finished with the buffer.
class Scratch {
 public:
  Scratch(std::size_t bytes, cudaStream_t stream) : stream_(stream) {
    int dev = 0, pools = 0;
    check(cudaGetDevice(&dev), "bin_shift_grad: cudaGetDevice");
    check(cudaDeviceGetAttribute(&pools, cudaDevAttrMemoryPoolsSupported, dev),
          "bin_shift_grad: cudaDeviceGetAttribute");
    pooled_ = pools != 0;
    void* p = nullptr;
    if (pooled_)
      check(cudaMallocAsync(&p, bytes, stream_), "bin_shift_grad: cudaMallocAsync of the scratch");
    else
      check(cudaMalloc(&p, bytes), "bin_shift_grad: cudaMalloc of the scratch");
    ptr_ = static_cast<double*>(p);
  }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  ~Scratch() { free_now(); }  // error path: best effort, errors ignored

  double* get() const { return ptr_; }

  // Frees the buffer, reporting errors.
  void release() { check(free_now(), "bin_shift_grad: freeing the scratch"); }

 private:
  int free_now() {
    if (ptr_ == nullptr) return cudaSuccess;
    void* p = ptr_;
    ptr_ = nullptr;
    if (pooled_) return cudaFreeAsync(p, stream_);
    const cudaError_t sync = cudaStreamSynchronize(stream_);
    const cudaError_t freed = cudaFree(p);
    return sync != cudaSuccess ? sync : freed;
  }

  cudaStream_t stream_;
  bool pooled_ = false;
  double* ptr_ = nullptr;
};

void require(bool cond, const char* msg) {
  if (!cond) throw std::invalid_argument(msg);
}

// The launchers' own guards (the bindings check the Python arguments first).
void check_geometry(index_t batch, index_t ny, index_t nx, int ncomp, index_t f) {
  require(ncomp == 1 || ncomp == 2, "binning (CUDA): ncomp must be 1 or 2");
  require(f >= 1, "binning (CUDA): factor must be >= 1");
  require(batch >= 0, "binning (CUDA): batch must be >= 0");
  require(ny >= f && nx >= f, "binning (CUDA): the image is smaller than the factor");
}

template <class Real, int NC>
void forward_nc(const Real* in, index_t in_stride, Real* out, index_t batch, index_t ny,
                index_t nx, index_t f, const double* shifts, index_t shift_stride, double scale,
                cudaStream_t s) {
  const index_t total = batch * (ny / f) * (nx / f);
  bin_forward_kernel<Real, NC><<<blocks_for(total), kThreads, 0, s>>>(
      in, in_stride, out, batch, ny, nx, f, shifts, shift_stride, scale);
  check(cudaGetLastError(), "bin_forward launch");
}

template <class Real, int NC>
void adjoint_nc(const Real* g, Real* out, index_t batch, index_t ny, index_t nx, index_t f,
                const double* shifts, index_t shift_stride, double scale, cudaStream_t s) {
  const index_t total = batch * ny * nx;
  bin_adjoint_kernel<Real, NC><<<blocks_for(total), kThreads, 0, s>>>(
      g, out, batch, ny, nx, f, shifts, shift_stride, scale);
  check(cudaGetLastError(), "bin_adjoint launch");
}

template <class Real, int NC>
void shift_grad_nc(const Real* in, index_t in_stride, const Real* g, double* dshift,
                   index_t batch, index_t ny, index_t nx, index_t f, const double* shifts,
                   index_t shift_stride, double scale, cudaStream_t s) {
  const index_t blocks = bin_shift_grad_blocks((ny / f) * (nx / f), batch);
  const index_t rows = batch < kMaxGridY ? batch : kMaxGridY;
  Scratch partial(static_cast<std::size_t>(batch * blocks * 2) * sizeof(double), s);
  const dim3 grid1(static_cast<unsigned>(blocks), static_cast<unsigned>(rows));
  bin_shift_grad_partial_kernel<Real, NC><<<grid1, kThreads, 0, s>>>(
      in, in_stride, g, partial.get(), batch, ny, nx, f, shifts, shift_stride, blocks);
  check(cudaGetLastError(), "bin_shift_grad launch (pass 1)");
  bin_shift_grad_finish_kernel<<<blocks_for(batch), kThreads, 0, s>>>(partial.get(), dshift,
                                                                      batch, blocks, scale);
  check(cudaGetLastError(), "bin_shift_grad launch (pass 2)");
  partial.release();
}

}  // namespace

index_t bin_shift_grad_blocks(index_t outputs, index_t batch) {
  if (outputs <= 0 || batch <= 0) return 1;
  const index_t need = (outputs + kThreads - 1) / kThreads;  // blocks that all have work
  const index_t rows = batch < kMaxGridY ? batch : kMaxGridY;
  const index_t fill = (kTargetBlocks + rows - 1) / rows;  // enough blocks to fill the GPU
  index_t p = need < fill ? need : fill;
  if (p > kMaxReduceBlocks) p = kMaxReduceBlocks;
  return p < 1 ? 1 : p;
}

template <class Real>
void bin_forward(const Real* in, index_t in_stride, Real* out, index_t batch, index_t ny,
                 index_t nx, int ncomp, index_t f, const double* shifts, index_t shift_stride,
                 double scale, std::uintptr_t stream) {
  check_geometry(batch, ny, nx, ncomp, f);
  if (batch == 0) return;
  const auto s = as_stream(stream);
  if (ncomp == 1)
    forward_nc<Real, 1>(in, in_stride, out, batch, ny, nx, f, shifts, shift_stride, scale, s);
  else
    forward_nc<Real, 2>(in, in_stride, out, batch, ny, nx, f, shifts, shift_stride, scale, s);
}

template <class Real>
void bin_adjoint(const Real* g, Real* out, index_t batch, index_t ny, index_t nx, int ncomp,
                 index_t f, const double* shifts, index_t shift_stride, double scale,
                 std::uintptr_t stream) {
  check_geometry(batch, ny, nx, ncomp, f);
  if (batch == 0) return;
  const auto s = as_stream(stream);
  if (ncomp == 1)
    adjoint_nc<Real, 1>(g, out, batch, ny, nx, f, shifts, shift_stride, scale, s);
  else
    adjoint_nc<Real, 2>(g, out, batch, ny, nx, f, shifts, shift_stride, scale, s);
}

template <class Real>
void bin_shift_grad(const Real* in, index_t in_stride, const Real* g, double* dshift,
                    index_t batch, index_t ny, index_t nx, int ncomp, index_t f,
                    const double* shifts, index_t shift_stride, double scale,
                    std::uintptr_t stream) {
  check_geometry(batch, ny, nx, ncomp, f);
  if (batch == 0) return;
  const auto s = as_stream(stream);
  if (ncomp == 1)
    shift_grad_nc<Real, 1>(in, in_stride, g, dshift, batch, ny, nx, f, shifts, shift_stride,
                           scale, s);
  else
    shift_grad_nc<Real, 2>(in, in_stride, g, dshift, batch, ny, nx, f, shifts, shift_stride,
                           scale, s);
}

#define DI_INSTANTIATE_BIN_CUDA(Real)                                                          \
  template void bin_forward<Real>(const Real*, index_t, Real*, index_t, index_t, index_t, int, \
                                  index_t, const double*, index_t, double, std::uintptr_t);    \
  template void bin_adjoint<Real>(const Real*, Real*, index_t, index_t, index_t, int, index_t, \
                                  const double*, index_t, double, std::uintptr_t);             \
  template void bin_shift_grad<Real>(const Real*, index_t, const Real*, double*, index_t,      \
                                     index_t, index_t, int, index_t, const double*, index_t,   \
                                     double, std::uintptr_t);
DI_INSTANTIATE_BIN_CUDA(float)
DI_INSTANTIATE_BIN_CUDA(double)
#undef DI_INSTANTIATE_BIN_CUDA

}  // namespace cuda
}  // namespace diffimaging
