// Thin pybind11 bindings of the CUDA launchers.  pybind11 has no DLPack
// caster: device arrays arrive as integer pointers plus shape and dtype,
// already checked in Python (diffimaging._kernels) for dtype, contiguity and
// device; nothing is copied here.
#include <pybind11/pybind11.h>

#include <cstdint>
#include <stdexcept>
#include <string>

#include "diffimaging/cuda.hpp"

namespace py = pybind11;
using diffimaging::index_t;

namespace {

void transfer_apply(std::uintptr_t src, std::uintptr_t dst, const std::string& dtype,
                    index_t batch, index_t ny, index_t nx, double z, double wavelength,
                    double dy, double dx, int method, bool band_limit, bool carrier,
                    bool conjugate, std::uintptr_t stream) {
  if (method != 0 && method != 1) throw std::invalid_argument("method must be 0 or 1");
  diffimaging::TransferParams p;
  p.z = z;
  p.wavelength = wavelength;
  p.dy = dy;
  p.dx = dx;
  p.ny = ny;
  p.nx = nx;
  p.method = static_cast<diffimaging::Method>(method);
  p.band_limit = band_limit;
  p.carrier = carrier;
  py::gil_scoped_release release;
  if (dtype == "complex64")
    diffimaging::cuda::transfer_apply<float>(reinterpret_cast<const float*>(src),
                                             reinterpret_cast<float*>(dst), batch, p, conjugate,
                                             stream);
  else if (dtype == "complex128")
    diffimaging::cuda::transfer_apply<double>(reinterpret_cast<const double*>(src),
                                              reinterpret_cast<double*>(dst), batch, p,
                                              conjugate, stream);
  else
    throw std::invalid_argument("dtype must be 'complex64' or 'complex128', got '" + dtype + "'");
}

}  // namespace

PYBIND11_MODULE(_cuda, m) {
  m.doc() = "diffimaging CUDA kernels (launchers bound by device pointer)";
  m.def("device_count", &diffimaging::cuda::device_count);
  m.def("runtime_version", &diffimaging::cuda::runtime_version);
  m.def("transfer_apply", &transfer_apply, py::arg("src"), py::arg("dst"), py::arg("dtype"),
        py::arg("batch"), py::arg("ny"), py::arg("nx"), py::arg("z"), py::arg("wavelength"),
        py::arg("dy"), py::arg("dx"), py::arg("method"), py::arg("band_limit"),
        py::arg("carrier"), py::arg("conjugate"), py::arg("stream"));
}
