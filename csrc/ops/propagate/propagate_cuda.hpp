// Plain C++ launchers of the CUDA propagation kernels (no pybind11, no CUDA
// headers: the bindings include this file with the host compiler).  Pointers
// are device pointers; `stream` is a cudaStream_t passed as an integer
// (0 = legacy default stream).
#pragma once

#include <cstdint>

#include "diffimaging/math/transfer.hpp"

namespace diffimaging {
namespace cuda {

// dst = H * src (conj(H) when conjugate) on the device, complex64 (Real =
// float) or complex128 (Real = double), interleaved.  Throws std::runtime_error
// with the CUDA error string on failure.
template <class Real>
void transfer_apply(const Real* src, Real* dst, index_t batch, const TransferParams& p,
                    bool conjugate, std::uintptr_t stream);

}  // namespace cuda
}  // namespace diffimaging
