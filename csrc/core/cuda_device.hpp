// CUDA runtime queries and error checks (no pybind11; the declarations compile
// with the host compiler, the definitions are in cuda_device.cu).
#pragma once

namespace diffimaging {
namespace cuda {

// Number of visible CUDA devices (0 when there is no driver or no device).
int device_count();

// Version of the statically linked CUDA runtime (e.g. 13000 for 13.0).
int runtime_version();

// Throws std::runtime_error naming `what` and the CUDA error string unless
// `status` (a cudaError_t) is cudaSuccess.
void check(int status, const char* what);

}  // namespace cuda
}  // namespace diffimaging
