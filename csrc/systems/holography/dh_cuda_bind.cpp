// Bindings of the CUDA launchers of the fused ∂H engine (module _cuda):
// transfer tables, table accumulate / back-projection and the proximal step.
// Device arrays arrive as integer pointers plus sizes and dtype, checked in
// Python first (diffimaging._backend.cuda_dh) for dtype, contiguity and device;
// here the scalar arguments are checked again and nothing is copied.  The GIL
// is released around the launches.
#include <cstdint>
#include <stdexcept>
#include <string>
#include <tuple>

#include <pybind11/stl.h>

#include "bindings/add.hpp"
#include "bindings/device_args.hpp"
#include "diffimaging/core/dispatch.hpp"
#include "systems/holography/dh_cuda.hpp"

namespace diffimaging {
namespace bind {
namespace {

namespace py = pybind11;

void dh_transfer_table(std::uintptr_t T, const std::string& dtype, std::uintptr_t zs, index_t nz,
                       index_t ny, index_t nx, index_t nxh, double wavelength, double dy,
                       double dx, int method, bool band_limit, bool carrier,
                       std::uintptr_t stream) {
  const char* fn = "dh_transfer_table";
  const DType k = device_dtype(dtype, fn, true);
  const TransferParams p =
      transfer_params(ny, nx, 0.0, wavelength, dy, dx, method, band_limit, carrier);
  require_nonnegative(nz, fn, "nz");
  if (nxh != nx / 2 + 1)
    throw std::invalid_argument(std::string(fn) + ": nxh must be nx / 2 + 1 = " +
                                std::to_string(nx / 2 + 1) + ", got " + std::to_string(nxh));
  if (nz == 0) return;
  require_device_pointers(fn, {{"T", T}, {"zs", zs}});
  py::gil_scoped_release release;
  dispatch_precision(k, [&](auto tag) {
    using Real = decltype(tag);
    cuda::dh_transfer_table<Real>(reinterpret_cast<Real*>(T), reinterpret_cast<const double*>(zs),
                                  nz, nxh, p, stream);
  });
}

void dh_accumulate_table(std::uintptr_t O, std::uintptr_t T, std::uintptr_t Sr, std::uintptr_t Si,
                         const std::string& dtype, index_t n, index_t batch, bool accumulate,
                         std::uintptr_t stream) {
  const char* fn = "dh_accumulate_table";
  const DType k = device_dtype(dtype, fn, true);
  require_nonnegatives(fn, {{"n", n}, {"batch", batch}});
  if (n == 0) return;
  require_device_pointers(fn, {{"Sr", Sr}, {"Si", Si}});
  if (batch > 0) {
    require_device_pointers(fn, {{"O", O}, {"T", T}});
  }
  py::gil_scoped_release release;
  dispatch_precision(k, [&](auto tag) {
    using Real = decltype(tag);
    cuda::dh_accumulate_table<Real>(reinterpret_cast<const Real*>(O),
                                    reinterpret_cast<const Real*>(T), reinterpret_cast<Real*>(Sr),
                                    reinterpret_cast<Real*>(Si), n, batch, accumulate, stream);
  });
}

void dh_backproject_table(std::uintptr_t A, std::uintptr_t B, std::uintptr_t T, std::uintptr_t C,
                          const std::string& dtype, index_t n, index_t batch,
                          std::uintptr_t stream) {
  const char* fn = "dh_backproject_table";
  const DType k = device_dtype(dtype, fn, true);
  require_nonnegatives(fn, {{"n", n}, {"batch", batch}});
  if (n == 0 || batch == 0) return;
  require_device_pointers(fn, {{"A", A}, {"T", T}, {"C", C}});
  py::gil_scoped_release release;
  dispatch_precision(k, [&](auto tag) {
    using Real = decltype(tag);
    cuda::dh_backproject_table<Real>(
        reinterpret_cast<const Real*>(A), reinterpret_cast<const Real*>(B),
        reinterpret_cast<const Real*>(T), reinterpret_cast<Real*>(C), n, batch, stream);
  });
}

std::tuple<double, double, double> prox_step(std::uintptr_t x, std::uintptr_t xp, std::uintptr_t g,
                                             index_t g_plane, index_t g_row, std::uintptr_t out,
                                             std::uintptr_t copy, const std::string& dtype,
                                             index_t planes, index_t ny, index_t nx, double beta,
                                             double step, double shift, double lo, double hi,
                                             std::uintptr_t stream) {
  const char* fn = "prox_step";
  const DType k = device_dtype(dtype, fn, false);
  if (k != DType::kFloat32 && k != DType::kFloat64)
    throw std::invalid_argument(std::string(fn) + ": dtype must be 'float32' or 'float64', got '" +
                                dtype + "'");
  require_nonnegatives(fn, {{"planes", planes}, {"ny", ny}, {"nx", nx}});
  if (g_row < nx)
    throw std::invalid_argument(std::string(fn) + ": g_row (" + std::to_string(g_row) +
                                ") must be at least nx (" + std::to_string(nx) + ")");
  if (planes > 1 && g_plane < ny * g_row)
    throw std::invalid_argument(std::string(fn) + ": g_plane (" + std::to_string(g_plane) +
                                ") must be at least ny * g_row (" + std::to_string(ny * g_row) +
                                ")");
  if (!(lo <= hi))
    throw std::invalid_argument(std::string(fn) + ": lo must be <= hi");
  double sums[3] = {0.0, 0.0, 0.0};
  if (planes == 0 || ny == 0 || nx == 0) return {0.0, 0.0, 0.0};
  require_device_pointers(fn, {{"x", x}, {"g", g}, {"out", out}});
  {
    py::gil_scoped_release release;
    dispatch_precision(k, [&](auto tag) {
      using Real = decltype(tag);
      cuda::prox_step<Real>(reinterpret_cast<const Real*>(x), reinterpret_cast<const Real*>(xp),
                            reinterpret_cast<const Real*>(g), g_plane, g_row,
                            reinterpret_cast<Real*>(out), reinterpret_cast<Real*>(copy), planes,
                            ny, nx, beta, step, shift, lo, hi, sums, stream);
    });
  }
  return {sums[0], sums[1], sums[2]};
}

}  // namespace

void add_holography_cuda(py::module_& m) {
  m.def("dh_transfer_table", &dh_transfer_table, py::arg("T"), py::arg("dtype"), py::arg("zs"),
        py::arg("nz"), py::arg("ny"), py::arg("nx"), py::arg("nxh"), py::arg("wavelength"),
        py::arg("dy"), py::arg("dx"), py::arg("method"), py::arg("band_limit"),
        py::arg("carrier"), py::arg("stream"));
  m.def("dh_accumulate_table", &dh_accumulate_table, py::arg("O"), py::arg("T"), py::arg("Sr"),
        py::arg("Si"), py::arg("dtype"), py::arg("n"), py::arg("batch"), py::arg("accumulate"),
        py::arg("stream"));
  m.def("dh_backproject_table", &dh_backproject_table, py::arg("A"), py::arg("B"), py::arg("T"),
        py::arg("C"), py::arg("dtype"), py::arg("n"), py::arg("batch"), py::arg("stream"));
  m.def("prox_step", &prox_step, py::arg("x"), py::arg("xp"), py::arg("g"), py::arg("g_plane"),
        py::arg("g_row"), py::arg("out"), py::arg("copy"), py::arg("dtype"), py::arg("planes"),
        py::arg("ny"), py::arg("nx"), py::arg("beta"), py::arg("step"), py::arg("shift"),
        py::arg("lo"), py::arg("hi"), py::arg("stream"));
}

}  // namespace bind
}  // namespace diffimaging
