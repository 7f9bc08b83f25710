// Bindings of the CUDA binning launchers (module _cuda).  pybind11 has no
// DLPack caster: device arrays arrive as integer pointers plus dtype name and
// shapes, already checked in Python (diffimaging._backend.cuda_binning) for
// library, dtype, contiguity and device; here the numbers themselves are
// checked (std::invalid_argument -> ValueError) before anything touches the
// device, then the GIL is released around the (asynchronous) launch on the
// caller's stream.  Nothing is copied.
//
// Shapes: image / out of the forward are (batch or 1, ny, nx) and
// (batch, ny/f, nx/f); `in_stride` is 0 (one image for the whole batch) or
// ny * nx; shifts is a device pointer to float64 (sy, sx) pairs read at
// b * shift_stride (0: one shift for all, 2: one per batch element), or 0 for
// no shift.  The determinism of the shift cotangent is the kernel's
// (binning_cuda.cu).
#include <cstdint>
#include <initializer_list>
#include <stdexcept>
#include <string>

#include "bindings/add.hpp"
#include "bindings/device_args.hpp"
#include "diffimaging/core/dispatch.hpp"
#include "ops/binning/binning_cuda.hpp"

namespace diffimaging {
namespace bind {
namespace {

namespace py = pybind11;

void require(bool cond, const std::string& msg) {
  if (!cond) throw std::invalid_argument(msg);
}

// Checks shared by the three launchers; returns the element type.
DType check_common(const std::string& dtype, index_t batch, index_t ny, index_t nx,
                   index_t factor, std::uintptr_t shifts, index_t shift_stride) {
  const DType k = device_dtype(dtype, "bin", false);
  require(factor >= 1, "factor must be >= 1, got " + std::to_string(factor));
  require(batch >= 0, "batch must be >= 0, got " + std::to_string(batch));
  require(ny >= factor && nx >= factor,
          "the image (" + std::to_string(ny) + ", " + std::to_string(nx) +
              ") is smaller than the factor " + std::to_string(factor));
  require(shift_stride == 0 || shift_stride == 2,
          "shift_stride must be 0 (one shift for the whole batch) or 2 (one per batch "
          "element), got " + std::to_string(shift_stride));
  require(shifts != 0 || shift_stride == 0, "shift_stride must be 0 without shifts");
  return k;
}

// The device pointers, unless the batch is empty (nothing is touched then).
void require_pointers(index_t batch,
                      std::initializer_list<std::pair<const char*, std::uintptr_t>> pointers) {
  if (batch != 0) require_device_pointers("bin", pointers);
}

void check_in_stride(index_t in_stride, index_t ny, index_t nx) {
  require(in_stride == 0 || in_stride == ny * nx,
          "in_stride must be 0 (one image for the whole batch) or ny * nx = " +
              std::to_string(ny * nx) + ", got " + std::to_string(in_stride));
}

void bin_forward(std::uintptr_t image, std::uintptr_t out, const std::string& dtype,
                 index_t batch, index_t ny, index_t nx, index_t in_stride, index_t factor,
                 std::uintptr_t shifts, index_t shift_stride, double scale,
                 std::uintptr_t stream) {
  const DType k = check_common(dtype, batch, ny, nx, factor, shifts, shift_stride);
  check_in_stride(in_stride, ny, nx);
  require_pointers(batch, {{"image", image}, {"out", out}});
  py::gil_scoped_release release;
  dispatch_precision(k, [&](auto tag) {
    using Real = decltype(tag);
    cuda::bin_forward<Real>(reinterpret_cast<const Real*>(image), in_stride,
                            reinterpret_cast<Real*>(out), batch, ny, nx, components(k), factor,
                            reinterpret_cast<const double*>(shifts), shift_stride, scale, stream);
  });
}

void bin_adjoint(std::uintptr_t g, std::uintptr_t out, const std::string& dtype, index_t batch,
                 index_t ny, index_t nx, index_t factor, std::uintptr_t shifts,
                 index_t shift_stride, double scale, std::uintptr_t stream) {
  const DType k = check_common(dtype, batch, ny, nx, factor, shifts, shift_stride);
  require_pointers(batch, {{"g", g}, {"out", out}});
  py::gil_scoped_release release;
  dispatch_precision(k, [&](auto tag) {
    using Real = decltype(tag);
    cuda::bin_adjoint<Real>(reinterpret_cast<const Real*>(g), reinterpret_cast<Real*>(out), batch,
                            ny, nx, components(k), factor,
                            reinterpret_cast<const double*>(shifts), shift_stride, scale, stream);
  });
}

void bin_shift_grad(std::uintptr_t image, std::uintptr_t g, std::uintptr_t dshift,
                    const std::string& dtype, index_t batch, index_t ny, index_t nx,
                    index_t in_stride, index_t factor, std::uintptr_t shifts,
                    index_t shift_stride, double scale, std::uintptr_t stream) {
  const DType k = check_common(dtype, batch, ny, nx, factor, shifts, shift_stride);
  check_in_stride(in_stride, ny, nx);
  require(shifts != 0, "bin_shift_grad needs shifts");
  require_pointers(batch, {{"image", image}, {"g", g}, {"dshift", dshift}});
  py::gil_scoped_release release;
  dispatch_precision(k, [&](auto tag) {
    using Real = decltype(tag);
    cuda::bin_shift_grad<Real>(reinterpret_cast<const Real*>(image), in_stride,
                               reinterpret_cast<const Real*>(g),
                               reinterpret_cast<double*>(dshift), batch, ny, nx, components(k),
                               factor, reinterpret_cast<const double*>(shifts), shift_stride,
                               scale, stream);
  });
}

index_t bin_shift_grad_blocks(index_t outputs, index_t batch) {
  return cuda::bin_shift_grad_blocks(outputs, batch);
}

}  // namespace

void add_binning_cuda(py::module_& m) {
  m.def("bin_forward", &bin_forward, py::arg("image"), py::arg("out"), py::arg("dtype"),
        py::arg("batch"), py::arg("ny"), py::arg("nx"), py::arg("in_stride"), py::arg("factor"),
        py::arg("shifts"), py::arg("shift_stride"), py::arg("scale"), py::arg("stream"),
        "out (batch, ny/f, nx/f) = scale * area binning of image (device pointers; see "
        "diffimaging._backend.cuda_binning.bin_forward).");
  m.def("bin_adjoint", &bin_adjoint, py::arg("g"), py::arg("out"), py::arg("dtype"),
        py::arg("batch"), py::arg("ny"), py::arg("nx"), py::arg("factor"), py::arg("shifts"),
        py::arg("shift_stride"), py::arg("scale"), py::arg("stream"),
        "out (batch, ny, nx) = adjoint of bin_forward applied to g (batch, ny/f, nx/f).");
  m.def("bin_shift_grad", &bin_shift_grad, py::arg("image"), py::arg("g"), py::arg("dshift"),
        py::arg("dtype"), py::arg("batch"), py::arg("ny"), py::arg("nx"), py::arg("in_stride"),
        py::arg("factor"), py::arg("shifts"), py::arg("shift_stride"), py::arg("scale"),
        py::arg("stream"),
        "dshift (batch, 2) float64 = (d/dsy, d/dsx) of sum Re(conj(g) * bin(image)); "
        "deterministic two-pass reduction.");
  m.def("bin_shift_grad_blocks", &bin_shift_grad_blocks, py::arg("outputs"), py::arg("batch"),
        "Blocks per batch element of bin_shift_grad's first pass (its scratch holds batch * "
        "blocks * 2 doubles); a host function, no device needed.");
}

}  // namespace bind
}  // namespace diffimaging
