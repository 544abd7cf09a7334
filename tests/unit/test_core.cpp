#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "core/memory.hpp"
#include "core/npy.hpp"
#include "core/tensor.hpp"

using namespace lithe;

TEST(Half, RoundTripsRepresentableValues) {
  for (float f : {0.0f, -0.0f, 1.0f, -2.5f, 65504.0f, 6.103515625e-05f, 5.960464477539063e-08f}) {
    EXPECT_EQ(static_cast<float>(Half(f)), f) << f;
  }
  EXPECT_TRUE(std::isinf(static_cast<float>(Half(1e6f))));
  EXPECT_TRUE(std::isnan(static_cast<float>(Half(NAN))));
  // 1 + 2^-11 is halfway between 1 and the next half: ties to even (1.0).
  EXPECT_EQ(static_cast<float>(Half(1.0f + 0.00048828125f)), 1.0f);
  EXPECT_EQ(static_cast<float>(BFloat16(1.0f)), 1.0f);
}

TEST(Tensor, RejectsOverflowingShapes) {
  EXPECT_THROW(Tensor(DType::kFloat32, {int64_t{1} << 40, int64_t{1} << 40}), Error);
  EXPECT_THROW(Tensor(DType::kFloat32, {-1, 3}), Error);
  EXPECT_THROW(checked_numel(Shape(9, 1), "x"), Error);
  EXPECT_EQ(checked_numel({2, 0, int64_t{1} << 62}, "x"), 0);
}

TEST(Tensor, CastSaturatesAndHandlesNaN) {
  Tensor t(DType::kFloat32, {3});
  t.data<float>()[0] = NAN;
  t.data<float>()[1] = 1e20f;
  t.data<float>()[2] = -3.7f;
  Tensor i = t.cast(DType::kInt32);
  EXPECT_EQ(i.data<int32_t>()[0], 0);
  EXPECT_EQ(i.data<int32_t>()[1], INT32_MAX);
  EXPECT_EQ(i.data<int32_t>()[2], -3);
}

TEST(Npy, RoundTrip) {
  Tensor t(DType::kFloat32, {2, 3});
  for (int i = 0; i < 6; ++i) t.data<float>()[i] = static_cast<float>(i) * 0.5f;
  Tensor u = parse_npy(to_npy(t), "mem");
  ASSERT_EQ(u.shape(), t.shape());
  for (int i = 0; i < 6; ++i) EXPECT_EQ(u.data<float>()[i], t.data<float>()[i]);
  Tensor s(DType::kInt64, {});
  s.data<int64_t>()[0] = -7;
  Tensor v = parse_npy(to_npy(s), "mem");
  EXPECT_EQ(v.shape(), Shape{});
  EXPECT_EQ(v.data<int64_t>()[0], -7);
}

TEST(Npy, RejectsMalformed) {
  EXPECT_THROW(parse_npy("garbage", "x"), Error);
  Tensor t(DType::kFloat32, {4});
  std::string b = to_npy(t);
  EXPECT_THROW(parse_npy(b.substr(0, b.size() - 3), "x"), Error);  // truncated data
  std::string bad = b;
  bad.replace(bad.find("(4,)"), 4, "(-4,)");
  EXPECT_THROW(parse_npy(bad, "x"), Error);
}

// Both forms of the block (aligned_alloc below 256 KiB, a populated mapping from there): zeroed,
// 64-byte aligned, writable to the last byte, released by the shared_ptr.
TEST(ZeroedMemory, ZeroedAlignedAndWritableOnBothSidesOfThePoolThreshold) {
  for (size_t bytes : {size_t{0}, size_t{2}, size_t{4096} + 3, (size_t{16} << 10) - 1,
                       size_t{16} << 10, (size_t{5} << 20) + 7, (size_t{20} << 20) + 1}) {
    std::shared_ptr<void> p = lithe::zeroed_memory(bytes);
    ASSERT_NE(p, nullptr) << bytes;
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(p.get()) % 64, 0u) << bytes;
    if (bytes == 0) continue;
    auto* b = static_cast<unsigned char*>(p.get());
    size_t nonzero = 0;
    for (size_t i = 0; i < bytes; ++i) nonzero += b[i] != 0;
    EXPECT_EQ(nonzero, 0u) << bytes;
    b[0] = 1;
    b[bytes - 1] = 2;
    EXPECT_EQ(b[0] + b[bytes - 1], 3) << bytes;
  }
}

// A freed block's pages go back to the OS even while its mapping lives on (a later block holds
// it): the pages wholly inside the block are no longer resident (mincore).
TEST(ZeroedMemory, FreedBlockPagesAreHandedBack) {
  const size_t bytes = size_t{6} << 20;
  std::shared_ptr<void> big = lithe::zeroed_memory(bytes);
  std::shared_ptr<void> after = lithe::zeroed_memory(size_t{64} << 10);  // keeps the mapping
  ASSERT_NE(big, nullptr);
  ASSERT_NE(after, nullptr);
  std::memset(big.get(), 7, bytes);
  const long page = ::sysconf(_SC_PAGESIZE);
  const auto b = reinterpret_cast<std::uintptr_t>(big.get());
  const std::uintptr_t lo = (b + page - 1) / page * page, hi = (b + bytes) / page * page;
  std::vector<unsigned char> vec((hi - lo) / page);
  auto resident = [&] {
    // ENOMEM: the range is no longer mapped (its whole mapping went): nothing resident.
    if (::mincore(reinterpret_cast<void*>(lo), hi - lo, vec.data()) != 0) {
      EXPECT_EQ(errno, ENOMEM);
      return size_t{0};
    }
    size_t n = 0;
    for (unsigned char v : vec) n += v & 1;
    return n;
  };
  EXPECT_EQ(resident(), vec.size());
  big.reset();
  EXPECT_EQ(resident(), 0u);
}

// Pooled blocks are cut from shared mappings: across several of them (more than 32 MiB in
// all), with blocks freed and new ones taken in between, every new block is zero and no two
// live blocks overlap (each keeps the pattern written into it).
TEST(ZeroedMemory, PooledBlocksAreZeroAndDisjointAcrossMappings) {
  struct Block {
    std::shared_ptr<void> p;
    size_t bytes;
    unsigned char value;
    bool holds(unsigned char v) const {
      const auto* b = static_cast<const unsigned char*>(p.get());
      for (size_t i = 0; i < bytes; ++i)
        if (b[i] != v) return false;
      return true;
    }
  };
  std::vector<Block> live;
  for (int i = 0; i < 60; ++i) {
    const size_t bytes = (size_t{1} << 20) * static_cast<size_t>(1 + i % 3) + 64 * i + 5;
    Block blk{lithe::zeroed_memory(bytes), bytes, static_cast<unsigned char>(i + 1)};
    ASSERT_NE(blk.p, nullptr);
    ASSERT_TRUE(blk.holds(0)) << "block " << i << " not zero";
    std::memset(blk.p.get(), blk.value, bytes);
    live.push_back(std::move(blk));
    if (i % 4 == 3) live.erase(live.begin() + i / 8);  // free one now and then
  }
  for (const Block& blk : live) EXPECT_TRUE(blk.holds(blk.value)) << "block " << int{blk.value};
}
