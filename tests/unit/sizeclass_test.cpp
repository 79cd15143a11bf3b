// sizeclass_test.cpp — the size classes (core/sizeclass.h): mapping sizes to classes, internal
// waste, run geometry and the reciprocal division used to find a block's index in its run.
#include "sizeclass.h"

#include <gtest/gtest.h>

#include <cstdint>

namespace {

using namespace persist;

TEST(SizeClass, ClassSizesStrictlyIncreaseInSixteenByteSlots) {
  for (unsigned c = 0; c < kNumClasses; ++c) {
    EXPECT_EQ(0u, kClasses.info[c].size % kSlotSize) << "class " << c;
    EXPECT_EQ(class_size_of(c), kClasses.info[c].size) << "class " << c;
    if (c > 0) {
      EXPECT_LT(kClasses.info[c - 1].size, kClasses.info[c].size) << "class " << c;
    }
  }
  EXPECT_EQ(16u, kClasses.info[0].size);
  EXPECT_EQ(kMaxSmall, kClasses.info[kNumClasses - 1].size);
}

TEST(SizeClass, EverySmallSizeMapsToTheSmallestClassThatFits) {
  for (size_t s = 0; s <= kMaxSmall; ++s) {
    unsigned c = size_class(s);
    ASSERT_LT(c, kNumClasses) << "size " << s;
    ASSERT_GE(kClasses.info[c].size, s) << "size " << s << " does not fit class " << c;
    if (c > 0) {
      ASSERT_LT(kClasses.info[c - 1].size, s)
          << "size " << s << " maps to class " << c << " (" << kClasses.info[c].size
          << " bytes) but class " << c - 1 << " (" << kClasses.info[c - 1].size << ") fits";
    }
  }
  EXPECT_EQ(0u, size_class(0));
  EXPECT_EQ(0u, size_class(1));
  EXPECT_EQ(0u, size_class(16));
  EXPECT_EQ(1u, size_class(17));
  EXPECT_EQ(kNumClasses - 1, size_class(kMaxSmall));
}

// The table path (<= 1024) and the arithmetic path (> 1024) agree at their seam.
TEST(SizeClass, TableAndFormulaAgreeAroundOneKiB) {
  for (size_t s = 1000; s <= 1100; ++s) {
    unsigned c = size_class(s);
    unsigned expect = 0;
    while (kClasses.info[expect].size < s) ++expect;
    EXPECT_EQ(expect, c) << "size " << s;
  }
}

TEST(SizeClass, InternalWasteIsBounded) {
  for (size_t s = 1; s <= kMaxSmall; ++s) {
    size_t block = kClasses.info[size_class(s)].size;
    size_t waste = block - s;
    // 16-byte steps up to 128: never a whole slot wasted.
    if (s <= 128) {
      ASSERT_LT(waste, kSlotSize) << "size " << s << " -> " << block;
    }
    // Below 25% of the block once 16-byte rounding no longer dominates (s > 48).
    if (s > 48) {
      ASSERT_LT(waste * 4, block) << "size " << s << " -> " << block;
    }
    // The header promises below 20% above 128 bytes.
    if (s > 128) {
      ASSERT_LT(waste * 5, block) << "size " << s << " -> " << block;
    }
  }
}

TEST(SizeClass, RunGeometryFitsItsBitmapAndItsSegment) {
  for (unsigned c = 0; c < kNumClasses; ++c) {
    const ClassInfo &ci = kClasses.info[c];
    SCOPED_TRACE("class " + std::to_string(c) + " size " + std::to_string(ci.size));
    uint64_t run_bytes = uint64_t{ci.pages} * kPageSize;
    EXPECT_GE(ci.capacity, 8u);
    EXPECT_GE(run_bytes, 65536u);
    // One bit per block, in the bitmap words of the run's own pages.
    EXPECT_LE(ci.capacity, ci.pages * kBitsPerPage);
    // The blocks fit in the run, and the tail left over is less than one block.
    EXPECT_LE(uint64_t{ci.capacity} * ci.size, run_bytes);
    EXPECT_LT(run_bytes - uint64_t{ci.capacity} * ci.size, ci.size);
    // A run lies inside the data pages of one segment.
    EXPECT_LE(ci.pages, kSegmentPages - kFirstDataPage);
    // Tail waste of the run: the chooser keeps it small (under 1/8 of the run).
    EXPECT_LT((run_bytes - uint64_t{ci.capacity} * ci.size) * 8, run_bytes);
  }
}

TEST(SizeClass, ReciprocalDivisionIsExactForEveryOffsetInARun) {
  for (unsigned c = 0; c < kNumClasses; ++c) {
    const ClassInfo &ci = kClasses.info[c];
    uint64_t run_bytes = uint64_t{ci.pages} * kPageSize;
    ASSERT_EQ(((uint64_t{1} << kRecipShift) + ci.size - 1) / ci.size, ci.recip) << "class " << c;
    for (uint64_t off = 0; off < run_bytes; ++off) {
      uint64_t got = (off * ci.recip) >> kRecipShift;
      if (got != off / ci.size) {
        FAIL() << "class " << c << " size " << ci.size << ": offset " << off << " -> index " << got
               << ", expected " << off / ci.size;
      }
    }
  }
}

TEST(SizeClass, LargeAndHugeThresholds) {
  EXPECT_GT(kMaxLarge, kMaxSmall);
  EXPECT_EQ(0u, kMaxLarge % kPageSize);
  EXPECT_LE(kMaxLarge, kSegmentSize - kFirstDataPage * kPageSize);
  EXPECT_EQ(1u, pages_for(1));
  EXPECT_EQ(1u, pages_for(kPageSize));
  EXPECT_EQ(2u, pages_for(kPageSize + 1));
  EXPECT_EQ(0u, pages_for(0));
}

}  // namespace
