// Bindings of the CUDA propagation launchers (module _cuda).  pybind11 has no
// DLPack caster: device arrays arrive as integer pointers plus shape and dtype,
// already checked in Python (diffimaging._kernels) for dtype, contiguity and
// device; nothing is copied here.
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include <pybind11/stl.h>

#include "bindings/add.hpp"
#include "bindings/device_args.hpp"
#include "diffimaging/core/dispatch.hpp"
#include "ops/propagate/propagate_cuda.hpp"

namespace diffimaging {
namespace bind {
namespace {

namespace py = pybind11;

// U is one plane for the whole batch (0) or one per batch element (ny * nx).
void check_u_stride(index_t u_stride, index_t ny, index_t nx) {
  if (u_stride != 0 && u_stride != ny * nx)
    throw std::invalid_argument("u_stride must be 0 (one U plane) or ny * nx");
}

void transfer_apply(std::uintptr_t src, std::uintptr_t dst, const std::string& dtype,
                    index_t batch, index_t ny, index_t nx, double z, double wavelength,
                    double dy, double dx, int method, bool band_limit, bool carrier,
                    bool conjugate, std::uintptr_t stream) {
  const DType k = device_dtype(dtype, "transfer_apply", true);
  const TransferParams p =
      transfer_params(ny, nx, z, wavelength, dy, dx, method, band_limit, carrier);
  require_device_pointers("transfer_apply", {{"src", src}, {"dst", dst}});
  py::gil_scoped_release release;
  dispatch_precision(k, [&](auto tag) {
    using Real = decltype(tag);
    cuda::transfer_apply<Real>(reinterpret_cast<const Real*>(src), reinterpret_cast<Real*>(dst),
                               batch, p, conjugate, stream);
  });
}

double transfer_pullback(std::uintptr_t U, index_t u_stride, std::uintptr_t G, std::uintptr_t acc,
                         const std::string& dtype, index_t batch, index_t ny, index_t nx, double z,
                         double wavelength, double dy, double dx, int method, bool band_limit,
                         bool carrier, bool accumulate, std::uintptr_t stream) {
  const DType k = device_dtype(dtype, "transfer_pullback", true);
  const TransferParams p =
      transfer_params(ny, nx, z, wavelength, dy, dx, method, band_limit, carrier);
  require_device_pointers("transfer_pullback", {{"G", G}, {"acc", acc}});
  check_u_stride(u_stride, ny, nx);
  py::gil_scoped_release release;
  return dispatch_precision(k, [&](auto tag) {
    using Real = decltype(tag);
    return cuda::transfer_pullback<Real>(reinterpret_cast<const Real*>(U), u_stride,
                                         reinterpret_cast<const Real*>(G),
                                         reinterpret_cast<Real*>(acc), batch, p, accumulate,
                                         stream);
  });
}

void transfer_stack(std::uintptr_t src, std::uintptr_t dst, std::uintptr_t zs, index_t nz,
                    const std::string& dtype, index_t batch, index_t ny, index_t nx,
                    double wavelength, double dy, double dx, int method, bool band_limit,
                    bool carrier, std::uintptr_t stream) {
  const DType k = device_dtype(dtype, "transfer_stack", true);
  const TransferParams p =
      transfer_params(ny, nx, 0.0, wavelength, dy, dx, method, band_limit, carrier);
  require_device_pointers("transfer_stack", {{"src", src}, {"dst", dst}, {"zs", zs}});
  py::gil_scoped_release release;
  dispatch_precision(k, [&](auto tag) {
    using Real = decltype(tag);
    cuda::transfer_stack<Real>(reinterpret_cast<const Real*>(src), reinterpret_cast<Real*>(dst),
                               reinterpret_cast<const double*>(zs), nz, batch, p, stream);
  });
}

void transfer_stack_adjoint(std::uintptr_t G, std::uintptr_t acc, std::uintptr_t zs, index_t nz,
                            const std::string& dtype, index_t batch, index_t ny, index_t nx,
                            double wavelength, double dy, double dx, int method, bool band_limit,
                            bool carrier, bool accumulate, std::uintptr_t stream) {
  const DType k = device_dtype(dtype, "transfer_stack_adjoint", true);
  const TransferParams p =
      transfer_params(ny, nx, 0.0, wavelength, dy, dx, method, band_limit, carrier);
  require_device_pointers("transfer_stack_adjoint", {{"G", G}, {"acc", acc}, {"zs", zs}});
  py::gil_scoped_release release;
  dispatch_precision(k, [&](auto tag) {
    using Real = decltype(tag);
    cuda::transfer_stack_adjoint<Real>(reinterpret_cast<const Real*>(G),
                                       reinterpret_cast<Real*>(acc),
                                       reinterpret_cast<const double*>(zs), nz, batch, p,
                                       accumulate, stream);
  });
}

std::vector<double> transfer_stack_dz(std::uintptr_t U, index_t u_stride, std::uintptr_t G,
                                      std::uintptr_t zs, index_t nz, const std::string& dtype,
                                      index_t batch, index_t ny, index_t nx, double wavelength,
                                      double dy, double dx, int method, bool band_limit,
                                      bool carrier, std::uintptr_t stream) {
  const DType k = device_dtype(dtype, "transfer_stack_dz", true);
  const TransferParams p =
      transfer_params(ny, nx, 0.0, wavelength, dy, dx, method, band_limit, carrier);
  require_device_pointers("transfer_stack_dz", {{"U", U}, {"G", G}, {"zs", zs}});
  check_u_stride(u_stride, ny, nx);
  require_nonnegative(nz, "transfer_stack_dz", "nz");
  std::vector<double> dz(static_cast<size_t>(nz), 0.0);
  {
    py::gil_scoped_release release;
    dispatch_precision(k, [&](auto tag) {
      using Real = decltype(tag);
      cuda::transfer_stack_dz<Real>(reinterpret_cast<const Real*>(U), u_stride,
                                    reinterpret_cast<const Real*>(G),
                                    reinterpret_cast<const double*>(zs), nz, batch, p, dz.data(),
                                    stream);
    });
  }
  return dz;
}

}  // namespace

void add_propagate_cuda(py::module_& m) {
  m.def("transfer_apply", &transfer_apply, py::arg("src"), py::arg("dst"), py::arg("dtype"),
        py::arg("batch"), py::arg("ny"), py::arg("nx"), py::arg("z"), py::arg("wavelength"),
        py::arg("dy"), py::arg("dx"), py::arg("method"), py::arg("band_limit"),
        py::arg("carrier"), py::arg("conjugate"), py::arg("stream"));
  m.def("transfer_pullback", &transfer_pullback, py::arg("U"), py::arg("u_stride"), py::arg("G"),
        py::arg("acc"), py::arg("dtype"), py::arg("batch"), py::arg("ny"), py::arg("nx"),
        py::arg("z"), py::arg("wavelength"), py::arg("dy"), py::arg("dx"), py::arg("method"),
        py::arg("band_limit"), py::arg("carrier"), py::arg("accumulate"), py::arg("stream"));
  m.def("transfer_stack", &transfer_stack, py::arg("src"), py::arg("dst"), py::arg("zs"),
        py::arg("nz"), py::arg("dtype"), py::arg("batch"), py::arg("ny"), py::arg("nx"),
        py::arg("wavelength"), py::arg("dy"), py::arg("dx"), py::arg("method"),
        py::arg("band_limit"), py::arg("carrier"), py::arg("stream"));
  m.def("transfer_stack_adjoint", &transfer_stack_adjoint, py::arg("G"), py::arg("acc"),
        py::arg("zs"), py::arg("nz"), py::arg("dtype"), py::arg("batch"), py::arg("ny"),
        py::arg("nx"), py::arg("wavelength"), py::arg("dy"), py::arg("dx"), py::arg("method"),
        py::arg("band_limit"), py::arg("carrier"), py::arg("accumulate"), py::arg("stream"));
  m.def("transfer_stack_dz", &transfer_stack_dz, py::arg("U"), py::arg("u_stride"), py::arg("G"),
        py::arg("zs"), py::arg("nz"), py::arg("dtype"), py::arg("batch"), py::arg("ny"),
        py::arg("nx"), py::arg("wavelength"), py::arg("dy"), py::arg("dx"), py::arg("method"),
        py::arg("band_limit"), py::arg("carrier"), py::arg("stream"));
}

}  // namespace bind
}  // namespace diffimaging
