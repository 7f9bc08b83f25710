// Plain C++ launchers of the CUDA kernels (no pybind11, no CUDA headers here:
// the bindings include this file with the host compiler).  Pointers are device
// pointers; `stream` is a cudaStream_t passed as an integer (0 = legacy default).
#pragma once

#include <cstdint>
#include <string>

#include "diffimaging/transfer.hpp"

namespace diffimaging {
namespace cuda {

// Number of visible CUDA devices (0 when there is no driver or no device).
int device_count();

// Runtime version of the statically linked CUDA runtime (e.g. 13000).
int runtime_version();

// dst = H * src (conj(H) when conjugate) on the device, complex64 (Real =
// float) or complex128 (Real = double), interleaved.  Throws std::runtime_error
// with the CUDA error string on failure.
template <class Real>
void transfer_apply(const Real* src, Real* dst, index_t batch, const TransferParams& p,
                    bool conjugate, std::uintptr_t stream);

}  // namespace cuda
}  // namespace diffimaging
