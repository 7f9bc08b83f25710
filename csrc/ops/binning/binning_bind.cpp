// Bindings of the CPU binning kernels (module _core).
#include "bindings/add.hpp"
#include "bindings/numpy_args.hpp"
#include "diffimaging/binning.hpp"

namespace diffimaging {
namespace bind {
namespace {

struct BinShapes {
  index_t batch, ny, nx, in_stride;
  const double* shifts;
  index_t shift_stride;
};

// image: (B_in, ny, nx) with B_in in {1, batch}; shifts: None or (B_s, 2) float64.
BinShapes bin_shapes(const py::array& image, index_t batch, index_t factor,
                     const OptionalArray& shifts) {
  require(image.ndim() == 3, "image must be 3-d (batch, ny, nx)");
  require(factor >= 1, "factor must be >= 1");
  BinShapes s{};
  s.batch = batch;
  s.ny = image.shape(1);
  s.nx = image.shape(2);
  require(s.ny >= factor && s.nx >= factor, "image is smaller than the factor");
  require(image.shape(0) == 1 || image.shape(0) == batch, "image batch must be 1 or the batch");
  s.in_stride = image.shape(0) == 1 ? 0 : s.ny * s.nx;
  s.shifts = nullptr;
  s.shift_stride = 0;
  if (shifts.present) {
    const py::array& a = shifts.array;
    require(a.dtype().equal(py::dtype::of<double>()) && (a.flags() & py::array::c_style),
            "shifts must be a C-contiguous float64 array");
    require(a.ndim() == 2 && a.shape(1) == 2 && (a.shape(0) == 1 || a.shape(0) == batch),
            "shifts must have shape (1, 2) or (batch, 2)");
    s.shifts = shifts.in<double>();
    s.shift_stride = a.shape(0) == 1 ? 0 : 2;
  }
  return s;
}

void bin_forward(py::array image, py::array out_arr, index_t factor, py::object shifts_obj,
                 double scale, int nthreads) {
  const DType k = dtype_of(image, "image");
  require(dtype_of(out_arr, "out") == k, "image and out must have the same dtype");
  require(out_arr.ndim() == 3, "out must be 3-d (batch, ny/f, nx/f)");
  const OptionalArray shifts(shifts_obj);
  const BinShapes s = bin_shapes(image, out_arr.shape(0), factor, shifts);
  require(out_arr.shape(1) == s.ny / factor && out_arr.shape(2) == s.nx / factor,
          "out has the wrong shape");
  require(out_arr.writeable(), "out must be writeable");
  const int nt = threads(nthreads);
  py::gil_scoped_release release;
  dispatch_precision(k, [&](auto tag) {
    using Real = decltype(tag);
    cpu::bin_forward<Real>(in<Real>(image), s.in_stride, out<Real>(out_arr), s.batch, s.ny, s.nx,
                           components(k), factor, s.shifts, s.shift_stride, scale, nt);
  });
}

void bin_adjoint(py::array g, py::array out_arr, index_t factor, py::object shifts_obj,
                 double scale, int nthreads) {
  const DType k = dtype_of(g, "g");
  require(dtype_of(out_arr, "out") == k, "g and out must have the same dtype");
  require(g.ndim() == 3 && out_arr.ndim() == 3 && g.shape(0) == out_arr.shape(0),
          "g and out must be 3-d with the same batch");
  require(out_arr.writeable(), "out must be writeable");
  const OptionalArray shifts(shifts_obj);
  const BinShapes s = bin_shapes(out_arr, out_arr.shape(0), factor, shifts);
  require(g.shape(1) == s.ny / factor && g.shape(2) == s.nx / factor, "g has the wrong shape");
  const int nt = threads(nthreads);
  py::gil_scoped_release release;
  dispatch_precision(k, [&](auto tag) {
    using Real = decltype(tag);
    cpu::bin_adjoint<Real>(in<Real>(g), out<Real>(out_arr), s.batch, s.ny, s.nx, components(k),
                           factor, s.shifts, s.shift_stride, scale, nt);
  });
}

void bin_shift_grad(py::array image, py::array g, py::array dshift, index_t factor,
                    py::object shifts_obj, double scale, int nthreads) {
  const DType k = dtype_of(image, "image");
  require(dtype_of(g, "g") == k, "image and g must have the same dtype");
  require(g.ndim() == 3, "g must be 3-d");
  require(!shifts_obj.is_none(), "bin_shift_grad needs shifts");
  const OptionalArray shifts(shifts_obj);
  const BinShapes s = bin_shapes(image, g.shape(0), factor, shifts);
  require(g.shape(1) == s.ny / factor && g.shape(2) == s.nx / factor, "g has the wrong shape");
  require(dshift.dtype().equal(py::dtype::of<double>()) && (dshift.flags() & py::array::c_style) &&
              dshift.size() == 2 * s.batch && dshift.writeable(),
          "dshift must be a writeable C-contiguous float64 array of shape (batch, 2)");
  const int nt = threads(nthreads);
  double* d = out<double>(dshift);
  py::gil_scoped_release release;
  dispatch_precision(k, [&](auto tag) {
    using Real = decltype(tag);
    cpu::bin_shift_grad<Real>(in<Real>(image), s.in_stride, in<Real>(g), d, s.batch, s.ny, s.nx,
                              components(k), factor, s.shifts, s.shift_stride, scale, nt);
  });
}

}  // namespace

void add_binning(py::module_& m) {
  m.def("bin_forward", &bin_forward, py::arg("image"), py::arg("out"), py::arg("factor"),
        py::arg("shifts"), py::arg("scale"), py::arg("nthreads"));
  m.def("bin_adjoint", &bin_adjoint, py::arg("g"), py::arg("out"), py::arg("factor"),
        py::arg("shifts"), py::arg("scale"), py::arg("nthreads"));
  m.def("bin_shift_grad", &bin_shift_grad, py::arg("image"), py::arg("g"), py::arg("dshift"),
        py::arg("factor"), py::arg("shifts"), py::arg("scale"), py::arg("nthreads"));
}

}  // namespace bind
}  // namespace diffimaging
