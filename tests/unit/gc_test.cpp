// gc_test.cpp — the collector (core/gc.cpp) on heap handles: when a collection at open is due
// (pacing: O(1) from the superblock, once per doubling of a large heap, always for small heaps
// and for heaps without roots), and that a collection on a damaged heap frees nothing.
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "heap.h"
#include "heaputil.h"
#include "persist.h"

namespace {

using persist::Heap;

class GcTest : public ptest::HeapTest {
 protected:
  Heap *heap() { return static_cast<Heap *>(h_); }
  bool due() { return persist::heap_gc_due(heap()); }
  // `mib` MiB of reachable 1 MiB blocks under the root "data" (replacing what it held).
  void reachable(int mib) {
    auto **v = static_cast<void **>(persist_alloc(h_, sizeof(void *) * mib));
    ASSERT_NE(nullptr, v);
    for (int i = 0; i < mib; ++i) ASSERT_NE(nullptr, v[i] = persist_alloc(h_, 1 << 20));
    ASSERT_EQ(0, persist_heap_root_set(h_, "data", v));
  }
  void garbage(int mib) {
    for (int i = 0; i < mib; ++i) ASSERT_NE(nullptr, persist_alloc(h_, 1 << 20));
  }
  void collect() {
    uint64_t freed = 0;
    ASSERT_EQ(0, persist_heap_gc(h_, 0, &freed));
  }
};

TEST_F(GcTest, AHeapWithoutRootsIsResetAtEveryOpen) {
  garbage(40);
  reopen();
  EXPECT_TRUE(due());
  collect();
  reopen();
  EXPECT_TRUE(due()) << "a reset is O(metadata): done at every open";
}

TEST_F(GcTest, ASmallHeapIsCollectedAtEveryOpen) {
  reachable(4);
  reopen();
  EXPECT_TRUE(due());
  collect();
  reopen();
  EXPECT_TRUE(due()) << "at most kGcAlwaysBelow: collected every time";
}

// A large heap is collected at the open after it was built (never collected), then not again
// until its extent has grown by what that collection kept.
TEST_F(GcTest, ALargeHeapIsCollectedOncePerDoubling) {
  reachable(48);
  reopen();
  EXPECT_TRUE(due()) << "never collected";
  collect();
  const uint64_t kept = heap()->sb.gc_kept, extent = heap()->sb.gc_extent;
  EXPECT_GE(kept, uint64_t{48} << 20);
  EXPECT_EQ(extent, heap()->size.load());
  for (int i = 0; i < 3; ++i) {
    reopen();
    EXPECT_FALSE(due()) << "restart " << i << " after the collection: nothing grew";
  }
  // Garbage that the free space absorbs, or that grows the extent by less than what was kept.
  garbage(20);
  reopen();
  EXPECT_FALSE(due()) << "grown by " << (heap()->size.load() - extent) << " of " << kept;
  garbage(40);
  reopen();
  EXPECT_TRUE(due()) << "grown by " << (heap()->size.load() - extent) << ", more than the " << kept
                     << " kept";
  collect();
  reopen();
  EXPECT_FALSE(due());
  size_t sz = 0;
  auto **v = static_cast<void **>(persist_heap_root_get(h_, "data", &sz));
  ASSERT_NE(nullptr, v);
  EXPECT_EQ(48u * sizeof(void *), sz);
}

// A collection on a heap with a damaged segment must not sweep the segments before the damage:
// a block there that only the damaged segment's blocks point to would look unreachable.
TEST_F(GcTest, ADamagedHeapIsNotSwept) {
  void **holder = static_cast<void **>(persist_alloc(h_, 64));
  void *only_through_large = persist_alloc(h_, 64);  // segment 0
  ASSERT_TRUE(holder && only_through_large);
  for (int i = 0; i < 70; ++i) ASSERT_NE(nullptr, persist_alloc(h_, 64 << 10));  // fill segment 0
  void **large = static_cast<void **>(persist_alloc(h_, 64 << 10));
  ASSERT_NE(nullptr, large);
  const uint64_t large_off = static_cast<uint8_t *>(static_cast<void *>(large)) - heap()->base;
  ASSERT_GE(large_off / persist::kSegmentSize, 1u) << "the large block must be past segment 0";
  large[0] = only_through_large;
  holder[0] = large;
  ASSERT_EQ(0, persist_heap_root_set(h_, "holder", holder));
  reopen();
  // Damage the large block's head descriptor: the walk and find_block both reject it.
  const uint64_t page = large_off / persist::kPageSize;
  persist::SegmentHeader *sh = heap()->seg_header(page / persist::kSegmentPages);
  persist::PageDesc saved = sh->desc[page % persist::kSegmentPages];
  sh->desc[page % persist::kSegmentPages].pages = 0;
  uint64_t freed = 0;
  EXPECT_NE(0, persist_heap_gc(h_, 0, &freed));
  sh->desc[page % persist::kSegmentPages] = saved;
  persist::BlockRef b;
  const uint64_t off = static_cast<uint8_t *>(only_through_large) - heap()->base;
  ASSERT_TRUE(persist::find_block(heap()->image(), off, &b));
  EXPECT_TRUE(b.live) << "a block reachable through the damaged segment was freed";
}

}  // namespace
