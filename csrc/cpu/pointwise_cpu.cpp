// Element-wise CPU kernels.
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

template void intensity<float>(const float*, float*, index_t, int);
template void intensity<double>(const double*, double*, index_t, int);

}  // namespace cpu
}  // namespace diffimaging
