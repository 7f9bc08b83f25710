// Element-wise CPU kernels.
#include <cstring>

#include "diffimaging/core/thread_pool.hpp"
#include "diffimaging/pointwise.hpp"

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

template void crop_copy<float>(const float*, index_t, index_t, float*, index_t, index_t, index_t,
                               int, int);
template void crop_copy<double>(const double*, index_t, index_t, double*, index_t, index_t,
                                index_t, int, int);
template void intensity<float>(const float*, float*, index_t, int);
template void intensity<double>(const double*, double*, index_t, int);

}  // namespace cpu
}  // namespace diffimaging
