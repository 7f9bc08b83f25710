// sin and cos of a double argument, host and device.
#pragma once

#include <cmath>

#include "diffimaging/core/common.hpp"

namespace diffimaging {

// Branch-free sin and cos of a double argument, accurate to ~1 ulp of the
// result for |x| < 2^30 (|x| up to ~1e9 rad).  Cody-Waite reduction to
// [-pi/4, pi/4] with a three-part pi/2, Taylor polynomials of degree 15/16.
// Written with plain arithmetic and selects so that the compiler vectorises
// loops that call it (std::sin/std::cos are scalar library calls).
DI_HD void sincos_poly(double x, double* s, double* c) {
  constexpr double kTwoOverPi = 0.63661977236758134308;
  constexpr double kPio2a = 1.5707963267341256e+00;  // first 33 bits of pi/2
  constexpr double kPio2b = 6.0771005065061922e-11;  // next 33 bits
  constexpr double kPio2c = 2.0222662487959506e-21;  // remainder
  constexpr double kMagic = 6755399441055744.0;      // 1.5 * 2^52
  const double q = (x * kTwoOverPi + kMagic) - kMagic;  // nearest integer to x * 2/pi
  // quadrant = q mod 4 in {0, 1, 2, 3}, in double arithmetic only (no integer
  // vector ops, so that plain SSE2 vectorises it too)
  const double y = q * 0.25;
  const double ry = (y + kMagic) - kMagic;
  const double fy = ry - (ry > y ? 1.0 : 0.0);
  const double quadrant = q - 4.0 * fy;
  double r = x - q * kPio2a;
  r = r - q * kPio2b;
  r = r - q * kPio2c;
  const double r2 = r * r;
  // sin(r) = r - r^3/3! + ... - r^15/15!
  double ps = -7.6471637318198164759e-13;        // -1/15!
  ps = ps * r2 + 1.6059043836821614599e-10;       // 1/13!
  ps = ps * r2 - 2.5052108385441718775e-08;       // -1/11!
  ps = ps * r2 + 2.7557319223985890653e-06;       // 1/9!
  ps = ps * r2 - 1.9841269841269841270e-04;       // -1/7!
  ps = ps * r2 + 8.3333333333333333333e-03;       // 1/5!
  ps = ps * r2 - 1.6666666666666666667e-01;       // -1/3!
  const double sr = r + r * r2 * ps;
  // cos(r) = 1 - r^2/2! + ... + r^16/16!
  double pc = 4.7794773323873852974e-14;         // 1/16!
  pc = pc * r2 - 1.1470745597729724714e-11;       // -1/14!
  pc = pc * r2 + 2.0876756987868098979e-09;       // 1/12!
  pc = pc * r2 - 2.7557319223985890653e-07;       // -1/10!
  pc = pc * r2 + 2.4801587301587301587e-05;       // 1/8!
  pc = pc * r2 - 1.3888888888888888889e-03;       // -1/6!
  pc = pc * r2 + 4.1666666666666666667e-02;       // 1/4!
  pc = pc * r2 - 0.5;                             // -1/2!
  const double cr = 1.0 + r2 * pc;
  // quadrant: 0 -> (s, c); 1 -> (c, -s); 2 -> (-s, -c); 3 -> (-c, s)
  const bool swap = (quadrant == 1.0) | (quadrant == 3.0);
  const double sv = swap ? cr : sr;
  const double cv = swap ? sr : cr;
  const double sign_s = quadrant >= 2.0 ? -1.0 : 1.0;
  const double sign_c = ((quadrant == 1.0) | (quadrant == 2.0)) ? -1.0 : 1.0;
  *s = sign_s * sv;
  *c = sign_c * cv;
}

}  // namespace diffimaging

namespace diffimaging {

// x - 2 pi round(x / 2 pi): a double phase reduced to [-pi, pi] in double
// precision (2 pi split in the three parts of sincos_poly's pi/2, times 4: each
// product q * part is exact for |q| < 2^20, |x| < ~6e6 rad; beyond, the error
// stays far below single precision).
DI_HD double reduce_two_pi(double x) {
  constexpr double kInvTwoPi = 0.15915494309189533577;
  constexpr double kTwoPiA = 4.0 * 1.5707963267341256e+00;
  constexpr double kTwoPiB = 4.0 * 6.0771005065061922e-11;
  constexpr double kTwoPiC = 4.0 * 2.0222662487959506e-21;
  constexpr double kMagic = 6755399441055744.0;  // 1.5 * 2^52: round to nearest
  const double q = (x * kInvTwoPi + kMagic) - kMagic;
  double r = x - q * kTwoPiA;
  r = r - q * kTwoPiB;
  return r - q * kTwoPiC;
}

// sin and cos of a double phase x for single-precision results: x is reduced to
// [-pi, pi] in double precision (reduce_two_pi), then evaluated in float (on the
// GPU by the special-function unit, whose error on [-pi, pi] is below 2^-21.4,
// 4e-7).  The error, < 5e-7 absolute, is of the order of a complex64 value's
// rounding; the phase itself is never rounded to float before its reduction (a
// phase of 1e5 rad in float would be off by 4e-3).
DI_HD void sincos_reduced_float(double x, float* s, float* c) {
  const float r = static_cast<float>(reduce_two_pi(x));
#if defined(__CUDA_ARCH__)
  __sincosf(r, s, c);
#else
  *s = std::sin(r);
  *c = std::cos(r);
#endif
}

}  // namespace diffimaging
