// pages_test.cpp — what the page allocator keeps backed and what it gives back: a freed huge
// block is kept (its pages not punched) within the retained budget and reused as it is; calloc
// still gets zeros from it; kept blocks that do not fit a request are given back before the heap
// grows; trim (malloc_trim) gives back everything kept; a forked child's copy of the heap leaves
// the kept blocks' pages out, and what it does with them stays its own. Disk use is read from
// st_blocks.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <string>

#include "heap.h"
#include "heaputil.h"
#include "persist.h"
#include "testutil.h"

namespace {

constexpr size_t kMiB = size_t{1} << 20;

class PagesTest : public ptest::HeapTest {
 protected:
  uint64_t disk_bytes() const {
    struct stat st;
    EXPECT_EQ(0, stat(path_.c_str(), &st));
    return uint64_t(st.st_blocks) * 512;
  }
  static void touch(void *p, size_t n, char v) {
    for (size_t off = 0; off < n; off += 4096) static_cast<char *>(p)[off] = v;
  }
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

// A kept block split by a smaller huge block leaves the rest of its segments with its old data on
// their first page 0 (reserved in a segment of its own, data inside a huge block). When the rest
// is given back and merges with the range before it, that page is inside the range: calloc from
// the merged range must still read zeros everywhere.
TEST_F(PagesTest, CallocAcrossMergedRangesIsZero) {
  const size_t kOneSegmentHuge = 4060 * 1024;  // above the largest large block, one segment
  char *a = static_cast<char *>(persist_alloc(h_, 10 * kMiB));  // three segments
  ASSERT_NE(nullptr, a);
  memset(a, 0x5a, 10 * kMiB);
  persist_free(h_, a);  // kept
  char *b = static_cast<char *>(persist_alloc(h_, kOneSegmentHuge));  // the kept range, split
  ASSERT_EQ(a, b);
  auto *h = static_cast<persist::Heap *>(h_);
  persist::pages_trim(h);  // the rest given back
  persist_free(h_, b);     // kept again, alone
  persist::pages_trim(h);  // given back: merges with the rest
  char *c = static_cast<char *>(persist_calloc(h_, 1, 11 * kMiB));
  ASSERT_NE(nullptr, c);
  for (size_t off = 0; off < 11 * kMiB; off += 512) ASSERT_EQ(0, c[off]) << "at " << off;
  persist_free(h_, c);
  ASSERT_HEAP_CONSISTENT(h_);
}

// fork copies what is in use and leaves free spans and free segment ranges out: the child must
// still see every live block, can use the kept range, and its writes never reach the parent.
TEST_F(PagesTest, AForkedChildUsesKeptBlocksOnItsOwnCopy) {
  char *live = static_cast<char *>(persist_alloc(h_, 3 * kMiB));
  ASSERT_NE(nullptr, live);
  memset(live, 'L', 3 * kMiB);
  char *a = static_cast<char *>(persist_alloc(h_, 12 * kMiB));
  ASSERT_NE(nullptr, a);
  touch(a, 12 * kMiB, 'a');
  persist_free(h_, a);  // kept
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    int bad = 0;
    for (size_t off = 0; off < 3 * kMiB; off += 4096) bad |= live[off] != 'L';
    char *b = static_cast<char *>(persist_alloc(h_, 12 * kMiB));
    if (!b) _exit(2);
    touch(b, 12 * kMiB, 'c');
    if (!ptest::check_failure(h_).empty()) _exit(3);
    _exit(bad ? 1 : 0);
  }
  int status = 0;
  ASSERT_EQ(pid, waitpid(pid, &status, 0));
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(0, WEXITSTATUS(status)) << "1: live data lost in the child, 2: no block, 3: inconsistent";
  char *b = static_cast<char *>(persist_alloc(h_, 12 * kMiB));
  ASSERT_EQ(a, b);
  EXPECT_EQ('a', b[0]) << "the child's writes reached the parent's heap";
  EXPECT_EQ('a', b[11 * kMiB]);
  EXPECT_EQ('L', live[3 * kMiB - 1]);
  ASSERT_HEAP_CONSISTENT(h_);
}

}  // namespace
