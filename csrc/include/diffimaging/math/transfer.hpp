// Free-space transfer functions (angular spectrum and Fresnel): the one place
// where their formula -- phase rate, evanescent cut-off, band limit and value --
// is written.  Used by the CPU rows and the CUDA kernel alike (host + device).
//
// Conventions (shared/CONVENTIONS.md): time dependence exp(-i w t), so forward
// propagation by z > 0 multiplies the spectrum by
//   ASM:     H = exp(i 2 pi z sqrt(1/l^2 - fx^2 - fy^2))   (evanescent -> 0)
//   Fresnel: H = exp(i k z) exp(-i pi l z (fx^2 + fy^2))
// With carrier == false the plane-wave phase exp(i k z) is left out; the ASM
// phase is then computed as z * kappa with
//   kappa = -2 pi f^2 / (sqrt(1/l^2 - f^2) + 1/l)
// which avoids the cancellation of two large phases.  Phases are computed in
// double precision whatever the precision of the data.
#pragma once

#include <cmath>

#include "diffimaging/core/common.hpp"
#include "diffimaging/math/frequency.hpp"
#include "diffimaging/math/sincos.hpp"

namespace diffimaging {

enum class Method : int { kAngularSpectrum = 0, kFresnel = 1 };

struct TransferParams {
  double z = 0.0;           // propagation distance [m]
  double wavelength = 0.0;  // [m]
  double dy = 0.0;          // sample spacing of the (padded) grid along y [m]
  double dx = 0.0;          // along x [m]
  index_t ny = 0;           // grid (FFT) size along y
  index_t nx = 0;           // along x
  Method method = Method::kAngularSpectrum;
  bool band_limit = true;   // Matsushima & Shimobaba (2009) band limit
  bool carrier = true;      // keep exp(i k z)
};

// Band-limit frequency of Matsushima & Shimobaba (2009) for an FFT grid of n
// samples spaced d (frequency step 1/(n d)) at distance z: |f| <= f_limit
// [1/m].  For the Fresnel transfer function the same sampling argument (the
// local frequency of the phase in f must stay below the Nyquist rate of the
// frequency grid) gives f_limit = n d / (2 l |z|).
DI_HD double band_limit_frequency(const TransferParams& p, index_t n, double d) {
  const double df = 1.0 / (static_cast<double>(n) * d);
  const double az = std::fabs(p.z);
  if (p.method == Method::kAngularSpectrum) {
    const double t = 2.0 * df * az;
    return 1.0 / (p.wavelength * std::sqrt(t * t + 1.0));
  }
  if (az == 0.0) return INFINITY;
  return 1.0 / (2.0 * df * p.wavelength * az);
}

// The band limits along y and x of p's grid at distance p.z (infinite when
// p.band_limit is off) [1/m].
struct BandLimits {
  double fy;
  double fx;
};

DI_HD BandLimits band_limits(const TransferParams& p) {
  if (!p.band_limit) return {INFINITY, INFINITY};
  return {band_limit_frequency(p, p.ny, p.dy), band_limit_frequency(p, p.nx, p.dx)};
}

// Whether frequency f [1/m] passes a band limit.
DI_HD bool in_band(double f, double limit) { return std::fabs(f) <= limit; }

// 1/l, 1/l^2 and l of one wavelength l [m]: the constants of the phase rate.
struct Wave {
  double inv_l;
  double inv_l2;
  double lam;
};

DI_HD Wave wave(double wavelength) {
  const double inv_l = 1.0 / wavelength;
  return {inv_l, inv_l * inv_l, wavelength};
}

// Phase rate kappa = d(phase)/dz [rad/m] at squared frequency f2 = fx^2 + fy^2
// [1/m^2], for a method and carrier fixed at compile time (so that row loops
// vectorise).  Returns 1.0 where the component propagates and 0.0 where it is
// evanescent (H = 0 there; kappa is then finite but meaningless).
template <Method kMethod, bool kCarrier>
DI_HD double transfer_rate(double f2, const Wave& w, double* kappa) {
  if (kMethod == Method::kAngularSpectrum) {
    const double s = w.inv_l2 - f2;
    const double kz = std::sqrt(s > 0.0 ? s : 0.0);
    *kappa = kCarrier ? kTwoPi * kz : -kTwoPi * f2 / (kz + w.inv_l);
    return s > 0.0 ? 1.0 : 0.0;
  }
  // Fresnel (paraxial): kappa = 2 pi / l - pi l f^2
  *kappa = (kCarrier ? kTwoPi * w.inv_l : 0.0) - kPi * w.lam * f2;
  return 1.0;
}

// The same with the method and carrier of p chosen at run time.
DI_HD double transfer_rate(const TransferParams& p, double f2, const Wave& w, double* kappa) {
  if (p.method == Method::kAngularSpectrum)
    return p.carrier ? transfer_rate<Method::kAngularSpectrum, true>(f2, w, kappa)
                     : transfer_rate<Method::kAngularSpectrum, false>(f2, w, kappa);
  return p.carrier ? transfer_rate<Method::kFresnel, true>(f2, w, kappa)
                   : transfer_rate<Method::kFresnel, false>(f2, w, kappa);
}

// H = m exp(i z kappa) for a 0/1 mask m (its conjugate for conj_sign = -1):
// *re = Re(H), *im = Im(H).  The phase m z kappa is reduced in double precision.
DI_HD void transfer_value(double m, double z, double kappa, double conj_sign, double* re,
                          double* im) {
  double sn, cs;
  sincos_poly(m * (z * kappa), &sn, &cs);
  *re = m * cs;
  *im = m * conj_sign * sn;
}

// H and its masked phase rate at element (i, j) of p's FFT grid, for distance z:
// the per-element form the CUDA kernels use (the CPU rows compute the same
// formula a row at a time).  *kappa_m = m kappa (0 where H = 0).
DI_HD void transfer_at(const TransferParams& p, const BandLimits& lim, const Wave& w, index_t i,
                       index_t j, double z, double conj_sign, double* re, double* im,
                       double* kappa_m) {
  const double fy = fftfreq(i, p.ny, p.dy);
  const double fx = fftfreq(j, p.nx, p.dx);
  double kappa;
  const double pass = transfer_rate(p, fx * fx + fy * fy, w, &kappa);
  const double m = (in_band(fx, lim.fx) && in_band(fy, lim.fy)) ? pass : 0.0;
  transfer_value(m, z, kappa, conj_sign, re, im);
  *kappa_m = m * kappa;
}

}  // namespace diffimaging
