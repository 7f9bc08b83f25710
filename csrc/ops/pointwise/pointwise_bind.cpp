// Bindings of the element-wise CPU kernels (module _core).
#include "bindings/add.hpp"
#include "bindings/numpy_args.hpp"
#include "diffimaging/pointwise.hpp"

namespace diffimaging {
namespace bind {
namespace {

void intensity(py::array u, py::array out_arr, int nthreads) {
  const DType k = dtype_of(u, "u");
  require(is_complex(k), "intensity kernel needs a complex input");
  const DType ko = dtype_of(out_arr, "out");
  require((k == DType::kComplex64 && ko == DType::kFloat32) ||
              (k == DType::kComplex128 && ko == DType::kFloat64),
          "out must be the real dtype of u");
  require(out_arr.size() == u.size() && out_arr.writeable(),
          "out must be writeable with the size of u");
  const int nt = threads(nthreads);
  py::gil_scoped_release release;
  dispatch_precision(k, [&](auto tag) {
    using Real = decltype(tag);
    cpu::intensity<Real>(in<Real>(u), out<Real>(out_arr), u.size(), nt);
  });
}

// dst (batch, ny, nx) = src[..., :ny, :nx]; src is a (batch, sy, sx) array or a
// view whose rows are contiguous (any row / plane stride), dtypes equal.
void crop_copy(py::array src, py::array dst, int nthreads) {
  const auto dt = dst.dtype();
  require(src.dtype().equal(dt), "src and dst must have the same dtype");
  const DType k = dtype_of(dst, "dst");
  require(src.ndim() == 3 && dst.ndim() == 3, "src and dst must be 3-d");
  const index_t batch = dst.shape(0), ny = dst.shape(1), nx = dst.shape(2);
  require(src.shape(0) == batch && src.shape(1) >= ny && src.shape(2) >= nx,
          "src must be at least as large as dst");
  const index_t item = static_cast<index_t>(dt.itemsize());
  require(src.strides(2) == item, "src rows must be contiguous");
  require(src.strides(1) % item == 0 && src.strides(0) % item == 0,
          "src strides must be whole elements");
  require(dst.writeable(), "dst must be writeable");
  const index_t row = src.strides(1) / item, plane = src.strides(0) / item;
  const int nt = threads(nthreads);
  py::gil_scoped_release release;
  dispatch_precision(k, [&](auto tag) {
    using Real = decltype(tag);
    cpu::crop_copy<Real>(in<Real>(src), plane, row, out<Real>(dst), batch, ny, nx, components(k),
                         nt);
  });
}

}  // namespace

void add_pointwise(py::module_& m) {
  m.def("crop_copy", &crop_copy, py::arg("src"), py::arg("dst"), py::arg("nthreads"));
  m.def("intensity", &intensity, py::arg("u"), py::arg("out"), py::arg("nthreads"));
}

}  // namespace bind
}  // namespace diffimaging
