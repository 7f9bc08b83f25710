// Minimal static-partition parallel loop over std::thread (no OpenMP
// dependency).  Work below `grain` iterations per thread runs inline.
#pragma once

#include <algorithm>
#include <thread>
#include <vector>

#include "diffimaging/common.hpp"

namespace diffimaging {

inline int hardware_threads() {
  const unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : static_cast<int>(n);
}

// Calls body(begin, end, thread_index) on disjoint chunks covering [0, n).
// Returns the number of chunks used (<= nthreads), so callers can size
// per-thread reduction buffers with `nthreads`.
template <class Body>
int parallel_for(index_t n, int nthreads, index_t grain, Body&& body) {
  if (nthreads < 1) nthreads = 1;
  index_t chunks = std::min<index_t>(nthreads, std::max<index_t>(1, n / std::max<index_t>(grain, 1)));
  if (chunks <= 1 || n <= 1) {
    body(index_t(0), n, 0);
    return 1;
  }
  std::vector<std::thread> pool;
  pool.reserve(static_cast<size_t>(chunks - 1));
  const index_t step = (n + chunks - 1) / chunks;
  for (index_t t = 1; t < chunks; ++t) {
    const index_t b = t * step, e = std::min(n, b + step);
    if (b >= e) break;
    pool.emplace_back([&body, b, e, t] { body(b, e, static_cast<int>(t)); });
  }
  body(index_t(0), std::min(n, step), 0);
  for (auto& th : pool) th.join();
  return static_cast<int>(chunks);
}

}  // namespace diffimaging
