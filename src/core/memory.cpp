#include "core/memory.hpp"

#include <sys/mman.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <mutex>

namespace lithe {
namespace {

constexpr size_t kHuge = size_t{2} << 20;     // a transparent huge page
constexpr size_t kChunk = size_t{32} << 20;   // address space reserved at a time
constexpr size_t kPooled = size_t{16} << 10;  // smaller blocks: aligned_alloc + memset

// A run of address space aligned to huge pages and advised to use them. Blocks are cut from
// it in order and never reused, so each is still zero; it is unmapped when its last block is
// freed and it is no longer the one blocks are cut from. Pages are faulted in (and count in
// RSS) only as the blocks are touched: the waste is the unused tail of the last huge page.
struct Chunk {
  char* base = nullptr;
  size_t size = 0, used = 0, live = 0;
};

std::mutex g_mutex;
Chunk* g_current = nullptr;  // guarded by g_mutex

Chunk* map_chunk(size_t size) {
  void* raw =
      ::mmap(nullptr, size + kHuge, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) return nullptr;
  const auto r = reinterpret_cast<uintptr_t>(raw);
  const uintptr_t a = (r + kHuge - 1) & ~(kHuge - 1);
  if (a > r) ::munmap(raw, a - r);
  ::munmap(reinterpret_cast<void*>(a + size), r + kHuge - a);  // the tail (a - r < kHuge)
#ifdef MADV_HUGEPAGE
  ::madvise(reinterpret_cast<void*>(a), size, MADV_HUGEPAGE);  // advice: 4 KiB pages otherwise
#endif
  return new Chunk{reinterpret_cast<char*>(a), size, 0, 0};
}

void unmap_chunk(Chunk* c) {
  ::munmap(c->base, c->size);
  delete c;
}

// Hands back the pages wholly inside a freed block (its neighbours may share the pages at its
// ends), so a chunk that outlives some of its blocks (an engine's weights beside a destroyed
// context's arena) keeps only what is still in use resident. Freed ranges are never reused.
void release_pages(void* p, size_t n) {
  constexpr uintptr_t kPage = 4096;
  const auto b = reinterpret_cast<uintptr_t>(p);
  const uintptr_t lo = (b + kPage - 1) & ~(kPage - 1), hi = (b + n) & ~(kPage - 1);
  if (hi > lo) ::madvise(reinterpret_cast<void*>(lo), hi - lo, MADV_DONTNEED);
}

// A block of n bytes (a multiple of 64) from the current chunk, or from a new one; a block of
// more than half a chunk gets a chunk of its own and leaves the current one as it is.
std::shared_ptr<void> pooled(size_t n) {
  std::lock_guard<std::mutex> lock(g_mutex);
  Chunk* c = g_current;
  if (n > kChunk / 2) {
    c = map_chunk((n + kHuge - 1) / kHuge * kHuge);
  } else if (!c || c->size - c->used < n) {
    c = map_chunk(kChunk);
    if (c) {
      if (g_current && g_current->live == 0) unmap_chunk(g_current);
      g_current = c;
    }
  }
  if (!c) return nullptr;
  void* p = c->base + c->used;
  c->used += n;
  ++c->live;
  return std::shared_ptr<void>(p, [c, n](void* q) {
    std::lock_guard<std::mutex> l(g_mutex);
    if (--c->live == 0 && c != g_current)
      unmap_chunk(c);
    else
      release_pages(q, n);
  });
}

}  // namespace

std::shared_ptr<void> zeroed_memory(size_t bytes) {
  const size_t n = (std::max<size_t>(bytes, 1) + 63) / 64 * 64;
  if (n >= kPooled)
    if (auto p = pooled(n)) return p;
  void* p = std::aligned_alloc(64, n);
  if (!p) return nullptr;
  std::memset(p, 0, n);
  return std::shared_ptr<void>(p, std::free);
}

}  // namespace lithe
