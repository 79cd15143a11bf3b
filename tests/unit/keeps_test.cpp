// keeps_test.cpp — what keeps a block alive through a collection, one case per way a program can
// refer to it (README, "What keeps a block"), and pointer-free blocks (persist_alloc_noscan):
// neither scanned by the mark nor rewritten by relocation.
//
// Each case: a root names a holder block; the holder refers to a target block in one way; the
// heap is closed, opened again and collected; the target is kept or freed.
#include <gtest/gtest.h>

#include <cstring>
#include <functional>

#include "heap.h"
#include "heaputil.h"
#include "persist.h"
#include "persist.hpp"
#include "walk.h"

namespace {

using persist::Heap;

class KeepsTest : public ptest::HeapTest {
 protected:
  Heap *heap() { return static_cast<Heap *>(h_); }
  uint64_t offset_of(const void *p) {
    return reinterpret_cast<uintptr_t>(p) - reinterpret_cast<uintptr_t>(persist_heap_base(h_));
  }
  bool live_at(uint64_t off) {
    persist::BlockRef b;
    return persist::find_block(heap()->image(), off, &b) && b.live && b.offset == off;
  }
  void collect() {
    uint64_t freed = 0;
    ASSERT_EQ(0, persist_heap_gc(h_, 0, &freed));
  }
  // The target (256 bytes) survives a collection when the holder (named by a root) holds what
  // store() writes into it?
  bool kept(const std::function<void(uint8_t *holder, void *target)> &store, size_t holder_size = 64,
            bool holder_noscan = false) {
    void *target = persist_alloc(h_, 256);
    auto *holder = static_cast<uint8_t *>(holder_noscan ? persist_alloc_noscan(h_, holder_size)
                                                        : persist_alloc(h_, holder_size));
    EXPECT_NE(nullptr, target);
    EXPECT_NE(nullptr, holder);
    if (!target || !holder) return false;
    memset(target, 0x5a, 256);
    memset(holder, 0, holder_size);
    store(holder, target);
    EXPECT_EQ(0, persist_heap_root_set(h_, "holder", holder));
    const uint64_t t = offset_of(target), hd = offset_of(holder);
    reopen();
    collect();
    EXPECT_TRUE(live_at(hd)) << "the root's block itself is kept";
    return live_at(t);
  }
  void put(uint8_t *at, uint64_t v) { memcpy(at, &v, sizeof v); }
};

// ---- kept ----------------------------------------------------------------------------------

TEST_F(KeepsTest, ARawPointerKeepsItsTarget) {
  EXPECT_TRUE(kept([&](uint8_t *h, void *t) { put(h + 8, reinterpret_cast<uintptr_t>(t)); }));
}

TEST_F(KeepsTest, AnInteriorPointerKeepsItsTarget) {
  EXPECT_TRUE(kept([&](uint8_t *h, void *t) { put(h, reinterpret_cast<uintptr_t>(t) + 200); }));
}

TEST_F(KeepsTest, ATaggedOffsetKeepsItsTarget) {
  EXPECT_TRUE(kept([&](uint8_t *h, void *t) { put(h + 56, PERSIST_OFFSET(h_, t)); }));
}

TEST_F(KeepsTest, APersistPtrKeepsItsTarget) {
  EXPECT_TRUE(kept([&](uint8_t *h, void *t) {
    auto *link = new (h + 16) persist::ptr<uint8_t>;
    *link = static_cast<uint8_t *>(t);
  }));
}

TEST_F(KeepsTest, ARootKeepsItsBlockWhatEverPointsToIt) {
  void *t = persist_alloc(h_, 256);
  ASSERT_NE(nullptr, t);
  ASSERT_EQ(0, persist_heap_root_set(h_, "target", t));
  const uint64_t off = offset_of(t);
  reopen();
  collect();
  EXPECT_TRUE(live_at(off));
}

// ---- not kept: references the conservative mark cannot recognise ----------------------------

TEST_F(KeepsTest, AnXoredPointerDoesNotKeepItsTarget) {
  EXPECT_FALSE(kept([&](uint8_t *h, void *t) { put(h, reinterpret_cast<uintptr_t>(t) ^ 0x5bd1e995ull); }));
}

TEST_F(KeepsTest, APointerTaggedInTheHighBitsDoesNotKeepItsTarget) {
  EXPECT_FALSE(kept([&](uint8_t *h, void *t) { put(h, reinterpret_cast<uintptr_t>(t) | (uint64_t{0x12} << 56)); }));
}

TEST_F(KeepsTest, APointerCompressedTo32BitsDoesNotKeepItsTarget) {
  EXPECT_FALSE(kept([&](uint8_t *h, void *t) {
    uint32_t c = static_cast<uint32_t>(offset_of(t) >> 4);
    memcpy(h, &c, sizeof c);
  }));
}

TEST_F(KeepsTest, APlainOffsetDoesNotKeepItsTarget) {
  EXPECT_FALSE(kept([&](uint8_t *h, void *t) { put(h, offset_of(t)); }));
}

TEST_F(KeepsTest, AnUntaggedSelfRelativeDeltaDoesNotKeepItsTarget) {
  EXPECT_FALSE(kept([&](uint8_t *h, void *t) {
    put(h, reinterpret_cast<uintptr_t>(t) - reinterpret_cast<uintptr_t>(h));
  }));
}

TEST_F(KeepsTest, AnUnalignedPointerDoesNotKeepItsTarget) {
  EXPECT_FALSE(kept([&](uint8_t *h, void *t) { put(h + 3, reinterpret_cast<uintptr_t>(t)); }));
}

TEST_F(KeepsTest, APointerKeptOnlyOutsideTheHeapDoesNotKeepItsTarget) {
  static uintptr_t in_a_global;  // as good as a file: not in the heap
  EXPECT_FALSE(kept([&](uint8_t *, void *t) { in_a_global = reinterpret_cast<uintptr_t>(t); }));
}

TEST_F(KeepsTest, APointerKeptOnlyInAnotherHeapDoesNotKeepItsTarget) {
  ptest::TempDir other_dir;
  persist_options_t o = ptest::create_opts();
  o.addr = 0x300000000000ull;
  persist_heap_t *other = nullptr;
  ASSERT_EQ(0, persist_open(other_dir.file("other").c_str(), &o, &other));
  EXPECT_FALSE(kept([&](uint8_t *, void *t) {
    auto *w = static_cast<uintptr_t *>(persist_heap_root(other, "link", sizeof(uintptr_t)));
    ASSERT_NE(nullptr, w);
    *w = reinterpret_cast<uintptr_t>(t);
  }));
  EXPECT_EQ(0, persist_close(other));
}

// ---- pointer-free blocks -------------------------------------------------------------------

TEST_F(KeepsTest, APointerFreeBlockIsKeptButNotScanned) {
  // The holder itself is pointer-free: its raw pointer is bytes, and keeps nothing.
  EXPECT_FALSE(kept([&](uint8_t *h, void *t) { put(h + 8, reinterpret_cast<uintptr_t>(t)); }, 64, true));
}

TEST_F(KeepsTest, AHugePointerFreeBlockIsNotScannedEither) {
  EXPECT_FALSE(kept([&](uint8_t *h, void *t) { put(h + (6u << 20), reinterpret_cast<uintptr_t>(t)); },
                    size_t{8} << 20, true));
}

TEST_F(KeepsTest, APointerFreeBlockTakesWholePagesAndStaysPointerFreeThroughRealloc) {
  auto *p = static_cast<uint8_t *>(persist_alloc_noscan(h_, 100));
  ASSERT_NE(nullptr, p);
  EXPECT_EQ(0u, reinterpret_cast<uintptr_t>(p) % 4096);
  EXPECT_GE(persist_usable_size(h_, p), 4096u);
  void *t = persist_alloc(h_, 256);
  put(p, reinterpret_cast<uintptr_t>(t));
  p = static_cast<uint8_t *>(persist_realloc(h_, p, 300000));  // moves or grows in place
  ASSERT_NE(nullptr, p);
  p = static_cast<uint8_t *>(persist_realloc(h_, p, size_t{9} << 20));  // becomes huge
  ASSERT_NE(nullptr, p);
  ASSERT_EQ(0, persist_heap_root_set(h_, "buf", p));
  const uint64_t off = offset_of(t), buf = offset_of(p);
  reopen();
  collect();
  EXPECT_TRUE(live_at(buf));
  EXPECT_FALSE(live_at(off)) << "the reallocated block was scanned: it lost its pointer-free mark";
}

// Relocation shifts pointers in ordinary blocks and leaves every word of a pointer-free one alone,
// in large and huge blocks alike.
TEST_F(KeepsTest, RelocationNeverRewritesAPointerFreeBlock) {
  const uintptr_t base = reinterpret_cast<uintptr_t>(persist_heap_base(h_));
  struct Bufs {
    uint64_t *plain, *large, *huge;
  };
  auto *b = static_cast<Bufs *>(persist_heap_root(h_, "bufs", sizeof(Bufs)));
  ASSERT_NE(nullptr, b);
  const size_t kLarge = 64 << 10, kHuge = size_t{6} << 20;
  b->plain = static_cast<uint64_t *>(persist_alloc(h_, kLarge));
  b->large = static_cast<uint64_t *>(persist_alloc_noscan(h_, kLarge));
  b->huge = static_cast<uint64_t *>(persist_alloc_noscan(h_, kHuge));
  ASSERT_TRUE(b->plain && b->large && b->huge);
  // Bytes that happen to look like addresses inside the heap, at every word.
  for (size_t i = 0; i < kLarge / 8; ++i) b->plain[i] = b->large[i] = base + 64 + i * 8;
  for (size_t i = 0; i < kHuge / 8; ++i) b->huge[i] = base + 64 + i * 8;
  ASSERT_EQ(0, persist_close(h_));
  h_ = nullptr;
  persist_options_t o{};
  o.addr = 0x340000000000ull;
  o.relocate = PERSIST_RELOCATE_REWRITE;
  ASSERT_EQ(0, persist_open(path_.c_str(), &o, &h_));
  ASSERT_EQ(o.addr, reinterpret_cast<uintptr_t>(persist_heap_base(h_)));
  b = static_cast<Bufs *>(persist_heap_root_get(h_, "bufs", nullptr));
  ASSERT_NE(nullptr, b);
  size_t plain_moved = 0, large_kept = 0, huge_kept = 0;
  for (size_t i = 0; i < kLarge / 8; ++i) {
    plain_moved += b->plain[i] == o.addr + 64 + i * 8;
    large_kept += b->large[i] == base + 64 + i * 8;
  }
  for (size_t i = 0; i < kHuge / 8; ++i) huge_kept += b->huge[i] == base + 64 + i * 8;
  EXPECT_EQ(kLarge / 8, plain_moved) << "an ordinary block's pointers are shifted";
  EXPECT_EQ(kLarge / 8, large_kept) << "a pointer-free large block was rewritten";
  EXPECT_EQ(kHuge / 8, huge_kept) << "a pointer-free huge block was rewritten";
  addr_ = o.addr;
}

}  // namespace
