// The runtime's thread pool: a fixed set of workers that run one job at a time. A job is
// split statically into size() shares by the job itself (share index, share count), so the
// value of every output is fixed by the partition, whichever thread computes it. Threads
// claim shares: the caller and the workers each take the next unclaimed share, so a worker
// that the OS has not scheduled yet (a busy machine) delays nothing; the caller runs its
// share and any left over.
//
// Idle workers spin briefly (a bounded number of pause instructions, so back-to-back layers
// do not pay a wake-up) and then sleep on a condition variable. run() never allocates.
#pragma once
#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

namespace lithe::runtime {

class ThreadPool {
 public:
  using Fn = void (*)(void* ctx, int thread, int threads);

  /// `threads` >= 1 in all, the caller included (threads - 1 workers are started).
  explicit ThreadPool(int threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return threads_; }

  /// Runs fn(ctx, t, size()) once for each share t = 0 .. size()-1, on whichever thread
  /// claims it first; returns when all have finished. `fn` must not throw.
  void run(Fn fn, void* ctx);

  /// run() with a callable f(thread, threads).
  template <class F>
  void run(F& f) {
    run([](void* c, int t, int n) { (*static_cast<F*>(c))(t, n); }, &f);
  }

 private:
  void worker();
  void work(uint64_t gen, Fn fn, void* ctx);

  int threads_;
  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::atomic<uint64_t> generation_{0};
  // (generation << 32) | next unclaimed share of the current job.
  std::atomic<uint64_t> claim_{0};
  std::atomic<int> done_{0};
  std::atomic<bool> stop_{false};
  Fn fn_ = nullptr;
  void* ctx_ = nullptr;
};

/// [begin, end) of thread t's share of n items split into `threads` contiguous parts.
inline void static_range(int64_t n, int t, int threads, int64_t* begin, int64_t* end) {
  *begin = n * t / threads;
  *end = n * (t + 1) / threads;
}

/// The same for tasks of unequal cost: share t of `threads` gets the contiguous tasks whose
/// cost midpoint falls in the t-th equal part of the total cost (cost(i) >= 0, i in [0, n)).
/// Fixed by n, the costs and the thread count alone, like static_range.
template <class Cost>
void weighted_range(int64_t n, Cost cost, int t, int threads, int64_t* begin, int64_t* end) {
  int64_t total = 0;
  for (int64_t i = 0; i < n; ++i) total += cost(i);
  if (total <= 0) return static_range(n, t, threads, begin, end);
  *begin = *end = n;
  int64_t before = 0;  // cost of the tasks before i
  for (int64_t i = 0; i < n; ++i) {
    const int64_t c = cost(i);
    // The share task i's midpoint (before + c / 2) falls in: non-decreasing in i.
    const int64_t share = std::min<int64_t>(threads - 1, (2 * before + c) * threads / (2 * total));
    if (share >= t && *begin == n) *begin = i;
    if (share > t) {
      *end = i;
      break;
    }
    before += c;
  }
  if (*begin > *end) *begin = *end;  // no task for this share
}

}  // namespace lithe::runtime
