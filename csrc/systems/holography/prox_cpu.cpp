// Fused proximal-gradient steps of the holography solvers (FISTA with a box
// constraint and an L1 weight), with the sums their line search needs.
#include <algorithm>
#include <vector>

#include "diffimaging/core/buffer.hpp"
#include "diffimaging/core/thread_pool.hpp"
#include "diffimaging/holography.hpp"

namespace diffimaging {
namespace cpu {
namespace {

// The proximal step on one contiguous segment of n elements (see holography.hpp), with
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

// Runs body(begin, end, acc) over [0, n) on the threads and sums the
// per-chunk acc (one slot per chunk, summed in chunk order).
template <class Body>
void reduce3(index_t n, int nthreads, index_t grain, double sums[3], Body&& body) {
  const Partition part = partition(n, nthreads, grain);
  std::vector<double> slot = buffer<double>(3 * part.count, "the reduction slots");
  parallel_for(part, [&](index_t b, index_t e, int chunk) {
    double acc[3] = {0.0, 0.0, 0.0};
    body(b, e, acc);
    for (int c = 0; c < 3; ++c) slot[3 * static_cast<size_t>(chunk) + c] = acc[c];
  });
  sums[0] = sums[1] = sums[2] = 0.0;
  for (size_t t = 0; t < slot.size(); t += 3)
    for (int c = 0; c < 3; ++c) sums[c] += slot[t + c];
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

}  // namespace cpu
}  // namespace diffimaging
