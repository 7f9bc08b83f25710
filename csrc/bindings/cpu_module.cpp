// Thin pybind11 bindings of the CPU kernels.  Arrays are checked strictly
// (dtype, C-contiguity, shapes) and never copied; the GIL is released while
// the kernels run.  The Python layer (diffimaging._kernels) validates user
// input first and gives the user-facing error messages.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <complex>
#include <stdexcept>
#include <string>

#include "diffimaging/cpu.hpp"
#include "diffimaging/parallel.hpp"

namespace py = pybind11;
using diffimaging::index_t;
namespace cpu = diffimaging::cpu;

namespace {

enum class Kind { kF32, kF64, kC64, kC128 };

Kind kind_of(const py::array& a, const char* name) {
  if (!(a.flags() & py::array::c_style))
    throw std::invalid_argument(std::string(name) + " must be C-contiguous");
  const auto dt = a.dtype();
  if (dt.equal(py::dtype::of<float>())) return Kind::kF32;
  if (dt.equal(py::dtype::of<double>())) return Kind::kF64;
  if (dt.equal(py::dtype::of<std::complex<float>>())) return Kind::kC64;
  if (dt.equal(py::dtype::of<std::complex<double>>())) return Kind::kC128;
  throw std::invalid_argument(std::string(name) + " must be float32, float64, complex64 or complex128");
}

bool is_double(Kind k) { return k == Kind::kF64 || k == Kind::kC128; }
bool is_complex(Kind k) { return k == Kind::kC64 || k == Kind::kC128; }

void require(bool cond, const std::string& msg) {
  if (!cond) throw std::invalid_argument(msg);
}

index_t dim(const py::array& a, int from_end) { return a.shape(a.ndim() - from_end); }

diffimaging::TransferParams params(const py::array& a, double z, double wavelength, double dy,
                                   double dx, int method, bool band_limit, bool carrier) {
  require(a.ndim() >= 2, "spectrum must have at least 2 dimensions");
  require(method == 0 || method == 1, "method must be 0 (asm) or 1 (fresnel)");
  diffimaging::TransferParams p;
  p.z = z;
  p.wavelength = wavelength;
  p.dy = dy;
  p.dx = dx;
  p.ny = dim(a, 2);
  p.nx = dim(a, 1);
  p.method = static_cast<diffimaging::Method>(method);
  p.band_limit = band_limit;
  p.carrier = carrier;
  return p;
}

int threads(int n) { return n > 0 ? n : diffimaging::hardware_threads(); }

void transfer_apply(py::array src, py::array dst, double z, double wavelength, double dy,
                    double dx, int method, bool band_limit, bool carrier, bool conjugate,
                    int nthreads) {
  const Kind k = kind_of(src, "src");
  require(kind_of(dst, "dst") == k, "src and dst must have the same dtype");
  require(is_complex(k), "transfer_apply needs complex arrays");
  require(src.size() == dst.size() && src.ndim() >= 2 && dst.ndim() >= 2 &&
              dim(src, 1) == dim(dst, 1) && dim(src, 2) == dim(dst, 2),
          "src and dst must have the same shape");
  require(dst.writeable(), "dst must be writeable");
  const auto p = params(src, z, wavelength, dy, dx, method, band_limit, carrier);
  const index_t batch = p.ny * p.nx == 0 ? 0 : src.size() / (p.ny * p.nx);
  const int nt = threads(nthreads);
  py::gil_scoped_release release;
  if (k == Kind::kC64)
    cpu::transfer_apply<float>(static_cast<const float*>(src.data()),
                               static_cast<float*>(dst.mutable_data()), batch, p, conjugate, nt);
  else
    cpu::transfer_apply<double>(static_cast<const double*>(src.data()),
                                static_cast<double*>(dst.mutable_data()), batch, p, conjugate, nt);
}

double transfer_pullback(py::object U_obj, py::array G, py::array acc, double z,
                         double wavelength, double dy, double dx, int method, bool band_limit,
                         bool carrier, bool accumulate, int nthreads) {
  const Kind k = kind_of(G, "G");
  require(is_complex(k), "transfer_pullback needs complex arrays");
  require(kind_of(acc, "acc") == k, "G and acc must have the same dtype");
  require(acc.size() == G.size(), "G and acc must have the same size");
  require(acc.writeable(), "acc must be writeable");
  const auto p = params(G, z, wavelength, dy, dx, method, band_limit, carrier);
  const index_t plane = p.ny * p.nx;
  const index_t batch = plane == 0 ? 0 : G.size() / plane;
  const void* u_ptr = nullptr;
  index_t u_stride = 0;
  py::array U;
  if (!U_obj.is_none()) {
    U = py::array(U_obj);
    require(kind_of(U, "U") == k, "U must have the dtype of G");
    require(U.ndim() >= 2 && dim(U, 1) == p.nx && dim(U, 2) == p.ny,
            "U must have the grid shape of G");
    require(U.size() == plane || U.size() == G.size(),
            "U must be one plane (broadcast) or have the size of G");
    u_ptr = U.data();
    u_stride = U.size() == plane ? 0 : plane;
  }
  const int nt = threads(nthreads);
  py::gil_scoped_release release;
  if (k == Kind::kC64)
    return cpu::transfer_pullback<float>(static_cast<const float*>(u_ptr), u_stride,
                                         static_cast<const float*>(G.data()),
                                         static_cast<float*>(acc.mutable_data()), batch, p,
                                         accumulate, nt);
  return cpu::transfer_pullback<double>(static_cast<const double*>(u_ptr), u_stride,
                                        static_cast<const double*>(G.data()),
                                        static_cast<double*>(acc.mutable_data()), batch, p,
                                        accumulate, nt);
}

// Half-spectrum ∂H kernels: spectra (ny, nxh) complex of a real transform of
// length `nx_full` (nxh = nx_full / 2 + 1); `z_mask` sets the band limit,
// `z_phase` the phase.
diffimaging::TransferParams half_params(const py::array& a, index_t nx_full, double z_mask,
                                        double wavelength, double dy, double dx, int method,
                                        bool band_limit) {
  require(a.ndim() == 2, "half spectra must be 2-d (ny, nx_full / 2 + 1)");
  require(nx_full >= 1 && dim(a, 1) == nx_full / 2 + 1,
          "half spectra must have nx_full / 2 + 1 columns");
  auto p = params(a, z_mask, wavelength, dy, dx, method, band_limit, false);
  p.nx = nx_full;
  return p;
}

void same_half(const py::array& a, const py::array& ref, Kind k, const char* name) {
  require(kind_of(a, name) == k, std::string(name) + " must have the dtype of the spectrum");
  require(a.ndim() == 2 && a.shape(0) == ref.shape(0) && a.shape(1) == ref.shape(1),
          std::string(name) + " must have the shape of the spectrum");
}

void dh_accumulate(py::array O, py::array Sr, py::array Si, index_t nx_full, double z_mask,
                   double z_phase, double wavelength, double dy, double dx, int method,
                   bool band_limit, bool accumulate, int nthreads) {
  const Kind k = kind_of(O, "O");
  require(is_complex(k), "dh_accumulate needs complex spectra");
  same_half(Sr, O, k, "Sr");
  same_half(Si, O, k, "Si");
  require(Sr.writeable() && Si.writeable(), "Sr and Si must be writeable");
  const auto p = half_params(O, nx_full, z_mask, wavelength, dy, dx, method, band_limit);
  const index_t nxh = dim(O, 1);
  const int nt = threads(nthreads);
  py::gil_scoped_release release;
  if (k == Kind::kC64)
    cpu::dh_accumulate<float>(static_cast<const float*>(O.data()),
                              static_cast<float*>(Sr.mutable_data()),
                              static_cast<float*>(Si.mutable_data()), nxh, p, z_phase, accumulate, nt);
  else
    cpu::dh_accumulate<double>(static_cast<const double*>(O.data()),
                               static_cast<double*>(Sr.mutable_data()),
                               static_cast<double*>(Si.mutable_data()), nxh, p, z_phase, accumulate,
                               nt);
}

void dh_backproject(py::array A, py::object B_obj, py::array C, index_t nx_full, double z_mask,
                    double z_phase, double wavelength, double dy, double dx, int method,
                    bool band_limit, int nthreads) {
  const Kind k = kind_of(A, "A");
  require(is_complex(k), "dh_backproject needs complex spectra");
  same_half(C, A, k, "C");
  require(C.writeable(), "C must be writeable");
  py::array B;
  const void* b_ptr = nullptr;
  if (!B_obj.is_none()) {
    B = py::array(B_obj);
    same_half(B, A, k, "B");
    b_ptr = B.data();
  }
  const auto p = half_params(A, nx_full, z_mask, wavelength, dy, dx, method, band_limit);
  const index_t nxh = dim(A, 1);
  const int nt = threads(nthreads);
  py::gil_scoped_release release;
  if (k == Kind::kC64)
    cpu::dh_backproject<float>(static_cast<const float*>(A.data()), static_cast<const float*>(b_ptr),
                               static_cast<float*>(C.mutable_data()), nxh, p, z_phase, nt);
  else
    cpu::dh_backproject<double>(static_cast<const double*>(A.data()),
                                static_cast<const double*>(b_ptr),
                                static_cast<double*>(C.mutable_data()), nxh, p, z_phase, nt);
}

void dh_accumulate_table(py::array O, py::array T, py::array Sr, py::array Si, bool accumulate,
                         int nthreads) {
  const Kind k = kind_of(O, "O");
  require(is_complex(k), "dh_accumulate_table needs complex spectra");
  require(O.ndim() == 2, "O must be 2-d");
  same_half(T, O, k, "T");
  same_half(Sr, O, k, "Sr");
  same_half(Si, O, k, "Si");
  require(Sr.writeable() && Si.writeable(), "Sr and Si must be writeable");
  const index_t n = O.size();
  const int nt = threads(nthreads);
  py::gil_scoped_release release;
  if (k == Kind::kC64)
    cpu::dh_accumulate_table<float>(static_cast<const float*>(O.data()),
                                    static_cast<const float*>(T.data()),
                                    static_cast<float*>(Sr.mutable_data()),
                                    static_cast<float*>(Si.mutable_data()), n, accumulate, nt);
  else
    cpu::dh_accumulate_table<double>(static_cast<const double*>(O.data()),
                                     static_cast<const double*>(T.data()),
                                     static_cast<double*>(Sr.mutable_data()),
                                     static_cast<double*>(Si.mutable_data()), n, accumulate, nt);
}

void dh_backproject_table(py::array A, py::object B_obj, py::array T, py::array C, int nthreads) {
  const Kind k = kind_of(A, "A");
  require(is_complex(k), "dh_backproject_table needs complex spectra");
  require(A.ndim() == 2, "A must be 2-d");
  same_half(T, A, k, "T");
  same_half(C, A, k, "C");
  require(C.writeable(), "C must be writeable");
  py::array B;
  const void* b_ptr = nullptr;
  if (!B_obj.is_none()) {
    B = py::array(B_obj);
    same_half(B, A, k, "B");
    b_ptr = B.data();
  }
  const index_t n = A.size();
  const int nt = threads(nthreads);
  py::gil_scoped_release release;
  if (k == Kind::kC64)
    cpu::dh_backproject_table<float>(static_cast<const float*>(A.data()),
                                     static_cast<const float*>(b_ptr),
                                     static_cast<const float*>(T.data()),
                                     static_cast<float*>(C.mutable_data()), n, nt);
  else
    cpu::dh_backproject_table<double>(static_cast<const double*>(A.data()),
                                      static_cast<const double*>(b_ptr),
                                      static_cast<const double*>(T.data()),
                                      static_cast<double*>(C.mutable_data()), n, nt);
}

py::tuple prox_step(py::array x, py::object xp_obj, py::array g, py::array out, double beta,
                    double step, double shift, double lo, double hi, int nthreads) {
  const Kind k = kind_of(x, "x");
  require(!is_complex(k), "prox_step needs real arrays");
  require(kind_of(g, "g") == k && kind_of(out, "out") == k, "x, g and out must have one dtype");
  require(g.size() == x.size() && out.size() == x.size(), "x, g and out must have one size");
  require(out.writeable(), "out must be writeable");
  py::array xp;
  const void* xp_ptr = nullptr;
  if (!xp_obj.is_none()) {
    xp = py::array(xp_obj);
    require(kind_of(xp, "xp") == k && xp.size() == x.size(), "xp must match x");
    xp_ptr = xp.data();
  }
  double sums[3];
  const index_t n = x.size();
  const int nt = threads(nthreads);
  {
    py::gil_scoped_release release;
    if (k == Kind::kF32)
      cpu::prox_step<float>(static_cast<const float*>(x.data()), static_cast<const float*>(xp_ptr),
                            static_cast<const float*>(g.data()), static_cast<float*>(out.mutable_data()),
                            n, beta, step, shift, lo, hi, sums, nt);
    else
      cpu::prox_step<double>(static_cast<const double*>(x.data()),
                             static_cast<const double*>(xp_ptr), static_cast<const double*>(g.data()),
                             static_cast<double*>(out.mutable_data()), n, beta, step, shift, lo, hi,
                             sums, nt);
  }
  return py::make_tuple(sums[0], sums[1], sums[2]);
}

py::tuple prox_step_rows(py::array x, py::object xp_obj, py::array buf, py::array out, double beta,
                         double step, double shift, double lo, double hi, int nthreads) {
  const Kind k = kind_of(x, "x");
  require(!is_complex(k), "prox_step_rows needs real arrays");
  require(x.ndim() == 2 && out.ndim() == 2 && buf.ndim() == 2, "x, out and buf must be 2-d");
  require(kind_of(buf, "buf") == k && kind_of(out, "out") == k, "x, buf and out must have one dtype");
  const index_t ny = x.shape(0), nx = x.shape(1);
  require(out.shape(0) == ny && out.shape(1) == nx, "out must have the shape of x");
  require(buf.shape(0) == ny && buf.shape(1) >= nx, "buf must be (ny, >= nx)");
  require(out.writeable() && buf.writeable(), "out and buf must be writeable");
  py::array xp;
  const void* xp_ptr = nullptr;
  if (!xp_obj.is_none()) {
    xp = py::array(xp_obj);
    require(kind_of(xp, "xp") == k && xp.ndim() == 2 && xp.shape(0) == ny && xp.shape(1) == nx,
            "xp must match x");
    xp_ptr = xp.data();
  }
  double sums[3];
  const index_t row = buf.shape(1);
  const int nt = threads(nthreads);
  {
    py::gil_scoped_release release;
    if (k == Kind::kF32)
      cpu::prox_step_rows<float>(static_cast<const float*>(x.data()), static_cast<const float*>(xp_ptr),
                                 static_cast<float*>(buf.mutable_data()), row,
                                 static_cast<float*>(out.mutable_data()), ny, nx, beta, step, shift, lo,
                                 hi, sums, nt);
    else
      cpu::prox_step_rows<double>(static_cast<const double*>(x.data()),
                                  static_cast<const double*>(xp_ptr),
                                  static_cast<double*>(buf.mutable_data()), row,
                                  static_cast<double*>(out.mutable_data()), ny, nx, beta, step, shift,
                                  lo, hi, sums, nt);
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
  const index_t isz = static_cast<index_t>(dt.itemsize());
  require(planes.strides(2) == isz && planes.strides(1) % isz == 0 && planes.strides(0) % isz == 0 &&
              planes.strides(1) >= 0 && planes.strides(0) >= 0,
          "planes must have contiguous rows and non-negative strides");
  const Kind rk = c64 ? Kind::kF32 : Kind::kF64;
  const index_t nk = planes.shape(0), ny = planes.shape(1), nx = planes.shape(2);
  require(kind_of(z, "z") == Kind::kF64 && z.size() == nk, "z must be float64 with one depth per plane");
  for (auto* a : {&vmin, &zmin, &vmax, &zmax}) {
    require(kind_of(*a, "map") == rk, "the projection maps must have the planes' real dtype");
    require(a->size() == ny * nx && a->writeable(), "the projection maps must be writeable (ny, nx) arrays");
  }
  const index_t ps = planes.strides(0) / isz, rs = planes.strides(1) / isz;
  const int nt = threads(nthreads);
  py::gil_scoped_release release;
  if (c64)
    cpu::minmax_project<float>(static_cast<const float*>(planes.data()), nk, ny, nx, ps, rs,
                               static_cast<float>(offset), static_cast<const double*>(z.data()),
                               static_cast<float*>(vmin.mutable_data()),
                               static_cast<float*>(zmin.mutable_data()),
                               static_cast<float*>(vmax.mutable_data()),
                               static_cast<float*>(zmax.mutable_data()), nt);
  else
    cpu::minmax_project<double>(static_cast<const double*>(planes.data()), nk, ny, nx, ps, rs, offset,
                                static_cast<const double*>(z.data()),
                                static_cast<double*>(vmin.mutable_data()),
                                static_cast<double*>(zmin.mutable_data()),
                                static_cast<double*>(vmax.mutable_data()),
                                static_cast<double*>(zmax.mutable_data()), nt);
}

struct BinShapes {
  index_t batch, ny, nx, in_stride;
  const double* shifts;
  index_t shift_stride;
};

// image: (B_in, ny, nx) with B_in in {1, batch}; shifts: None or (B_s, 2) float64.
BinShapes bin_shapes(const py::array& image, index_t batch, index_t factor, py::object shifts_obj,
                     py::array& shifts_keep) {
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
  if (!shifts_obj.is_none()) {
    shifts_keep = py::array(shifts_obj);
    require(shifts_keep.dtype().equal(py::dtype::of<double>()) &&
                (shifts_keep.flags() & py::array::c_style),
            "shifts must be a C-contiguous float64 array");
    require(shifts_keep.ndim() == 2 && shifts_keep.shape(1) == 2 &&
                (shifts_keep.shape(0) == 1 || shifts_keep.shape(0) == batch),
            "shifts must have shape (1, 2) or (batch, 2)");
    s.shifts = static_cast<const double*>(shifts_keep.data());
    s.shift_stride = shifts_keep.shape(0) == 1 ? 0 : 2;
  }
  return s;
}

void bin_forward(py::array image, py::array out, index_t factor, py::object shifts,
                 double scale, int nthreads) {
  const Kind k = kind_of(image, "image");
  require(kind_of(out, "out") == k, "image and out must have the same dtype");
  require(out.ndim() == 3, "out must be 3-d (batch, ny/f, nx/f)");
  py::array keep;
  const BinShapes s = bin_shapes(image, out.shape(0), factor, shifts, keep);
  require(out.shape(1) == s.ny / factor && out.shape(2) == s.nx / factor, "out has the wrong shape");
  require(out.writeable(), "out must be writeable");
  const int nc = is_complex(k) ? 2 : 1;
  const int nt = threads(nthreads);
  py::gil_scoped_release release;
  if (is_double(k))
    cpu::bin_forward<double>(static_cast<const double*>(image.data()), s.in_stride,
                             static_cast<double*>(out.mutable_data()), s.batch, s.ny, s.nx, nc,
                             factor, s.shifts, s.shift_stride, scale, nt);
  else
    cpu::bin_forward<float>(static_cast<const float*>(image.data()), s.in_stride,
                            static_cast<float*>(out.mutable_data()), s.batch, s.ny, s.nx, nc,
                            factor, s.shifts, s.shift_stride, scale, nt);
}

void bin_adjoint(py::array g, py::array out, index_t factor, py::object shifts, double scale,
                 int nthreads) {
  const Kind k = kind_of(g, "g");
  require(kind_of(out, "out") == k, "g and out must have the same dtype");
  require(g.ndim() == 3 && out.ndim() == 3 && g.shape(0) == out.shape(0),
          "g and out must be 3-d with the same batch");
  require(out.writeable(), "out must be writeable");
  py::array keep;
  const BinShapes s = bin_shapes(out, out.shape(0), factor, shifts, keep);
  require(g.shape(1) == s.ny / factor && g.shape(2) == s.nx / factor, "g has the wrong shape");
  const int nc = is_complex(k) ? 2 : 1;
  const int nt = threads(nthreads);
  py::gil_scoped_release release;
  if (is_double(k))
    cpu::bin_adjoint<double>(static_cast<const double*>(g.data()),
                             static_cast<double*>(out.mutable_data()), s.batch, s.ny, s.nx, nc,
                             factor, s.shifts, s.shift_stride, scale, nt);
  else
    cpu::bin_adjoint<float>(static_cast<const float*>(g.data()),
                            static_cast<float*>(out.mutable_data()), s.batch, s.ny, s.nx, nc,
                            factor, s.shifts, s.shift_stride, scale, nt);
}

void bin_shift_grad(py::array image, py::array g, py::array dshift, index_t factor,
                    py::object shifts, double scale, int nthreads) {
  const Kind k = kind_of(image, "image");
  require(kind_of(g, "g") == k, "image and g must have the same dtype");
  require(g.ndim() == 3, "g must be 3-d");
  require(!shifts.is_none(), "bin_shift_grad needs shifts");
  py::array keep;
  const BinShapes s = bin_shapes(image, g.shape(0), factor, shifts, keep);
  require(g.shape(1) == s.ny / factor && g.shape(2) == s.nx / factor, "g has the wrong shape");
  require(dshift.dtype().equal(py::dtype::of<double>()) && (dshift.flags() & py::array::c_style) &&
              dshift.size() == 2 * s.batch && dshift.writeable(),
          "dshift must be a writeable C-contiguous float64 array of shape (batch, 2)");
  const int nc = is_complex(k) ? 2 : 1;
  const int nt = threads(nthreads);
  double* d = static_cast<double*>(dshift.mutable_data());
  py::gil_scoped_release release;
  if (is_double(k))
    cpu::bin_shift_grad<double>(static_cast<const double*>(image.data()), s.in_stride,
                                static_cast<const double*>(g.data()), d, s.batch, s.ny, s.nx, nc,
                                factor, s.shifts, s.shift_stride, scale, nt);
  else
    cpu::bin_shift_grad<float>(static_cast<const float*>(image.data()), s.in_stride,
                               static_cast<const float*>(g.data()), d, s.batch, s.ny, s.nx, nc,
                               factor, s.shifts, s.shift_stride, scale, nt);
}

void intensity(py::array u, py::array out, int nthreads) {
  const Kind k = kind_of(u, "u");
  require(is_complex(k), "intensity kernel needs a complex input");
  const Kind ko = kind_of(out, "out");
  require((k == Kind::kC64 && ko == Kind::kF32) || (k == Kind::kC128 && ko == Kind::kF64),
          "out must be the real dtype of u");
  require(out.size() == u.size() && out.writeable(), "out must be writeable with the size of u");
  const int nt = threads(nthreads);
  py::gil_scoped_release release;
  if (k == Kind::kC64)
    cpu::intensity<float>(static_cast<const float*>(u.data()),
                          static_cast<float*>(out.mutable_data()), u.size(), nt);
  else
    cpu::intensity<double>(static_cast<const double*>(u.data()),
                           static_cast<double*>(out.mutable_data()), u.size(), nt);
}

// dst (batch, ny, nx) = src[..., :ny, :nx]; src is a (batch, sy, sx) array or a
// view whose rows are contiguous (any row / plane stride), dtypes equal.
void crop_copy(py::array src, py::array dst, int nthreads) {
  const auto dt = dst.dtype();
  require(src.dtype().equal(dt), "src and dst must have the same dtype");
  const Kind k = kind_of(dst, "dst");
  require(src.ndim() == 3 && dst.ndim() == 3, "src and dst must be 3-d");
  const index_t batch = dst.shape(0), ny = dst.shape(1), nx = dst.shape(2);
  require(src.shape(0) == batch && src.shape(1) >= ny && src.shape(2) >= nx,
          "src must be at least as large as dst");
  const index_t item = static_cast<index_t>(dt.itemsize());
  require(src.strides(2) == item, "src rows must be contiguous");
  require(src.strides(1) % item == 0 && src.strides(0) % item == 0, "src strides must be whole elements");
  require(dst.writeable(), "dst must be writeable");
  const index_t row = src.strides(1) / item, plane = src.strides(0) / item;
  const int nc = is_complex(k) ? 2 : 1;
  const int nt = threads(nthreads);
  py::gil_scoped_release release;
  if (is_double(k))
    cpu::crop_copy<double>(static_cast<const double*>(src.data()), plane, row,
                           static_cast<double*>(dst.mutable_data()), batch, ny, nx, nc, nt);
  else
    cpu::crop_copy<float>(static_cast<const float*>(src.data()), plane, row,
                          static_cast<float*>(dst.mutable_data()), batch, ny, nx, nc, nt);
}

}  // namespace

PYBIND11_MODULE(_core, m) {
  m.doc() = "diffimaging CPU kernels (C++17, threaded; no Python inside the kernels)";
  m.def("hardware_threads", &diffimaging::hardware_threads);
  m.def("simd", [] {
#if defined(DI_HAVE_AVX2_ROWS) && (defined(__GNUC__) || defined(__clang__))
    return std::string(__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")
                           ? "AVX2/FMA transfer rows"
                           : "baseline SIMD transfer rows");
#else
    return std::string("baseline SIMD transfer rows");
#endif
  });
  m.def("transfer_apply", &transfer_apply, py::arg("src"), py::arg("dst"), py::arg("z"),
        py::arg("wavelength"), py::arg("dy"), py::arg("dx"), py::arg("method"),
        py::arg("band_limit"), py::arg("carrier"), py::arg("conjugate"), py::arg("nthreads"));
  m.def("transfer_pullback", &transfer_pullback, py::arg("U"), py::arg("G"), py::arg("acc"),
        py::arg("z"), py::arg("wavelength"), py::arg("dy"), py::arg("dx"), py::arg("method"),
        py::arg("band_limit"), py::arg("carrier"), py::arg("accumulate"), py::arg("nthreads"));
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
  m.def("prox_step_rows", &prox_step_rows, py::arg("x"), py::arg("xp"), py::arg("buf"), py::arg("out"),
        py::arg("beta"), py::arg("step"), py::arg("shift"), py::arg("lo"), py::arg("hi"),
        py::arg("nthreads"));
  m.def("minmax_project", &minmax_project, py::arg("planes"), py::arg("offset"), py::arg("z"),
        py::arg("vmin"), py::arg("zmin"), py::arg("vmax"), py::arg("zmax"), py::arg("nthreads"));
  m.def("bin_forward", &bin_forward, py::arg("image"), py::arg("out"), py::arg("factor"),
        py::arg("shifts"), py::arg("scale"), py::arg("nthreads"));
  m.def("bin_adjoint", &bin_adjoint, py::arg("g"), py::arg("out"), py::arg("factor"),
        py::arg("shifts"), py::arg("scale"), py::arg("nthreads"));
  m.def("bin_shift_grad", &bin_shift_grad, py::arg("image"), py::arg("g"), py::arg("dshift"),
        py::arg("factor"), py::arg("shifts"), py::arg("scale"), py::arg("nthreads"));
  m.def("crop_copy", &crop_copy, py::arg("src"), py::arg("dst"), py::arg("nthreads"));
  m.def("intensity", &intensity, py::arg("u"), py::arg("out"), py::arg("nthreads"));
#if defined(__VERSION__)
  m.attr("compiler") = __VERSION__;
#endif
}
