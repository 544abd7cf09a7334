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
// Pauses before a worker sleeps: 0.55 ms on the Zen 3 machine (a PAUSE there is about 27 ns),
// other CPUs differ (a PAUSE takes from a few to about 140 cycles).
constexpr int kSpin = 20000;
}  // namespace

ThreadPool::ThreadPool(int threads) : threads_(threads) {
  if (threads < 1 || threads > 256) fail("thread count ", threads, " must be between 1 and 256");
  workers_.reserve(static_cast<size_t>(threads - 1));
  for (int i = 1; i < threads; ++i) workers_.emplace_back([this] { worker(); });
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

// Claims and runs shares of job `gen` until none is left (or the job is no longer current).
void ThreadPool::work(uint64_t gen, Fn fn, void* ctx) {
  const uint64_t tag = (gen & 0xffffffffu) << 32;
  uint64_t cur = claim_.load(std::memory_order_acquire);
  for (;;) {
    if ((cur & ~uint64_t{0xffffffffu}) != tag) return;  // a later job: not ours
    const int share = static_cast<int>(cur & 0xffffffffu);
    if (share >= threads_) return;
    if (!claim_.compare_exchange_weak(cur, cur + 1, std::memory_order_acq_rel)) continue;
    fn(ctx, share, threads_);
    done_.fetch_add(1, std::memory_order_acq_rel);
    cur = claim_.load(std::memory_order_acquire);
  }
}

void ThreadPool::run(Fn fn, void* ctx) {
  if (threads_ == 1) {
    fn(ctx, 0, 1);
    return;
  }
  uint64_t gen;
  {
    std::lock_guard<std::mutex> lock(mu_);
    fn_ = fn;
    ctx_ = ctx;
    gen = generation_.load(std::memory_order_relaxed) + 1;
    done_.store(0, std::memory_order_relaxed);
    claim_.store((gen & 0xffffffffu) << 32, std::memory_order_release);
    generation_.store(gen, std::memory_order_release);
  }
  cv_.notify_all();
  work(gen, fn, ctx);
  // Every share is claimed; wait for those other threads are still running.
  for (int spin = 0; done_.load(std::memory_order_acquire) != threads_; ++spin) {
    if (spin < kSpin)
      LITHE_PAUSE();
    else
      std::this_thread::yield();
  }
}

void ThreadPool::worker() {
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
      if (generation_.load(std::memory_order_acquire) != gen) continue;  // already moved on
      fn = fn_;
      ctx = ctx_;
    }
    work(gen, fn, ctx);
  }
}

}  // namespace lithe::runtime
