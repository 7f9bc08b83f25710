// CPU kernels for the free-space transfer function: generated on the fly
// (phase in double precision) and fused with the spectrum multiply and, for
// the pullback, with the reduction that gives the z cotangent.
#include <cstring>
#include <vector>

#include "diffimaging/cpu.hpp"
#include "diffimaging/parallel.hpp"
#include "diffimaging/transfer_rows.hpp"

namespace diffimaging {
namespace cpu {
namespace {

bool use_avx2() {
#if defined(DI_HAVE_AVX2_ROWS) && (defined(__GNUC__) || defined(__clang__)) && \
    (defined(__x86_64__) || defined(__i386__))
  static const bool ok = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return ok;
#else
  return false;
#endif
}

// Per-call tables along x: fx^2 and a 0/1 band-limit mask.
struct ColumnTables {
  std::vector<double> fx2;
  std::vector<double> mask;
  double fy_limit;
};

ColumnTables make_columns(const TransferParams& p) {
  ColumnTables t;
  t.fx2.resize(static_cast<size_t>(p.nx));
  t.mask.resize(static_cast<size_t>(p.nx));
  const double fxl = p.band_limit ? band_limit_frequency(p, p.nx, p.dx) : INFINITY;
  t.fy_limit = p.band_limit ? band_limit_frequency(p, p.ny, p.dy) : INFINITY;
  for (index_t j = 0; j < p.nx; ++j) {
    const double fx = fftfreq(j, p.nx, p.dx);
    t.fx2[j] = fx * fx;
    t.mask[j] = std::fabs(fx) <= fxl ? 1.0 : 0.0;
  }
  return t;
}

RowArgs row_args(const TransferParams& p, const ColumnTables& cols) {
  RowArgs a{};
  a.nx = p.nx;
  a.fx2 = cols.fx2.data();
  a.mask = cols.mask.data();
  a.z = p.z;
  a.inv_l = 1.0 / p.wavelength;
  a.inv_l2 = a.inv_l * a.inv_l;
  a.lam = p.wavelength;
  a.method = static_cast<int>(p.method);
  a.carrier = p.carrier;
  return a;
}

}  // namespace

// Rows i and ny - i share |fy|: the phase of a row is computed once and used
// for both rows of every batch element.  Calls body(i, mirror_or_minus1).
inline index_t unique_rows(index_t ny) { return ny / 2 + 1 < ny ? ny / 2 + 1 : ny; }
inline index_t mirror_row(index_t i, index_t ny) {
  return (i >= 1 && i <= (ny - 1) / 2) ? ny - i : -1;
}

template <class Real>
void transfer_apply(const Real* src, Real* dst, index_t batch, const TransferParams& p,
                    bool conjugate, int nthreads) {
  const ColumnTables cols = make_columns(p);
  const RowArgs base = row_args(p, cols);
  const index_t row_len = 2 * p.nx;
  const index_t plane = p.ny * row_len;
  const double conj_sign = conjugate ? -1.0 : 1.0;
  const bool avx2 = use_avx2();
  const index_t nu = unique_rows(p.ny);
  parallel_for(nu, nthreads, 4, [&](index_t r0, index_t r1, int) {
    std::vector<Real> hbuf(static_cast<size_t>(2 * p.nx));
    RowArgs a = base;
    a.h = hbuf.data();
    for (index_t i = r0; i < r1; ++i) {
      const index_t rows[2] = {i, mirror_row(i, p.ny)};
      const double fy = fftfreq(i, p.ny, p.dy);
      const bool zero = std::fabs(fy) > cols.fy_limit;
      if (!zero) {
        a.fy2 = fy * fy;
        if (avx2) rows_avx2::phase<Real>(a, conj_sign, false);
        else rows_base::phase<Real>(a, conj_sign, false);
      }
      for (index_t b = 0; b < batch; ++b)
        for (index_t r : rows) {
          if (r < 0) continue;
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
    }
  });
}

template <class Real>
double transfer_pullback(const Real* U, index_t u_batch_stride, const Real* G, Real* acc,
                         index_t batch, const TransferParams& p, bool accumulate,
                         int nthreads) {
  const ColumnTables cols = make_columns(p);
  const RowArgs base = row_args(p, cols);
  const index_t row_len = 2 * p.nx;
  const index_t plane = p.ny * row_len;
  const bool want_dz = U != nullptr;
  const bool avx2 = use_avx2();
  const index_t nu = unique_rows(p.ny);
  std::vector<double> partial(static_cast<size_t>(std::max(nthreads, 1)) + 1, 0.0);
  parallel_for(nu, nthreads, 4, [&](index_t r0, index_t r1, int tid) {
    std::vector<Real> hbuf(static_cast<size_t>(2 * p.nx));
    std::vector<double> kbuf(static_cast<size_t>(p.nx));
    RowArgs a = base;
    a.h = hbuf.data();
    a.kappa = kbuf.data();
    double sum = 0.0;
    for (index_t i = r0; i < r1; ++i) {
      const index_t rows[2] = {i, mirror_row(i, p.ny)};
      const double fy = fftfreq(i, p.ny, p.dy);
      const bool zero = std::fabs(fy) > cols.fy_limit;
      if (!zero) {
        a.fy2 = fy * fy;
        if (avx2) rows_avx2::phase<Real>(a, 1.0, want_dz);
        else rows_base::phase<Real>(a, 1.0, want_dz);
      }
      for (index_t b = 0; b < batch; ++b)
        for (index_t r : rows) {
          if (r < 0) continue;
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
    }
    partial[static_cast<size_t>(tid)] = sum;
  });
  double total = 0.0;
  for (double v : partial) total += v;
  return total;
}

template void transfer_apply<float>(const float*, float*, index_t, const TransferParams&, bool, int);
template void transfer_apply<double>(const double*, double*, index_t, const TransferParams&, bool, int);
template double transfer_pullback<float>(const float*, index_t, const float*, float*, index_t,
                                         const TransferParams&, bool, int);
template double transfer_pullback<double>(const double*, index_t, const double*, double*, index_t,
                                          const TransferParams&, bool, int);

}  // namespace cpu
}  // namespace diffimaging
