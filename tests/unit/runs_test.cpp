// runs_test.cpp — how a thread takes blocks from its runs: the lowest clear bit of the run's
// bitmap, found through the volatile word mask (Span::nonfull), on the fast path and on the slow
// path after a refill; runs parked as full and taken back after a free; the last, partly used
// word of a run whose capacity is not a multiple of 64.
//
// Every test keeps the set of live blocks and fails on the first block handed out twice, or on
// a block outside the heap's consistent state (persist_heap_check).
#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <set>
#include <vector>

#include "heaputil.h"
#include "persist.h"
#include "testutil.h"

namespace {

class RunsTest : public ptest::HeapTest {
 protected:
  // Allocate `size` bytes; false (with a message) if the block is already live.
  ::testing::AssertionResult take(size_t size, void **out) {
    void *p = persist_alloc(h_, size);
    if (!p) return ::testing::AssertionFailure() << "persist_alloc(" << size << ") failed";
    if (!live_.insert(p).second)
      return ::testing::AssertionFailure() << "block " << p << " handed out while live";
    *out = p;
    return ::testing::AssertionSuccess();
  }
  void give(void *p) {
    live_.erase(p);
    persist_free(h_, p);
  }
  std::set<void *> live_;
};

// Two full runs of 64-byte blocks; one block of the first is freed, so the first is taken back
// when the second runs out: the slow path takes that one block and fills its word, and the fast
// path must not then take from the word again.
TEST_F(RunsTest, ARefilledRunsLastBlockIsTakenOnce) {
  const size_t kSize = 64, kRun = 65536 / kSize;
  std::vector<void *> first(kRun), second(kRun);
  for (auto &p : first) ASSERT_TRUE(take(kSize, &p));
  for (auto &p : second) ASSERT_TRUE(take(kSize, &p));
  for (size_t i : {size_t{5}, size_t{700}, kRun - 1}) {
    give(first[i]);
    void *again;
    ASSERT_TRUE(take(kSize, &again));
    void *more;
    ASSERT_TRUE(take(kSize, &more));
    first[i] = again;
    second.push_back(more);
  }
  ASSERT_HEAP_CONSISTENT(h_);
}

// Classes whose runs end in a partly used bitmap word (48 B: 1365 blocks; 80 B: 819): every block
// of a run, then more, never past a run's last block (the blocks would overlap the next span).
TEST_F(RunsTest, PartlyUsedLastWordsAreNeverPassed) {
  for (size_t size : {48, 80, 112, 320, 1280}) {
    std::vector<void *> got(3 * 65536 / size + 7);
    for (auto &p : got) ASSERT_TRUE(take(size, &p)) << size;
    for (void *p : got) ASSERT_GE(persist_usable_size(h_, p), size);
    std::set<uintptr_t> starts;
    for (void *p : got) starts.insert(reinterpret_cast<uintptr_t>(p));
    for (auto it = starts.begin(); std::next(it) != starts.end(); ++it)
      ASSERT_LE(*it + size, *std::next(it)) << "blocks of " << size << " bytes overlap";
    for (void *p : got) give(p);
  }
  ASSERT_HEAP_CONSISTENT(h_);
}

// The seed workload's pattern in several classes: a table of blocks, random slots freed and
// refilled, so runs fill, park, get blocks back and are refilled from, over and over.
TEST_F(RunsTest, RandomChurnNeverHandsOutALiveBlock) {
  std::mt19937_64 rng(7);
  const size_t kSlots = 6000;
  const size_t kSizes[] = {16, 48, 64, 208, 1024, 3072};
  std::vector<void *> table(kSlots, nullptr);
  const uint64_t baseline = ptest::stats_of(h_).live_blocks;
  for (int op = 0; op < 400000; ++op) {
    size_t i = rng() % kSlots;
    if (table[i]) {
      give(table[i]);
      table[i] = nullptr;
    } else {
      ASSERT_TRUE(take(kSizes[i % 6], &table[i])) << "op " << op;
    }
  }
  ASSERT_HEAP_CONSISTENT(h_);
  EXPECT_EQ(baseline + live_.size(), ptest::stats_of(h_).live_blocks);
  for (void *p : table)
    if (p) give(p);
  ASSERT_HEAP_CONSISTENT(h_);
}

}  // namespace
