// Bindings of the CUDA point-wise launchers (module _cuda): intensity, the
// Fourier-shift phase-ramp multiply and the min/max depth projection.  pybind11
// has no DLPack caster: device arrays arrive as integer pointers plus shape and
// dtype, checked in Python first (diffimaging._backend.cuda_pointwise) for dtype,
// contiguity and device; here the scalar arguments are checked again and nothing
// is copied.  The GIL is released around the (asynchronous) launches.
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "bindings/add.hpp"
#include "bindings/device_args.hpp"
#include "diffimaging/core/dispatch.hpp"
#include "ops/pointwise/pointwise_cuda.hpp"
#include "systems/holography/minmax_cuda.hpp"

namespace diffimaging {
namespace bind {
namespace {

namespace py = pybind11;

// out (n reals) = |u|^2 of n complex values u.
void intensity(std::uintptr_t u, std::uintptr_t out, const std::string& dtype, index_t n,
               std::uintptr_t stream) {
  const char* fn = "intensity";
  const DType k = device_dtype(dtype, fn, true);
  require_nonnegative(n, fn, "n");
  if (n == 0) return;
  require_device_pointers(fn, {{"u", u}, {"out", out}});
  py::gil_scoped_release release;
  dispatch_precision(k, [&](auto tag) {
    using Real = decltype(tag);
    cuda::intensity<Real>(reinterpret_cast<const Real*>(u), reinterpret_cast<Real*>(out), n,
                          stream);
  });
}

// dst (batch, ny, nx) = src * exp(-2 pi i (fy sy + fx sx)) (conjugate: its
// conjugate); shifts: doubles, plane b's (sy, sx) at b * shift_stride.
void fourier_shift_apply(std::uintptr_t src, std::uintptr_t dst, const std::string& dtype,
                         index_t batch, index_t ny, index_t nx, double dy, double dx,
                         std::uintptr_t shifts, index_t shift_stride, bool conjugate,
                         std::uintptr_t stream) {
  const char* fn = "fourier_shift_apply";
  const DType k = device_dtype(dtype, fn, true);
  require_nonnegatives(fn, {{"batch", batch}, {"ny", ny}, {"nx", nx}});
  if (!(std::isfinite(dy) && dy > 0.0) || !(std::isfinite(dx) && dx > 0.0))
    throw std::invalid_argument(std::string(fn) + ": the sample spacings dy, dx must be finite "
                                "and > 0, got " + std::to_string(dy) + ", " + std::to_string(dx));
  if (shift_stride != 0 && shift_stride < 2)
    throw std::invalid_argument(std::string(fn) + ": shift_stride must be 0 (one shift for all "
                                "planes) or >= 2 (doubles between the planes' shifts), got " +
                                std::to_string(shift_stride));
  if (batch == 0 || ny == 0 || nx == 0) return;
  require_device_pointers(fn, {{"src", src}, {"dst", dst}, {"shifts", shifts}});
  py::gil_scoped_release release;
  dispatch_precision(k, [&](auto tag) {
    using Real = decltype(tag);
    cuda::fourier_shift_apply<Real>(reinterpret_cast<const Real*>(src),
                                    reinterpret_cast<Real*>(dst), batch, ny, nx, dy, dx,
                                    reinterpret_cast<const double*>(shifts), shift_stride,
                                    conjugate, stream);
  });
}

// Running min/max of |offset + u|^2 over k complex planes (strides in complex
// elements, rows contiguous) into four (ny, nx) maps of the planes' real dtype;
// z: k doubles on the device.
void minmax_project(std::uintptr_t planes, const std::string& dtype, index_t k, index_t ny,
                    index_t nx, index_t plane_stride, index_t row_stride, double offset,
                    std::uintptr_t z, std::uintptr_t vmin, std::uintptr_t zmin,
                    std::uintptr_t vmax, std::uintptr_t zmax, std::uintptr_t stream) {
  const char* fn = "minmax_project";
  const DType kd = device_dtype(dtype, fn, true);
  require_nonnegatives(fn, {{"k", k}, {"ny", ny}, {"nx", nx}, {"plane_stride", plane_stride},
                            {"row_stride", row_stride}});
  if (k == 0 || ny == 0 || nx == 0) return;
  require_device_pointers(fn, {{"planes", planes}, {"z", z}, {"vmin", vmin}, {"zmin", zmin},
                               {"vmax", vmax}, {"zmax", zmax}});
  py::gil_scoped_release release;
  dispatch_precision(kd, [&](auto tag) {
    using Real = decltype(tag);
    cuda::minmax_project<Real>(reinterpret_cast<const Real*>(planes), k, ny, nx, plane_stride,
                               row_stride, static_cast<Real>(offset),
                               reinterpret_cast<const double*>(z), reinterpret_cast<Real*>(vmin),
                               reinterpret_cast<Real*>(zmin), reinterpret_cast<Real*>(vmax),
                               reinterpret_cast<Real*>(zmax), stream);
  });
}

}  // namespace

void add_pointwise_cuda(py::module_& m) {
  m.def("intensity", &intensity, py::arg("u"), py::arg("out"), py::arg("dtype"), py::arg("n"),
        py::arg("stream"));
  m.def("fourier_shift_apply", &fourier_shift_apply, py::arg("src"), py::arg("dst"),
        py::arg("dtype"), py::arg("batch"), py::arg("ny"), py::arg("nx"), py::arg("dy"),
        py::arg("dx"), py::arg("shifts"), py::arg("shift_stride"), py::arg("conjugate"),
        py::arg("stream"));
  m.def("minmax_project", &minmax_project, py::arg("planes"), py::arg("dtype"), py::arg("k"),
        py::arg("ny"), py::arg("nx"), py::arg("plane_stride"), py::arg("row_stride"),
        py::arg("offset"), py::arg("z"), py::arg("vmin"), py::arg("zmin"), py::arg("vmax"),
        py::arg("zmax"), py::arg("stream"));
}

}  // namespace bind
}  // namespace diffimaging
