// Plain C++ launchers of the CUDA point-wise kernels: |u|^2 and the Fourier-shift
// phase-ramp multiply (no pybind11, no CUDA headers: the bindings include this
// file with the host compiler).  Pointers are device pointers; complex arrays are
// interleaved (re, im) pairs of Real; `stream` is a cudaStream_t passed as an
// integer (0 = legacy default stream).  Launch errors throw std::runtime_error
// with the CUDA error string.
#pragma once

#include <cstdint>

#include "diffimaging/core/common.hpp"

namespace diffimaging {
namespace cuda {

// out[e] = |u[e]|^2 for n complex values u, rounded as the CPU kernel rounds it
// (re * re + im * im, no fused multiply-add).
template <class Real>
void intensity(const Real* u, Real* out, index_t n, std::uintptr_t stream);

// dst = src * exp(-2 pi i (fy sy + fx sx)) (its conjugate when `conjugate`) for a
// (batch, ny, nx) complex spectrum in FFT order: fy = fftfreq(i, ny, dy), fx =
// fftfreq(j, nx, dx) [1/m], the phase in double precision.  The shift of plane b
// is (sy, sx) = (shifts[b * shift_stride], shifts[b * shift_stride + 1]) [m] (a
// device array of doubles); shift_stride = 0 applies one shift to every plane.
// dst may equal src (in place).
template <class Real>
void fourier_shift_apply(const Real* src, Real* dst, index_t batch, index_t ny, index_t nx,
                         double dy, double dx, const double* shifts, index_t shift_stride,
                         bool conjugate, std::uintptr_t stream);

}  // namespace cuda
}  // namespace diffimaging
