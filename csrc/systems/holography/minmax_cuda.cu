// CUDA kernel of the running min/max depth projection (the device twin of
// minmax_cpu.cpp): one thread per pixel loops over the planes in order, so the
// result is deterministic and equal to the CPU kernel's bit for bit (|u|^2 is
// rounded as on the CPU, diffimaging/math/pointwise.hpp).  No pybind11 here.
#include <cuda_runtime.h>

#include "core/cuda_device.hpp"
#include "core/cuda_launch.cuh"
#include "diffimaging/math/pointwise.hpp"
#include "systems/holography/minmax_cuda.hpp"

namespace diffimaging {
namespace cuda {
namespace {

template <class Real>
__global__ void minmax_kernel(const Real* __restrict__ planes, index_t k, index_t ny, index_t nx,
                              index_t plane_stride, index_t row_stride, Real offset,
                              const double* __restrict__ z, Real* __restrict__ vmin,
                              Real* __restrict__ zmin, Real* __restrict__ vmax,
                              Real* __restrict__ zmax) {
  const index_t npix = ny * nx;
  for (index_t e = blockIdx.x * static_cast<index_t>(blockDim.x) + threadIdx.x; e < npix;
       e += static_cast<index_t>(blockDim.x) * gridDim.x) {
    const index_t i = e / nx;
    const index_t j = e % nx;
    Real mn = vmin[e], zn = zmin[e], mx = vmax[e], zx = zmax[e];
    for (index_t p = 0; p < k; ++p) {
      const Real* u = planes + 2 * (p * plane_stride + i * row_stride + j);
      const Real re = u[0] + offset;
      const Real im = u[1];
      const Real v = abs2<Real>(re, im);
      const Real zp = static_cast<Real>(z[p]);
      if (v < mn) {
        mn = v;
        zn = zp;
      }
      if (v > mx) {
        mx = v;
        zx = zp;
      }
    }
    vmin[e] = mn;
    zmin[e] = zn;
    vmax[e] = mx;
    zmax[e] = zx;
  }
}

}  // namespace

template <class Real>
void minmax_project(const Real* planes, index_t k, index_t ny, index_t nx, index_t plane_stride,
                    index_t row_stride, Real offset, const double* z, Real* vmin, Real* zmin,
                    Real* vmax, Real* zmax, std::uintptr_t stream) {
  const index_t npix = ny * nx;
  if (k <= 0 || npix <= 0) return;
  const int threads = 256;
  minmax_kernel<Real><<<grid_blocks(npix, threads), threads, 0, as_stream(stream)>>>(
      planes, k, ny, nx, plane_stride, row_stride, offset, z, vmin, zmin, vmax, zmax);
  check(cudaGetLastError(), "minmax_project launch");
}

template void minmax_project<float>(const float*, index_t, index_t, index_t, index_t, index_t,
                                    float, const double*, float*, float*, float*, float*,
                                    std::uintptr_t);
template void minmax_project<double>(const double*, index_t, index_t, index_t, index_t, index_t,
                                     double, const double*, double*, double*, double*, double*,
                                     std::uintptr_t);

}  // namespace cuda
}  // namespace diffimaging
