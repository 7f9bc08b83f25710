// Element-wise CPU kernels.
#include <algorithm>
#include <cstring>
#include <vector>

#include "diffimaging/cpu.hpp"
#include "diffimaging/parallel.hpp"

namespace diffimaging {
namespace cpu {

template <class Real>
void intensity(const Real* u, Real* out, index_t n, int nthreads) {
  parallel_for(n, nthreads, 1 << 16, [&](index_t b, index_t e, int) {
    for (index_t j = b; j < e; ++j) {
      const Real re = u[2 * j], im = u[2 * j + 1];
      out[j] = re * re + im * im;
    }
  });
}

template <class Real>
void crop_copy(const Real* src, index_t src_plane, index_t src_row, Real* dst, index_t batch,
               index_t ny, index_t nx, int ncomp, int nthreads) {
  const size_t bytes = static_cast<size_t>(nx) * static_cast<size_t>(ncomp) * sizeof(Real);
  parallel_for(batch * ny, nthreads, 64, [&](index_t b0, index_t b1, int) {
    for (index_t r = b0; r < b1; ++r) {
      const index_t b = r / ny, i = r % ny;
      std::memcpy(dst + r * nx * ncomp, src + (b * src_plane + i * src_row) * ncomp, bytes);
    }
  });
}

namespace {

// The proximal step on one contiguous segment of n elements (see cpu.hpp), with
// the three sums added to acc.  `copy` (may alias g: each g[j] is read before
// copy[j] is written) receives the result too when not null.  Blocks of 512 are
// accumulated in Real (vectorised), the blocks summed in double.
template <class Real>
inline void prox_segment(const Real* __restrict x, const Real* __restrict xp, const Real* g,
                         Real* __restrict out, Real* copy, index_t n, double beta, double step,
                         double shift, double lo, double hi, double acc[3]) {
  const Real rb = static_cast<Real>(beta), ra = static_cast<Real>(step);
  const Real rs = static_cast<Real>(shift), rlo = static_cast<Real>(lo), rhi = static_cast<Real>(hi);
  for (index_t b0 = 0; b0 < n; b0 += 512) {
    const index_t b1 = std::min<index_t>(n, b0 + 512);
    Real bgd = 0, bdd = 0, bs = 0;
    for (index_t j = b0; j < b1; ++j) {
      const Real xj = x[j];
      const Real y = xp == nullptr ? xj : xj + rb * (xj - xp[j]);
      const Real gj = g[j];
      Real v = y - ra * gj + rs;
      v = v < rlo ? rlo : v;
      v = v > rhi ? rhi : v;
      out[j] = v;
      if (copy != nullptr) copy[j] = v;
      const Real d = v - y;
      bgd += gj * d;
      bdd += d * d;
      bs += v;
    }
    acc[0] += bgd;
    acc[1] += bdd;
    acc[2] += bs;
  }
}

// Runs body(begin, end, acc) over [0, n) on the threads and sums the per-thread acc.
template <class Body>
void reduce3(index_t n, int nthreads, index_t grain, double sums[3], Body&& body) {
  std::vector<double> part(3 * static_cast<size_t>(std::max(nthreads, 1)) + 3, 0.0);
  parallel_for(n, nthreads, grain, [&](index_t b, index_t e, int tid) {
    double acc[3] = {0.0, 0.0, 0.0};
    body(b, e, acc);
    for (int c = 0; c < 3; ++c) part[3 * static_cast<size_t>(tid) + c] = acc[c];
  });
  sums[0] = sums[1] = sums[2] = 0.0;
  for (size_t t = 0; t + 2 < part.size(); t += 3)
    for (int c = 0; c < 3; ++c) sums[c] += part[t + c];
}

}  // namespace

template <class Real>
void prox_step(const Real* x, const Real* xp, const Real* g, Real* out, index_t n, double beta,
               double step, double shift, double lo, double hi, double sums[3], int nthreads) {
  reduce3(n, nthreads, 1 << 17, sums, [&](index_t b, index_t e, double acc[3]) {
    prox_segment<Real>(x + b, xp == nullptr ? nullptr : xp + b, g + b, out + b, nullptr, e - b, beta,
                       step, shift, lo, hi, acc);
  });
}

template <class Real>
void prox_step_rows(const Real* x, const Real* xp, Real* buf, index_t buf_row, Real* out,
                    index_t ny, index_t nx, double beta, double step, double shift, double lo,
                    double hi, double sums[3], int nthreads) {
  const index_t grain = std::max<index_t>(1, (index_t(1) << 17) / std::max<index_t>(nx, 1));
  reduce3(ny, nthreads, grain, sums, [&](index_t r0, index_t r1, double acc[3]) {
    for (index_t i = r0; i < r1; ++i) {
      Real* br = buf + i * buf_row;
      prox_segment<Real>(x + i * nx, xp == nullptr ? nullptr : xp + i * nx, br, out + i * nx, br, nx,
                         beta, step, shift, lo, hi, acc);
      for (index_t j = nx; j < buf_row; ++j) br[j] = Real(0);
    }
  });
}

template void prox_step<float>(const float*, const float*, const float*, float*, index_t, double,
                               double, double, double, double, double[3], int);
template void prox_step<double>(const double*, const double*, const double*, double*, index_t,
                                double, double, double, double, double, double[3], int);
template void prox_step_rows<float>(const float*, const float*, float*, index_t, float*, index_t,
                                    index_t, double, double, double, double, double, double[3], int);
template void prox_step_rows<double>(const double*, const double*, double*, index_t, double*,
                                     index_t, index_t, double, double, double, double, double,
                                     double[3], int);
template <class Real>
void minmax_project(const Real* planes, index_t k, index_t ny, index_t nx, index_t plane_stride,
                    index_t row_stride, Real offset, const double* z, Real* vmin, Real* zmin,
                    Real* vmax, Real* zmax, int nthreads) {
  const index_t grain = std::max<index_t>(1, (index_t(1) << 14) / std::max<index_t>(nx, 1));
  parallel_for(ny, nthreads, grain, [&](index_t r0, index_t r1, int) {
    for (index_t i = r0; i < r1; ++i) {
      Real* __restrict mn = vmin + i * nx;
      Real* __restrict zn = zmin + i * nx;
      Real* __restrict mx = vmax + i * nx;
      Real* __restrict zx = zmax + i * nx;
      for (index_t p = 0; p < k; ++p) {
        const Real* __restrict u = planes + 2 * (p * plane_stride + i * row_stride);
        const Real zp = static_cast<Real>(z[p]);
        for (index_t j = 0; j < nx; ++j) {
          const Real re = u[2 * j] + offset, im = u[2 * j + 1];
          const Real v = re * re + im * im;
          if (v < mn[j]) {
            mn[j] = v;
            zn[j] = zp;
          }
          if (v > mx[j]) {
            mx[j] = v;
            zx[j] = zp;
          }
        }
      }
    }
  });
}

template void minmax_project<float>(const float*, index_t, index_t, index_t, index_t, index_t, float,
                                    const double*, float*, float*, float*, float*, int);
template void minmax_project<double>(const double*, index_t, index_t, index_t, index_t, index_t,
                                     double, const double*, double*, double*, double*, double*, int);
template void crop_copy<float>(const float*, index_t, index_t, float*, index_t, index_t, index_t,
                               int, int);
template void crop_copy<double>(const double*, index_t, index_t, double*, index_t, index_t,
                                index_t, int, int);
template void intensity<float>(const float*, float*, index_t, int);
template void intensity<double>(const double*, double*, index_t, int);

}  // namespace cpu
}  // namespace diffimaging
