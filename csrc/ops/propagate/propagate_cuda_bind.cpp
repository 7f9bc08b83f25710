// Bindings of the CUDA propagation launchers (module _cuda).  pybind11 has no
// DLPack caster: device arrays arrive as integer pointers plus shape and dtype,
// already checked in Python (diffimaging._kernels) for dtype, contiguity and
// device; nothing is copied here.
#include <cstdint>
#include <stdexcept>
#include <string>

#include "bindings/add.hpp"
#include "diffimaging/core/dispatch.hpp"
#include "ops/propagate/propagate_cuda.hpp"

namespace diffimaging {
namespace bind {
namespace {

namespace py = pybind11;

void transfer_apply(std::uintptr_t src, std::uintptr_t dst, const std::string& dtype,
                    index_t batch, index_t ny, index_t nx, double z, double wavelength,
                    double dy, double dx, int method, bool band_limit, bool carrier,
                    bool conjugate, std::uintptr_t stream) {
  if (method != 0 && method != 1) throw std::invalid_argument("method must be 0 or 1");
  DType k;
  if (dtype == "complex64") k = DType::kComplex64;
  else if (dtype == "complex128") k = DType::kComplex128;
  else throw std::invalid_argument("dtype must be 'complex64' or 'complex128', got '" + dtype + "'");
  TransferParams p;
  p.z = z;
  p.wavelength = wavelength;
  p.dy = dy;
  p.dx = dx;
  p.ny = ny;
  p.nx = nx;
  p.method = static_cast<Method>(method);
  p.band_limit = band_limit;
  p.carrier = carrier;
  py::gil_scoped_release release;
  dispatch_precision(k, [&](auto tag) {
    using Real = decltype(tag);
    cuda::transfer_apply<Real>(reinterpret_cast<const Real*>(src), reinterpret_cast<Real*>(dst),
                               batch, p, conjugate, stream);
  });
}

}  // namespace

void add_propagate_cuda(py::module_& m) {
  m.def("transfer_apply", &transfer_apply, py::arg("src"), py::arg("dst"), py::arg("dtype"),
        py::arg("batch"), py::arg("ny"), py::arg("nx"), py::arg("z"), py::arg("wavelength"),
        py::arg("dy"), py::arg("dx"), py::arg("method"), py::arg("band_limit"),
        py::arg("carrier"), py::arg("conjugate"), py::arg("stream"));
}

}  // namespace bind
}  // namespace diffimaging
