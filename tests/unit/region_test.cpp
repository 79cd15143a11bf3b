// region_test.cpp — heaps over caller-provided memory (persist_open_region): formatting, running
// out of space cleanly (NULL + ENOMEM, never a crash), reuse after freeing, and attaching again to
// the same region.
#include <gtest/gtest.h>
#include <sys/mman.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "heaputil.h"
#include "persist.h"
#include "testutil.h"

namespace {

struct Blk {
  void *p;
  size_t size;
  uint64_t seed;
};

class RegionTest : public ::testing::Test {
 protected:
  void map(size_t size) {
    size_ = size;
    mem_ = mmap(nullptr, size_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    ASSERT_NE(MAP_FAILED, mem_);
  }
  void TearDown() override {
    if (h_) {
      EXPECT_EQ(0, persist_close(h_));
    }
    if (mem_ && mem_ != MAP_FAILED) munmap(mem_, size_);
  }
  // A fresh region of `size` bytes with a new heap on it (the previous one closed and unmapped).
  void reset(size_t size) {
    if (h_) {
      EXPECT_EQ(0, persist_close(h_));
      h_ = nullptr;
    }
    if (mem_ && mem_ != MAP_FAILED) munmap(mem_, size_);
    mem_ = nullptr;
    map(size);
    open(PERSIST_OPEN_CREATE);
  }
  void open(unsigned flags) {
    int rc = persist_open_region(mem_, size_, flags, &h_);
    ASSERT_EQ(0, rc) << ptest::err_text(rc);
    ASSERT_NE(nullptr, h_);
  }
  // Allocate blocks of sizes drawn by next_size until the heap says ENOMEM; fill each.
  template <class F>
  std::vector<Blk> fill_up(F next_size, uint64_t seed0, size_t *failed_size) {
    std::vector<Blk> out;
    for (uint64_t i = 0;; ++i) {
      size_t s = next_size(i);
      errno = 0;
      void *p = persist_alloc(h_, s);
      if (!p) {
        EXPECT_EQ(ENOMEM, errno) << "allocation of " << s << " failed with the wrong errno";
        *failed_size = s;
        return out;
      }
      EXPECT_TRUE(persist_contains(h_, p));
      EXPECT_GE(static_cast<char *>(p), static_cast<char *>(mem_));
      EXPECT_LE(static_cast<char *>(p) + s, static_cast<char *>(mem_) + size_)
          << "block of " << s << " at " << p << " runs past the region";
      ptest::fill_pattern(p, seed0 + i, 0, s);
      out.push_back({p, s, seed0 + i});
      if (out.size() > 10000000) {
        ADD_FAILURE() << "the region never filled up";
        return out;
      }
    }
  }
  void verify(const std::vector<Blk> &blocks) {
    for (const Blk &b : blocks)
      ASSERT_EQ(SIZE_MAX, ptest::check_pattern(b.p, b.seed, 0, b.size))
          << "block " << b.p << " of " << b.size << " bytes corrupted";
  }

  void *mem_ = nullptr;
  size_t size_ = 0;
  persist_heap_t *h_ = nullptr;
};

TEST_F(RegionTest, FormatsAnEmptyRegionAtItsAddress) {
  map(16 << 20);
  open(PERSIST_OPEN_CREATE);
  EXPECT_EQ(mem_, persist_heap_base(h_));
  persist_stats_t st = ptest::stats_of(h_);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(mem_), st.base);
  EXPECT_LE(st.mapped_bytes, size_);
  EXPECT_EQ(0u, st.live_blocks);
  int local = 0;
  EXPECT_FALSE(persist_contains(h_, &local));
  EXPECT_FALSE(persist_contains(h_, static_cast<char *>(mem_) + size_));
  ASSERT_HEAP_CONSISTENT(h_);
}

TEST_F(RegionTest, AllocatesUntilENOMEMThenFreesAllAndReopensWithData) {
  map(16 << 20);
  open(PERSIST_OPEN_CREATE);
  ptest::Rng rng(42);
  std::vector<size_t> drawn;
  auto mixed = [&](uint64_t) {
    uint64_t r = rng.below(1000);
    size_t s = r < 700   ? rng.range(1, 512)
               : r < 950 ? rng.range(513, 16384)
                         : rng.range(16385, 300000);
    drawn.push_back(s);
    return s;
  };
  size_t failed = 0;
  std::vector<Blk> blocks = fill_up(mixed, 1, &failed);
  ASSERT_GT(blocks.size(), 100u);
  size_t bytes = 0;
  for (auto &b : blocks) bytes += b.size;
  EXPECT_GT(bytes, size_ / 4) << "the region filled up at " << bytes << " of " << size_ << " bytes";
  // A request larger than the region fails cleanly.
  errno = 0;
  EXPECT_EQ(nullptr, persist_alloc(h_, size_t{32} << 20));
  EXPECT_EQ(ENOMEM, errno);
  verify(blocks);
  ASSERT_HEAP_CONSISTENT(h_);
  for (auto &b : blocks) persist_free(h_, b.p);
  EXPECT_EQ(0u, ptest::stats_of(h_).live_blocks);
  ASSERT_HEAP_CONSISTENT(h_);

  // Keep some data, name it with a root, close, and attach to the same memory again.
  std::vector<Blk> kept;
  for (int i = 0; i < 200; ++i) {
    size_t s = 16 + (i * 97) % 5000;
    void *p = persist_alloc(h_, s);
    ASSERT_NE(nullptr, p);
    ptest::fill_pattern(p, 500 + i, 0, s);
    kept.push_back({p, s, uint64_t(500 + i)});
  }
  auto *index = static_cast<void **>(persist_heap_root(h_, "index", kept.size() * sizeof(void *)));
  ASSERT_NE(nullptr, index);
  for (size_t i = 0; i < kept.size(); ++i) index[i] = kept[i].p;
  uint64_t live_before = ptest::stats_of(h_).live_blocks;
  EXPECT_GE(live_before, kept.size() + 1);
  ASSERT_EQ(0, persist_close(h_));
  h_ = nullptr;

  open(0);
  EXPECT_EQ(mem_, persist_heap_base(h_));
  size_t sz = 0;
  auto *index2 = static_cast<void **>(persist_heap_root_get(h_, "index", &sz));
  ASSERT_EQ(index, index2);
  EXPECT_EQ(kept.size() * sizeof(void *), sz);
  for (size_t i = 0; i < kept.size(); ++i) {
    ASSERT_EQ(kept[i].p, index2[i]);
    EXPECT_EQ(SIZE_MAX, ptest::check_pattern(kept[i].p, kept[i].seed, 0, kept[i].size)) << i;
    EXPECT_GE(persist_usable_size(h_, kept[i].p), kept[i].size);
  }
  persist_stats_t st = ptest::stats_of(h_);
  EXPECT_EQ(1, st.clean_at_open);
  EXPECT_EQ(live_before, st.live_blocks);
  EXPECT_EQ(1u, st.roots);
  ASSERT_HEAP_CONSISTENT(h_);
}

// Fill a fresh region with blocks of one size, free them all, fill it again: (nearly) as many fit.
TEST_F(RegionTest, SameSizeFitsAgainAfterFreeingEverything) {
  for (size_t s : {size_t(48), size_t(4000), size_t(70000), size_t(5) << 20}) {
    SCOPED_TRACE("size " + std::to_string(s));
    reset(16 << 20);
    size_t failed = 0;
    std::vector<Blk> first = fill_up([s](uint64_t) { return s; }, 10, &failed);
    ASSERT_GT(first.size(), 0u) << "not one block of " << s << " bytes fits in a fresh region";
    verify(first);
    for (auto &b : first) persist_free(h_, b.p);
    std::vector<Blk> second = fill_up([s](uint64_t) { return s; }, 20, &failed);
    EXPECT_GE(second.size() * 100, first.size() * 95)
        << "after freeing everything only " << second.size() << " of " << first.size()
        << " blocks fit again";
    verify(second);
    for (auto &b : second) persist_free(h_, b.p);
    ASSERT_HEAP_CONSISTENT(h_);
  }
}

// Segments that held runs or large blocks and became empty serve huge blocks (whole segments)
// again: a region that is entirely free has room for what a fresh one had room for.
TEST_F(RegionTest, EmptiedSegmentsServeHugeBlocksAgain) {
  const size_t kHuge = size_t{5} << 20;
  for (size_t filler : {size_t(70000), size_t(48)}) {
    SCOPED_TRACE("filler blocks of " + std::to_string(filler) + " bytes");
    reset(16 << 20);
    size_t failed = 0;
    std::vector<Blk> huge = fill_up([&](uint64_t) { return kHuge; }, 1, &failed);
    ASSERT_GT(huge.size(), 0u);
    for (auto &b : huge) persist_free(h_, b.p);
    std::vector<Blk> small = fill_up([&](uint64_t) { return filler; }, 2, &failed);
    verify(small);
    for (auto &b : small) persist_free(h_, b.p);
    persist_stats_t st = ptest::stats_of(h_);
    EXPECT_EQ(0u, st.live_blocks);
    std::vector<Blk> again = fill_up([&](uint64_t) { return kHuge; }, 3, &failed);
    EXPECT_EQ(huge.size(), again.size())
        << "the region is entirely free (free_bytes " << st.free_bytes << " of " << size_
        << ") but only " << again.size() << " of " << huge.size() << " blocks of " << kHuge
        << " bytes fit, as in a fresh region";
    for (auto &b : again) persist_free(h_, b.p);
    ASSERT_HEAP_CONSISTENT(h_);
  }
}

// The same for a file heap: huge blocks allocated after many large ones were freed reuse the
// emptied segments instead of growing the file.
TEST(SpaceReuse, FileHeapReusesEmptiedSegmentsForHugeBlocks) {
  ptest::TempDir tmp;
  persist_options_t o = ptest::create_opts();
  persist_heap_t *h = nullptr;
  int rc = persist_open(tmp.file("heap").c_str(), &o, &h);
  ASSERT_EQ(0, rc) << ptest::err_text(rc);
  std::vector<void *> v;
  for (int i = 0; i < 3000; ++i) {
    v.push_back(persist_alloc(h, 70000));
    ASSERT_NE(nullptr, v.back());
  }
  for (void *p : v) persist_free(h, p);
  v.clear();
  persist_stats_t before = ptest::stats_of(h);
  for (int round = 0; round < 3; ++round) {
    for (int i = 0; i < 10; ++i) {
      v.push_back(persist_alloc(h, size_t{5} << 20));
      ASSERT_NE(nullptr, v.back());
    }
    for (void *p : v) persist_free(h, p);
    v.clear();
  }
  persist_stats_t after = ptest::stats_of(h);
  EXPECT_LE(after.mapped_bytes, before.mapped_bytes)
      << "the heap grew from " << (before.mapped_bytes >> 20) << " MiB to "
      << (after.mapped_bytes >> 20) << " MiB for 50 MiB of huge blocks while "
      << (before.free_bytes >> 20) << " MiB were free";
  ASSERT_HEAP_CONSISTENT(h);
  ASSERT_EQ(0, persist_close(h));
}

TEST_F(RegionTest, RegionNotAMultipleOfTheSegmentSize) {
  map((10 << 20) + 3 * 4096);
  open(PERSIST_OPEN_CREATE);
  size_t failed = 0;
  ptest::Rng rng(7);
  std::vector<Blk> blocks =
      fill_up([&](uint64_t) { return size_t(rng.log_range(1, 200000)); }, 99, &failed);
  ASSERT_GT(blocks.size(), 10u);
  verify(blocks);
  ASSERT_HEAP_CONSISTENT(h_);
  // Make room for an index root naming every block (and a root table), so they are reachable.
  for (size_t freed = 0; freed < (size_t{256} << 10) + blocks.size() * sizeof(void *);) {
    freed += blocks.back().size;
    persist_free(h_, blocks.back().p);
    blocks.pop_back();
  }
  auto *index = static_cast<void **>(persist_heap_root(h_, "all", blocks.size() * sizeof(void *)));
  ASSERT_NE(nullptr, index) << "errno " << errno;
  for (size_t i = 0; i < blocks.size(); ++i) index[i] = blocks[i].p;
  ASSERT_EQ(0, persist_close(h_));
  h_ = nullptr;
  open(0);
  verify(blocks);
  for (const Blk &b : blocks) EXPECT_GE(persist_usable_size(h_, b.p), b.size);
  ASSERT_HEAP_CONSISTENT(h_);
}

TEST_F(RegionTest, TooSmallRegionIsRejected) {
  map(4096);
  persist_heap_t *h = nullptr;
  EXPECT_EQ(PERSIST_E_TOOSMALL, persist_open_region(mem_, size_, PERSIST_OPEN_CREATE, &h));
  EXPECT_EQ(nullptr, h);
}

TEST_F(RegionTest, UnformattedRegionWithoutCreateIsNotAHeap) {
  map(16 << 20);
  persist_heap_t *h = nullptr;
  EXPECT_EQ(PERSIST_E_BADMAGIC, persist_open_region(mem_, size_, 0, &h));
  EXPECT_EQ(nullptr, h);
  // And nothing was written into it.
  EXPECT_EQ(SIZE_MAX, ptest::first_nonzero(mem_, 65536));
}

}  // namespace
