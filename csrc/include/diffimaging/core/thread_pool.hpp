// Parallel loops over a persistent thread pool (no OpenMP dependency).
//
// parallel_for splits [0, n) into a static partition that depends only on n,
// the requested thread count and the grain -- never on the machine -- so a
// reduction that sums one slot per chunk gives the same bits on every machine
// for a given requested count.  The chunks are run by the calling thread and
// by up to min(chunks, hardware threads) - 1 pool workers.
//
// The workers are started on first use, wait on a condition variable between
// jobs and live as long as the process (a child made by fork() starts a fresh
// pool).  Several threads may call parallel_for at once: each call is its own
// job and the caller always works on it, so a call never waits for another
// one's chunks (nested calls are fine too).
//
// Errors: an exception thrown by a chunk is re-thrown to the caller once every
// running chunk has returned (the chunks not yet started are skipped).  When a
// worker thread cannot be started, parallel_for throws std::runtime_error
// before any chunk runs.
#pragma once

#include <algorithm>
#include <memory>
#include <type_traits>
#include <utility>

#include "diffimaging/core/common.hpp"

namespace diffimaging {

// Number of hardware threads of the machine (>= 1).
int hardware_threads();

// A static partition of [0, n) into `count` chunks of `step` iterations; the
// last chunks may be shorter or empty (empty chunks are not run).
struct Partition {
  index_t n = 0;
  index_t count = 1;
  index_t step = 0;

  index_t begin(index_t chunk) const { return std::min(n, chunk * step); }
  index_t end(index_t chunk) const { return std::min(n, (chunk + 1) * step); }
};

// count = min(nthreads, max(1, n / grain)) chunks (nthreads < 1 counts as 1).
// Per-chunk buffers (e.g. reduction slots) are sized by `count`.
Partition partition(index_t n, int nthreads, index_t grain);

namespace detail {
using ChunkFn = void (*)(void* body, index_t begin, index_t end, int chunk);
// Runs fn(body, begin(c), end(c), c) for every non-empty chunk c of `part` on
// the pool; returns when all have returned, re-throwing the first exception.
void run_chunks(const Partition& part, ChunkFn fn, void* body);
}  // namespace detail

// Calls body(begin, end, chunk) once for every non-empty chunk of `part`, in
// parallel.  A single-chunk partition runs inline on the caller.
template <class Body>
void parallel_for(const Partition& part, Body&& body) {
  if (part.count <= 1) {
    body(index_t(0), part.n, 0);
    return;
  }
  using B = std::remove_reference_t<Body>;
  detail::run_chunks(
      part,
      [](void* b, index_t begin, index_t end, int chunk) {
        (*static_cast<B*>(b))(begin, end, chunk);
      },
      const_cast<void*>(static_cast<const void*>(std::addressof(body))));
}

// parallel_for over partition(n, nthreads, grain); returns the chunk count.
template <class Body>
int parallel_for(index_t n, int nthreads, index_t grain, Body&& body) {
  const Partition part = partition(n, nthreads, grain);
  parallel_for(part, std::forward<Body>(body));
  return static_cast<int>(part.count);
}

}  // namespace diffimaging
