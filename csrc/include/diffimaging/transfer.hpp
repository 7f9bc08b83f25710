// Free-space transfer functions (angular spectrum and Fresnel), written once for
// host and device.  Conventions (shared/CONVENTIONS.md): time dependence
// exp(-i w t), so forward propagation by z > 0 multiplies the spectrum by
//   ASM:     H = exp(i 2 pi z sqrt(1/l^2 - fx^2 - fy^2))   (evanescent -> 0)
//   Fresnel: H = exp(i k z) exp(-i pi l z (fx^2 + fy^2))
// With carrier == false the plane-wave phase exp(i k z) is left out; the ASM
// phase is then computed as z * kappa with
//   kappa = -2 pi f^2 / (sqrt(1/l^2 - f^2) + 1/l)
// which avoids the cancellation of two large phases.
#pragma once

#include "diffimaging/common.hpp"

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
// samples spaced d (frequency step 1/(n d)) at distance z: |f| <= f_limit.
// For the Fresnel transfer function the same sampling argument (the local
// frequency of the phase in f must stay below the Nyquist rate of the
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

// Phase rate kappa(fx^2, fy^2) = d(phase)/dz [rad/m] of the transfer function
// at one frequency, and whether the component propagates (false: evanescent or
// removed by the band limit, H = 0 there).  phase = z * kappa.
DI_HD bool transfer_kappa(const TransferParams& p, double inv_l, double inv_l2,
                          double f2, double* kappa) {
  if (p.method == Method::kAngularSpectrum) {
    const double s = inv_l2 - f2;
    const bool ok = s > 0.0;
    const double kz = std::sqrt(ok ? s : 0.0);
    *kappa = p.carrier ? kTwoPi * kz : -kTwoPi * f2 / (kz + inv_l);
    return ok;
  }
  // Fresnel (paraxial): kappa = 2 pi / l - pi l f^2
  const double lam = 1.0 / inv_l;
  *kappa = (p.carrier ? kTwoPi * inv_l : 0.0) - kPi * lam * f2;
  return true;
}

}  // namespace diffimaging
