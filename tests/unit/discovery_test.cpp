// discovery_test.cpp — discovery starts where the last run left room (Superblock::free_hint,
// heap.h), after a clean close and after a kill: a restart of a large full heap discovers O(1)
// segments, a block below the hint can still be freed, room below the hint is used before the
// heap grows, and the hint never names the inside of a range.
#include <gtest/gtest.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <functional>
#include <vector>

#include "heap.h"
#include "heaputil.h"
#include "persist.h"

namespace {

using persist::Heap;

class DiscoveryTest : public ptest::HeapTest {
 protected:
  static constexpr size_t kBlock = 128;
  static constexpr size_t kBlocks = 600000;  // about 80 MiB: some twenty full segments
  Heap *heap() { return static_cast<Heap *>(h_); }
  uint64_t discovered_segments() {
    const Heap *h = heap();
    return h->prefix_next + (h->discovered - h->prefix_end);
  }
  void **build() {
    auto **v = static_cast<void **>(persist_alloc(h_, kBlocks * sizeof(void *)));
    EXPECT_NE(nullptr, v);
    for (size_t i = 0; i < kBlocks; ++i) v[i] = persist_alloc(h_, kBlock);
    EXPECT_EQ(0, persist_heap_root_set(h_, "v", v));
    return v;
  }
  void **root() { return static_cast<void **>(persist_heap_root_get(h_, "v", nullptr)); }
  void run_and_kill(const std::function<void(persist_heap_t *)> &body);
  void restart_after_kill(size_t blocks, void (*edit)(Heap *));
};

TEST_F(DiscoveryTest, ACleanRestartDiscoversOnlyWhereThereIsRoom) {
  build();
  reopen();
  const uint64_t segments = heap()->image().segment_count();
  ASSERT_GE(segments, 16u);
  ASSERT_NE(nullptr, persist_alloc(h_, kBlock));
  for (size_t size : {24, 300, 1000, 3000})  // new runs of other classes: carved from the room
    ASSERT_NE(nullptr, persist_alloc(h_, size));
  EXPECT_LE(discovered_segments(), 2u) << "of " << segments << ": the restart walked the full ones";
  EXPECT_GT(heap()->prefix_end, 0u);
}

TEST_F(DiscoveryTest, ABlockBelowTheHintIsFreedAndItsRoomUsedBeforeTheHeapGrows) {
  build();
  reopen();
  void **v = root();
  ASSERT_NE(nullptr, v);
  // Free every 8th block of the first half: all below the hint.
  size_t freed = 0;
  for (size_t i = 0; i < kBlocks / 2; i += 8, ++freed) {
    persist_free(h_, v[i]);
    v[i] = nullptr;
  }
  EXPECT_HEAP_CONSISTENT(h_);
  reopen();
  v = root();
  const uint64_t size0 = heap()->size.load();
  size_t before_growth = 0;
  std::vector<void *> got;
  while (heap()->size.load() == size0 && before_growth < 4 * freed) {
    void *p = persist_alloc(h_, kBlock);
    ASSERT_NE(nullptr, p);
    got.push_back(p);
    ++before_growth;
  }
  EXPECT_GE(before_growth, freed) << "the heap grew before the room below the hint was used";
  for (void *p : got) persist_free(h_, p);
}

// A run of the heap in a child that `body` drives, then SIGKILL (the heap left dirty); the
// fixture's heap is closed first and opened again afterwards. `body` _exits non-zero on failure.
void DiscoveryTest::run_and_kill(const std::function<void(persist_heap_t *)> &body) {
  ASSERT_EQ(0, persist_close(h_));
  h_ = nullptr;
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    persist_heap_t *c = nullptr;
    if (persist_open(path_.c_str(), nullptr, &c) != 0) _exit(1);
    body(c);
    raise(SIGKILL);
  }
  int st = 0;
  ASSERT_EQ(pid, waitpid(pid, &st, 0));
  ASSERT_TRUE(WIFSIGNALED(st)) << "child exit " << WEXITSTATUS(st);
  ASSERT_EQ(0, persist_open(path_.c_str(), nullptr, &h_));
}

// A run that dies without its clean mark: the hint it kept (moved to where it grew) is where the
// next run starts. The dying run allocates `blocks` (enough to add segments, or not) first.
void DiscoveryTest::restart_after_kill(size_t blocks, void (*edit)(Heap *)) {
  build();
  run_and_kill([&](persist_heap_t *c) {
    for (size_t i = 0; i < blocks; ++i)
      if (!persist_alloc(c, kBlock)) _exit(2);
    if (edit) edit(static_cast<Heap *>(c));
  });
}

TEST_F(DiscoveryTest, AfterAKillDiscoveryStartsWhereTheDeadRunLeftRoom) {
  for (size_t blocks : {size_t{10}, kBlocks / 4}) {  // without and with growth in the dying run
    SCOPED_TRACE(blocks);
    restart_after_kill(blocks, nullptr);
    const uint64_t segments = heap()->image().segment_count();
    ASSERT_GE(segments, 16u);
    ASSERT_NE(nullptr, persist_alloc(h_, kBlock));
    for (size_t size : {24, 300, 1000, 3000}) ASSERT_NE(nullptr, persist_alloc(h_, size));
    EXPECT_LE(discovered_segments(), 2u) << "of " << segments << ": the restart walked the full ones";
    void **v = root();
    ASSERT_NE(nullptr, v);
    persist_free(h_, v[0]);  // below the hint: found by lookup
    v[0] = nullptr;
    EXPECT_HEAP_CONSISTENT(h_);
    ASSERT_EQ(0, persist_close(h_));
    h_ = nullptr;
    unlink(path_.c_str());
    open();
  }
}

TEST_F(DiscoveryTest, AfterAKillARunThatDidNotKeepTheHintIsNotTrusted) {
  // An older library's run (or a repaired file) leaves hint_open behind the opens count.
  restart_after_kill(10, [](Heap *c) {
    persist::heap_update_super(c, [](persist::Superblock &sb, uint64_t) { sb.hint_open = 0; }, 0);
  });
  ASSERT_NE(nullptr, persist_alloc(h_, kBlock));
  EXPECT_EQ(0u, heap()->prefix_end);
  EXPECT_HEAP_CONSISTENT(h_);
}

// The hint must name a segment start at every moment of a run: when the free range it names is
// merged into the one before it, it moves to that range's start. Else, after a kill, discovery
// would start inside what a huge block now holds — here a copy of a real segment header.
class HintRangeTest : public DiscoveryTest, public ::testing::WithParamInterface<bool> {};

TEST_P(HintRangeTest, AHintNeverNamesTheInsideOfARange) {
  const bool second_first = GetParam();  // merged as the next range, or as the previous one
  constexpr size_t kTwo = 6 << 20, kFour = 14 << 20;
  constexpr uint64_t kPattern = 0x5a5a5a5a12345678ull;
  run_and_kill([&](persist_heap_t *c) {
    Heap *h = static_cast<Heap *>(c);
    auto seg_of = [h](void *p) { return h->off(p) / persist::kSegmentSize; };
    void *a = persist_alloc(c, kTwo), *b = persist_alloc(c, kTwo);
    if (!a || !b || seg_of(b) != seg_of(a) + 2) _exit(2);
    const uint64_t sa = seg_of(a), sb = seg_of(b);
    auto set_hint = [](persist::Superblock &s, uint64_t v) { s.free_hint = v; };
    // As a clean close would record it: the free range (or huge block) at sb has room.
    if (second_first) persist_free(c, b), persist::heap_update_super(h, set_hint, sb), persist_free(c, a);
    else persist_free(c, a), persist::heap_update_super(h, set_hint, sb), persist_free(c, b);
    if (h->seg_header(sa)->segments != 4) _exit(3);  // the two ranges merged
    if (h->sb.free_hint == sb) _exit(4);             // ... and the hint still names sb
    auto *big = static_cast<uint64_t *>(persist_alloc(c, kFour));
    if (seg_of(big) != sa) _exit(5);
    for (size_t i = 0; i < kFour / 8; ++i) big[i] = kPattern ^ i;
    // What once was sb's header, now data, reads as a real normal segment's header.
    uint8_t *inside = h->base + sb * persist::kSegmentSize;
    memcpy(inside, h->base, persist::kFirstDataPage * persist::kPageSize);
    if (persist_heap_root_set(c, "big", big) != 0) _exit(6);
  });
  auto *big = static_cast<uint64_t *>(persist_heap_root_get(h_, "big", nullptr));
  ASSERT_NE(nullptr, big);
  std::vector<uint64_t> copy(big, big + kFour / 8);
  std::vector<void *> got;
  for (size_t size : {16, 128, 1000, 5000, 40000, 300000})
    for (int i = 0; i < 64; ++i) got.push_back(persist_alloc(h_, size));
  for (void *p : got) {
    ASSERT_NE(nullptr, p);
    memset(p, 0xee, 16);
  }
  EXPECT_TRUE(std::equal(copy.begin(), copy.end(), big)) << "a new block was carved from the huge one";
  EXPECT_HEAP_CONSISTENT(h_);
}

INSTANTIATE_TEST_SUITE_P(Merges, HintRangeTest, ::testing::Bool());

}  // namespace
