// sizeclass.h — size classes of small blocks and the run geometry of each class.
//
// 16-byte steps up to 128, then four classes per doubling up to kMaxSmall: internal waste is
// below 25% of a block (below 20% above 128 bytes). Blocks above kMaxSmall are large (page
// spans); above kMaxLarge they are huge (whole segments). Everything here is a pure function of
// the format constants, so it is part of the file format: runs record only their class index.
#pragma once

#include <cstddef>
#include <cstdint>

#include "layout.h"

namespace persist {

constexpr size_t kMaxSmall = 16384;
constexpr unsigned kNumClasses = 36;
constexpr size_t kMaxLarge = size_t{kSegmentPages - kFirstDataPage} * kPageSize;
constexpr unsigned kRecipShift = 40;  // block index = (offset * recip) >> kRecipShift

struct ClassInfo {
  uint32_t size;      // block size in bytes
  uint32_t pages;     // pages of one run
  uint32_t capacity;  // blocks in one run
  uint64_t recip;     // ceil(2^kRecipShift / size)
};

constexpr uint32_t class_size_of(unsigned cls) {
  if (cls < 8) return 16 * (cls + 1);
  unsigned group = (cls - 8) / 4, step = (cls - 8) % 4;  // group 0 is (128, 256]
  uint32_t base = 128u << group;
  return base + (step + 1) * (base / 4);
}

constexpr ClassInfo make_class(unsigned cls) {
  uint32_t size = class_size_of(cls);
  // A run holds at least 8 blocks and 64 KiB; among up to 16 page counts from there, take the
  // one that wastes the least of the run's tail.
  uint32_t want = size * 8 > 65536 ? size * 8 : 65536;
  uint32_t lo = (want + kPageSize - 1) / kPageSize, best = lo;
  uint64_t best_waste = ~uint64_t{0};
  for (uint32_t n = lo; n < lo + 16; ++n) {
    uint64_t bytes = uint64_t{n} * kPageSize, waste = bytes % size;
    if (waste * best * kPageSize < best_waste * bytes) best = n, best_waste = waste;
    if (waste == 0) break;
  }
  uint32_t capacity = static_cast<uint32_t>(best * kPageSize / size);
  uint64_t recip = ((uint64_t{1} << kRecipShift) + size - 1) / size;
  return ClassInfo{size, best, capacity, recip};
}

struct ClassTable {
  ClassInfo info[kNumClasses];
  uint8_t small_index[65];  // (size + 15) / 16 -> class, for sizes <= 1024
  constexpr ClassTable() : info(), small_index() {
    for (unsigned c = 0; c < kNumClasses; ++c) info[c] = make_class(c);
    unsigned c = 0;
    for (unsigned i = 0; i < 65; ++i) {
      while (info[c].size < i * 16) ++c;
      small_index[i] = static_cast<uint8_t>(c);
    }
  }
};
inline constexpr ClassTable kClasses{};

static_assert(class_size_of(kNumClasses - 1) == kMaxSmall);
static_assert(kClasses.info[0].capacity <= kClasses.info[0].pages * kBitsPerPage,
              "a run's bitmap fits in the bitmap words of its own pages");
constexpr bool runs_fit_in_64_words() {
  for (unsigned c = 0; c < kNumClasses; ++c)
    if (kClasses.info[c].capacity > 64 * 64) return false;
  return true;
}
static_assert(runs_fit_in_64_words(), "Span::nonfull has a bit per bitmap word of a run");

// The class of a small request (size <= kMaxSmall). Sizes 0..16 map to class 0.
inline unsigned size_class(size_t size) {
  if (size <= 1024) return kClasses.small_index[(size + 15) >> 4];
  unsigned lg = 63 - static_cast<unsigned>(__builtin_clzll(size - 1));  // size-1 in [2^lg, 2^lg+1)
  return 8 + (lg - 7) * 4 + static_cast<unsigned>(((size - 1) >> (lg - 2)) & 3);
}

inline size_t pages_for(size_t bytes) { return (bytes + kPageSize - 1) >> kPageShift; }

}  // namespace persist
