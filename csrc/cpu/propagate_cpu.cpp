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

namespace {

// Calls row(r, a, zero, tid) for every row r of the p.ny x p.nx frequency grid, on
// the threads, with a.h (and a.kappa when want_kappa) holding the row of H (its
// conjugate for conj_sign = -1) for the band limit of p.z and the phase
// z_phase * kappa.  The phase is computed once per |fy| row pair (rows i and
// ny - i); `zero` marks rows outside the band limit (a.h is then not set).
template <class Real, class RowFn>
void for_rows(const TransferParams& p, double z_phase, double conj_sign, bool want_kappa,
              int nthreads, RowFn&& row) {
  const ColumnTables cols = make_columns(p);
  RowArgs base = row_args(p, cols);
  base.z = z_phase;
  const bool avx2 = use_avx2();
  parallel_for(unique_rows(p.ny), nthreads, 4, [&](index_t r0, index_t r1, int tid) {
    std::vector<Real> hbuf(static_cast<size_t>(2 * p.nx));
    std::vector<double> kbuf(want_kappa ? static_cast<size_t>(p.nx) : 0);
    RowArgs a = base;
    a.h = hbuf.data();
    a.kappa = want_kappa ? kbuf.data() : nullptr;
    for (index_t i = r0; i < r1; ++i) {
      const index_t rows[2] = {i, mirror_row(i, p.ny)};
      const double fy = fftfreq(i, p.ny, p.dy);
      const bool zero = std::fabs(fy) > cols.fy_limit;
      if (!zero) {
        a.fy2 = fy * fy;
        if (avx2) rows_avx2::phase<Real>(a, conj_sign, want_kappa);
        else rows_base::phase<Real>(a, conj_sign, want_kappa);
      }
      for (index_t r : rows)
        if (r >= 0) row(r, static_cast<const RowArgs&>(a), zero, tid);
    }
  });
}

}  // namespace

template <class Real>
void transfer_apply(const Real* src, Real* dst, index_t batch, const TransferParams& p,
                    bool conjugate, int nthreads) {
  const index_t row_len = 2 * p.nx;
  const index_t plane = p.ny * row_len;
  const bool avx2 = use_avx2();
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
  const bool avx2 = use_avx2();
  std::vector<double> partial(static_cast<size_t>(std::max(nthreads, 1)) + 1, 0.0);
  for_rows<Real>(p, p.z, 1.0, want_dz, nthreads, [&](index_t r, const RowArgs& a, bool zero, int tid) {
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
    partial[static_cast<size_t>(tid)] += sum;
  });
  double total = 0.0;
  for (double v : partial) total += v;
  return total;
}

// ---- half-spectrum kernels of the ∂H volume model (real objects) -----------
// Spectra are (p.ny, nxh) interleaved complex: the nxh = p.nx / 2 + 1 columns
// of a real-to-complex transform of length p.nx.  H is the transfer function
// with the band-limit mask of p.z (the plane's nominal depth) and the phase
// z_phase * kappa, so that a global offset of every plane moves the phase only.

template <class Real>
void dh_accumulate(const Real* O, Real* Sr, Real* Si, index_t nxh, const TransferParams& p,
                   double z_phase, bool accumulate, int nthreads) {
  const index_t row = 2 * nxh;
  const index_t n = nxh;
  for_rows<Real>(p, z_phase, 1.0, false, nthreads, [&](index_t r, const RowArgs& ra, bool zero, int) {
    const Real* h = zero ? nullptr : static_cast<const Real*>(ra.h);
    const Real* __restrict o = O + r * row;
    Real* __restrict sr = Sr + r * row;
    Real* __restrict si = Si + r * row;
    if (h == nullptr) {
      if (!accumulate)
        for (index_t j = 0; j < row; ++j) sr[j] = si[j] = Real(0);
      return;
    }
    if (accumulate) {
      for (index_t j = 0; j < n; ++j) {
        const Real hr = h[2 * j], hi = h[2 * j + 1], a = o[2 * j], b = o[2 * j + 1];
        sr[2 * j] += hr * a;
        sr[2 * j + 1] += hr * b;
        si[2 * j] += hi * a;
        si[2 * j + 1] += hi * b;
      }
    } else {
      for (index_t j = 0; j < n; ++j) {
        const Real hr = h[2 * j], hi = h[2 * j + 1], a = o[2 * j], b = o[2 * j + 1];
        sr[2 * j] = hr * a;
        sr[2 * j + 1] = hr * b;
        si[2 * j] = hi * a;
        si[2 * j + 1] = hi * b;
      }
    }
  });
}

template <class Real>
void dh_backproject(const Real* A, const Real* B, Real* C, index_t nxh, const TransferParams& p,
                    double z_phase, int nthreads) {
  const index_t row = 2 * nxh;
  const index_t n = nxh;
  for_rows<Real>(p, z_phase, 1.0, false, nthreads, [&](index_t r, const RowArgs& ra, bool zero, int) {
    const Real* h = zero ? nullptr : static_cast<const Real*>(ra.h);
    const Real* __restrict a = A + r * row;
    Real* __restrict c = C + r * row;
    if (h == nullptr) {
      for (index_t j = 0; j < row; ++j) c[j] = Real(0);
      return;
    }
    if (B == nullptr) {
      for (index_t j = 0; j < n; ++j) {
        const Real hr = h[2 * j];
        c[2 * j] = hr * a[2 * j];
        c[2 * j + 1] = hr * a[2 * j + 1];
      }
      return;
    }
    const Real* __restrict b = B + r * row;
    for (index_t j = 0; j < n; ++j) {
      const Real hr = h[2 * j], hi = h[2 * j + 1];
      c[2 * j] = hr * a[2 * j] + hi * b[2 * j];
      c[2 * j + 1] = hr * a[2 * j + 1] + hi * b[2 * j + 1];
    }
  });
}

// Table forms: T (n interleaved complex) holds H of one plane, precomputed.
template <class Real>
void dh_accumulate_table(const Real* O, const Real* T, Real* Sr, Real* Si, index_t n,
                         bool accumulate, int nthreads) {
  parallel_for(n, nthreads, 16384, [&](index_t b, index_t e, int) {
    const Real* __restrict o = O;
    const Real* __restrict t = T;
    Real* __restrict sr = Sr;
    Real* __restrict si = Si;
    if (accumulate) {
      for (index_t j = b; j < e; ++j) {
        const Real hr = t[2 * j], hi = t[2 * j + 1], x = o[2 * j], y = o[2 * j + 1];
        sr[2 * j] += hr * x;
        sr[2 * j + 1] += hr * y;
        si[2 * j] += hi * x;
        si[2 * j + 1] += hi * y;
      }
    } else {
      for (index_t j = b; j < e; ++j) {
        const Real hr = t[2 * j], hi = t[2 * j + 1], x = o[2 * j], y = o[2 * j + 1];
        sr[2 * j] = hr * x;
        sr[2 * j + 1] = hr * y;
        si[2 * j] = hi * x;
        si[2 * j + 1] = hi * y;
      }
    }
  });
}

template <class Real>
void dh_backproject_table(const Real* A, const Real* B, const Real* T, Real* C, index_t n,
                          int nthreads) {
  parallel_for(n, nthreads, 16384, [&](index_t b, index_t e, int) {
    const Real* __restrict a = A;
    const Real* __restrict t = T;
    Real* __restrict c = C;
    if (B == nullptr) {
      for (index_t j = b; j < e; ++j) {
        const Real hr = t[2 * j];
        c[2 * j] = hr * a[2 * j];
        c[2 * j + 1] = hr * a[2 * j + 1];
      }
      return;
    }
    const Real* __restrict bb = B;
    for (index_t j = b; j < e; ++j) {
      const Real hr = t[2 * j], hi = t[2 * j + 1];
      c[2 * j] = hr * a[2 * j] + hi * bb[2 * j];
      c[2 * j + 1] = hr * a[2 * j + 1] + hi * bb[2 * j + 1];
    }
  });
}

template void dh_accumulate_table<float>(const float*, const float*, float*, float*, index_t, bool,
                                         int);
template void dh_accumulate_table<double>(const double*, const double*, double*, double*, index_t,
                                          bool, int);
template void dh_backproject_table<float>(const float*, const float*, const float*, float*, index_t,
                                          int);
template void dh_backproject_table<double>(const double*, const double*, const double*, double*,
                                           index_t, int);
template void dh_accumulate<float>(const float*, float*, float*, index_t, const TransferParams&,
                                   double, bool, int);
template void dh_accumulate<double>(const double*, double*, double*, index_t,
                                    const TransferParams&, double, bool, int);
template void dh_backproject<float>(const float*, const float*, float*, index_t,
                                    const TransferParams&, double, int);
template void dh_backproject<double>(const double*, const double*, double*, index_t,
                                     const TransferParams&, double, int);

template void transfer_apply<float>(const float*, float*, index_t, const TransferParams&, bool, int);
template void transfer_apply<double>(const double*, double*, index_t, const TransferParams&, bool, int);
template double transfer_pullback<float>(const float*, index_t, const float*, float*, index_t,
                                         const TransferParams&, bool, int);
template double transfer_pullback<double>(const double*, index_t, const double*, double*, index_t,
                                          const TransferParams&, bool, int);

}  // namespace cpu
}  // namespace diffimaging
