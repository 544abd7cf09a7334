// The runtime's thread pool: a fixed set of workers that run one job at a time on every
// thread (the caller is thread 0). Work is split statically by the job itself from its thread
// index and the thread count, so which thread computes an output never changes its value.
//
// Idle workers spin briefly (a bounded number of pause instructions, so back-to-back layers
// do not pay a wake-up) and then sleep on a condition variable. run() never allocates.
#pragma once
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

  /// Runs fn(ctx, t, size()) for t = 0 .. size()-1, t = 0 on the calling thread; returns
  /// when all have finished. `fn` must not throw.
  void run(Fn fn, void* ctx);

  /// run() with a callable f(thread, threads).
  template <class F>
  void run(F& f) {
    run([](void* c, int t, int n) { (*static_cast<F*>(c))(t, n); }, &f);
  }

 private:
  void worker(int index);

  int threads_;
  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> pending_{0};
  std::atomic<bool> stop_{false};
  Fn fn_ = nullptr;
  void* ctx_ = nullptr;
};

/// [begin, end) of thread t's share of n items split into `threads` contiguous parts.
inline void static_range(int64_t n, int t, int threads, int64_t* begin, int64_t* end) {
  *begin = n * t / threads;
  *end = n * (t + 1) / threads;
}

}  // namespace lithe::runtime
