// Zero-filled blocks that are cheap to fault in.
#pragma once
#include <cstddef>
#include <memory>

namespace lithe {

/// `bytes` of zero-filled memory, 64-byte aligned; null when the allocation fails. Blocks of
/// 16 KiB or more are cut, in order, from anonymous mappings of 32 MiB aligned to 2 MiB and
/// advised to use transparent huge pages: a fresh 4 KiB page costs about 10 us on first touch
/// in this VM (the hypervisor maps each one), a fresh 2 MiB page about 0.2 ms, so a model's
/// packed weights, arena and scratch come in some 30 times faster (8 MiB written once: 22 ms
/// on 4 KiB pages, 0.75 ms on huge pages). A freed block's own pages go back to the OS at
/// once; a mapping is unmapped when its last block is freed. Smaller blocks come from
/// aligned_alloc, zeroed.
std::shared_ptr<void> zeroed_memory(size_t bytes);

}  // namespace lithe
