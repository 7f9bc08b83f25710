// Per-element math of the point-wise kernels (intensity, Fourier-shift phase
// ramp, min/max projection), host and device: the CUDA kernels call these, and
// a CPU loop can call the same functions.
#pragma once

#include "diffimaging/core/common.hpp"
#include "diffimaging/math/sincos.hpp"

namespace diffimaging {

// a * b and a + b rounded once each, never contracted into a fused multiply-add
// (nvcc contracts a * a + b * b by default; the CPU kernels, built without FMA,
// do not): device and host then give bit-identical |u|^2, so that the min/max
// projections pick the same planes on both.
DI_HD float mul_rn(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fmul_rn(a, b);
#else
  return a * b;
#endif
}
DI_HD double mul_rn(double a, double b) {
#if defined(__CUDA_ARCH__)
  return __dmul_rn(a, b);
#else
  return a * b;
#endif
}
DI_HD float add_rn(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fadd_rn(a, b);
#else
  return a + b;
#endif
}
DI_HD double add_rn(double a, double b) {
#if defined(__CUDA_ARCH__)
  return __dadd_rn(a, b);
#else
  return a + b;
#endif
}

// |re + i im|^2 = re * re + im * im in the precision of Real, as the CPU kernels
// round it (two products, one sum).
template <class Real>
DI_HD Real abs2(Real re, Real im) {
  return add_rn(mul_rn(re, re), mul_rn(im, im));
}

// The Fourier-shift phase ramp at frequency (fy, fx) [1/m] for a shift (sy, sx)
// [m]: (c, s) = (cos, sin) of -2 pi sign (fy sy + fx sx), in double precision;
// sign = +1 is the shift, -1 its adjoint (the conjugate ramp).
DI_HD void shift_ramp(double fy, double fx, double sy, double sx, double sign, double* c,
                      double* s) {
  const double phase = -kTwoPi * sign * (fy * sy + fx * sx);
  sincos_poly(phase, s, c);
}

// dst[0:2] = src[0:2] * (c + i s), interleaved complex, the product in double.
// src may equal dst (both components are read before either is written).
template <class Real>
DI_HD void cmul_store(const Real* src, Real* dst, double c, double s) {
  const double re = static_cast<double>(src[0]);
  const double im = static_cast<double>(src[1]);
  dst[0] = static_cast<Real>(re * c - im * s);
  dst[1] = static_cast<Real>(re * s + im * c);
}

}  // namespace diffimaging
