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

void set_desc(SegmentHeader *h, uint32_t p, PageDesc d) { h->desc[p] = d; }

// Step 3 for one normal segment: keep every span whose descriptors are consistent, drop the rest.
void repair_normal(uint8_t *mem, uint64_t i, uint32_t pages, SegmentHeader *h, RepairReport *rep) {
  Msg m;
  if (h->segments != 1 || h->pages != pages) {
    h->segments = 1, h->pages = pages;
    m.add("segment ").dec(i).add(": header counts rewritten");
    rep->note(m);
  }
  for (uint32_t p = 0; p < kFirstDataPage; ++p)
    if (h->desc[p].kind != kPageMeta) {
      set_desc(h, p, PageDesc{kPageMeta, 0, 0, 0});
      m.clear();
      m.add("segment ").dec(i).add(": metadata descriptor ").dec(p).add(" rewritten");
      rep->note(m);
    }
  for (uint32_t p = kFirstDataPage; p < pages;) {
    PageDesc d = h->desc[p];
    if (d.kind == kPageFree || d.kind == kPageRunCont || d.kind == kPageLargeCont) {
      ++p;
      continue;
    }
    bool ok = (d.kind == kPageRunHead || d.kind == kPageLargeHead) && d.back == 0 && d.pages &&
              d.pages <= pages - p;
    if (ok && d.kind == kPageRunHead) ok = d.cls < kNumClasses && d.pages == kClasses.info[d.cls].pages;
    const uint8_t cont = d.kind == kPageRunHead ? kPageRunCont : kPageLargeCont;
    for (uint32_t q = 1; ok && q < d.pages; ++q)
      ok = h->desc[p + q].kind == cont && h->desc[p + q].back == q;
    if (!ok) {
      set_desc(h, p, PageDesc{kPageFree, 0, 0, 0});
      ++rep->lost_spans;
      m.clear();
      m.add("segment ").dec(i).add(" page ").dec(p).add(": inconsistent span dropped (its blocks are lost)");
      rep->note(m);
      ++p;
      continue;
    }
    if (d.kind == kPageRunHead) {  // bits past the run's capacity mean nothing: clear them
      auto *bm = reinterpret_cast<uint64_t *>(mem + i * kSegmentSize + kBitmapOffset) + p * kWordsPerPage;
      uint32_t cap = kClasses.info[d.cls].capacity, words = d.pages * kWordsPerPage;
      bool cleared = false;
      if (cap % 64 && (bm[cap / 64] >> (cap % 64))) bm[cap / 64] &= (uint64_t{1} << (cap % 64)) - 1, cleared = true;
      for (uint32_t w = (cap + 63) / 64; w < words; ++w)
        if (bm[w]) bm[w] = 0, cleared = true;
      if (cleared) {
        m.clear();
        m.add("segment ").dec(i).add(" page ").dec(p).add(": allocation bits past the run's capacity cleared");
        rep->note(m);
      }
    }
    p += d.pages;
  }
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
      repair_normal(mem, i, img.segment_pages(i), h, rep);
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
