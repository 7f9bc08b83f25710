// Argument checks shared by the CUDA bindings (module _cuda).  Device arrays
// arrive as integer pointers plus a dtype name (pybind11 has no DLPack caster);
// Python has checked the arrays themselves, and these checks guard the numbers
// before anything touches the device (std::invalid_argument -> ValueError).
#pragma once

#include <cstdint>
#include <initializer_list>
#include <stdexcept>
#include <string>
#include <utility>

#include "diffimaging/core/dispatch.hpp"
#include "diffimaging/math/transfer.hpp"

namespace diffimaging {
namespace bind {

// The element type named by `dtype` ("complex64", "complex128" and, unless
// complex_only, "float32", "float64"); `fn` names the function in the error.
inline DType device_dtype(const std::string& dtype, const char* fn, bool complex_only) {
  if (dtype == "complex64") return DType::kComplex64;
  if (dtype == "complex128") return DType::kComplex128;
  if (!complex_only && dtype == "float32") return DType::kFloat32;
  if (!complex_only && dtype == "float64") return DType::kFloat64;
  throw std::invalid_argument(std::string(fn) + ": dtype must be " +
                              (complex_only ? "'complex64' or 'complex128'"
                                            : "'float32', 'float64', 'complex64' or 'complex128'") +
                              ", got '" + dtype + "'");
}

// A count or size that must not be negative (`fn`: the function, `name`: the argument).
inline void require_nonnegative(index_t v, const char* fn, const char* name) {
  if (v < 0)
    throw std::invalid_argument(std::string(fn) + ": " + name + " must be >= 0, got " +
                                std::to_string(v));
}

// A device pointer that must not be null.
inline void require_device_pointer(std::uintptr_t p, const char* fn, const char* name) {
  if (p == 0)
    throw std::invalid_argument(std::string(fn) + ": " + name + " is a null device pointer");
}

// Named arguments checked in order: require_nonnegatives(fn, {{"ny", ny}, {"nx", nx}}).
inline void require_nonnegatives(const char* fn,
                                 std::initializer_list<std::pair<const char*, index_t>> values) {
  for (const auto& [name, v] : values) require_nonnegative(v, fn, name);
}

// Named device pointers checked in order: require_device_pointers(fn, {{"src", src}, ...}).
inline void require_device_pointers(
    const char* fn, std::initializer_list<std::pair<const char*, std::uintptr_t>> pointers) {
  for (const auto& [name, p] : pointers) require_device_pointer(p, fn, name);
}

// The transfer-function parameters of a grid (method 0 angular spectrum, 1
// Fresnel), checked.
inline TransferParams transfer_params(index_t ny, index_t nx, double z, double wavelength,
                                      double dy, double dx, int method, bool band_limit,
                                      bool carrier) {
  if (method != 0 && method != 1) throw std::invalid_argument("method must be 0 or 1");
  if (ny < 1 || nx < 1) throw std::invalid_argument("ny and nx must be >= 1");
  if (!(wavelength > 0) || !(dy > 0) || !(dx > 0))
    throw std::invalid_argument("wavelength, dy and dx must be > 0 [m]");
  TransferParams p;
  p.z = z;
  p.wavelength = wavelength;
  p.dy = dy;
  p.dx = dx;
  p.ny = ny;
  p.nx = nx;
  p.method = static_cast<Method>(method);
  p.band_limit = band_limit;
  p.carrier = carrier;
  return p;
}

}  // namespace bind
}  // namespace diffimaging
