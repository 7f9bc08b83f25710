// Bindings of the holography system's CPU kernels (module _core).
#include "bindings/add.hpp"
#include "bindings/numpy_args.hpp"
#include "diffimaging/holography.hpp"

namespace diffimaging {
namespace bind {
namespace {

// Half-spectrum ∂H kernels: spectra (ny, nxh) complex of a real transform of
// length `nx_full` (nxh = nx_full / 2 + 1); `z_mask` sets the band limit,
// `z_phase` the phase.
TransferParams half_params(const py::array& a, index_t nx_full, double z_mask, double wavelength,
                           double dy, double dx, int method, bool band_limit) {
  require(a.ndim() == 2, "half spectra must be 2-d (ny, nx_full / 2 + 1)");
  require(nx_full >= 1 && dim(a, 1) == nx_full / 2 + 1,
          "half spectra must have nx_full / 2 + 1 columns");
  auto p = transfer_params(a, z_mask, wavelength, dy, dx, method, band_limit, false);
  p.nx = nx_full;
  return p;
}

void same_half(const py::array& a, const py::array& ref, DType k, const char* name) {
  require(dtype_of(a, name) == k, std::string(name) + " must have the dtype of the spectrum");
  require(a.ndim() == 2 && a.shape(0) == ref.shape(0) && a.shape(1) == ref.shape(1),
          std::string(name) + " must have the shape of the spectrum");
}

void dh_accumulate(py::array O, py::array Sr, py::array Si, index_t nx_full, double z_mask,
                   double z_phase, double wavelength, double dy, double dx, int method,
                   bool band_limit, bool accumulate, int nthreads) {
  const DType k = dtype_of(O, "O");
  require(is_complex(k), "dh_accumulate needs complex spectra");
  same_half(Sr, O, k, "Sr");
  same_half(Si, O, k, "Si");
  require(Sr.writeable() && Si.writeable(), "Sr and Si must be writeable");
  const auto p = half_params(O, nx_full, z_mask, wavelength, dy, dx, method, band_limit);
  const index_t nxh = dim(O, 1);
  const int nt = threads(nthreads);
  py::gil_scoped_release release;
  dispatch_precision(k, [&](auto tag) {
    using Real = decltype(tag);
    cpu::dh_accumulate<Real>(in<Real>(O), out<Real>(Sr), out<Real>(Si), nxh, p, z_phase,
                             accumulate, nt);
  });
}

void dh_backproject(py::array A, py::object B_obj, py::array C, index_t nx_full, double z_mask,
                    double z_phase, double wavelength, double dy, double dx, int method,
                    bool band_limit, int nthreads) {
  const DType k = dtype_of(A, "A");
  require(is_complex(k), "dh_backproject needs complex spectra");
  same_half(C, A, k, "C");
  require(C.writeable(), "C must be writeable");
  const OptionalArray B(B_obj);
  if (B.present) same_half(B.array, A, k, "B");
  const auto p = half_params(A, nx_full, z_mask, wavelength, dy, dx, method, band_limit);
  const index_t nxh = dim(A, 1);
  const int nt = threads(nthreads);
  py::gil_scoped_release release;
  dispatch_precision(k, [&](auto tag) {
    using Real = decltype(tag);
    cpu::dh_backproject<Real>(in<Real>(A), B.in<Real>(), out<Real>(C), nxh, p, z_phase, nt);
  });
}

// The table kernels take one plane ((my, nxh) O, T, C) or a batch of planes
// ((b, my, nxh)); Sr, Si, A, B are one (my, nxh) spectrum.
index_t table_batch(const py::array& a, const py::array& sum, const char* name) {
  require(a.ndim() == 2 || a.ndim() == 3, std::string(name) + " must be (my, nxh) or (b, my, nxh)");
  require(sum.ndim() == 2 && dim(a, 2) == sum.shape(0) && dim(a, 1) == sum.shape(1),
          std::string(name) + " planes must have the shape of the spectrum");
  return a.ndim() == 3 ? static_cast<index_t>(a.shape(0)) : 1;
}

void same_batch(const py::array& a, const py::array& ref, DType k, const char* name) {
  require(dtype_of(a, name) == k, std::string(name) + " must have the dtype of the spectrum");
  require(a.ndim() == ref.ndim(), std::string(name) + " must have the shape of the planes");
  for (py::ssize_t d = 0; d < a.ndim(); ++d)
    require(a.shape(d) == ref.shape(d), std::string(name) + " must have the shape of the planes");
}

void dh_accumulate_table(py::array O, py::array T, py::array Sr, py::array Si, bool accumulate,
                         int nthreads) {
  const DType k = dtype_of(O, "O");
  require(is_complex(k), "dh_accumulate_table needs complex spectra");
  const index_t batch = table_batch(O, Sr, "O");
  same_batch(T, O, k, "T");
  same_half(Si, Sr, k, "Si");
  require(dtype_of(Sr, "Sr") == k, "Sr must have the dtype of the spectrum");
  require(Sr.writeable() && Si.writeable(), "Sr and Si must be writeable");
  const index_t n = Sr.size();
  const int nt = threads(nthreads);
  py::gil_scoped_release release;
  dispatch_precision(k, [&](auto tag) {
    using Real = decltype(tag);
    cpu::dh_accumulate_table<Real>(in<Real>(O), in<Real>(T), out<Real>(Sr), out<Real>(Si), n,
                                   batch, accumulate, nt);
  });
}

void dh_backproject_table(py::array A, py::object B_obj, py::array T, py::array C, int nthreads) {
  const DType k = dtype_of(A, "A");
  require(is_complex(k), "dh_backproject_table needs complex spectra");
  require(A.ndim() == 2, "A must be 2-d");
  const index_t batch = table_batch(C, A, "C");
  same_batch(T, C, k, "T");
  require(dtype_of(C, "C") == k, "C must have the dtype of the spectrum");
  require(C.writeable(), "C must be writeable");
  const OptionalArray B(B_obj);
  if (B.present) same_half(B.array, A, k, "B");
  const index_t n = A.size();
  const int nt = threads(nthreads);
  py::gil_scoped_release release;
  dispatch_precision(k, [&](auto tag) {
    using Real = decltype(tag);
    cpu::dh_backproject_table<Real>(in<Real>(A), B.in<Real>(), in<Real>(T), out<Real>(C), n,
                                    batch, nt);
  });
}

py::tuple prox_step(py::array x, py::object xp_obj, py::array g, py::array out_arr, double beta,
                    double step, double shift, double lo, double hi, int nthreads) {
  const DType k = dtype_of(x, "x");
  require(!is_complex(k), "prox_step needs real arrays");
  require(dtype_of(g, "g") == k && dtype_of(out_arr, "out") == k,
          "x, g and out must have one dtype");
  require(g.size() == x.size() && out_arr.size() == x.size(), "x, g and out must have one size");
  require(out_arr.writeable(), "out must be writeable");
  const OptionalArray xp(xp_obj);
  if (xp.present)
    require(dtype_of(xp.array, "xp") == k && xp.array.size() == x.size(), "xp must match x");
  double sums[3];
  const index_t n = x.size();
  const int nt = threads(nthreads);
  {
    py::gil_scoped_release release;
    dispatch_precision(k, [&](auto tag) {
      using Real = decltype(tag);
      cpu::prox_step<Real>(in<Real>(x), xp.in<Real>(), in<Real>(g), out<Real>(out_arr), n, beta,
                           step, shift, lo, hi, sums, nt);
    });
  }
  return py::make_tuple(sums[0], sums[1], sums[2]);
}

py::tuple prox_step_rows(py::array x, py::object xp_obj, py::array buf, py::array out_arr,
                         double beta, double step, double shift, double lo, double hi,
                         int nthreads) {
  const DType k = dtype_of(x, "x");
  require(!is_complex(k), "prox_step_rows needs real arrays");
  require(x.ndim() == 2 && out_arr.ndim() == 2 && buf.ndim() == 2, "x, out and buf must be 2-d");
  require(dtype_of(buf, "buf") == k && dtype_of(out_arr, "out") == k,
          "x, buf and out must have one dtype");
  const index_t ny = x.shape(0), nx = x.shape(1);
  require(out_arr.shape(0) == ny && out_arr.shape(1) == nx, "out must have the shape of x");
  require(buf.shape(0) == ny && buf.shape(1) >= nx, "buf must be (ny, >= nx)");
  require(out_arr.writeable() && buf.writeable(), "out and buf must be writeable");
  const OptionalArray xp(xp_obj);
  if (xp.present)
    require(dtype_of(xp.array, "xp") == k && xp.array.ndim() == 2 && xp.array.shape(0) == ny &&
                xp.array.shape(1) == nx,
            "xp must match x");
  double sums[3];
  const index_t row = buf.shape(1);
  const int nt = threads(nthreads);
  {
    py::gil_scoped_release release;
    dispatch_precision(k, [&](auto tag) {
      using Real = decltype(tag);
      cpu::prox_step_rows<Real>(in<Real>(x), xp.in<Real>(), out<Real>(buf), row,
                                out<Real>(out_arr), ny, nx, beta, step, shift, lo, hi, sums, nt);
    });
  }
  return py::make_tuple(sums[0], sums[1], sums[2]);
}

void minmax_project(py::array planes, double offset, py::array z, py::array vmin, py::array zmin,
                    py::array vmax, py::array zmax, int nthreads) {
  // planes may be a strided view (e.g. the cropped output of an inverse FFT): its
  // last axis must be contiguous; the strides of the other two are passed on
  require(planes.ndim() == 3, "planes must be a (k, ny, nx) complex stack");
  const auto dt = planes.dtype();
  const bool c64 = dt.equal(py::dtype::of<std::complex<float>>());
  require(c64 || dt.equal(py::dtype::of<std::complex<double>>()), "planes must be complex");
  const DType k = c64 ? DType::kComplex64 : DType::kComplex128;
  const index_t isz = static_cast<index_t>(dt.itemsize());
  require(planes.strides(2) == isz && planes.strides(1) % isz == 0 &&
              planes.strides(0) % isz == 0 && planes.strides(1) >= 0 && planes.strides(0) >= 0,
          "planes must have contiguous rows and non-negative strides");
  const DType rk = c64 ? DType::kFloat32 : DType::kFloat64;
  const index_t nk = planes.shape(0), ny = planes.shape(1), nx = planes.shape(2);
  require(dtype_of(z, "z") == DType::kFloat64 && z.size() == nk,
          "z must be float64 with one depth per plane");
  for (auto* a : {&vmin, &zmin, &vmax, &zmax}) {
    require(dtype_of(*a, "map") == rk, "the projection maps must have the planes' real dtype");
    require(a->size() == ny * nx && a->writeable(),
            "the projection maps must be writeable (ny, nx) arrays");
  }
  const index_t ps = planes.strides(0) / isz, rs = planes.strides(1) / isz;
  const int nt = threads(nthreads);
  py::gil_scoped_release release;
  dispatch_precision(k, [&](auto tag) {
    using Real = decltype(tag);
    cpu::minmax_project<Real>(in<Real>(planes), nk, ny, nx, ps, rs, static_cast<Real>(offset),
                              in<double>(z), out<Real>(vmin), out<Real>(zmin), out<Real>(vmax),
                              out<Real>(zmax), nt);
  });
}

}  // namespace

void add_holography(py::module_& m) {
  m.def("dh_accumulate", &dh_accumulate, py::arg("O"), py::arg("Sr"), py::arg("Si"),
        py::arg("nx_full"), py::arg("z_mask"), py::arg("z_phase"), py::arg("wavelength"),
        py::arg("dy"), py::arg("dx"), py::arg("method"), py::arg("band_limit"),
        py::arg("accumulate"), py::arg("nthreads"));
  m.def("dh_backproject", &dh_backproject, py::arg("A"), py::arg("B"), py::arg("C"),
        py::arg("nx_full"), py::arg("z_mask"), py::arg("z_phase"), py::arg("wavelength"),
        py::arg("dy"), py::arg("dx"), py::arg("method"), py::arg("band_limit"),
        py::arg("nthreads"));
  m.def("dh_accumulate_table", &dh_accumulate_table, py::arg("O"), py::arg("T"), py::arg("Sr"),
        py::arg("Si"), py::arg("accumulate"), py::arg("nthreads"));
  m.def("dh_backproject_table", &dh_backproject_table, py::arg("A"), py::arg("B"), py::arg("T"),
        py::arg("C"), py::arg("nthreads"));
  m.def("prox_step", &prox_step, py::arg("x"), py::arg("xp"), py::arg("g"), py::arg("out"),
        py::arg("beta"), py::arg("step"), py::arg("shift"), py::arg("lo"), py::arg("hi"),
        py::arg("nthreads"));
  m.def("prox_step_rows", &prox_step_rows, py::arg("x"), py::arg("xp"), py::arg("buf"),
        py::arg("out"), py::arg("beta"), py::arg("step"), py::arg("shift"), py::arg("lo"),
        py::arg("hi"), py::arg("nthreads"));
  m.def("minmax_project", &minmax_project, py::arg("planes"), py::arg("offset"), py::arg("z"),
        py::arg("vmin"), py::arg("zmin"), py::arg("vmax"), py::arg("zmax"), py::arg("nthreads"));
}

}  // namespace bind
}  // namespace diffimaging
