// Checks of the core's thread pool and of the argument checks of its public
// view API, as seen by an embedding program.  Prints one line per failed check;
// exit status 0 when all pass.
#include <atomic>
#include <complex>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "diffimaging/diffimaging.hpp"

namespace di = diffimaging;

namespace {

int failures = 0;

void check(bool ok, const std::string& what) {
  if (!ok) {
    std::printf("FAILED: %s\n", what.c_str());
    ++failures;
  }
}

// Sum of 0..n-1 through per-chunk slots.
long long chunked_sum(di::index_t n, int nthreads) {
  const di::Partition part = di::partition(n, nthreads, 1);
  std::vector<long long> slot(static_cast<size_t>(part.count), 0);
  di::parallel_for(part, [&](di::index_t b, di::index_t e, int chunk) {
    for (di::index_t i = b; i < e; ++i) slot[static_cast<size_t>(chunk)] += i;
  });
  long long s = 0;
  for (long long v : slot) s += v;
  return s;
}

void partitions() {
  const di::Partition p = di::partition(1000, 7, 10);
  check(p.count == 7, "partition count = requested threads when the work allows");
  check(di::partition(1000, 1 << 20, 10).count == 100, "partition count <= n / grain");
  check(di::partition(0, 8, 1).count == 1 && di::partition(1, 8, 1).count == 1,
        "empty and one-element ranges run as one chunk");
  check(di::partition(5, 0, 1).count == 1, "nthreads < 1 counts as 1");
  di::index_t covered = 0;
  for (di::index_t c = 0; c < p.count; ++c) covered += p.end(c) - p.begin(c);
  check(covered == 1000, "the chunks cover the range exactly once");
}

void every_index_once() {
  std::vector<std::atomic<int>> hits(100003);
  const int used = di::parallel_for(static_cast<di::index_t>(hits.size()), 64, 16,
                                    [&](di::index_t b, di::index_t e, int) {
                                      for (di::index_t i = b; i < e; ++i) hits[i].fetch_add(1);
                                    });
  bool ok = used == 64;
  for (auto& h : hits) ok = ok && h.load() == 1;
  check(ok, "parallel_for visits every index exactly once (64 chunks)");
}

void exceptions() {
  // every chunk but the first throws, so a worker's exception must reach the caller
  for (int round = 0; round < 50; ++round) {
    bool caught = false;
    try {
      di::parallel_for(64, 8, 1, [](di::index_t b, di::index_t, int chunk) {
        if (chunk > 0) throw std::runtime_error("chunk failed at " + std::to_string(b));
      });
    } catch (const std::runtime_error& e) {
      caught = std::string(e.what()).rfind("chunk failed at ", 0) == 0;
    }
    check(caught, "an exception thrown by a chunk reaches the caller");
  }
  check(chunked_sum(1000, 8) == 999LL * 1000 / 2, "the pool works after exceptions");
}

void concurrent_callers() {
  std::atomic<int> wrong{0};
  std::vector<std::thread> callers;
  for (int t = 0; t < 4; ++t)
    callers.emplace_back([&wrong, t] {
      for (int k = 0; k < 200; ++k) {
        const di::index_t n = 1000 + 37 * t + k;
        if (chunked_sum(n, 2 + (k + t) % 5) != static_cast<long long>(n) * (n - 1) / 2) ++wrong;
      }
    });
  for (auto& c : callers) c.join();
  check(wrong.load() == 0, "four threads calling parallel_for at once get their own results");
}

void nested() {
  std::atomic<long long> total{0};
  di::parallel_for(8, 4, 1, [&](di::index_t b, di::index_t e, int) {
    for (di::index_t i = b; i < e; ++i) total += chunked_sum(100, 3);
  });
  check(total.load() == 8 * 4950, "nested parallel_for calls complete");
}

void view_checks() {
  std::vector<std::complex<double>> a(2 * 4 * 6), b(2 * 4 * 5);
  di::TransferParams p;
  p.z = 1e-3;
  p.wavelength = 500e-9;
  p.dy = p.dx = 1e-6;
  p.ny = 4;
  p.nx = 6;
  auto raises = [&](di::ConstComplexPlanes<double> src, di::ComplexPlanes<double> dst,
                    const di::TransferParams& q) {
    try {
      di::cpu::transfer_apply<double>(src, dst, q, false, 1);
    } catch (const std::invalid_argument&) {
      return true;
    }
    return false;
  };
  check(raises({a.data(), 2, 4, 6}, {b.data(), 2, 4, 5}, p), "shape mismatch is rejected");
  check(raises({a.data(), 2, 4, 6}, {a.data(), 2, 4, 6}, [&] {
          di::TransferParams q = p;
          q.wavelength = 0.0;
          return q;
        }()),
        "a zero wavelength is rejected");
  check(raises({a.data(), 2, 3, 6}, {a.data(), 2, 3, 6}, p), "planes off the grid are rejected");
  check(!raises({a.data(), 2, 4, 6}, {a.data(), 2, 4, 6}, p), "in-place apply is accepted");
}

}  // namespace

int main() {
  partitions();
  every_index_once();
  exceptions();
  concurrent_callers();
  nested();
  view_checks();
  std::printf("%s (%d hardware threads)\n", failures == 0 ? "all pool checks passed" : "FAILED",
              di::hardware_threads());
  return failures == 0 ? 0 : 1;
}
