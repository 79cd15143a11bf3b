// heapview.cpp — see heapview.h. Builds the span model segment by segment with walk_segment
// (core/walk.h) and never reads a byte the walk did not validate.
#include "heapview.h"

#include <algorithm>

#include "tool.h"

namespace persist::tool {

const char *area_name(Area a) {
  switch (a) {
    case Area::kMeta: return "metadata";
    case Area::kRun: return "run";
    case Area::kLarge: return "large";
    case Area::kHuge: return "huge";
    case Area::kFree: return "free";
    case Area::kDamaged: return "damaged";
    case Area::kMissing: return "missing";
  }
  return "?";
}

const char *block_kind(const Block &b) {
  return b.area == Area::kRun ? "small" : b.area == Area::kLarge ? "large" : "huge";
}

BlockRef block_ref(const Block &b) {
  BlockRef r;
  r.offset = b.offset, r.size = b.size, r.span_page = b.page, r.index = b.index, r.live = true;
  r.kind = b.area == Area::kRun ? kPageRunHead : b.area == Area::kLarge ? kPageLargeHead : -1;
  return r;
}

std::string describe(const Where &w) {
  switch (w.kind) {
    case Where::kOutside: return "outside the heap's extent";
    case Where::kMissing: return "past the end of the file (the file is truncated)";
    case Where::kMetadata: return "in the heap's metadata (superblock, segment header or bitmaps)";
    case Where::kFree:
      return "in free memory (free pages, a free segment or the unused tail of a run)";
    case Where::kFreeSlot:
      return "in a free slot of a run of " + std::to_string(w.block.size) +
             "-byte blocks (the slot at " + fmt_hex(w.block.offset) + " is not allocated)";
    case Where::kDamaged: return "in a damaged segment or span (see `persist check`)";
    case Where::kLive: return "in the live block at " + fmt_hex(w.block.offset);
  }
  return "?";
}

// Collects the spans of one segment; they enter the view only when the segment's header walked.
class SpanCollector : public WalkVisitor {
 public:
  SpanCollector(HeapView &v, uint64_t limit) : v_(v), limit_(limit) {}

  void segment(uint64_t index, const SegmentHeader &h) override {
    uint64_t off = index * kSegmentSize;
    uint64_t meta_pages = h.kind == kSegNormal ? kFirstDataPage : kHugeFirstPage;
    push(off, meta_pages * kPageSize, Area::kMeta);
  }
  void free_pages(uint64_t page, uint32_t count) override {
    push(page * kPageSize, uint64_t{count} * kPageSize, Area::kFree);
  }
  void run(uint64_t page, uint32_t pages, unsigned cls, uint32_t used) override {
    Span s = make(page * kPageSize, uint64_t{pages} * kPageSize, Area::kRun);
    s.cls = static_cast<uint8_t>(cls), s.used = used, s.page = page;
    spans_.push_back(s);
  }
  void large(uint64_t page, uint32_t pages) override {
    Span s = make(page * kPageSize, uint64_t{pages} * kPageSize, Area::kLarge);
    s.used = 1, s.page = page;
    spans_.push_back(s);
  }
  void huge(uint64_t segment, uint32_t segments, uint64_t bytes) override {
    uint64_t start = segment * kSegmentSize + kHugeFirstPage * kPageSize;
    Span s = make(start, bytes, Area::kHuge);
    s.used = 1, s.page = start / kPageSize;
    spans_.push_back(s);
    uint64_t end = (segment + segments) * kSegmentSize;  // the slack up to the last segment's end
    push(start + bytes, end - (start + bytes), Area::kFree, FreeKind::kHugeSlack);
  }
  void free_segments(uint64_t segment, uint32_t count) override {
    uint64_t start = segment * kSegmentSize + kHugeFirstPage * kPageSize;
    push(start, (segment + count) * kSegmentSize - start, Area::kFree, FreeKind::kSegments);
  }
  // Damage inside a segment that walks (kWalkContain): a damaged span is shown as such and the
  // rest of the segment as it is; stray bits and a metadata descriptor are problems only.
  void damaged(uint64_t page, uint32_t count, Damage what, const Msg &why) override {
    v_.problem(why.str());
    if (what == Damage::kSpan) push(page * kPageSize, uint64_t{count} * kPageSize, Area::kDamaged);
  }

  void commit() {
    for (Span &s : spans_) {
      if (s.offset >= limit_ || s.bytes == 0) continue;
      if (s.bytes > limit_ - s.offset) s.bytes = limit_ - s.offset;  // never past the image
      v_.add(s);
    }
  }

 private:
  static Span make(uint64_t off, uint64_t bytes, Area a) {
    Span s;
    s.offset = off, s.bytes = bytes, s.area = a;
    return s;
  }
  void push(uint64_t off, uint64_t bytes, Area a, FreeKind f = FreeKind::kPages) {
    if (!bytes) return;
    spans_.push_back(make(off, bytes, a));
    spans_.back().free = f;
  }
  HeapView &v_;
  uint64_t limit_;
  std::vector<Span> spans_;
};

HeapView::HeapView(const Image &img) : img_(img) {
  const uint64_t size = img.sb.size;
  const uint64_t limit = size < img.len ? size : img.len;
  const uint64_t nseg = size / kSegmentSize + (size % kSegmentSize != 0);
  if (size > img.len)
    problem("the file is truncated: it holds " + std::to_string(img.len) + " bytes of the heap's " +
            std::to_string(size) + "-byte extent");
  for (uint64_t i = 0; i < nseg;) {
    const uint64_t off = i * kSegmentSize;
    if (off >= limit) break;
    SpanCollector c(*this, limit);
    Msg why;
    uint64_t next = i + 1;
    if (walk_segment(img, i, c, &why, &next, kWalkContain) == 0 && next > i) {
      c.commit();
      i = next;
    } else {
      problem(why.empty() ? "segment " + std::to_string(i) + " does not walk" : why.str());
      Span d;
      d.offset = off;
      d.bytes = std::min<uint64_t>(kSegmentSize, limit - off);
      d.area = Area::kDamaged;
      add(d);
      ++i;
    }
  }
  end_ = spans_.empty() ? 0 : spans_.back().offset + spans_.back().bytes;
  if (size > end_) {
    Span m;
    m.offset = end_, m.bytes = size - end_, m.area = Area::kMissing;
    spans_.push_back(m);
  }
}

void HeapView::problem(const std::string &what) {
  if (problems_.size() < 16) problems_.push_back(what);
  ++problem_count_;
}

void HeapView::add(const Span &in) {
  const Span &s = in;
  if (s.area == Area::kRun) {
    live_blocks_ += s.used;
    live_bytes_ += uint64_t{s.used} * kClasses.info[s.cls].size;
  } else if (s.area == Area::kLarge || s.area == Area::kHuge) {
    ++live_blocks_;
    live_bytes_ += s.bytes;
  }
  spans_.push_back(s);
}

bool HeapView::slot_live(const Span &s, uint32_t index) const {
  const uint64_t *bm = img_.bitmap(s.page);
  return (bm[index / 64] >> (index % 64)) & 1;
}

Block HeapView::slot(const Span &s, uint32_t index) const {
  const uint32_t size = kClasses.info[s.cls].size;
  return Block{s.offset + uint64_t{index} * size, size, Area::kRun, s.cls, s.page, index};
}

Where HeapView::locate(uint64_t offset) const {
  Where w;
  if (offset >= img_.sb.size) return w;  // kOutside
  auto it = std::upper_bound(spans_.begin(), spans_.end(), offset,
                             [](uint64_t o, const Span &s) { return o < s.offset; });
  if (it == spans_.begin()) return w;
  const Span &s = *--it;
  if (offset - s.offset >= s.bytes) return w;
  switch (s.area) {
    case Area::kMeta: w.kind = Where::kMetadata; break;
    case Area::kFree: w.kind = Where::kFree; break;
    case Area::kDamaged: w.kind = Where::kDamaged; break;
    case Area::kMissing: w.kind = Where::kMissing; break;
    case Area::kLarge:
    case Area::kHuge:
      w.kind = Where::kLive;
      w.block = Block{s.offset, s.bytes, s.area, 0, s.page, 0};
      break;
    case Area::kRun: {
      const ClassInfo &ci = kClasses.info[s.cls];
      uint64_t index = (offset - s.offset) / ci.size;
      if (index >= ci.capacity) {
        w.kind = Where::kFree;
        break;
      }
      w.block = slot(s, static_cast<uint32_t>(index));
      w.kind = slot_live(s, static_cast<uint32_t>(index)) ? Where::kLive : Where::kFreeSlot;
      break;
    }
  }
  return w;
}

}  // namespace persist::tool
