// Half-spectrum kernels of the ∂H volume model for real objects: the sensor
// field of a stack of real planes and its adjoint, one plane at a time.
// Spectra are (p.ny, nxh) interleaved complex: the nxh = p.nx / 2 + 1 columns
// of a real-to-complex transform of length p.nx.  H is the transfer function
// with the band-limit mask of p.z (the plane's nominal depth) and the phase
// z_phase * kappa, so that a global offset of every plane moves the phase only.
#include <algorithm>

#include "diffimaging/core/thread_pool.hpp"
#include "diffimaging/holography.hpp"
#include "ops/propagate/transfer_rows.hpp"

namespace diffimaging {
namespace cpu {

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

// Table forms: T holds `batch` planes of n interleaved complex values of H
// (precomputed), O / C the matching planes.  The elements are processed in blocks
// that stay in the L1 cache while every plane of the batch passes over them, so
// the sums Sr, Si (or the cotangents A, B) cross memory once per batch, not once
// per plane.
constexpr index_t kTableBlock = 1024;  // complex elements per cache block

template <class Real>
void dh_accumulate_table(const Real* O, const Real* T, Real* Sr, Real* Si, index_t n,
                         index_t batch, bool accumulate, int nthreads) {
  parallel_for(n, nthreads, 16384, [&](index_t b, index_t e, int) {
    for (index_t j0 = b; j0 < e; j0 += kTableBlock) {
      const index_t j1 = std::min(e, j0 + kTableBlock);
      Real* __restrict sr = Sr;
      Real* __restrict si = Si;
      for (index_t p = 0; p < batch; ++p) {
        const Real* __restrict o = O + 2 * p * n;
        const Real* __restrict t = T + 2 * p * n;
        if (p == 0 && !accumulate) {
          for (index_t j = j0; j < j1; ++j) {
            const Real hr = t[2 * j], hi = t[2 * j + 1], x = o[2 * j], y = o[2 * j + 1];
            sr[2 * j] = hr * x;
            sr[2 * j + 1] = hr * y;
            si[2 * j] = hi * x;
            si[2 * j + 1] = hi * y;
          }
        } else {
          for (index_t j = j0; j < j1; ++j) {
            const Real hr = t[2 * j], hi = t[2 * j + 1], x = o[2 * j], y = o[2 * j + 1];
            sr[2 * j] += hr * x;
            sr[2 * j + 1] += hr * y;
            si[2 * j] += hi * x;
            si[2 * j + 1] += hi * y;
          }
        }
      }
    }
  });
}

template <class Real>
void dh_backproject_table(const Real* A, const Real* B, const Real* T, Real* C, index_t n,
                          index_t batch, int nthreads) {
  parallel_for(n, nthreads, 16384, [&](index_t b, index_t e, int) {
    for (index_t j0 = b; j0 < e; j0 += kTableBlock) {
      const index_t j1 = std::min(e, j0 + kTableBlock);
      const Real* __restrict a = A;
      for (index_t p = 0; p < batch; ++p) {
        const Real* __restrict t = T + 2 * p * n;
        Real* __restrict c = C + 2 * p * n;
        if (B == nullptr) {
          for (index_t j = j0; j < j1; ++j) {
            const Real hr = t[2 * j];
            c[2 * j] = hr * a[2 * j];
            c[2 * j + 1] = hr * a[2 * j + 1];
          }
          continue;
        }
        const Real* __restrict bb = B;
        for (index_t j = j0; j < j1; ++j) {
          const Real hr = t[2 * j], hi = t[2 * j + 1];
          c[2 * j] = hr * a[2 * j] + hi * bb[2 * j];
          c[2 * j + 1] = hr * a[2 * j + 1] + hi * bb[2 * j + 1];
        }
      }
    }
  });
}

template void dh_accumulate_table<float>(const float*, const float*, float*, float*, index_t,
                                         index_t, bool, int);
template void dh_accumulate_table<double>(const double*, const double*, double*, double*, index_t,
                                          index_t, bool, int);
template void dh_backproject_table<float>(const float*, const float*, const float*, float*, index_t,
                                          index_t, int);
template void dh_backproject_table<double>(const double*, const double*, const double*, double*,
                                           index_t, index_t, int);
template void dh_accumulate<float>(const float*, float*, float*, index_t, const TransferParams&,
                                   double, bool, int);
template void dh_accumulate<double>(const double*, double*, double*, index_t,
                                    const TransferParams&, double, bool, int);
template void dh_backproject<float>(const float*, const float*, float*, index_t,
                                    const TransferParams&, double, int);
template void dh_backproject<double>(const double*, const double*, double*, index_t,
                                     const TransferParams&, double, int);

}  // namespace cpu
}  // namespace diffimaging
