// repair.cpp — see repair.h. Writes AUTHORITATIVE state of an image nobody else has open.
#include "repair.h"

#include <cstring>

#include "../core/include/persist.h"
#include "check.h"
#include "heap.h"
#include "sitesread.h"
#include "superblock.h"
#include "walk.h"

namespace persist {
namespace {

// Step 3 for one normal segment: the walk (walk.h, kWalkContain) reports each damaged span, run
// and metadata descriptor once, and each is fixed here, one fix apiece: a damaged span's pages
// become free (its blocks are lost), bits past a run's capacity are cleared, a metadata
// descriptor is rewritten. So the fixes are the problems `persist check` counted.
class FixVisitor : public WalkVisitor {
 public:
  FixVisitor(uint8_t *mem, uint64_t seg, SegmentHeader *h, RepairReport *rep)
      : mem_(mem), seg_(seg), h_(h), rep_(rep) {}
  void damaged(uint64_t page, uint32_t count, Damage what, const Msg &) override {
    const uint32_t p = static_cast<uint32_t>(page % kSegmentPages);
    Msg m;
    m.add("segment ").dec(seg_).add(" page ").dec(p);
    switch (what) {
      case Damage::kMetaDesc:
        h_->desc[p] = PageDesc{kPageMeta, 0, 0, 0};
        m.clear();
        m.add("segment ").dec(seg_).add(": metadata descriptor ").dec(p).add(" rewritten");
        break;
      case Damage::kSpan:
        for (uint32_t q = 0; q < count; ++q) h_->desc[p + q] = PageDesc{kPageFree, 0, 0, 0};
        ++rep_->lost_spans;
        m.add(": inconsistent span dropped (").dec(count).add(count == 1 ? " page" : " pages")
            .add("; its blocks are lost)");
        break;
      case Damage::kBits: {
        const PageDesc d = h_->desc[p];
        auto *bm = reinterpret_cast<uint64_t *>(mem_ + seg_ * kSegmentSize + kBitmapOffset) + p * kWordsPerPage;
        uint32_t cap = kClasses.info[d.cls].capacity, words = d.pages * kWordsPerPage;
        if (cap % 64) bm[cap / 64] &= (uint64_t{1} << (cap % 64)) - 1;
        for (uint32_t w = (cap + 63) / 64; w < words; ++w) bm[w] = 0;
        m.add(": allocation bits past the run's capacity cleared");
        break;
      }
    }
    rep_->note(m);
  }

 private:
  uint8_t *mem_;
  uint64_t seg_;
  SegmentHeader *h_;
  RepairReport *rep_;
};

void repair_normal(uint8_t *mem, const Image &img, uint64_t i, SegmentHeader *h, RepairReport *rep) {
  const uint32_t pages = img.segment_pages(i);
  if (h->segments != 1 || h->pages != pages) {
    Msg m;
    h->segments = 1, h->pages = pages;
    m.add("segment ").dec(i).add(": header counts rewritten");
    rep->note(m);
  }
  FixVisitor fix(mem, i, h, rep);
  Msg why;
  uint64_t next = 0;
  walk_segment(img, i, fix, &why, &next, kWalkContain);  // what still fails is the final check's
}

void repair_segments(uint8_t *mem, const Image &img, RepairReport *rep) {
  const uint64_t nseg = img.segment_count();
  for (uint64_t i = 0; i < nseg;) {
    auto *h = reinterpret_cast<SegmentHeader *>(mem + i * kSegmentSize + kHeaderOffset);
    Msg m;
    bool known = h->magic == kSegmentMagic &&
                 (h->kind == kSegNormal || h->kind == kSegHuge || h->kind == kSegFree);
    if (i == 0 && known && h->kind != kSegNormal) known = false;
    if (!known) {
      // Unknown coverage: this segment alone becomes free (segment 0 is re-made normal, empty).
      if (i == 0) {
        memset(h, 0, sizeof *h);
        for (uint32_t p = 0; p < kFirstDataPage; ++p) h->desc[p] = PageDesc{kPageMeta, 0, 0, 0};
        h->magic = kSegmentMagic, h->segments = 1, h->pages = img.segment_pages(0), h->kind = kSegNormal;
      } else {
        h->magic = kSegmentMagic, h->segments = 1, h->pages = 0, h->huge_bytes = 0, h->kind = kSegFree;
      }
      ++rep->lost_spans;
      m.add("segment ").dec(i).add(": damaged header; the segment is now empty (its blocks are lost)");
      rep->note(m);
      continue;  // walk it again as repaired
    }
    if (h->kind == kSegNormal) {
      repair_normal(mem, img, i, h, rep);
      ++i;
      continue;
    }
    if (h->segments == 0 || i + h->segments > nseg) {
      uint32_t fixed = static_cast<uint32_t>(nseg - i);
      m.add("segment ").dec(i).add(": count ").dec(h->segments).add(" clamped to ").dec(fixed);
      h->segments = fixed;
      rep->note(m);
    }
    if (h->kind == kSegHuge) {
      uint64_t room = uint64_t{h->segments} * kSegmentSize - kHugeFirstPage * kPageSize;
      if (h->huge_bytes == 0 || h->huge_bytes > room || h->huge_bytes % kPageSize) {
        h->kind = kSegFree;
        ++rep->lost_spans;
        m.clear();
        m.add("segment ").dec(i).add(": huge block with an invalid size dropped");
        rep->note(m);
      }
    }
    i += h->segments;
  }
}

void repair_roots(uint8_t *mem, Superblock &sb, const Image &img, RepairReport *rep) {
  uint64_t *link = &sb.root_table;
  uint64_t off = sb.root_table;
  for (uint64_t n = 0; off; ++n) {
    BlockRef b;
    auto *t = reinterpret_cast<RootTableHeader *>(mem + off);
    bool ok = n <= img.sb.size / kRootTableBytes && find_block(img, off, &b) && b.live &&
              b.offset == off && b.size >= kRootTableBytes && t->magic == kRootTableMagic &&
              t->capacity == kRootsPerTable;
    if (!ok) {
      Msg m;
      m.add("root table at offset ").hex(off).add(" is damaged: the chain ends before it");
      *link = 0;
      ++rep->lost_roots;
      rep->note(m);
      return;
    }
    auto *e = reinterpret_cast<RootEntry *>(t + 1);
    for (uint32_t k = 0; k < kRootsPerTable; ++k) {
      if (e[k].state == kRootEmpty) continue;
      size_t len = strnlen(e[k].tag, kRootTagBytes);
      BlockRef rb;
      bool good = e[k].state == kRootLive && len && len < kRootTagBytes && len == e[k].tag_len &&
                  (e[k].offset == 0 || (find_block(img, e[k].offset, &rb) && rb.live &&
                                        rb.offset == e[k].offset && e[k].size <= rb.size));
      if (good) continue;
      Msg m;
      m.add("root entry ").dec(k).add(" of the table at ").hex(off);
      if (len && len < kRootTagBytes) m.add(" (\"").add(e[k].tag).add("\")");
      m.add(" is damaged or points at no live block: removed");
      e[k].state = kRootEmpty;
      ++rep->lost_roots;
      rep->note(m);
    }
    link = &t->next;
    off = t->next;
  }
}

}  // namespace

int repair_image(uint8_t *mem, uint64_t len, RepairReport *rep) {
  // (1) the superblock
  Superblock sb;
  Msg why;
  int slot = -1;
  int rc = super_read(mem, len, &sb, &why, &slot);
  if (rc) {
    rep->superblock_lost = true;
    Msg m;
    m.add("superblock: ").add(why.str()).add(" — cannot repair without it");
    if (rep->log) rep->log(m.str(), rep->log_arg);
    return rc;
  }
  for (int k = 0; k < 2; ++k)
    if (!super_slot_valid(mem, k)) {
      Msg m;
      m.add("superblock: copy ").dec(k).add(" is damaged; rewritten from the other");
      rep->note(m);
    }
  // (2) the extent
  if (len < sb.size) {
    uint64_t keep = (len / kSegmentSize) * kSegmentSize;
    if (keep == 0) keep = len & ~(kPageSize - 1);
    Msg m;
    m.add("extent: the file holds ").dec(len).add(" of ").dec(sb.size).add(" bytes; the missing segments are lost");
    sb.size = keep;
    rep->note(m);
  }
  Image img;
  img.mem = mem, img.len = len, img.sb = sb;
  // (3) segments, (4) roots
  repair_segments(mem, img, rep);
  repair_roots(mem, sb, img, rep);
  img.sb = sb;
  if (sb.actions && !actions_table(img)) {
    Msg m;
    m.add("the heap's own area is damaged: dropped (interrupted publish/clear actions and the "
          "record of program images are lost)");
    sb.actions = 0;
    rep->note(m);
  }
  if (sb.sites && !sites_table(img)) {
    Msg m;
    m.add("the allocation-site table is damaged: dropped (the recorded sites are lost; sampled "
          "blocks keep their data)");
    sb.sites = 0;
    rep->note(m);
  }

  // Write the superblock back into both slots (repairs a damaged slot too), marked dirty.
  sb.state = kStateDirty;
  sb.hint_open = 0;  // what was repaired may have moved segment starts: discover from the start
  super_write(mem, sb);
  super_write(mem, sb);
  img.sb = sb;
  HeapReport r;
  return check_image(img, &r, 0) == 0 ? 0 : PERSIST_E_CORRUPT;
}

}  // namespace persist
