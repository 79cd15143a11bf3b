// repair_test — persist check --repair's core (core/repair.h): damage real heap images in known
// ways; the repair must report each fix, leave a consistent image that opens, and keep what was
// not damaged.
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "check.h"
#include "layout.h"
#include "persist.h"
#include "repair.h"
#include "superblock.h"
#include "testutil.h"

namespace {

using namespace persist;

constexpr uintptr_t kAddr = 0x510000000000ull;

struct Built {
  std::string image;
  uint64_t small_off = 0, large_off = 0;  // offsets of the blocks the roots "small", "large" name
};

// A heap with two roots, a few hundred small blocks, a large and a huge block.
Built build(const std::string &path) {
  persist_heap_t *h = nullptr;
  persist_options_t o{kAddr, 0, PERSIST_OPEN_CREATE};
  EXPECT_EQ(0, persist_open(path.c_str(), &o, &h));
  auto *small = static_cast<char *>(persist_heap_root(h, "small", 100));
  auto *large = static_cast<char *>(persist_heap_root(h, "large", 100000));
  strcpy(small, "small block");
  strcpy(large, "large block");
  for (int i = 0; i < 300; ++i) persist_alloc(h, 48);
  void *huge = persist_alloc(h, 6 << 20);
  EXPECT_NE(nullptr, huge);
  persist_heap_root_set(h, "huge", huge);
  Built b;
  b.small_off = static_cast<uint64_t>(small - static_cast<char *>(persist_heap_base(h)));
  b.large_off = static_cast<uint64_t>(large - static_cast<char *>(persist_heap_base(h)));
  EXPECT_EQ(0, persist_close(h));
  EXPECT_TRUE(ptest::read_file(path, &b.image));
  return b;
}

struct Lines {
  std::vector<std::string> lines;
  static void add(const char *line, void *arg) { static_cast<Lines *>(arg)->lines.push_back(line); }
  bool mention(const char *what) const {
    for (auto &l : lines)
      if (l.find(what) != std::string::npos) return true;
    return false;
  }
};

int repair(std::string &img, RepairReport *rep, Lines *lines) {
  rep->log = &Lines::add;
  rep->log_arg = lines;
  return repair_image(reinterpret_cast<uint8_t *>(&img[0]), img.size(), rep);
}

bool consistent(const std::string &img) {
  Superblock sb;
  Msg why;
  if (super_read(reinterpret_cast<const uint8_t *>(img.data()), img.size(), &sb, &why)) return false;
  Image im;
  im.mem = reinterpret_cast<const uint8_t *>(img.data());
  im.len = img.size();
  im.sb = sb;
  HeapReport r;
  return check_image(im, &r) == 0;
}

SegmentHeader *seg(std::string &img, uint64_t i) {
  return reinterpret_cast<SegmentHeader *>(&img[i * kSegmentSize + kHeaderOffset]);
}

// The repaired image written back must open, pass the check, and still hold `root`'s text.
void expect_opens_with(const std::string &dir, const std::string &img, const char *root, const char *text) {
  std::string path = dir + "/repaired.heap";
  ASSERT_TRUE(ptest::write_file(path, img.data(), img.size()));
  persist_heap_t *h = nullptr;
  persist_options_t o{0, 0, 0};
  ASSERT_EQ(0, persist_open(path.c_str(), &o, &h));
  char msg[256];
  EXPECT_EQ(0, persist_heap_check(h, msg, sizeof msg)) << msg;
  if (root) {
    auto *p = static_cast<const char *>(persist_heap_root_get(h, root, nullptr));
    ASSERT_NE(nullptr, p) << root;
    EXPECT_STREQ(text, p);
  }
  EXPECT_NE(nullptr, persist_alloc(h, 1000));  // and allocates
  persist_close(h);
}

class RepairTest : public ::testing::Test {
 protected:
  void SetUp() override { b_ = build(tmp_.file("heap")); }
  ptest::TempDir tmp_;
  Built b_;
};

TEST_F(RepairTest, AnUndamagedHeapNeedsNothing) {
  RepairReport rep;
  Lines lines;
  EXPECT_EQ(0, repair(b_.image, &rep, &lines));
  EXPECT_EQ(0u, rep.fixes) << (lines.lines.empty() ? "" : lines.lines[0]);
}

TEST_F(RepairTest, DamagedSuperblockCopyIsRewritten) {
  memset(&b_.image[0], 0xAB, 64);  // slot 0
  RepairReport rep;
  Lines lines;
  EXPECT_EQ(0, repair(b_.image, &rep, &lines));
  EXPECT_TRUE(lines.mention("superblock: copy 0 is damaged"));
  EXPECT_TRUE(super_slot_valid(reinterpret_cast<const uint8_t *>(b_.image.data()), 0));
  EXPECT_TRUE(super_slot_valid(reinterpret_cast<const uint8_t *>(b_.image.data()), 1));
  expect_opens_with(tmp_.path(), b_.image, "small", "small block");
}

TEST_F(RepairTest, BothSuperblockCopiesLostCannotBeRepaired) {
  memset(&b_.image[0], 0, kPageSize);
  RepairReport rep;
  Lines lines;
  EXPECT_NE(0, repair(b_.image, &rep, &lines));
  EXPECT_TRUE(rep.superblock_lost);
}

TEST_F(RepairTest, InconsistentSpanIsDroppedAndItsRootRemoved) {
  uint64_t page = b_.small_off / kPageSize;
  SegmentHeader *h = seg(b_.image, page / kSegmentPages);
  // Find the run's head and break one of its CONT descriptors (an overlapping write).
  uint32_t pg = static_cast<uint32_t>(page % kSegmentPages);
  if (h->desc[pg].kind == kPageRunCont) pg -= h->desc[pg].back;
  ASSERT_EQ(kPageRunHead, h->desc[pg].kind);
  h->desc[pg + 1].back = 7;
  EXPECT_FALSE(consistent(b_.image));
  RepairReport rep;
  Lines lines;
  EXPECT_EQ(0, repair(b_.image, &rep, &lines));
  EXPECT_GE(rep.lost_spans, 1u);
  EXPECT_TRUE(lines.mention("inconsistent span dropped"));
  EXPECT_GE(rep.lost_roots, 1u);  // "small" pointed into the dropped run
  EXPECT_TRUE(lines.mention("\"small\""));
  EXPECT_TRUE(consistent(b_.image));
  expect_opens_with(tmp_.path(), b_.image, "large", "large block");
}

TEST_F(RepairTest, DamagedSegmentHeaderBecomesFree) {
  // The huge block's segment (the last one): overwrite its header.
  Superblock sb;
  Msg why;
  ASSERT_EQ(0, super_read(reinterpret_cast<const uint8_t *>(b_.image.data()), b_.image.size(), &sb, &why));
  uint64_t last = sb.size / kSegmentSize - 1;
  uint64_t i = last;
  while (i > 0 && seg(b_.image, i)->magic != kSegmentMagic) --i;  // the huge block's header
  ASSERT_GT(i, 0u);
  seg(b_.image, i)->magic = 0x12345678;
  RepairReport rep;
  Lines lines;
  EXPECT_EQ(0, repair(b_.image, &rep, &lines));
  EXPECT_TRUE(lines.mention("damaged header"));
  EXPECT_TRUE(lines.mention("\"huge\""));  // its root went with it
  // Segment starts changed: the hint the last run kept (layout.h free_hint) is not trusted.
  ASSERT_EQ(0, super_read(reinterpret_cast<const uint8_t *>(b_.image.data()), b_.image.size(), &sb, &why));
  EXPECT_EQ(kStateDirty, sb.state);
  EXPECT_EQ(0u, sb.hint_open);
  expect_opens_with(tmp_.path(), b_.image, "small", "small block");
}

TEST_F(RepairTest, BitsPastCapacityAreCleared) {
  uint64_t page = b_.small_off / kPageSize;
  SegmentHeader *h = seg(b_.image, page / kSegmentPages);
  uint32_t pg = static_cast<uint32_t>(page % kSegmentPages);
  if (h->desc[pg].kind == kPageRunCont) pg -= h->desc[pg].back;
  uint32_t pages = h->desc[pg].pages;
  auto *bm = reinterpret_cast<uint64_t *>(&b_.image[(page / kSegmentPages) * kSegmentSize + kBitmapOffset]) +
             pg * kWordsPerPage;
  bm[pages * kWordsPerPage - 1] |= uint64_t{1} << 63;  // far past a 128-byte class's capacity
  if (kClasses.info[h->desc[pg].cls].capacity >= pages * kBitsPerPage) GTEST_SKIP() << "class fills its bitmap";
  RepairReport rep;
  Lines lines;
  EXPECT_EQ(0, repair(b_.image, &rep, &lines));
  EXPECT_TRUE(lines.mention("bits past the run's capacity cleared"));
  expect_opens_with(tmp_.path(), b_.image, "small", "small block");
}

TEST_F(RepairTest, MalformedRootEntryIsRemoved) {
  Superblock sb;
  Msg why;
  ASSERT_EQ(0, super_read(reinterpret_cast<const uint8_t *>(b_.image.data()), b_.image.size(), &sb, &why));
  auto *t = reinterpret_cast<RootTableHeader *>(&b_.image[sb.root_table]);
  auto *e = reinterpret_cast<RootEntry *>(t + 1);
  int idx = -1;
  for (int k = 0; k < 3; ++k)
    if (strcmp(e[k].tag, "large") == 0) idx = k;
  ASSERT_GE(idx, 0);
  e[idx].offset += 8;  // not the start of a block any more
  RepairReport rep;
  Lines lines;
  EXPECT_EQ(0, repair(b_.image, &rep, &lines));
  EXPECT_EQ(1u, rep.lost_roots);
  EXPECT_TRUE(lines.mention("\"large\""));
  expect_opens_with(tmp_.path(), b_.image, "small", "small block");
}

TEST_F(RepairTest, TruncatedFileLosesTheMissingSegments) {
  b_.image.resize(2 * kSegmentSize);  // the huge block's segments are gone
  RepairReport rep;
  Lines lines;
  EXPECT_EQ(0, repair(b_.image, &rep, &lines));
  EXPECT_TRUE(lines.mention("the missing segments are lost"));
  expect_opens_with(tmp_.path(), b_.image, "small", "small block");
}

// One bad descriptor inside a span costs that span, not its segment (issue 14, item 16): the
// check counts one problem for the span (and one for the root into it), the repair makes exactly
// those fixes, and every other block of the segment is still there.
TEST_F(RepairTest, OneBadDescriptorCostsItsSpanAndTheFixesAreTheProblems) {
  uint64_t page = b_.large_off / kPageSize;
  SegmentHeader *h = seg(b_.image, page / kSegmentPages);
  uint32_t pg = static_cast<uint32_t>(page % kSegmentPages);
  ASSERT_EQ(kPageLargeHead, h->desc[pg].kind);
  ASSERT_GT(h->desc[pg].pages, 2u);
  Superblock sb;
  Msg why;
  ASSERT_EQ(0, super_read(reinterpret_cast<const uint8_t *>(b_.image.data()), b_.image.size(), &sb, &why));
  Image im;
  im.mem = reinterpret_cast<const uint8_t *>(b_.image.data());
  im.len = b_.image.size();
  im.sb = sb;
  HeapReport before;
  ASSERT_EQ(0, check_image(im, &before, 0));
  memset(&h->desc[pg + 2], 0x1a, sizeof(PageDesc));  // garbage in the middle of the large span
  HeapReport damaged;
  EXPECT_NE(0, check_image(im, &damaged, 0));
  EXPECT_EQ(2u, damaged.problems) << damaged.first_problem.str();  // the span, the root "large"
  // The rest of the segment is still walked: every other block is counted.
  EXPECT_EQ(before.live_blocks - 1, damaged.live_blocks);
  RepairReport rep;
  Lines lines;
  EXPECT_EQ(0, repair(b_.image, &rep, &lines));
  EXPECT_EQ(damaged.problems, rep.fixes);
  EXPECT_EQ(1u, rep.lost_spans);
  EXPECT_EQ(1u, rep.lost_roots);
  EXPECT_TRUE(consistent(b_.image));
  expect_opens_with(tmp_.path(), b_.image, "small", "small block");
}

}  // namespace
