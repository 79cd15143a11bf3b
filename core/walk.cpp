// walk.cpp — see walk.h. Reads AUTHORITATIVE state only; trusts nothing it reads.
#include "walk.h"

#include <cstring>

#include "../core/include/persist.h"
#include "sizeclass.h"

namespace persist {
namespace {

uint32_t popcount_run(const uint64_t *bm, uint32_t capacity) {
  uint32_t n = 0, words = capacity / 64;
  for (uint32_t w = 0; w < words; ++w) n += static_cast<uint32_t>(__builtin_popcountll(bm[w]));
  if (capacity % 64) n += static_cast<uint32_t>(__builtin_popcountll(bm[words] & ((1ull << (capacity % 64)) - 1)));
  return n;
}

bool bits_past_capacity(const uint64_t *bm, uint32_t capacity, uint32_t pages) {
  uint32_t words = pages * kWordsPerPage, first = capacity / 64;
  if (capacity % 64 && (bm[first] >> (capacity % 64))) return true;
  for (uint32_t w = (capacity + 63) / 64; w < words; ++w)
    if (bm[w]) return true;
  return false;
}

int corrupt(Msg *) { return PERSIST_E_CORRUPT; }

// What is wrong with the span whose HEAD descriptor should be at page p of a normal segment of
// `pages` pages (into m; m stays empty when the span is valid). Reads descriptors only.
void span_problem(const SegmentHeader *h, uint64_t index, uint32_t p, uint32_t pages,
                  Msg *m) {
  PageDesc d = h->desc[p];
  if (d.kind != kPageRunHead && d.kind != kPageLargeHead) {
    m->add("segment ").dec(index).add(" page ").dec(p).add(" has descriptor kind ").dec(d.kind);
    return;
  }
  if (d.back != 0 || d.pages == 0 || d.pages > pages - p) {
    m->add("span at segment ").dec(index).add(" page ").dec(p).add(" has invalid length ").dec(d.pages);
    return;
  }
  const uint8_t cont = d.kind == kPageRunHead ? kPageRunCont : kPageLargeCont;
  for (uint32_t q = 1; q < d.pages; ++q) {
    PageDesc c = h->desc[p + q];
    if (c.kind != cont || c.back != q) {
      m->add("page ").dec(p + q).add(" of segment ").dec(index).add(" inside the span at page ")
          .dec(p).add(" is not part of it (overlapping spans)");
      return;
    }
  }
  if (d.kind == kPageRunHead && (d.cls >= kNumClasses || d.pages != kClasses.info[d.cls].pages))
    m->add("run at segment ").dec(index).add(" page ").dec(p).add(" has invalid class ").dec(d.cls);
}

// The pages a damaged span at p takes with it: p itself and every following page that is
// neither free nor the HEAD of a span (its *_CONT pages, and descriptors of no known kind), so a
// single bad descriptor inside a span costs that span and nothing else.
uint32_t damaged_extent(const SegmentHeader *h, uint32_t p, uint32_t pages) {
  uint32_t n = 1;
  for (; p + n < pages; ++n) {
    uint8_t k = h->desc[p + n].kind;
    if (k == kPageFree || k == kPageRunHead || k == kPageLargeHead) break;
  }
  return n;
}

}  // namespace

uint32_t Image::segment_pages(uint64_t i) const {
  uint64_t start = i * kSegmentSize;
  if (start >= sb.size) return 0;
  uint64_t left = (sb.size - start) / kPageSize;
  return left < kSegmentPages ? static_cast<uint32_t>(left) : kSegmentPages;
}

int walk_segment(const Image &img, uint64_t index, WalkVisitor &v, Msg *why, uint64_t *next,
                 unsigned flags) {
  const uint64_t nseg = img.segment_count();
  const uint64_t seg_off = index * kSegmentSize;
  if (index >= nseg || seg_off + kHeaderOffset + sizeof(SegmentHeader) > img.len) {
    why->add("segment ").dec(index).add(" header lies outside the file");
    return corrupt(why);
  }
  const auto *h = reinterpret_cast<const SegmentHeader *>(img.mem + seg_off + kHeaderOffset);
  SegmentHeader hdr;
  memcpy(&hdr, h, offsetof(SegmentHeader, desc));  // the fixed fields, read once
  if (hdr.magic != kSegmentMagic) {
    why->add("segment ").dec(index).add(" at offset ").hex(seg_off).add(" has a bad magic");
    return corrupt(why);
  }
  if (hdr.kind == kSegHuge || hdr.kind == kSegFree) {
    if (hdr.segments == 0 || index + hdr.segments > nseg || index == 0) {
      why->add("segment ").dec(index).add(" claims ").dec(hdr.segments)
          .add(" segments beyond the extent");
      return corrupt(why);
    }
    if (hdr.kind == kSegHuge) {
      uint64_t room = uint64_t{hdr.segments} * kSegmentSize - kHugeFirstPage * kPageSize;
      if (hdr.huge_bytes == 0 || hdr.huge_bytes > room || hdr.huge_bytes % kPageSize ||
          seg_off + kHugeFirstPage * kPageSize + hdr.huge_bytes > img.len) {
        why->add("huge block in segment ").dec(index).add(" has an invalid size ")
            .dec(hdr.huge_bytes);
        return corrupt(why);
      }
      v.segment(index, *h);
      v.huge(index, hdr.segments, hdr.huge_bytes);
    } else {
      v.segment(index, *h);
      v.free_segments(index, hdr.segments);
    }
    *next = index + hdr.segments;
    return 0;
  }
  if (hdr.kind != kSegNormal) {
    why->add("segment ").dec(index).add(" has unknown kind ").dec(hdr.kind);
    return corrupt(why);
  }
  const uint32_t pages = img.segment_pages(index);
  if (hdr.segments != 1 || hdr.pages != pages || pages <= kFirstDataPage ||
      seg_off + uint64_t{pages} * kPageSize > img.len) {
    why->add("segment ").dec(index).add(" has an invalid page count ").dec(hdr.pages);
    return corrupt(why);
  }
  v.segment(index, *h);
  const bool contain = flags & kWalkContain;
  const uint64_t first_page = index * kSegmentPages;
  for (uint32_t p = 0; p < kFirstDataPage; ++p)
    if (h->desc[p].kind != kPageMeta) {
      Msg m;
      m.add("segment ").dec(index).add(" page ").dec(p).add(" should be metadata");
      if (!contain) return why->add(m.str()), corrupt(why);
      v.damaged(first_page + p, 1, Damage::kMetaDesc, m);
    }
  uint32_t free_start = 0, free_len = 0;
  auto flush_free = [&] {
    if (free_len) v.free_pages(first_page + free_start, free_len);
    free_len = 0;
  };
  for (uint32_t p = kFirstDataPage; p < pages;) {
    PageDesc d = h->desc[p];
    if (d.kind == kPageFree || d.kind == kPageRunCont || d.kind == kPageLargeCont) {
      if (!free_len) free_start = p;
      ++free_len, ++p;
      continue;
    }
    Msg m;
    span_problem(h, index, p, pages, &m);
    if (!m.empty()) {
      if (!contain) return why->add(m.str()), corrupt(why);
      flush_free();
      uint32_t n = damaged_extent(h, p, pages);
      v.damaged(first_page + p, n, Damage::kSpan, m);
      p += n;
      continue;
    }
    flush_free();
    if (d.kind == kPageRunHead) {
      const uint64_t *bm = img.bitmap(first_page + p);
      uint32_t cap = kClasses.info[d.cls].capacity;
      uint32_t used = popcount_run(bm, cap);
      if (bits_past_capacity(bm, cap, d.pages)) {
        m.add("run at segment ").dec(index).add(" page ").dec(p)
            .add(" has allocation bits past its capacity");
        if (!contain) return why->add(m.str()), corrupt(why);
        v.damaged(first_page + p, d.pages, Damage::kBits, m);
      }
      v.run(first_page + p, d.pages, d.cls, used);
    } else {
      v.large(first_page + p, d.pages);
    }
    p += d.pages;
  }
  flush_free();
  *next = index + 1;
  return 0;
}

int walk_heap(const Image &img, WalkVisitor &v, Msg *why) {
  const uint64_t nseg = img.segment_count();
  for (uint64_t i = 0; i < nseg;) {
    uint64_t next = 0;
    int rc = walk_segment(img, i, v, why, &next);
    if (rc) return rc;
    i = next;
  }
  return 0;
}

namespace {

// How many segments the header of segment i covers (0: no valid header there, or it claims
// segments past the extent). Follows nothing but the header itself.
uint64_t header_span(const Image &img, uint64_t i) {
  uint64_t off = i * kSegmentSize;
  if (off + kHeaderOffset + sizeof(SegmentHeader) > img.len) return 0;
  const auto *h = reinterpret_cast<const SegmentHeader *>(img.mem + off + kHeaderOffset);
  if (h->magic != kSegmentMagic) return 0;
  uint64_t span = (h->kind == kSegHuge || h->kind == kSegFree) ? h->segments : 1;
  return span && i + span <= img.segment_count() ? span : 0;
}

}  // namespace

bool build_segment_index(const Image &img, uint32_t *seg_head) {
  const uint64_t nseg = img.segment_count();
  for (uint64_t i = 0; i < nseg; ++i) seg_head[i] = UINT32_MAX;
  for (uint64_t i = 0, span; i < nseg; i += span) {
    if (!(span = header_span(img, i))) return false;
    for (uint64_t j = i; j < i + span; ++j) seg_head[j] = static_cast<uint32_t>(i);
  }
  return true;
}

namespace {

// The block containing `offset`, given the index `i` of the segment header covering it.
bool resolve(const Image &img, uint64_t i, uint64_t offset, BlockRef *out) {
  uint64_t off = i * kSegmentSize;
  if (off + kHeaderOffset + sizeof(SegmentHeader) > img.len) return false;
  const auto *h = reinterpret_cast<const SegmentHeader *>(img.mem + off + kHeaderOffset);
  if (h->magic != kSegmentMagic) return false;
  if (h->kind == kSegHuge) {
    uint64_t start = off + kHugeFirstPage * kPageSize;
    if (offset < start || offset - start >= h->huge_bytes || start + h->huge_bytes > img.len) return false;
    *out = BlockRef{start, h->huge_bytes, i * kSegmentPages + kHugeFirstPage, -1, 0, true,
                    (h->huge_flags & kHugeNoScan) != 0};
    return true;
  }
  if (h->kind != kSegNormal || offset - off >= kSegmentSize) return false;
  uint32_t pages = img.segment_pages(i);
  uint32_t pg = static_cast<uint32_t>((offset - off) / kPageSize);
  if (pg < kFirstDataPage || pg >= pages) return false;
  PageDesc d = h->desc[pg];
  uint32_t head = pg;
  if (d.kind == kPageRunCont || d.kind == kPageLargeCont) {
    if (d.back > pg) return false;
    head = pg - d.back;
    PageDesc hd = h->desc[head];
    if (hd.kind != (d.kind == kPageRunCont ? kPageRunHead : kPageLargeHead) || hd.pages <= d.back) return false;
    d = hd;
  }
  if (d.kind != kPageRunHead && d.kind != kPageLargeHead) return false;
  if (d.pages == 0 || head + d.pages > pages) return false;
  uint64_t span_off = off + uint64_t{head} * kPageSize;
  uint64_t gpage = i * kSegmentPages + head;
  if (d.kind == kPageLargeHead) {
    *out = BlockRef{span_off, uint64_t{d.pages} * kPageSize, gpage, kPageLargeHead, 0, true,
                    (d.cls & kLargeNoScan) != 0};
    return true;
  }
  // A run must have its class's geometry, or its bitmap words would lie outside its own pages
  // (damaged images reach here: find_block does not require a walk first).
  if (d.cls >= kNumClasses || d.pages != kClasses.info[d.cls].pages) return false;
  const ClassInfo &ci = kClasses.info[d.cls];
  uint32_t idx = static_cast<uint32_t>((offset - span_off) / ci.size);
  if (idx >= ci.capacity) return false;
  const uint64_t *bm = img.bitmap(gpage);
  bool live = (bm[idx / 64] >> (idx % 64)) & 1;
  *out = BlockRef{span_off + uint64_t{idx} * ci.size, ci.size, gpage, kPageRunHead, idx, live};
  return true;
}

}  // namespace

bool live_block_at(const Image &img, uint64_t offset, uint64_t min_size, const uint32_t *seg_head) {
  BlockRef b;
  return offset && find_block(img, offset, &b, seg_head) && b.live && b.offset == offset &&
         b.size >= min_size;
}

bool find_block(const Image &img, uint64_t offset, BlockRef *out, const uint32_t *seg_head) {
  if (offset >= img.sb.size || offset >= img.len) return false;
  uint64_t seg = offset / kSegmentSize;
  if (seg_head) {
    if (seg_head[seg] == UINT32_MAX) return false;
    return resolve(img, seg_head[seg], offset, out);
  }
  for (uint64_t i = 0, span; i < img.segment_count(); i += span) {
    if (!(span = header_span(img, i))) return false;
    if (seg < i + span) return resolve(img, i, offset, out);
  }
  return false;
}

bool large_noscan(const Image &img, uint64_t page) {
  const uint64_t seg = page / kSegmentPages, off = seg * kSegmentSize + kHeaderOffset;
  if (off + sizeof(SegmentHeader) > img.len) return false;
  const auto *h = reinterpret_cast<const SegmentHeader *>(img.mem + off);
  const PageDesc &d = h->desc[page % kSegmentPages];
  return h->kind == kSegNormal && d.kind == kPageLargeHead && (d.cls & kLargeNoScan);
}

bool huge_noscan(const Image &img, uint64_t seg) {
  const uint64_t off = seg * kSegmentSize + kHeaderOffset;
  if (off + sizeof(SegmentHeader) > img.len) return false;
  const auto *h = reinterpret_cast<const SegmentHeader *>(img.mem + off);
  return h->kind == kSegHuge && (h->huge_flags & kHugeNoScan);
}

}  // namespace persist
