// Work buffers of the kernels.  An allocation that fails throws OutOfMemory, a
// std::bad_alloc whose message says what was being allocated, how many bytes,
// and what to do about it (the bare std::bad_alloc says none of that).  The
// Python bindings turn it into a MemoryError carrying that message.
#pragma once

#include <cstddef>
#include <new>
#include <stdexcept>
#include <string>
#include <vector>

#include "diffimaging/core/common.hpp"

namespace diffimaging {

class OutOfMemory : public std::bad_alloc {
 public:
  OutOfMemory(std::size_t bytes, const char* what)
      : msg_("diffimaging: cannot allocate " + std::to_string(bytes) + " bytes (" +
             std::to_string(bytes >> 20) + " MiB) for " + what +
             ": the process is out of memory or at its memory limit; use fewer threads "
             "(diffimaging.set_num_threads) or smaller arrays or chunks") {}
  const char* what() const noexcept override { return msg_.c_str(); }

 private:
  std::string msg_;
};

// A std::vector<T> of n elements set to `value`; OutOfMemory naming `what` (e.g.
// "the binning tables") and the bytes requested when it cannot be allocated.
template <class T>
std::vector<T> buffer(index_t n, const char* what, const T& value = T()) {
  const std::size_t count = n > 0 ? static_cast<std::size_t>(n) : 0;
  try {
    return std::vector<T>(count, value);
  } catch (const std::bad_alloc&) {
    throw OutOfMemory(count * sizeof(T), what);
  } catch (const std::length_error&) {  // more elements than a vector can hold
    throw OutOfMemory(count * sizeof(T), what);
  }
}

}  // namespace diffimaging
