// Depth projections of reconstructed volumes (min/max of |offset + u|^2 over
// the planes and the depth where they occur).
#include <algorithm>

#include "diffimaging/core/thread_pool.hpp"
#include "diffimaging/holography.hpp"

namespace diffimaging {
namespace cpu {

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

}  // namespace cpu
}  // namespace diffimaging
