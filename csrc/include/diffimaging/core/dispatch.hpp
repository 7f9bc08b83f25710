// Element types of the kernels and the one place that turns a run-time element
// type into the compile-time precision `Real` of a kernel template.
#pragma once

#include <utility>

namespace diffimaging {

// Element type of an array.  Complex values are interleaved (re, im) pairs of
// the real type of the same precision.
enum class DType { kFloat32, kFloat64, kComplex64, kComplex128 };

constexpr bool is_complex(DType t) { return t == DType::kComplex64 || t == DType::kComplex128; }
constexpr bool is_double(DType t) { return t == DType::kFloat64 || t == DType::kComplex128; }

// Number of Real values per element: 2 for complex (interleaved), 1 for real.
constexpr int components(DType t) { return is_complex(t) ? 2 : 1; }

// Calls f(Real{}) with Real = double for float64/complex128 and Real = float
// for float32/complex64, and returns its result.  Kernel templates are written
// for Real; the caller reads the type back with `using Real = decltype(tag);`.
template <class F>
decltype(auto) dispatch_precision(DType t, F&& f) {
  if (is_double(t)) return std::forward<F>(f)(double{});
  return std::forward<F>(f)(float{});
}

}  // namespace diffimaging
