// Implementation of the row kernels; included by transfer_rows_base.cpp and
// transfer_rows_avx2.cpp with DI_ROWS_NS set.  See diffimaging/transfer_rows.hpp.
#include "diffimaging/transfer_rows.hpp"

#ifndef DI_ROWS_NS
#error "define DI_ROWS_NS before including transfer_rows_impl.hpp"
#endif

namespace diffimaging {
namespace cpu {
namespace DI_ROWS_NS {
namespace {


// Pass 1: cos and sin of the phase z * kappa (times the 0/1 mask), and
// optionally kappa itself.  Double precision throughout.
// cos and sin of the phase z * kappa (times the 0/1 mask), and optionally
// kappa itself, for columns [0, n).  Double precision throughout.
template <int method, bool carrier, bool want_kappa>
void phase_row(const RowArgs& a, index_t n, double conj_sign) {
  const double* __restrict fx2 = a.fx2;
  const double* __restrict mask = a.mask;
  double* __restrict cs_out = a.cs;
  double* __restrict sn_out = a.sn;
  double* __restrict k_out = a.kappa;
  const double fy2 = a.fy2, z = a.z, inv_l = a.inv_l, inv_l2 = a.inv_l2, lam = a.lam;
  const double carrier_rate = carrier ? kTwoPi * inv_l : 0.0;
  for (index_t j = 0; j < n; ++j) {
    const double f2 = fx2[j] + fy2;
    double m, kappa;
    if (method == 0) {
      const double s = inv_l2 - f2;
      m = (s > 0.0 ? 1.0 : 0.0) * mask[j];
      const double kz = std::sqrt(s > 0.0 ? s : 0.0);
      kappa = carrier ? kTwoPi * kz : -kTwoPi * f2 / (kz + inv_l);
    } else {
      m = mask[j];
      kappa = carrier_rate - kPi * lam * f2;
    }
    const double phase = m * (z * kappa);
    double sn, cs;
    sincos_poly(phase, &sn, &cs);
    cs_out[j] = m * cs;
    sn_out[j] = m * conj_sign * sn;
    if (want_kappa) k_out[j] = m * kappa;
  }
}

}  // namespace

void phase(const RowArgs& a, double conj_sign, bool want_kappa) {
  const index_t nx = a.nx;
  const index_t n = nx / 2 + 1 < nx ? nx / 2 + 1 : nx;  // columns 0..nx/2 (fx >= 0 and Nyquist)
  using Fn = void (*)(const RowArgs&, index_t, double);
  static const Fn table[2][2][2] = {
      {{&phase_row<0, false, false>, &phase_row<0, false, true>},
       {&phase_row<0, true, false>, &phase_row<0, true, true>}},
      {{&phase_row<1, false, false>, &phase_row<1, false, true>},
       {&phase_row<1, true, false>, &phase_row<1, true, true>}}};
  table[a.method == 0 ? 0 : 1][a.carrier ? 1 : 0][want_kappa ? 1 : 0](a, n, conj_sign);
  // mirror: column nx - j has frequency -f_j for 1 <= j <= (nx - 1) / 2
  for (index_t j = 1; j <= (nx - 1) / 2; ++j) {
    a.cs[nx - j] = a.cs[j];
    a.sn[nx - j] = a.sn[j];
  }
  if (want_kappa)
    for (index_t j = 1; j <= (nx - 1) / 2; ++j) a.kappa[nx - j] = a.kappa[j];
}

template <class Real>
void multiply(const RowArgs& a, const Real* src, Real* dst) {
  const index_t nx = a.nx;
  const double* __restrict cs = a.cs;
  const double* __restrict sn = a.sn;
  for (index_t j = 0; j < nx; ++j) {
    const Real c = static_cast<Real>(cs[j]), s = static_cast<Real>(sn[j]);
    const Real re = src[2 * j], im = src[2 * j + 1];
    dst[2 * j] = re * c - im * s;
    dst[2 * j + 1] = re * s + im * c;
  }
}

template <class Real>
double pullback(const RowArgs& a, const Real* U, const Real* G, Real* acc, bool accumulate) {
  const index_t nx = a.nx;
  const double* __restrict cs = a.cs;
  const double* __restrict sn = a.sn;
  const double* __restrict kap = a.kappa;
  double dz = 0.0;
  if (U != nullptr) {
    // dz = sum Re(conj(G) * i kappa * H * U) = sum kappa (Gi Re(HU) - Gr Im(HU))
    for (index_t j = 0; j < nx; ++j) {
      const double c = cs[j], s = sn[j];
      const double ur = static_cast<double>(U[2 * j]), ui = static_cast<double>(U[2 * j + 1]);
      const double gr = static_cast<double>(G[2 * j]), gi = static_cast<double>(G[2 * j + 1]);
      const double hur = c * ur - s * ui, hui = s * ur + c * ui;
      dz += kap[j] * (gi * hur - gr * hui);
    }
  }
  if (accumulate) {
    for (index_t j = 0; j < nx; ++j) {
      const Real c = static_cast<Real>(cs[j]), s = static_cast<Real>(sn[j]);
      const Real gr = G[2 * j], gi = G[2 * j + 1];
      acc[2 * j] += c * gr + s * gi;
      acc[2 * j + 1] += c * gi - s * gr;
    }
  } else {
    for (index_t j = 0; j < nx; ++j) {
      const Real c = static_cast<Real>(cs[j]), s = static_cast<Real>(sn[j]);
      const Real gr = G[2 * j], gi = G[2 * j + 1];
      acc[2 * j] = c * gr + s * gi;
      acc[2 * j + 1] = c * gi - s * gr;
    }
  }
  return dz;
}

template void multiply<float>(const RowArgs&, const float*, float*);
template void multiply<double>(const RowArgs&, const double*, double*);
template double pullback<float>(const RowArgs&, const float*, const float*, float*, bool);
template double pullback<double>(const RowArgs&, const double*, const double*, double*, bool);

}  // namespace DI_ROWS_NS
}  // namespace cpu
}  // namespace diffimaging
