#include "runtime/thread_pool.hpp"

#include "core/error.hpp"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define LITHE_PAUSE() _mm_pause()
#elif defined(__aarch64__)
#define LITHE_PAUSE() __asm__ __volatile__("yield")
#else
#define LITHE_PAUSE() ((void)0)
#endif

namespace lithe::runtime {
namespace {
// About 50-100 microseconds of pause before a worker sleeps.
constexpr int kSpin = 20000;
}  // namespace

ThreadPool::ThreadPool(int threads) : threads_(threads) {
  if (threads < 1 || threads > 256) fail("thread count ", threads, " must be between 1 and 256");
  workers_.reserve(static_cast<size_t>(threads - 1));
  for (int i = 1; i < threads; ++i) workers_.emplace_back([this, i] { worker(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_.store(true, std::memory_order_release);
    generation_.fetch_add(1, std::memory_order_acq_rel);
  }
  cv_.notify_all();
  for (std::thread& t : workers_) t.join();
}

void ThreadPool::run(Fn fn, void* ctx) {
  if (threads_ == 1) {
    fn(ctx, 0, 1);
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    fn_ = fn;
    ctx_ = ctx;
    pending_.store(threads_ - 1, std::memory_order_relaxed);
    generation_.fetch_add(1, std::memory_order_acq_rel);
  }
  cv_.notify_all();
  fn(ctx, 0, threads_);
  // The workers are busy with their share: wait without sleeping, then yield.
  for (int spin = 0; pending_.load(std::memory_order_acquire) != 0; ++spin) {
    if (spin < kSpin)
      LITHE_PAUSE();
    else
      std::this_thread::yield();
  }
}

void ThreadPool::worker(int index) {
  uint64_t seen = 0;
  for (;;) {
    uint64_t gen = generation_.load(std::memory_order_acquire);
    for (int spin = 0; gen == seen && spin < kSpin; ++spin) {
      LITHE_PAUSE();
      gen = generation_.load(std::memory_order_acquire);
    }
    if (gen == seen) {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return generation_.load(std::memory_order_acquire) != seen; });
      gen = generation_.load(std::memory_order_acquire);
    }
    seen = gen;
    if (stop_.load(std::memory_order_acquire)) return;
    Fn fn;
    void* ctx;
    {
      std::lock_guard<std::mutex> lock(mu_);
      fn = fn_;
      ctx = ctx_;
    }
    fn(ctx, index, threads_);
    pending_.fetch_sub(1, std::memory_order_acq_rel);
  }
}

}  // namespace lithe::runtime
