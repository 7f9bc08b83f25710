// Row kernels of the transfer-function multiply, written as flat loops over
// plain arrays so that the compiler vectorises them.  Each row is done in two
// passes through a small per-thread buffer: (1) phase, sin and cos in double
// precision, (2) the complex multiply in the data's precision.
//
// This header is compiled twice (transfer_rows_base.cpp, and
// transfer_rows_avx2.cpp with AVX2/FMA) into the namespaces named by
// DI_ROWS_NS; propagate_cpu.cpp picks one at run time.
#pragma once

#include "diffimaging/transfer.hpp"

namespace diffimaging {
namespace cpu {

struct RowArgs {
  index_t nx;
  const double* fx2;   // fx^2 per column [1/m^2]
  const double* mask;  // 1 inside the band limit, 0 outside
  double fy2;          // fy^2 of the row
  double z, inv_l, inv_l2, lam;
  int method;          // 0 asm, 1 fresnel
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

}  // namespace cpu
}  // namespace diffimaging
