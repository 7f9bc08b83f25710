// The binding functions of each domain: add_<domain>(m) defines its kernels in
// module m.  module_cpu.cpp / module_cuda.cpp call them.
#pragma once

#include <pybind11/pybind11.h>

namespace diffimaging {
namespace bind {

void add_propagate(pybind11::module_& m);    // ops/propagate/propagate_bind.cpp
void add_binning(pybind11::module_& m);      // ops/binning/binning_bind.cpp
void add_pointwise(pybind11::module_& m);    // ops/pointwise/pointwise_bind.cpp
void add_holography(pybind11::module_& m);   // systems/holography/holography_bind.cpp
void add_propagate_cuda(pybind11::module_& m);  // ops/propagate/propagate_cuda_bind.cpp
void add_binning_cuda(pybind11::module_& m);    // ops/binning/binning_cuda_bind.cpp
void add_pointwise_cuda(pybind11::module_& m);  // ops/pointwise/pointwise_cuda_bind.cpp
                                                // (intensity, Fourier shift, min/max projection)
void add_holography_cuda(pybind11::module_& m);  // systems/holography/dh_cuda_bind.cpp
                                                 // (the fused ∂H engine's kernels)
void add_fpm_cuda(pybind11::module_& m);         // systems/fpm/fpm_cuda_bind.cpp

}  // namespace bind
}  // namespace diffimaging
