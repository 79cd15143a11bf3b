// badfree_test.cpp — a free of a pointer into a block (not its start) is reported and ignored,
// for every kind of block: the block stays allocated, its contents intact, and no later
// allocation is carved from it. (glibc aborts; freeing the whole block would hand it out again.)
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <thread>
#include <vector>

#include "heaputil.h"
#include "persist.h"

namespace {

class BadFreeTest : public ptest::HeapTest, public ::testing::WithParamInterface<size_t> {};

// Free p + off, then allocate more blocks of the same size: none may meet p's block.
void expect_ignored(persist_heap_t *h, char *p, size_t size, size_t off, uint64_t live_before) {
  memset(p, 0x5c, size);
  persist_free(h, p + off);
  EXPECT_EQ(live_before, ptest::stats_of(h).live_blocks) << "the interior free freed the block";
  std::vector<char *> more;
  for (int i = 0; i < 8; ++i) {
    auto *q = static_cast<char *>(persist_alloc(h, size));
    ASSERT_NE(nullptr, q);
    EXPECT_TRUE(q + size <= p || q >= p + size) << "a new block overlaps the one freed from inside";
    memset(q, 0xa3, size);
    more.push_back(q);
  }
  for (size_t i = 0; i < size; ++i)
    if (p[i] != 0x5c) FAIL() << "byte " << i << " of the block changed";
  for (char *q : more) persist_free(h, q);
  persist_free(h, p);
}

TEST_P(BadFreeTest, AnInteriorFreeIsIgnored) {
  const size_t size = GetParam();
  auto *p = static_cast<char *>(persist_alloc(h_, size));
  ASSERT_NE(nullptr, p);
  expect_ignored(h_, p, size, 16, live_blocks());
  EXPECT_HEAP_CONSISTENT(h_);
}

TEST_F(BadFreeTest, AnInteriorFreeFromAnotherThreadIsIgnored) {  // the remote-free path
  auto *p = static_cast<char *>(persist_alloc(h_, 48));
  ASSERT_NE(nullptr, p);
  memset(p, 0x5c, 48);
  const uint64_t before = live_blocks();
  std::thread([&] { persist_free(h_, p + 16); }).join();
  EXPECT_EQ(before, live_blocks());
  for (int i = 0; i < 64; ++i) {
    auto *q = static_cast<char *>(persist_alloc(h_, 48));
    ASSERT_NE(nullptr, q);
    EXPECT_TRUE(q + 48 <= p || q >= p + 48) << "a new block overlaps the one freed from inside";
  }
  for (int i = 0; i < 48; ++i) ASSERT_EQ(0x5c, p[i]);
  EXPECT_HEAP_CONSISTENT(h_);
}

// small (two classes), large, huge
INSTANTIATE_TEST_SUITE_P(Sizes, BadFreeTest, ::testing::Values(size_t{48}, size_t{1000}, size_t{100000},
                                                               size_t{8} << 20));

TEST_F(BadFreeTest, AnOverAlignedHugeBlockIsFreedByWhatWasReturned) {
  const size_t size = 8 << 20;
  for (size_t align : {size_t{1} << 16, size_t{1} << 21, size_t{1} << 23}) {
    SCOPED_TRACE(align);
    const uint64_t before = live_blocks();
    auto *p = static_cast<char *>(persist_alloc_aligned(h_, align, size));
    ASSERT_NE(nullptr, p);
    ASSERT_EQ(0u, reinterpret_cast<uintptr_t>(p) % align);
    expect_ignored(h_, p, size, 4096, before + 1);
    EXPECT_EQ(before, live_blocks()) << "the aligned pointer did not free its block";
  }
  EXPECT_HEAP_CONSISTENT(h_);
}

}  // namespace
