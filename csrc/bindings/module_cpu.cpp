// The _core extension module: the CPU kernels of every domain.  Each domain
// binds its own kernels (add_<domain>); arrays are checked strictly and never
// copied, and the GIL is released while the kernels run.  The Python layer
// (diffimaging._kernels) validates user input first and gives the user-facing
// error messages.
#include <pybind11/pybind11.h>

#include "bindings/add.hpp"
#include "diffimaging/core/thread_pool.hpp"

PYBIND11_MODULE(_core, m) {
  namespace bind = diffimaging::bind;
  m.doc() = "diffimaging CPU kernels (C++17, threaded; no Python inside the kernels)";
  m.def("hardware_threads", &diffimaging::hardware_threads);
  bind::add_propagate(m);
  bind::add_binning(m);
  bind::add_pointwise(m);
  bind::add_holography(m);
#if defined(__VERSION__)
  m.attr("compiler") = __VERSION__;
#endif
}
