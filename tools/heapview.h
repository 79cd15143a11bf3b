// heapview.h — a bounds-checked model of a heap image for the reading subcommands: the spans of
// every segment that walks cleanly (walk.h), in offset order, lookups from an offset to what
// lies there, and iteration over live blocks (the bits of a run's bitmap).
//
// Tolerant: a segment whose header does not walk is recorded as a problem and shown as damaged,
// and the walk goes on with the next segment; inside a segment, a damaged span is shown as
// damaged and the rest of the segment as it is (walk.h, kWalkContain). So the rest of a damaged
// heap stays readable (archeology), and the problems are the ones `persist check` counts.
// A heap is complete when there is no problem; the subcommands then agree with check_image.
//
// Safety: a span enters the view only after walk_segment validated it against img.len, and
// every byte access goes through at(), which checks the range again.
//
// This belongs in core/walk (a live-block iterator and an offset classifier are what walk.h
// lacks); it lives in tools/ until the core takes it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "sizeclass.h"
#include "walk.h"

namespace persist::tool {

enum class Area : uint8_t {
  kMeta,     // superblock, segment headers, bitmaps, reserved pages
  kRun,      // a run of small blocks of one size class
  kLarge,    // a large block (a page span)
  kHuge,     // a huge block (whole segments)
  kFree,     // free pages, free segments, the slack after a huge block
  kDamaged,  // a segment or span that does not walk: its contents are not trusted
  kMissing,  // inside the recorded extent but past the end of the file
};
const char *area_name(Area a);  // "metadata", "run", "large", "huge", "free", ...

enum class FreeKind : uint8_t { kPages, kSegments, kHugeSlack };

struct Span {
  uint64_t offset = 0, bytes = 0;
  Area area = Area::kFree;
  FreeKind free = FreeKind::kPages;  // kFree: which kind
  uint8_t cls = 0;        // kRun: size class
  uint32_t used = 0;      // kRun: live blocks (bitmap count); kLarge, kHuge: 1
  uint64_t page = 0;      // global index of the first page (kRun: where its bitmap is)
};

struct Block {
  uint64_t offset = 0, size = 0;  // usable size
  Area area = Area::kRun;         // kRun (a small block), kLarge or kHuge
  uint8_t cls = 0;                // kRun
  uint64_t page = 0;              // global index of its span's first page
  uint32_t index = 0;             // kRun: index in the run
};
const char *block_kind(const Block &b);  // "small", "large", "huge"
// The core's name for a live block (walk.h), e.g. for Reach::marked (core/reach.h).
BlockRef block_ref(const Block &b);

struct Where {
  enum Kind { kOutside, kMissing, kMetadata, kFree, kFreeSlot, kDamaged, kLive } kind = kOutside;
  Block block;  // kLive, kFreeSlot: the block (slot) holding the offset
};
// What an offset that is not in a live block is, for an error message: "in free pages", ...
std::string describe(const Where &w);

class HeapView {
 public:
  explicit HeapView(const Image &img);

  const Image &img() const { return img_; }
  bool complete() const { return problem_count_ == 0; }
  uint64_t problem_count() const { return problem_count_; }
  const std::vector<std::string> &problems() const { return problems_; }  // the first few
  const std::vector<Span> &spans() const { return spans_; }
  uint64_t live_blocks() const { return live_blocks_; }
  uint64_t live_bytes() const { return live_bytes_; }
  // End of what the view covers: the extent, or less when the file is shorter (kMissing after).
  uint64_t end() const { return end_; }

  Where locate(uint64_t offset) const;
  // [offset, offset + len) when it lies inside the image, else nullptr.
  const uint8_t *at(uint64_t offset, uint64_t len) const {
    if (offset > img_.len || len > img_.len - offset) return nullptr;
    return img_.mem + offset;
  }
  bool slot_live(const Span &s, uint32_t index) const;
  Block slot(const Span &s, uint32_t index) const;

  // fn(const Block &) for every live block in offset order; fn returns false to stop. Returns
  // false when stopped.
  template <class F>
  bool each_live(F &&fn) const;

 private:
  friend class SpanCollector;
  void problem(const std::string &what);
  void add(const Span &s);
  const Image &img_;
  std::vector<Span> spans_;
  std::vector<std::string> problems_;
  uint64_t problem_count_ = 0, live_blocks_ = 0, live_bytes_ = 0, end_ = 0;
};

template <class F>
bool HeapView::each_live(F &&fn) const {
  for (const Span &s : spans_) {
    if (s.area == Area::kLarge || s.area == Area::kHuge) {
      Block b{s.offset, s.bytes, s.area, 0, s.page, 0};
      if (!fn(b)) return false;
    } else if (s.area == Area::kRun && s.used) {
      const uint32_t cap = kClasses.info[s.cls].capacity;
      const uint64_t *bm = img_.bitmap(s.page);
      for (uint32_t w = 0; w * 64 < cap; ++w) {
        uint64_t bits = bm[w];
        if (cap - w * 64 < 64) bits &= (uint64_t{1} << (cap - w * 64)) - 1;
        while (bits) {
          uint32_t i = w * 64 + static_cast<uint32_t>(__builtin_ctzll(bits));
          bits &= bits - 1;
          if (!fn(slot(s, i))) return false;
        }
      }
    }
  }
  return true;
}

}  // namespace persist::tool
