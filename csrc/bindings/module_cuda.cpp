// The _cuda extension module: launchers of the CUDA kernels, bound by device
// pointer (see ops/propagate/propagate_cuda_bind.cpp).
#include <pybind11/pybind11.h>

#include "bindings/add.hpp"
#include "core/cuda_device.hpp"

PYBIND11_MODULE(_cuda, m) {
  m.doc() = "diffimaging CUDA kernels (launchers bound by device pointer)";
  m.def("device_count", &diffimaging::cuda::device_count);
  m.def("runtime_version", &diffimaging::cuda::runtime_version);
  diffimaging::bind::add_propagate_cuda(m);
  diffimaging::bind::add_binning_cuda(m);
  diffimaging::bind::add_pointwise_cuda(m);
  diffimaging::bind::add_holography_cuda(m);
  diffimaging::bind::add_fpm_cuda(m);
}
