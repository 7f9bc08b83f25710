// Plain C++ launchers of the CUDA propagation kernels (no pybind11, no CUDA
// headers: the bindings include this file with the host compiler).  Pointers
// are device pointers; `stream` is a cudaStream_t passed as an integer
// (0 = legacy default stream).
#pragma once

#include <cstdint>

#include "diffimaging/math/transfer.hpp"

namespace diffimaging {
namespace cuda {

// dst = H * src (conj(H) when conjugate) on the device, complex64 (Real =
// float) or complex128 (Real = double), interleaved.  Throws std::runtime_error
// with the CUDA error string on failure.
template <class Real>
void transfer_apply(const Real* src, Real* dst, index_t batch, const TransferParams& p,
                    bool conjugate, std::uintptr_t stream);

// acc (+)= conj(H) G for `batch` planes (acc may be G: in place), and the
// distance cotangent sum Re(conj(G) i kappa H U) over all of them (U null: 0;
// u_stride 0: one U plane for every G plane), reduced deterministically and
// returned on the host (the call synchronises the stream).
template <class Real>
double transfer_pullback(const Real* U, index_t u_stride, const Real* G, Real* acc, index_t batch,
                         const TransferParams& p, bool accumulate, std::uintptr_t stream);

// dst[k, b] = H(z_k) src[b] for the nz distances zs (a device array): the
// spectra of a z-stack; dst is (nz, batch, ny, nx).  p.z is ignored.
template <class Real>
void transfer_stack(const Real* src, Real* dst, const double* zs, index_t nz, index_t batch,
                    const TransferParams& p, std::uintptr_t stream);

// acc[b] (+)= sum_k conj(H(z_k)) G[k, b]: the adjoint of transfer_stack, the
// planes summed in registers in a fixed order.
template <class Real>
void transfer_stack_adjoint(const Real* G, Real* acc, const double* zs, index_t nz, index_t batch,
                            const TransferParams& p, bool accumulate, std::uintptr_t stream);

// dz[k] = sum over the batch of Re(conj(G[k, b]) i kappa_k H(z_k) U[b]) for every
// plane k (host array dz of nz doubles; deterministic two-pass reduction; the
// call synchronises the stream).
template <class Real>
void transfer_stack_dz(const Real* U, index_t u_stride, const Real* G, const double* zs,
                       index_t nz, index_t batch, const TransferParams& p, double* dz,
                       std::uintptr_t stream);

}  // namespace cuda
}  // namespace diffimaging
