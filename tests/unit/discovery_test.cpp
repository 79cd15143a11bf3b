// discovery_test.cpp — discovery after a clean close starts where the last run left room
// (Superblock::free_hint, heap.h): a restart of a large full heap discovers O(1) segments, a
// block below the hint can still be freed, and room below the hint is used before the heap grows.
#include <gtest/gtest.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

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

TEST_F(DiscoveryTest, AfterAKillDiscoveryStartsAtTheBeginning) {
  build();
  ASSERT_EQ(0, persist_close(h_));
  h_ = nullptr;
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {  // a run that dies without a clean close: its hint must not be trusted
    persist_heap_t *c = nullptr;
    if (persist_open(path_.c_str(), nullptr, &c) != 0) _exit(1);
    persist_alloc(c, kBlock);
    raise(SIGKILL);
  }
  int st = 0;
  ASSERT_EQ(pid, waitpid(pid, &st, 0));
  ASSERT_TRUE(WIFSIGNALED(st));
  ASSERT_EQ(0, persist_open(path_.c_str(), nullptr, &h_));
  EXPECT_EQ(0u, heap()->prefix_end);
  ASSERT_NE(nullptr, persist_alloc(h_, kBlock));
  EXPECT_HEAP_CONSISTENT(h_);
}

}  // namespace
