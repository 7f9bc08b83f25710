// CPU kernels of the free-space transfer function: generated on the fly (phase
// in double precision) and fused with the spectrum multiply and, for the
// pullback, with the reduction that gives the z cotangent.
#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include "diffimaging/propagate.hpp"
#include "ops/propagate/transfer_rows.hpp"

namespace diffimaging {
namespace cpu {

bool use_avx2_rows() {
#if defined(DI_HAVE_AVX2_ROWS) && (defined(__GNUC__) || defined(__clang__)) && \
    (defined(__x86_64__) || defined(__i386__))
  static const bool ok = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return ok;
#else
  return false;
#endif
}

const char* transfer_rows_isa() {
  return use_avx2_rows() ? "AVX2/FMA transfer rows" : "baseline SIMD transfer rows";
}

template <class Real>
void transfer_apply(const Real* src, Real* dst, index_t batch, const TransferParams& p,
                    bool conjugate, int nthreads) {
  const index_t row_len = 2 * p.nx;
  const index_t plane = p.ny * row_len;
  const bool avx2 = use_avx2_rows();
  for_rows<Real>(p, p.z, conjugate ? -1.0 : 1.0, false, nthreads,
                 [&](index_t r, const RowArgs& a, bool zero, int) {
    for (index_t b = 0; b < batch; ++b) {
      const Real* s = src + b * plane + r * row_len;
      Real* d = dst + b * plane + r * row_len;
      if (zero) {
        for (index_t j = 0; j < row_len; ++j) d[j] = Real(0);
      } else if (avx2) {
        rows_avx2::multiply<Real>(a, s, d);
      } else {
        rows_base::multiply<Real>(a, s, d);
      }
    }
  });
}

template <class Real>
double transfer_pullback(const Real* U, index_t u_batch_stride, const Real* G, Real* acc,
                         index_t batch, const TransferParams& p, bool accumulate,
                         int nthreads) {
  const index_t row_len = 2 * p.nx;
  const index_t plane = p.ny * row_len;
  const bool want_dz = U != nullptr;
  const bool avx2 = use_avx2_rows();
  const Partition part = row_partition(p, nthreads);
  // one slot per chunk
  std::vector<double> partial = buffer<double>(part.count, "the distance-gradient partial sums");
  for_rows<Real>(p, p.z, 1.0, want_dz, part, [&](index_t r, const RowArgs& a, bool zero, int chunk) {
    double sum = 0.0;
    for (index_t b = 0; b < batch; ++b) {
      const Real* g = G + b * plane + r * row_len;
      Real* ac = acc + b * plane + r * row_len;
      if (zero) {
        if (!accumulate)
          for (index_t j = 0; j < row_len; ++j) ac[j] = Real(0);
        continue;
      }
      const Real* u = want_dz ? U + 2 * b * u_batch_stride + r * row_len : nullptr;
      sum += avx2 ? rows_avx2::pullback<Real>(a, u, g, ac, accumulate)
                  : rows_base::pullback<Real>(a, u, g, ac, accumulate);
    }
    partial[static_cast<size_t>(chunk)] += sum;
  });
  double total = 0.0;
  for (double v : partial) total += v;
  return total;
}

void check_transfer_params(const TransferParams& p) {
  auto positive = [](double v, const char* name) {
    if (!(v > 0.0) || !std::isfinite(v))
      throw std::invalid_argument(std::string("TransferParams.") + name +
                                  " must be a positive finite number [m]");
  };
  positive(p.wavelength, "wavelength");
  positive(p.dy, "dy");
  positive(p.dx, "dx");
  if (!std::isfinite(p.z)) throw std::invalid_argument("TransferParams.z must be finite [m]");
  if (p.ny < 1 || p.nx < 1) throw std::invalid_argument("TransferParams.ny and nx must be >= 1");
  if (p.method != Method::kAngularSpectrum && p.method != Method::kFresnel)
    throw std::invalid_argument("TransferParams.method must be kAngularSpectrum or kFresnel");
}

template <class Real>
void transfer_apply(ConstComplexPlanes<Real> src, ComplexPlanes<Real> dst, const TransferParams& p,
                    bool conjugate, int nthreads) {
  require_same_shape(src, dst, "src", "dst");
  check_transfer_params(p);
  if (src.ny != p.ny || src.nx != p.nx)
    throw std::invalid_argument("the planes' (ny, nx) must be the grid (p.ny, p.nx)");
  transfer_apply<Real>(interleaved(src.data), interleaved(dst.data), src.batch, p, conjugate,
                       nthreads);
}

template void transfer_apply<float>(const float*, float*, index_t, const TransferParams&, bool, int);
template void transfer_apply<double>(const double*, double*, index_t, const TransferParams&, bool, int);
template double transfer_pullback<float>(const float*, index_t, const float*, float*, index_t,
                                         const TransferParams&, bool, int);
template double transfer_pullback<double>(const double*, index_t, const double*, double*, index_t,
                                          const TransferParams&, bool, int);
template void transfer_apply<float>(ConstComplexPlanes<float>, ComplexPlanes<float>,
                                    const TransferParams&, bool, int);
template void transfer_apply<double>(ConstComplexPlanes<double>, ComplexPlanes<double>,
                                     const TransferParams&, bool, int);

}  // namespace cpu
}  // namespace diffimaging
