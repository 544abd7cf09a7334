#include "core/memory.hpp"

#include <sys/mman.h>

#include <cstdlib>
#include <cstring>

namespace lithe {

std::shared_ptr<void> zeroed_memory(size_t bytes) {
  // From one huge page up: smaller mappings gain nothing from huge pages, and measured on
  // small models an mmap'd block costs more at first touch than a malloc'd one zeroed here.
  constexpr size_t kMapped = size_t{2} << 20;
  if (bytes >= kMapped) {
    void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p != MAP_FAILED) {
      // Both calls are advice: without them the pages still come, zeroed, on first touch.
#ifdef MADV_HUGEPAGE
      ::madvise(p, bytes, MADV_HUGEPAGE);
#endif
#ifdef MADV_POPULATE_WRITE
      ::madvise(p, bytes, MADV_POPULATE_WRITE);
#endif
      return std::shared_ptr<void>(p, [bytes](void* q) { ::munmap(q, bytes); });
    }
  }
  const size_t n = (bytes + 63) / 64 * 64;
  void* p = std::aligned_alloc(64, n == 0 ? 64 : n);
  if (!p) return nullptr;
  std::memset(p, 0, n);
  return std::shared_ptr<void>(p, std::free);
}

}  // namespace lithe
