// pages_test.cpp — what the page allocator keeps backed and what it gives back: a freed huge
// block is kept (its pages not punched) within the retained budget and reused as it is; calloc
// still gets zeros from it; kept blocks that do not fit a request are given back before the heap
// grows; trim (malloc_trim) gives back everything kept. Disk use is read from st_blocks.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstring>
#include <string>

#include "heap.h"
#include "heaputil.h"
#include "persist.h"
#include "testutil.h"

namespace {

constexpr size_t kMiB = size_t{1} << 20;

class PagesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    persist_options_t o = ptest::create_opts();
    int rc = persist_open(path_.c_str(), &o, &h_);
    ASSERT_EQ(0, rc) << ptest::err_text(rc);
  }
  void TearDown() override {
    if (h_) {
      EXPECT_EQ(0, persist_close(h_));
    }
  }
  uint64_t disk_bytes() const {
    struct stat st;
    EXPECT_EQ(0, stat(path_.c_str(), &st));
    return uint64_t(st.st_blocks) * 512;
  }
  static void touch(void *p, size_t n, char v) {
    for (size_t off = 0; off < n; off += 4096) static_cast<char *>(p)[off] = v;
  }
  ptest::TempDir tmp_;
  std::string path_ = tmp_.file("heap");
  persist_heap_t *h_ = nullptr;
};

TEST_F(PagesTest, AFreedHugeBlockIsReusedAsItIs) {
  char *a = static_cast<char *>(persist_alloc(h_, 12 * kMiB));
  ASSERT_NE(nullptr, a);
  touch(a, 12 * kMiB, 'a');
  persist_free(h_, a);
  uint64_t kept = disk_bytes();
  EXPECT_GE(kept, 12 * kMiB) << "the freed block's pages were given back";
  char *b = static_cast<char *>(persist_alloc(h_, 12 * kMiB - 4096));
  ASSERT_EQ(a, b) << "the kept block was not reused";
  EXPECT_EQ('a', b[0]);  // not punched, not cleared: nothing was faulted in again
  EXPECT_EQ('a', b[5 * kMiB]);
  EXPECT_LE(disk_bytes(), kept + kMiB);
  persist_free(h_, b);
  ASSERT_HEAP_CONSISTENT(h_);
}

TEST_F(PagesTest, CallocFromAKeptHugeBlockIsZero) {
  char *a = static_cast<char *>(persist_alloc(h_, 9 * kMiB));
  ASSERT_NE(nullptr, a);
  memset(a, 0x5a, 9 * kMiB);
  persist_free(h_, a);
  char *b = static_cast<char *>(persist_calloc(h_, 1, 9 * kMiB));
  ASSERT_EQ(a, b);
  for (size_t off = 0; off < 9 * kMiB; off += 4093) ASSERT_EQ(0, b[off]) << "at " << off;
  persist_free(h_, b);
}

TEST_F(PagesTest, KeptBlocksThatDoNotFitAreGivenBackBeforeTheHeapGrows) {
  char *a = static_cast<char *>(persist_alloc(h_, 8 * kMiB));
  ASSERT_NE(nullptr, a);
  touch(a, 8 * kMiB, 'a');
  persist_free(h_, a);
  uint64_t before = disk_bytes();
  ASSERT_GE(before, 8 * kMiB);
  char *b = static_cast<char *>(persist_alloc(h_, 40 * kMiB));  // larger than anything kept
  ASSERT_NE(nullptr, b);
  touch(b, 40 * kMiB, 'b');
  // Kept, a's 8 MiB would still be on disk next to b's 40.
  EXPECT_LT(disk_bytes(), before - 8 * kMiB + 40 * kMiB + 2 * kMiB);
  persist_free(h_, b);
  ASSERT_HEAP_CONSISTENT(h_);
}

TEST_F(PagesTest, TrimGivesBackKeptHugeBlocks) {
  char *a = static_cast<char *>(persist_alloc(h_, 16 * kMiB));
  ASSERT_NE(nullptr, a);
  touch(a, 16 * kMiB, 'a');
  persist_free(h_, a);
  uint64_t kept = disk_bytes();
  ASSERT_GE(kept, 16 * kMiB);
  persist::pages_trim(static_cast<persist::Heap *>(h_));
  EXPECT_LE(disk_bytes() + 16 * kMiB, kept);
  char *b = static_cast<char *>(persist_alloc(h_, 16 * kMiB));  // from the punched range: zeros
  ASSERT_NE(nullptr, b);
  EXPECT_EQ(0, b[0]);
  EXPECT_EQ(0, b[15 * kMiB]);
  persist_free(h_, b);
  ASSERT_HEAP_CONSISTENT(h_);
}

}  // namespace
