// Row kernels of the transfer-function multiply (private to the library).
//
// The frequency grid is walked one row at a time: the row of H is generated
// into a small per-chunk buffer (phase in double precision, then H in the
// data's precision) and the caller's row operation uses it for every batch
// element.  Rows i and ny - i share |fy|, so the phase of a row pair is
// computed once.  The row kernels are compiled twice -- transfer_rows_base.cpp
// and, with AVX2/FMA, transfer_rows_avx2.cpp -- and chosen at run time.
//
// Used by the propagation kernels (propagate_cpu.cpp) and by the half-spectrum
// ∂H kernels of the holography system (systems/holography/dh_cpu.cpp).
#pragma once

#include <vector>

#include "diffimaging/core/buffer.hpp"
#include "diffimaging/core/thread_pool.hpp"
#include "diffimaging/math/frequency.hpp"
#include "diffimaging/math/transfer.hpp"

namespace diffimaging {
namespace cpu {

struct RowArgs {
  index_t nx;
  const double* fx2;   // fx^2 per column [1/m^2]
  const double* mask;  // 1 inside the band limit, 0 outside
  double fy2;          // fy^2 of the row
  double z;            // distance of the phase z * kappa [m]
  Wave wave;
  Method method;
  bool carrier;
  void* h;             // scratch: H of the row, nx interleaved complex values of Real
  double* kappa;       // scratch: phase rate [rad/m], 0 where H = 0 (pullback only)
};

// Declarations of the row kernels, compiled once per instruction set.
#define DI_DECLARE_ROW_KERNELS                                                                  \
  /* Fills a.h (and a.kappa when want_kappa) for all a.nx columns with H (its conjugate   */  \
  /* when conj_sign = -1); the phase is computed in double precision for fx >= 0 only and */  \
  /* mirrored (fx^2 is even in fx).                                                       */  \
  template <class Real>                                                                       \
  void phase(const RowArgs& a, double conj_sign, bool want_kappa);                            \
  /* dst = h * src for one row (src may equal dst). */                                        \
  template <class Real>                                                                       \
  void multiply(const RowArgs& a, const Real* src, Real* dst);                                \
  /* acc (+)= conj(H) G; returns sum Re(conj(G) i kappa H U) (U may be null). */              \
  template <class Real>                                                                       \
  double pullback(const RowArgs& a, const Real* U, const Real* G, Real* acc, bool accumulate);

namespace rows_base {
DI_DECLARE_ROW_KERNELS
}  // namespace rows_base

namespace rows_avx2 {
DI_DECLARE_ROW_KERNELS
}  // namespace rows_avx2

#undef DI_DECLARE_ROW_KERNELS

// Whether the AVX2/FMA row kernels are built and the CPU runs them.
bool use_avx2_rows();

template <class Real>
void row_phase(bool avx2, const RowArgs& a, double conj_sign, bool want_kappa) {
  if (avx2) rows_avx2::phase<Real>(a, conj_sign, want_kappa);
  else rows_base::phase<Real>(a, conj_sign, want_kappa);
}

// Per-call tables along x: fx^2 and a 0/1 band-limit mask.
struct ColumnTables {
  std::vector<double> fx2;
  std::vector<double> mask;
  double fy_limit;
};

inline ColumnTables make_columns(const TransferParams& p) {
  ColumnTables t;
  t.fx2 = buffer<double>(p.nx, "the transfer-function column table");
  t.mask = buffer<double>(p.nx, "the transfer-function column table");
  const BandLimits lim = band_limits(p);
  t.fy_limit = lim.fy;
  for (index_t j = 0; j < p.nx; ++j) {
    const double fx = fftfreq(j, p.nx, p.dx);
    t.fx2[j] = fx * fx;
    t.mask[j] = in_band(fx, lim.fx) ? 1.0 : 0.0;
  }
  return t;
}

// Rows i and ny - i share |fy|: the number of distinct rows, and the mirror of
// row i (-1 when it has none).
inline index_t unique_rows(index_t ny) { return ny / 2 + 1 < ny ? ny / 2 + 1 : ny; }
inline index_t mirror_row(index_t i, index_t ny) {
  return (i >= 1 && i <= (ny - 1) / 2) ? ny - i : -1;
}

// The partition of for_rows: chunks of distinct rows (size per-chunk buffers by its count).
inline Partition row_partition(const TransferParams& p, int nthreads) {
  return partition(unique_rows(p.ny), nthreads, 4);
}

// Calls row(r, a, zero, chunk) for every row r of the p.ny x p.nx frequency
// grid, in parallel, with a.h (and a.kappa when want_kappa) holding the row of
// H (its conjugate for conj_sign = -1) for the band limit of p.z and the phase
// z_phase * kappa.  `zero` marks rows outside the band limit (a.h is then not
// set).  `part` is row_partition(p, nthreads); `chunk` indexes its chunks.

template <class Real, class RowFn>
void for_rows(const TransferParams& p, double z_phase, double conj_sign, bool want_kappa,
              const Partition& part, RowFn&& row) {
  const ColumnTables cols = make_columns(p);
  RowArgs base{};
  base.nx = p.nx;
  base.fx2 = cols.fx2.data();
  base.mask = cols.mask.data();
  base.z = z_phase;
  base.wave = wave(p.wavelength);
  base.method = p.method;
  base.carrier = p.carrier;
  const bool avx2 = use_avx2_rows();
  parallel_for(part, [&](index_t r0, index_t r1, int chunk) {
    std::vector<Real> hbuf = buffer<Real>(2 * p.nx, "a transfer-function row buffer");
    std::vector<double> kbuf = buffer<double>(want_kappa ? p.nx : 0, "a transfer-function row buffer");
    RowArgs a = base;
    a.h = hbuf.data();
    a.kappa = want_kappa ? kbuf.data() : nullptr;
    for (index_t i = r0; i < r1; ++i) {
      const index_t rows[2] = {i, mirror_row(i, p.ny)};
      const double fy = fftfreq(i, p.ny, p.dy);
      const bool zero = !in_band(fy, cols.fy_limit);
      if (!zero) {
        a.fy2 = fy * fy;
        row_phase<Real>(avx2, a, conj_sign, want_kappa);
      }
      for (index_t r : rows)
        if (r >= 0) row(r, static_cast<const RowArgs&>(a), zero, chunk);
    }
  });
}

template <class Real, class RowFn>
void for_rows(const TransferParams& p, double z_phase, double conj_sign, bool want_kappa,
              int nthreads, RowFn&& row) {
  for_rows<Real>(p, z_phase, conj_sign, want_kappa, row_partition(p, nthreads),
                 std::forward<RowFn>(row));
}

}  // namespace cpu
}  // namespace diffimaging
