// Public C++ API of the holography system's kernels (CPU, no Python): the
// half-spectrum kernels of the ∂H volume model, its fused proximal steps and
// the depth projections of reconstructed volumes.  Complex arrays are
// interleaved (re, im) pairs of Real; `nthreads` <= 0 means all hardware threads.
#pragma once

#include "diffimaging/core/common.hpp"
#include "diffimaging/math/transfer.hpp"

namespace diffimaging {
namespace cpu {

// Half-spectrum kernels of the ∂H volume model for real objects.  Spectra
// are (p.ny, nxh) interleaved complex (nxh = p.nx / 2 + 1 columns of a real
// transform of length p.nx).  H has the band-limit mask of p.z and the phase
// z_phase * kappa.  Because H(-f) = H(f), the sensor field of a real plane o is
//   s = irfft(Re(H) O) + i irfft(Im(H) O),   O = rfft(o),
// and the real part of the adjoint applied to g = gr + i gi is
//   irfft(Re(H) A + Im(H) B),   A = rfft(gr), B = rfft(gi).
// dh_accumulate: Sr (+)= Re(H) O, Si (+)= Im(H) O.
template <class Real>
void dh_accumulate(const Real* O, Real* Sr, Real* Si, index_t nxh, const TransferParams& p,
                   double z_phase, bool accumulate, int nthreads);

// dh_backproject: C = Re(H) A + Im(H) B (B may be null: C = Re(H) A).
template <class Real>
void dh_backproject(const Real* A, const Real* B, Real* C, index_t nxh, const TransferParams& p,
                    double z_phase, int nthreads);

// The same with H precomputed, for `batch` consecutive planes at once: T and O
// (or C) hold batch planes of n interleaved complex values each (plane p at
// offset 2 p n), so the loops are plain multiply-adds and Sr, Si (A, B) are read
// and written once per batch:
//   dh_accumulate_table: Sr (+)= sum_p Re(T_p) O_p, Si (+)= sum_p Im(T_p) O_p;
//   dh_backproject_table: C_p = Re(T_p) A + Im(T_p) B (B may be null).
template <class Real>
void dh_accumulate_table(const Real* O, const Real* T, Real* Sr, Real* Si, index_t n,
                         index_t batch, bool accumulate, int nthreads);
template <class Real>
void dh_backproject_table(const Real* A, const Real* B, const Real* T, Real* C, index_t n,
                          index_t batch, int nthreads);

// One proximal-gradient step of a box-constrained problem with a linear term,
// fused with FISTA's extrapolation and the sums its line search needs:
//   y = x + beta (x - xp)   (xp null: y = x),
//   out = clip(y - step * g + shift, lo, hi),
//   sums = { sum g (out - y), sum (out - y)^2, sum out }   (double accumulation).
// For an L1 weight w on a variable in [lo, hi] <= 0, shift = step * w.
template <class Real>
void prox_step(const Real* x, const Real* xp, const Real* g, Real* out, index_t n, double beta,
               double step, double shift, double lo, double hi, double sums[3], int nthreads);

// prox_step on (ny, nx) images whose gradient g is read from the first nx
// columns of the rows of `buf` (row length buf_row >= nx, e.g. the output of an
// inverse real transform of the padded length): the result goes to `out`
// (contiguous) and over g in `buf`, whose columns [nx, buf_row) are zeroed, so
// that `buf` is then the zero-padded input of the next forward transform.
template <class Real>
void prox_step_rows(const Real* x, const Real* xp, Real* buf, index_t buf_row, Real* out,
                    index_t ny, index_t nx, double beta, double step, double shift, double lo,
                    double hi, double sums[3], int nthreads);

// Running depth projections of a chunk of k planes (k, ny, nx) complex, with
// plane and row strides in complex elements (rows contiguous): for every pixel,
// v = |offset + u_p|^2; vmin/vmax ((ny, nx) contiguous) keep the smallest/largest
// v seen (strictly: the first plane wins ties) and zmin/zmax the depth z[p] where
// it occurs.  One pass over the planes, no temporaries.
template <class Real>
void minmax_project(const Real* planes, index_t k, index_t ny, index_t nx, index_t plane_stride,
                    index_t row_stride, Real offset, const double* z, Real* vmin, Real* zmin,
                    Real* vmax, Real* zmax, int nthreads);

}  // namespace cpu
}  // namespace diffimaging
