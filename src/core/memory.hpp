// Large zero-filled blocks that are cheap to fault in.
#pragma once
#include <cstddef>
#include <memory>

namespace lithe {

/// `bytes` of zero-filled memory, 64-byte aligned, with every page already faulted in; null
/// when the allocation fails. Blocks of 256 KiB or more are an anonymous mapping with
/// transparent huge pages where the kernel offers them, populated by one call: faulting in
/// hundreds of MB one 4 KiB page at a time cost more than the work done in them (in a VM
/// each fault exits to the hypervisor; ResNet-50's load spent half its time in the memset
/// of its Winograd weights). Smaller blocks come from aligned_alloc and are zeroed.
std::shared_ptr<void> zeroed_memory(size_t bytes);

}  // namespace lithe
