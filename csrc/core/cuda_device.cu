// CUDA runtime queries and error checks.
#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

#include "core/cuda_device.hpp"

namespace diffimaging {
namespace cuda {

int device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no driver" error
    return 0;
  }
  return n;
}

int runtime_version() {
  int v = 0;
  cudaRuntimeGetVersion(&v);
  return v;
}

void check(int status, const char* what) {
  const auto err = static_cast<cudaError_t>(status);
  if (err != cudaSuccess)
    throw std::runtime_error(std::string("diffimaging CUDA: ") + what + ": " +
                             cudaGetErrorString(err));
}

}  // namespace cuda
}  // namespace diffimaging
