// Binding of the CUDA launcher of Fourier ptychography's fidelity step (module
// _cuda).  Device arrays arrive as integer pointers plus sizes and dtype, checked
// in Python first (diffimaging._backend.cuda_fpm); here the scalar arguments are
// checked again and nothing is copied.  The GIL is released around the launch.
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include <pybind11/stl.h>

#include "bindings/add.hpp"
#include "bindings/device_args.hpp"
#include "diffimaging/core/dispatch.hpp"
#include "systems/fpm/fidelity_cuda.hpp"

namespace diffimaging {
namespace bind {
namespace {

namespace py = pybind11;

std::vector<double> fpm_fidelity(std::uintptr_t psi, std::uintptr_t y, std::uintptr_t mask,
                                 std::uintptr_t a, std::uintptr_t w, double background, int loss,
                                 const std::string& dtype, index_t J, index_t n,
                                 std::uintptr_t gpsi, std::uintptr_t stream) {
  const char* fn = "fpm_fidelity";
  const DType k = device_dtype(dtype, fn, true);
  if (loss < 0 || loss > 2)
    throw std::invalid_argument(std::string(fn) + ": loss must be 0 (amplitude), 1 (poisson) or "
                                "2 (huber), got " + std::to_string(loss));
  if (J < 0 || n < 0)
    throw std::invalid_argument(std::string(fn) + ": J and n must be >= 0, got " +
                                std::to_string(J) + " and " + std::to_string(n));
  std::vector<double> vals(static_cast<size_t>(J), 0.0);
  if (J == 0) return vals;
  require_device_pointers(fn, {{"psi", psi}, {"y", y}, {"mask", mask}, {"a", a}, {"w", w},
                               {"gpsi", gpsi}});
  {
    py::gil_scoped_release release;
    dispatch_precision(k, [&](auto tag) {
      using Real = decltype(tag);
      cuda::fpm_fidelity<Real>(reinterpret_cast<const Real*>(psi), reinterpret_cast<const Real*>(y),
                               reinterpret_cast<const Real*>(mask),
                               reinterpret_cast<const double*>(a),
                               reinterpret_cast<const double*>(w), background,
                               static_cast<cuda::FpmLoss>(loss), J, n,
                               reinterpret_cast<Real*>(gpsi), vals.data(), stream);
    });
  }
  return vals;
}

}  // namespace

void add_fpm_cuda(py::module_& m) {
  m.def("fpm_fidelity", &fpm_fidelity, py::arg("psi"), py::arg("y"), py::arg("mask"),
        py::arg("a"), py::arg("w"), py::arg("background"), py::arg("loss"), py::arg("dtype"),
        py::arg("J"), py::arg("n"), py::arg("gpsi"), py::arg("stream"));
}

}  // namespace bind
}  // namespace diffimaging
