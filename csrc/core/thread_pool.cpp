// The persistent thread pool behind parallel_for (see core/thread_pool.hpp).
#include "diffimaging/core/thread_pool.hpp"

#include <atomic>
#include <condition_variable>
#include <deque>
#include <exception>
#include <mutex>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>

#if defined(__unix__) || defined(__APPLE__)
#include <pthread.h>
#define DI_HAVE_PTHREAD_ATFORK 1
#endif

namespace diffimaging {

int hardware_threads() {
  const unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : static_cast<int>(n);
}

Partition partition(index_t n, int nthreads, index_t grain) {
  Partition p;
  p.n = n;
  const index_t want = nthreads < 1 ? 1 : nthreads;
  p.count = n <= 1 ? 1 : std::min<index_t>(want, std::max<index_t>(1, n / std::max<index_t>(grain, 1)));
  p.step = (n + p.count - 1) / p.count;
  return p;
}

namespace detail {
namespace {

// One parallel_for call.  Lives on the caller's stack; the caller does not
// return before every worker that joined the job has left it.
struct Job {
  const Partition* part;
  ChunkFn fn;
  void* body;
  std::atomic<index_t> next{0};     // next chunk to hand out
  std::atomic<bool> failed{false};  // a chunk threw: hand out no more
  int helpers_wanted = 0;           // workers that may join (guarded by Pool::mu_)
  int helpers_joined = 0;           // (guarded by Pool::mu_)
  int active = 0;                   // workers inside the job (guarded by Pool::mu_)
  std::exception_ptr error;         // first exception (guarded by Pool::mu_)
  std::condition_variable left;     // signalled when `active` drops to 0
};

class Pool {
 public:
  void run(Job& job) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      start_workers(job.helpers_wanted);
      queue_.push_back(&job);
    }
    for (int k = 0; k < job.helpers_wanted; ++k) wake_.notify_one();
    work_on(job);
    std::unique_lock<std::mutex> lock(mu_);
    for (auto it = queue_.begin(); it != queue_.end(); ++it)
      if (*it == &job) {
        queue_.erase(it);
        break;
      }
    job.left.wait(lock, [&] { return job.active == 0; });
    if (job.error) std::rethrow_exception(job.error);
  }

 private:
  // Grows the pool to `want` workers (called with mu_ held).
  void start_workers(int want) {
    while (workers_ < want) {
      try {
        // the pool outlives every caller: its workers are never joined
        std::thread([this] { worker(); }).detach();
      } catch (const std::system_error& e) {
        throw std::runtime_error(
            "diffimaging: cannot start CPU worker thread " + std::to_string(workers_ + 1) +
            " of " + std::to_string(want) + " (" + e.what() +
            "): the process may be at its thread or memory limit; use fewer threads "
            "(diffimaging.set_num_threads or DIFFIMAGING_NUM_THREADS) or raise the limit");
      }
      ++workers_;
    }
  }

  // Runs chunks of `job` until none is left (caller and workers alike).
  void work_on(Job& job) {
    const Partition& part = *job.part;
    for (;;) {
      const index_t c = job.next.fetch_add(1, std::memory_order_relaxed);
      if (c >= part.count || job.failed.load(std::memory_order_relaxed)) return;
      const index_t b = part.begin(c), e = part.end(c);
      if (b >= e) continue;
      try {
        job.fn(job.body, b, e, static_cast<int>(c));
      } catch (...) {
        std::lock_guard<std::mutex> lock(mu_);
        if (!job.error) job.error = std::current_exception();
        job.failed.store(true, std::memory_order_relaxed);
      }
    }
  }

  void worker() {
    std::unique_lock<std::mutex> lock(mu_);
    for (;;) {
      wake_.wait(lock, [&] { return !queue_.empty(); });
      Job* job = queue_.front();
      if (++job->helpers_joined >= job->helpers_wanted ||
          job->next.load(std::memory_order_relaxed) >= job->part->count)
        queue_.pop_front();
      ++job->active;
      lock.unlock();
      work_on(*job);
      lock.lock();
      if (--job->active == 0) job->left.notify_all();
    }
  }

  std::mutex mu_;
  std::condition_variable wake_;
  std::deque<Job*> queue_;
  int workers_ = 0;  // started so far (guarded by mu_)
};

// The process's pool.  It is never destroyed (its workers are detached and
// block on a condition variable, so process exit does not wait for them).
// After fork() the child sees no workers: it starts a pool of its own.
std::atomic<Pool*> g_pool{nullptr};
std::mutex g_pool_create;

#if defined(DI_HAVE_PTHREAD_ATFORK)
void before_fork() { g_pool_create.lock(); }
void after_fork_parent() { g_pool_create.unlock(); }
void after_fork_child() {
  g_pool.store(nullptr);
  g_pool_create.unlock();
}
#endif

Pool& pool() {
  Pool* p = g_pool.load(std::memory_order_acquire);
  if (p != nullptr) return *p;
  std::lock_guard<std::mutex> lock(g_pool_create);
  p = g_pool.load(std::memory_order_relaxed);
  if (p == nullptr) {
#if defined(DI_HAVE_PTHREAD_ATFORK)
    static const bool registered = [] {
      return pthread_atfork(&before_fork, &after_fork_parent, &after_fork_child) == 0;
    }();
    (void)registered;
#endif
    p = new Pool;
    g_pool.store(p, std::memory_order_release);
  }
  return *p;
}

}  // namespace

void run_chunks(const Partition& part, ChunkFn fn, void* body) {
  Job job;
  job.part = &part;
  job.fn = fn;
  job.body = body;
  const index_t threads = std::min<index_t>(part.count, hardware_threads());
  job.helpers_wanted = static_cast<int>(threads) - 1;
  if (job.helpers_wanted < 1) {  // one hardware thread: no pool
    for (index_t c = 0; c < part.count; ++c)
      if (part.begin(c) < part.end(c)) fn(body, part.begin(c), part.end(c), static_cast<int>(c));
    return;
  }
  pool().run(job);
}

}  // namespace detail
}  // namespace diffimaging
