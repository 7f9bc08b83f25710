// Bindings of the CPU propagation kernels (module _core).
#include "bindings/add.hpp"
#include "bindings/numpy_args.hpp"
#include "diffimaging/propagate.hpp"

namespace diffimaging {
namespace bind {
namespace {

void transfer_apply(py::array src, py::array dst, double z, double wavelength, double dy,
                    double dx, int method, bool band_limit, bool carrier, bool conjugate,
                    int nthreads) {
  const DType k = dtype_of(src, "src");
  require(dtype_of(dst, "dst") == k, "src and dst must have the same dtype");
  require(is_complex(k), "transfer_apply needs complex arrays");
  require(src.size() == dst.size() && src.ndim() >= 2 && dst.ndim() >= 2 &&
              dim(src, 1) == dim(dst, 1) && dim(src, 2) == dim(dst, 2),
          "src and dst must have the same shape");
  require(dst.writeable(), "dst must be writeable");
  const auto p = transfer_params(src, z, wavelength, dy, dx, method, band_limit, carrier);
  const index_t batch = p.ny * p.nx == 0 ? 0 : src.size() / (p.ny * p.nx);
  const int nt = threads(nthreads);
  py::gil_scoped_release release;
  dispatch_precision(k, [&](auto tag) {
    using Real = decltype(tag);
    cpu::transfer_apply<Real>(in<Real>(src), out<Real>(dst), batch, p, conjugate, nt);
  });
}

double transfer_pullback(py::object U_obj, py::array G, py::array acc, double z,
                         double wavelength, double dy, double dx, int method, bool band_limit,
                         bool carrier, bool accumulate, int nthreads) {
  const DType k = dtype_of(G, "G");
  require(is_complex(k), "transfer_pullback needs complex arrays");
  require(dtype_of(acc, "acc") == k, "G and acc must have the same dtype");
  require(acc.size() == G.size(), "G and acc must have the same size");
  require(acc.writeable(), "acc must be writeable");
  const auto p = transfer_params(G, z, wavelength, dy, dx, method, band_limit, carrier);
  const index_t plane = p.ny * p.nx;
  const index_t batch = plane == 0 ? 0 : G.size() / plane;
  const OptionalArray U(U_obj);
  index_t u_stride = 0;
  if (U.present) {
    const py::array& u = U.array;
    require(dtype_of(u, "U") == k, "U must have the dtype of G");
    require(u.ndim() >= 2 && dim(u, 1) == p.nx && dim(u, 2) == p.ny,
            "U must have the grid shape of G");
    require(u.size() == plane || u.size() == G.size(),
            "U must be one plane (broadcast) or have the size of G");
    u_stride = u.size() == plane ? 0 : plane;
  }
  const int nt = threads(nthreads);
  py::gil_scoped_release release;
  return dispatch_precision(k, [&](auto tag) {
    using Real = decltype(tag);
    return cpu::transfer_pullback<Real>(U.in<Real>(), u_stride, in<Real>(G), out<Real>(acc), batch,
                                        p, accumulate, nt);
  });
}

}  // namespace

void add_propagate(py::module_& m) {
  m.def("simd", [] { return std::string(cpu::transfer_rows_isa()); });
  m.def("transfer_apply", &transfer_apply, py::arg("src"), py::arg("dst"), py::arg("z"),
        py::arg("wavelength"), py::arg("dy"), py::arg("dx"), py::arg("method"),
        py::arg("band_limit"), py::arg("carrier"), py::arg("conjugate"), py::arg("nthreads"));
  m.def("transfer_pullback", &transfer_pullback, py::arg("U"), py::arg("G"), py::arg("acc"),
        py::arg("z"), py::arg("wavelength"), py::arg("dy"), py::arg("dx"), py::arg("method"),
        py::arg("band_limit"), py::arg("carrier"), py::arg("accumulate"), py::arg("nthreads"));
}

}  // namespace bind
}  // namespace diffimaging
