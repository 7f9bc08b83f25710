// Exact area-integration binning tables, written once for host and device.
//
// Along one axis of n input pixels (pixel i covers [i, i+1)), output pixel k
// integrates the piecewise-constant input over [k f + s, (k+1) f + s), with
// zero outside the image.  Input pixel i overlaps at most two output
// intervals (f >= 1); the adjoint is therefore a gather of two taps.
#pragma once

#include <cmath>

#include "diffimaging/core/common.hpp"

namespace diffimaging {

// Overlap length of [i, i+1) with [a, b).
DI_HD double overlap(double i, double a, double b) {
  const double lo = i > a ? i : a;
  const double hi = (i + 1.0) < b ? (i + 1.0) : b;
  return hi > lo ? hi - lo : 0.0;
}

// First input pixel touched by output pixel k (may be < 0).
DI_HD index_t bin_first_input(index_t k, index_t f, double s) {
  return static_cast<index_t>(std::floor(static_cast<double>(k * f) + s));
}

// Weight of input pixel i in output pixel k.
DI_HD double bin_weight(index_t k, index_t i, index_t f, double s, index_t n) {
  if (i < 0 || i >= n) return 0.0;
  const double a = static_cast<double>(k * f) + s;
  return overlap(static_cast<double>(i), a, a + static_cast<double>(f));
}

// First output pixel that input pixel i contributes to (may be < 0 or >= m).
DI_HD index_t bin_first_output(index_t i, index_t f, double s) {
  // k with k f + s < i + 1, i.e. the interval of k overlaps [i, i+1) from the left
  return static_cast<index_t>(std::floor((static_cast<double>(i) - s) / static_cast<double>(f)));
}

}  // namespace diffimaging
