// FFT frequency grids, host and device.
#pragma once

#include "diffimaging/core/common.hpp"

namespace diffimaging {

// Frequency of FFT bin j of an n-point transform with sample spacing d, in the
// FFT's own (unshifted) order: identical to numpy.fft.fftfreq(n, d)[j] [1/m].
DI_HD double fftfreq(index_t j, index_t n, double d) {
  const index_t half = (n + 1) / 2;  // number of non-negative frequencies
  const index_t m = j < half ? j : j - n;
  return static_cast<double>(m) / (static_cast<double>(n) * d);
}

}  // namespace diffimaging
