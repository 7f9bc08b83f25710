// CPU kernels for exact area-integration binning (forward, adjoint and the
// shift cotangent).  See diffimaging/math/binning.hpp for the weights.
#include <cstring>
#include <vector>

#include "diffimaging/binning.hpp"
#include "diffimaging/core/buffer.hpp"
#include "diffimaging/core/thread_pool.hpp"
#include "diffimaging/math/binning.hpp"

namespace diffimaging {
namespace cpu {
namespace {

// Forward gather table along one axis for one shift: output k reads inputs
// first[k] + t, t = 0..f, with weights w[k*(f+1) + t] (0 outside the image).
struct GatherTable {
  std::vector<index_t> first;
  std::vector<double> w;
};

GatherTable make_gather(index_t n, index_t m, index_t f, double s) {
  GatherTable t;
  t.first = buffer<index_t>(m, "a binning table");
  t.w = buffer<double>(m * (f + 1), "a binning table");
  for (index_t k = 0; k < m; ++k) {
    const index_t i0 = bin_first_input(k, f, s);
    t.first[k] = i0;
    for (index_t q = 0; q <= f; ++q) t.w[k * (f + 1) + q] = bin_weight(k, i0 + q, f, s, n);
  }
  return t;
}

// Adjoint table: input i receives from outputs first[i] and first[i] + 1 with
// weights w0[i], w1[i] (0 when that output does not exist).
// Indices are clamped into [0, m) (their weight is 0 when clamped), so the
// loops that use them need no branches.
struct ScatterTable {
  std::vector<index_t> first;
  std::vector<index_t> i0, i1;
  std::vector<double> w0, w1;
};

ScatterTable make_scatter(index_t n, index_t m, index_t f, double s) {
  ScatterTable t;
  t.first = buffer<index_t>(n, "a binning table");
  t.i0 = buffer<index_t>(n, "a binning table");
  t.i1 = buffer<index_t>(n, "a binning table");
  t.w0 = buffer<double>(n, "a binning table");
  t.w1 = buffer<double>(n, "a binning table");
  auto clamp = [m](index_t k) { return k < 0 ? index_t(0) : (k >= m ? m - 1 : k); };
  for (index_t i = 0; i < n; ++i) {
    const index_t k0 = bin_first_output(i, f, s);
    t.first[i] = k0;
    t.i0[i] = clamp(k0);
    t.i1[i] = clamp(k0 + 1);
    t.w0[i] = (k0 >= 0 && k0 < m) ? bin_weight(k0, i, f, s, n) : 0.0;
    t.w1[i] = (k0 + 1 >= 0 && k0 + 1 < m) ? bin_weight(k0 + 1, i, f, s, n) : 0.0;
  }
  return t;
}

// Weighted sum of input rows into acc (length len), in the data's precision.
template <class Real>
inline void axpy_row(Real* __restrict acc, const Real* __restrict row, Real w, index_t len) {
  for (index_t j = 0; j < len; ++j) acc[j] += w * row[j];
}

// x pass of the forward binning of one (already y-binned) row.
template <class Real>
void bin_row_x(const Real* tmp, Real* out, index_t nx, index_t mx, int nc, index_t f,
               const GatherTable* gx, double scale) {
  if (gx == nullptr) {
    for (index_t l = 0; l < mx; ++l)
      for (int c = 0; c < nc; ++c) {
        Real s = 0;
        const Real* p = tmp + (l * f) * nc + c;
        for (index_t u = 0; u < f; ++u) s += p[u * nc];
        out[l * nc + c] = static_cast<Real>(scale * s);
      }
    return;
  }
  for (index_t l = 0; l < mx; ++l) {
    const index_t j0 = gx->first[l];
    const double* w = gx->w.data() + l * (f + 1);
    for (int c = 0; c < nc; ++c) {
      double s = 0;
      for (index_t u = 0; u <= f; ++u) {
        const index_t j = j0 + u;
        if (j >= 0 && j < nx && w[u] != 0.0) s += w[u] * static_cast<double>(tmp[j * nc + c]);
      }
      out[l * nc + c] = static_cast<Real>(scale * s);
    }
  }
}

// y pass: tmp = sum_q wy * in[i0 + q, :] for output row k.
template <class Real>
void bin_rows_y(const Real* img, Real* tmp, index_t k, index_t ny, index_t row_len, index_t f,
                const GatherTable* gy) {
  for (index_t j = 0; j < row_len; ++j) tmp[j] = Real(0);
  if (gy == nullptr) {
    for (index_t q = 0; q < f; ++q) axpy_row<Real>(tmp, img + (k * f + q) * row_len, Real(1), row_len);
    return;
  }
  const index_t i0 = gy->first[k];
  const double* w = gy->w.data() + k * (f + 1);
  for (index_t q = 0; q <= f; ++q) {
    const index_t i = i0 + q;
    if (i < 0 || i >= ny || w[q] == 0.0) continue;
    axpy_row<Real>(tmp, img + i * row_len, static_cast<Real>(w[q]), row_len);
  }
}

struct ShiftTables {
  std::vector<GatherTable> gy, gx;
  std::vector<ScatterTable> sy, sx;
};

ShiftTables make_tables(const double* shifts, index_t shift_stride, index_t batch, index_t ny,
                        index_t nx, index_t f, bool gather, bool scatter) {
  ShiftTables t;
  if (shifts == nullptr) return t;
  const index_t distinct = shift_stride == 0 ? 1 : batch;
  const index_t my = ny / f, mx = nx / f;
  for (index_t b = 0; b < distinct; ++b) {
    const double sy = shifts[b * shift_stride], sx = shifts[b * shift_stride + 1];
    if (gather) {
      t.gy.push_back(make_gather(ny, my, f, sy));
      t.gx.push_back(make_gather(nx, mx, f, sx));
    }
    if (scatter) {
      t.sy.push_back(make_scatter(ny, my, f, sy));
      t.sx.push_back(make_scatter(nx, mx, f, sx));
    }
  }
  return t;
}

}  // namespace

template <class Real>
void bin_forward(const Real* in, index_t in_stride, Real* out, index_t batch, index_t ny,
                 index_t nx, int nc, index_t f, const double* shifts, index_t shift_stride,
                 double scale, int nthreads) {
  const index_t my = ny / f, mx = nx / f;
  const ShiftTables tables = make_tables(shifts, shift_stride, batch, ny, nx, f, true, false);
  const index_t row_len = nx * nc;
  parallel_for(batch * my, nthreads, 4, [&](index_t r0, index_t r1, int) {
    std::vector<Real> tmp = buffer<Real>(row_len, "a binning row buffer");
    for (index_t r = r0; r < r1; ++r) {
      const index_t b = r / my, k = r % my;
      const index_t tb = shift_stride == 0 ? 0 : b;
      const GatherTable* gy = shifts ? &tables.gy[tb] : nullptr;
      const GatherTable* gx = shifts ? &tables.gx[tb] : nullptr;
      bin_rows_y<Real>(in + b * in_stride * nc, tmp.data(), k, ny, row_len, f, gy);
      bin_row_x<Real>(tmp.data(), out + (b * my + k) * mx * nc, nx, mx, nc, f, gx, scale);
    }
  });
}

template <class Real>
void bin_adjoint(const Real* g, Real* out, index_t batch, index_t ny, index_t nx, int nc,
                 index_t f, const double* shifts, index_t shift_stride, double scale,
                 int nthreads) {
  const index_t my = ny / f, mx = nx / f;
  const index_t row_len = nx * nc;
  if (shifts == nullptr) {
    // Each output row k fills input rows k f .. k f + f - 1 with the same values:
    // expand once, copy f - 1 times.  Rows and columns beyond my f, mx f get 0.
    const Real sc = static_cast<Real>(scale);
    parallel_for(batch * my, nthreads, 4, [&](index_t r0, index_t r1, int) {
      for (index_t r = r0; r < r1; ++r) {
        const index_t b = r / my, k = r % my;
        const Real* gr = g + (b * my + k) * mx * nc;
        Real* o = out + (b * ny + k * f) * row_len;
        if (nc == 1) {
          for (index_t l = 0; l < mx; ++l) {
            const Real v = sc * gr[l];
            for (index_t u = 0; u < f; ++u) o[l * f + u] = v;
          }
        } else {
          for (index_t l = 0; l < mx; ++l) {
            const Real vr = sc * gr[2 * l], vi = sc * gr[2 * l + 1];
            for (index_t u = 0; u < f; ++u) {
              o[2 * (l * f + u)] = vr;
              o[2 * (l * f + u) + 1] = vi;
            }
          }
        }
        for (index_t j = mx * f * nc; j < row_len; ++j) o[j] = Real(0);
        for (index_t q = 1; q < f; ++q)
          std::memcpy(o + q * row_len, o, static_cast<size_t>(row_len) * sizeof(Real));
        if (k == my - 1)  // trailing rows of this batch element not covered by any output
          for (index_t i = my * f; i < ny; ++i)
            std::memset(out + (b * ny + i) * row_len, 0, static_cast<size_t>(row_len) * sizeof(Real));
      }
    });
    return;
  }
  const ShiftTables tables = make_tables(shifts, shift_stride, batch, ny, nx, f, false, true);
  parallel_for(batch * ny, nthreads, 16, [&](index_t r0, index_t r1, int) {
    std::vector<Real> tmp = buffer<Real>(mx * nc, "a binning row buffer");
    for (index_t r = r0; r < r1; ++r) {
      const index_t b = r / ny, i = r % ny;
      const Real* gb = g + b * my * mx * nc;
      Real* o = out + r * row_len;
      const index_t tb = shift_stride == 0 ? 0 : b;
      const ScatterTable& ty = tables.sy[tb];
      const ScatterTable& tx = tables.sx[tb];
      const Real w0 = static_cast<Real>(ty.w0[i] * scale), w1 = static_cast<Real>(ty.w1[i] * scale);
      const Real* g0 = gb + ty.i0[i] * mx * nc;
      const Real* g1 = gb + ty.i1[i] * mx * nc;
      for (index_t q = 0; q < mx * nc; ++q) tmp[q] = w0 * g0[q] + w1 * g1[q];
      const index_t* i0 = tx.i0.data();
      const index_t* i1 = tx.i1.data();
      const double* a0 = tx.w0.data();
      const double* a1 = tx.w1.data();
      if (nc == 1) {
        for (index_t j = 0; j < nx; ++j)
          o[j] = static_cast<Real>(a0[j]) * tmp[i0[j]] + static_cast<Real>(a1[j]) * tmp[i1[j]];
      } else {
        for (index_t j = 0; j < nx; ++j) {
          const Real c0 = static_cast<Real>(a0[j]), c1 = static_cast<Real>(a1[j]);
          o[2 * j] = c0 * tmp[2 * i0[j]] + c1 * tmp[2 * i1[j]];
          o[2 * j + 1] = c0 * tmp[2 * i0[j] + 1] + c1 * tmp[2 * i1[j] + 1];
        }
      }
    }
  });
}

template <class Real>
void bin_shift_grad(const Real* in, index_t in_stride, const Real* g, double* dshift,
                    index_t batch, index_t ny, index_t nx, int nc, index_t f,
                    const double* shifts, index_t shift_stride, double scale, int nthreads) {
  const index_t my = ny / f, mx = nx / f;
  const ShiftTables tables = make_tables(shifts, shift_stride, batch, ny, nx, f, true, false);
  const index_t row_len = nx * nc;
  const Partition part = partition(batch * my, nthreads, 4);
  const index_t nt = part.count;  // one (batch, 2) slot per chunk
  std::vector<double> partial = buffer<double>(nt * batch * 2, "the shift-gradient partial sums");
  parallel_for(part, [&](index_t r0, index_t r1, int tid) {
    std::vector<Real> tmp = buffer<Real>(row_len, "a binning row buffer");
    std::vector<Real> xlo = buffer<Real>(mx * nc, "a binning row buffer");
    std::vector<Real> xhi = buffer<Real>(mx * nc, "a binning row buffer");
    for (index_t r = r0; r < r1; ++r) {
      const index_t b = r / my, k = r % my;
      const index_t tb = shift_stride == 0 ? 0 : b;
      const double sy = shifts[tb * shift_stride], sx = shifts[tb * shift_stride + 1];
      const GatherTable& gy = tables.gy[tb];
      const GatherTable& gx = tables.gx[tb];
      const Real* img = in + b * in_stride * nc;
      const Real* gk = g + (b * my + k) * mx * nc;
      // d/dsx: y-binned row V at the right and left edges of each output column
      bin_rows_y<Real>(img, tmp.data(), k, ny, row_len, f, &gy);
      double dx = 0.0;
      for (index_t l = 0; l < mx; ++l) {
        const index_t jl = static_cast<index_t>(std::floor(static_cast<double>(l * f) + sx));
        const index_t jr = static_cast<index_t>(std::floor(static_cast<double>((l + 1) * f) + sx));
        for (int c = 0; c < nc; ++c) {
          const double vr = (jr >= 0 && jr < nx) ? static_cast<double>(tmp[jr * nc + c]) : 0.0;
          const double vl = (jl >= 0 && jl < nx) ? static_cast<double>(tmp[jl * nc + c]) : 0.0;
          dx += static_cast<double>(gk[l * nc + c]) * (vr - vl);
        }
      }
      // d/dsy: x-binned input rows at the lower and upper edges of output row k
      const index_t il = static_cast<index_t>(std::floor(static_cast<double>(k * f) + sy));
      const index_t iu = static_cast<index_t>(std::floor(static_cast<double>((k + 1) * f) + sy));
      double dy = 0.0;
      const bool hl = il >= 0 && il < ny, hu = iu >= 0 && iu < ny;
      if (hl) bin_row_x<Real>(img + il * row_len, xlo.data(), nx, mx, nc, f, &gx, 1.0);
      if (hu) bin_row_x<Real>(img + iu * row_len, xhi.data(), nx, mx, nc, f, &gx, 1.0);
      for (index_t q = 0; q < mx * nc; ++q) {
        const double vu = hu ? static_cast<double>(xhi[q]) : 0.0;
        const double vl = hl ? static_cast<double>(xlo[q]) : 0.0;
        dy += static_cast<double>(gk[q]) * (vu - vl);
      }
      partial[(static_cast<size_t>(tid) * batch + b) * 2] += scale * dy;
      partial[(static_cast<size_t>(tid) * batch + b) * 2 + 1] += scale * dx;
    }
  });
  for (index_t b = 0; b < batch; ++b) {
    double sy = 0.0, sx = 0.0;
    for (index_t t = 0; t < nt; ++t) {
      sy += partial[(static_cast<size_t>(t) * batch + b) * 2];
      sx += partial[(static_cast<size_t>(t) * batch + b) * 2 + 1];
    }
    dshift[2 * b] = sy;
    dshift[2 * b + 1] = sx;
  }
}

#define DI_INSTANTIATE_BIN(Real)                                                               \
  template void bin_forward<Real>(const Real*, index_t, Real*, index_t, index_t, index_t, int, \
                                  index_t, const double*, index_t, double, int);               \
  template void bin_adjoint<Real>(const Real*, Real*, index_t, index_t, index_t, int, index_t, \
                                  const double*, index_t, double, int);                        \
  template void bin_shift_grad<Real>(const Real*, index_t, const Real*, double*, index_t,      \
                                     index_t, index_t, int, index_t, const double*, index_t,   \
                                     double, int);
DI_INSTANTIATE_BIN(float)
DI_INSTANTIATE_BIN(double)
#undef DI_INSTANTIATE_BIN

}  // namespace cpu
}  // namespace diffimaging
