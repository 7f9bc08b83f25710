// Implementation of the row kernels; included by transfer_rows_base.cpp and
// transfer_rows_avx2.cpp with DI_ROWS_NS set.  See transfer_rows.hpp.
#include <type_traits>

#include "ops/propagate/transfer_rows.hpp"

#if defined(DI_ROWS_AVX2) && defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#endif

#ifndef DI_ROWS_NS
#error "define DI_ROWS_NS before including transfer_rows_impl.hpp"
#endif

namespace diffimaging {
namespace cpu {
namespace DI_ROWS_NS {
namespace {

// H = exp(i z kappa) (times the 0/1 band-limit mask) for columns [0, n),
// stored as interleaved Real; optionally kappa itself (0 where H = 0).  The
// formula is math/transfer.hpp's; the phase is in double precision.
template <class Real, Method kMethod, bool kCarrier, bool kWantKappa>
void phase_row(const RowArgs& a, index_t n, double conj_sign) {
  const double* __restrict fx2 = a.fx2;
  const double* __restrict mask = a.mask;
  Real* __restrict h = static_cast<Real*>(a.h);
  double* __restrict k_out = a.kappa;
  const double fy2 = a.fy2, z = a.z;
  const Wave w = a.wave;
  for (index_t j = 0; j < n; ++j) {
    double kappa;
    const double m = transfer_rate<kMethod, kCarrier>(fx2[j] + fy2, w, &kappa) * mask[j];
    double re, im;
    transfer_value(m, z, kappa, conj_sign, &re, &im);
    h[2 * j] = static_cast<Real>(re);
    h[2 * j + 1] = static_cast<Real>(im);
    if (kWantKappa) k_out[j] = m * kappa;
  }
}

// Complex multiply of interleaved rows: dst = h * src, or dst (+)= conj(h) * src.
template <class Real, bool conj_h, bool accumulate>
inline void cmul_row(const Real* h, const Real* src, Real* dst, index_t nx) {
  index_t j = 0;
#if defined(DI_ROWS_AVX2) && defined(__AVX2__) && defined(__FMA__)
  if constexpr (std::is_same<Real, float>::value) {
    for (; j + 4 <= nx; j += 4) {
      const __m256 x = _mm256_loadu_ps(src + 2 * j);
      const __m256 w = _mm256_loadu_ps(h + 2 * j);
      const __m256 wr = _mm256_moveldup_ps(w);
      const __m256 wi = _mm256_movehdup_ps(w);
      const __m256 xs = _mm256_permute_ps(x, 0xB1);  // (im, re) pairs
      const __m256 t = _mm256_mul_ps(xs, wi);
      __m256 r = conj_h ? _mm256_fmsubadd_ps(x, wr, t) : _mm256_fmaddsub_ps(x, wr, t);
      if (accumulate) r = _mm256_add_ps(r, _mm256_loadu_ps(dst + 2 * j));
      _mm256_storeu_ps(dst + 2 * j, r);
    }
  } else {
    for (; j + 2 <= nx; j += 2) {
      const __m256d x = _mm256_loadu_pd(src + 2 * j);
      const __m256d w = _mm256_loadu_pd(h + 2 * j);
      const __m256d wr = _mm256_movedup_pd(w);
      const __m256d wi = _mm256_permute_pd(w, 0xF);
      const __m256d xs = _mm256_permute_pd(x, 0x5);
      const __m256d t = _mm256_mul_pd(xs, wi);
      __m256d r = conj_h ? _mm256_fmsubadd_pd(x, wr, t) : _mm256_fmaddsub_pd(x, wr, t);
      if (accumulate) r = _mm256_add_pd(r, _mm256_loadu_pd(dst + 2 * j));
      _mm256_storeu_pd(dst + 2 * j, r);
    }
  }
#endif
  for (; j < nx; ++j) {
    const Real c = h[2 * j], s = conj_h ? -h[2 * j + 1] : h[2 * j + 1];
    const Real re = src[2 * j], im = src[2 * j + 1];
    const Real yr = re * c - im * s, yi = re * s + im * c;
    if (accumulate) {
      dst[2 * j] += yr;
      dst[2 * j + 1] += yi;
    } else {
      dst[2 * j] = yr;
      dst[2 * j + 1] = yi;
    }
  }
}

}  // namespace

template <class Real>
void phase(const RowArgs& a, double conj_sign, bool want_kappa) {
  const index_t nx = a.nx;
  const index_t n = nx / 2 + 1 < nx ? nx / 2 + 1 : nx;  // columns 0..nx/2 (fx >= 0 and Nyquist)
  using Fn = void (*)(const RowArgs&, index_t, double);
  constexpr Method kAsm = Method::kAngularSpectrum, kFresnel = Method::kFresnel;
  static const Fn table[2][2][2] = {
      {{&phase_row<Real, kAsm, false, false>, &phase_row<Real, kAsm, false, true>},
       {&phase_row<Real, kAsm, true, false>, &phase_row<Real, kAsm, true, true>}},
      {{&phase_row<Real, kFresnel, false, false>, &phase_row<Real, kFresnel, false, true>},
       {&phase_row<Real, kFresnel, true, false>, &phase_row<Real, kFresnel, true, true>}}};
  table[a.method == kAsm ? 0 : 1][a.carrier ? 1 : 0][want_kappa ? 1 : 0](a, n, conj_sign);
  // mirror: column nx - j has frequency -f_j for 1 <= j <= (nx - 1) / 2
  Real* h = static_cast<Real*>(a.h);
  for (index_t j = 1; j <= (nx - 1) / 2; ++j) {
    h[2 * (nx - j)] = h[2 * j];
    h[2 * (nx - j) + 1] = h[2 * j + 1];
  }
  if (want_kappa)
    for (index_t j = 1; j <= (nx - 1) / 2; ++j) a.kappa[nx - j] = a.kappa[j];
}

template <class Real>
void multiply(const RowArgs& a, const Real* src, Real* dst) {
  cmul_row<Real, false, false>(static_cast<const Real*>(a.h), src, dst, a.nx);
}

template <class Real>
double pullback(const RowArgs& a, const Real* U, const Real* G, Real* acc, bool accumulate) {
  const index_t nx = a.nx;
  const Real* __restrict h = static_cast<const Real*>(a.h);
  const double* __restrict kap = a.kappa;
  double dz = 0.0;
  if (U != nullptr) {
    // dz = sum Re(conj(G) * i kappa * H * U) = sum kappa (Gi Re(HU) - Gr Im(HU));
    // four partial sums so that the loop vectorises without reassociation flags
    double part[4] = {0.0, 0.0, 0.0, 0.0};
    index_t j = 0;
    for (; j + 4 <= nx; j += 4)
      for (int q = 0; q < 4; ++q) {
        const index_t jj = j + q;
        const double c = h[2 * jj], s = h[2 * jj + 1];
        const double ur = U[2 * jj], ui = U[2 * jj + 1];
        const double gr = G[2 * jj], gi = G[2 * jj + 1];
        part[q] += kap[jj] * (gi * (c * ur - s * ui) - gr * (s * ur + c * ui));
      }
    for (; j < nx; ++j) {
      const double c = h[2 * j], s = h[2 * j + 1];
      const double ur = U[2 * j], ui = U[2 * j + 1];
      const double gr = G[2 * j], gi = G[2 * j + 1];
      part[0] += kap[j] * (gi * (c * ur - s * ui) - gr * (s * ur + c * ui));
    }
    dz = (part[0] + part[1]) + (part[2] + part[3]);
  }
  if (accumulate) cmul_row<Real, true, true>(h, G, acc, nx);
  else cmul_row<Real, true, false>(h, G, acc, nx);
  return dz;
}

template void phase<float>(const RowArgs&, double, bool);
template void phase<double>(const RowArgs&, double, bool);
template void multiply<float>(const RowArgs&, const float*, float*);
template void multiply<double>(const RowArgs&, const double*, double*);
template double pullback<float>(const RowArgs&, const float*, const float*, float*, bool);
template double pullback<double>(const RowArgs&, const double*, const double*, double*, bool);

}  // namespace DI_ROWS_NS
}  // namespace cpu
}  // namespace diffimaging
