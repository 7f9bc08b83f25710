// Launch helpers shared by the CUDA kernels (included by .cu files only): the
// caller's stream, the grid of a grid-stride element loop, and the fixed-order
// block reduction behind every deterministic sum.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "diffimaging/core/common.hpp"

namespace diffimaging {
namespace cuda {

// The calling library's stream, passed to the launchers as an integer.
inline cudaStream_t as_stream(std::uintptr_t s) { return reinterpret_cast<cudaStream_t>(s); }

// Blocks of `threads` for a grid-stride loop over `total` elements: at least 1,
// at most 65535 * 8 (the loop covers the rest).
inline int grid_blocks(index_t total, int threads) {
  constexpr index_t kCap = 65535 * 8;
  const index_t want = (total + threads - 1) / threads;
  return static_cast<int>(want < kCap ? (want > 0 ? want : 1) : kCap);
}

// Block-wide sums of kN doubles per thread, in a fixed tree order (the same
// inputs give the same bits on every run); every thread gets the sums in v.
// kBlock: the block size (a power of two), the launch's blockDim.x.
template <int kBlock, int kN>
__device__ void block_sum(double (&v)[kN]) {
  static_assert((kBlock & (kBlock - 1)) == 0, "the block size must be a power of two");
  __shared__ double buf[kN][kBlock];
  for (int c = 0; c < kN; ++c) buf[c][threadIdx.x] = v[c];
  __syncthreads();
  for (int s = kBlock / 2; s > 0; s >>= 1) {
    if (threadIdx.x < s)
      for (int c = 0; c < kN; ++c) buf[c][threadIdx.x] += buf[c][threadIdx.x + s];
    __syncthreads();
  }
  for (int c = 0; c < kN; ++c) v[c] = buf[c][0];
}

}  // namespace cuda
}  // namespace diffimaging
