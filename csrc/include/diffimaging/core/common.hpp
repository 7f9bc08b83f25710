// diffimaging core: definitions shared by every part of the C++ library, on the
// host (C++17) and on the device (nvcc).  No Python, no CUDA runtime headers.
#pragma once

#include <cstdint>

#if defined(__CUDACC__)
#define DI_HD __host__ __device__ __forceinline__
#else
#define DI_HD inline
#endif

namespace diffimaging {

// Signed index and size type of every kernel (element counts, strides, shapes).
using index_t = std::int64_t;

constexpr double kPi = 3.14159265358979323846;
constexpr double kTwoPi = 6.28318530717958647692;

}  // namespace diffimaging
