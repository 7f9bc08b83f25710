// The _core extension module: the CPU kernels of every domain.  Each domain
// binds its own kernels (add_<domain>); arrays are checked strictly and never
// copied, and the GIL is released while the kernels run.  The Python layer
// (diffimaging._kernels) validates user input first and gives the user-facing
// error messages.
#include <pybind11/pybind11.h>

#include <exception>
#include <new>

#include "bindings/add.hpp"
#include "diffimaging/core/buffer.hpp"
#include "diffimaging/core/thread_pool.hpp"

PYBIND11_MODULE(_core, m) {
  namespace bind = diffimaging::bind;
  m.doc() = "diffimaging CPU kernels (C++17, threaded; no Python inside the kernels)";
  m.def("hardware_threads", &diffimaging::hardware_threads);
  // A failed allocation is a MemoryError that says what to do: the kernels' own
  // buffers throw OutOfMemory (bytes and purpose in its message); any other
  // std::bad_alloc gets a message of the same kind instead of "std::bad_alloc".
  pybind11::register_local_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const diffimaging::OutOfMemory& e) {
      PyErr_SetString(PyExc_MemoryError, e.what());
    } catch (const std::bad_alloc&) {
      PyErr_SetString(PyExc_MemoryError,
                      "diffimaging: a CPU kernel could not allocate memory (std::bad_alloc): the "
                      "process is out of memory or at its memory limit; use fewer threads "
                      "(diffimaging.set_num_threads) or smaller arrays or chunks");
    }
  });
  bind::add_propagate(m);
  bind::add_binning(m);
  bind::add_pointwise(m);
  bind::add_holography(m);
#if defined(__VERSION__)
  m.attr("compiler") = __VERSION__;
#endif
}
