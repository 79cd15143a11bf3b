// check.cpp — the consistency checker (see check.h). Reads an image, never writes it; all scratch
// memory comes from anonymous mappings (never from the heap being checked).
#include "check.h"

#include <cstring>

#include "../core/include/persist.h"
#include "heap.h"
#include "platform.h"
#include "reach.h"
#include "sitesread.h"

namespace persist {
namespace {

// Scratch memory for the checker, released on scope exit.
class Scratch {
 public:
  explicit Scratch(size_t bytes) : bytes_(bytes ? bytes : 1) {
    if (os::map_anon(bytes_, &p_) != 0) p_ = nullptr;
  }
  ~Scratch() {
    if (p_) os::unmap(p_, bytes_);
  }
  template <class T>
  T *as() const { return static_cast<T *>(p_); }
  bool ok() const { return p_ != nullptr; }

 private:
  size_t bytes_;
  void *p_ = nullptr;
};

void problem(HeapReport *r, const Msg &m) {
  if (r->consistent) r->first_problem = m;
  r->consistent = false;
  ++r->problems;
}

// The pages of damaged spans (walk.h, Damage::kSpan): what the repair drops. A block found there
// by find_block (which does not validate whole spans) is not live as far as the check goes.
class LostPages {
 public:
  explicit LostPages(uint64_t pages) : words_((pages + 63) / 64), map_(words_ * 8) {}
  bool ok() const { return map_.ok(); }
  void add(uint64_t page, uint32_t count) {
    for (uint64_t p = page; p < page + count && p / 64 < words_; ++p)
      map_.as<uint64_t>()[p / 64] |= uint64_t{1} << (p % 64);
  }
  bool has(uint64_t offset) const {
    uint64_t p = offset / kPageSize;
    return p / 64 < words_ && (map_.as<uint64_t>()[p / 64] >> (p % 64) & 1);
  }

 private:
  uint64_t words_;
  Scratch map_;
};

class StatsVisitor : public WalkVisitor {
 public:
  StatsVisitor(HeapReport *r, LostPages *lost) : r_(r), lost_(lost) {}
  void segment(uint64_t, const SegmentHeader &h) override {
    ++r_->segments;
    if (h.kind == kSegNormal) ++r_->normal_segments, r_->meta_bytes += kFirstDataPage * kPageSize;
    else if (h.kind == kSegHuge) ++r_->huge_segments;
    else ++r_->free_segments;
  }
  void free_pages(uint64_t, uint32_t count) override { r_->free_bytes += uint64_t{count} * kPageSize; }
  void run(uint64_t, uint32_t pages, unsigned cls, uint32_t used) override {
    const ClassInfo &ci = kClasses.info[cls];
    ++r_->runs, ++r_->class_runs[cls];
    r_->class_blocks[cls] += used;
    r_->live_blocks += used;
    r_->live_bytes += uint64_t{used} * ci.size;
    r_->free_bytes += uint64_t{pages} * kPageSize - uint64_t{used} * ci.size;
  }
  void large(uint64_t, uint32_t pages) override {
    ++r_->large_blocks, ++r_->live_blocks;
    r_->live_bytes += uint64_t{pages} * kPageSize;
  }
  void huge(uint64_t, uint32_t, uint64_t bytes) override {
    ++r_->huge_blocks, ++r_->live_blocks;
    r_->live_bytes += bytes;
  }
  void free_segments(uint64_t, uint32_t count) override {
    r_->free_bytes += uint64_t{count} * kSegmentSize;
  }
  void damaged(uint64_t page, uint32_t count, Damage what, const Msg &why) override {
    problem(r_, why);
    if (what == Damage::kSpan) lost_->add(page, count);
  }

 private:
  HeapReport *r_;
  LostPages *lost_;
};

void check_roots(const Image &img, const uint32_t *seg_head, const LostPages &lost, HeapReport *r) {
  uint64_t off = img.sb.root_table;
  for (uint64_t n = 0; off; ++n) {
    BlockRef b;
    Msg m;
    if (n > img.sb.size / kRootTableBytes || !find_block(img, off, &b, seg_head) || !b.live ||
        b.offset != off || b.size < kRootTableBytes || lost.has(off)) {
      m.add("root table at offset ").hex(off).add(" is not a live block of the heap");
      return problem(r, m);
    }
    const auto *t = reinterpret_cast<const RootTableHeader *>(img.mem + off);
    if (t->magic != kRootTableMagic || t->capacity != kRootsPerTable) {
      m.add("root table at offset ").hex(off).add(" has a bad header");
      return problem(r, m);
    }
    const auto *e = reinterpret_cast<const RootEntry *>(t + 1);
    for (uint32_t i = 0; i < kRootsPerTable; ++i) {
      if (e[i].state == kRootEmpty) continue;
      Msg em;
      if (e[i].state != kRootLive) {
        em.add("root entry ").dec(i).add(" of the table at ").hex(off).add(" has state ").dec(e[i].state);
        problem(r, em);
        continue;
      }
      size_t len = strnlen(e[i].tag, kRootTagBytes);
      if (len == 0 || len >= kRootTagBytes || len != e[i].tag_len) {
        em.add("root entry ").dec(i).add(" of the table at ").hex(off).add(" has a malformed tag");
        problem(r, em);
        continue;
      }
      ++r->roots;
      if (e[i].offset == 0) continue;
      BlockRef rb;
      if (!find_block(img, e[i].offset, &rb, seg_head) || !rb.live || rb.offset != e[i].offset ||
          lost.has(rb.offset)) {
        em.add("root \"").add(e[i].tag).add("\" points at offset ").hex(e[i].offset)
            .add(", which is not the start of a live block");
        problem(r, em);
        continue;
      }
      if (e[i].size > rb.size) {
        em.add("root \"").add(e[i].tag).add("\" records ").dec(e[i].size).add(" bytes in a block of ")
            .dec(rb.size);
        problem(r, em);
      }
    }
    off = t->next;
  }
}

}  // namespace

int check_image(const Image &img, HeapReport *r, unsigned flags) {
  *r = HeapReport{};
  r->dirty = img.sb.state != kStateClean;
  r->meta_bytes = kSuperPages * kPageSize;
  Msg why;
  if (img.len < img.sb.size) {
    why.add("the image is shorter (").dec(img.len).add(" bytes) than the heap's extent (")
        .dec(img.sb.size).add(")");
    problem(r, why);
    return PERSIST_E_CORRUPT;
  }
  // Every segment is walked, damage contained to the spans it touches (walk.h): one problem per
  // damaged span, as the repair makes one fix per dropped span. A segment whose header does not
  // walk is one problem, and the walk goes on with the next segment.
  const uint64_t nseg = img.segment_count();
  LostPages lost(nseg * kSegmentPages);
  if (!lost.ok()) {
    why.add("out of memory for the check");
    problem(r, why);
    return PERSIST_E_CORRUPT;
  }
  StatsVisitor stats(r, &lost);
  bool headers_ok = true;
  for (uint64_t i = 0; i < nseg;) {
    Msg swhy;
    uint64_t next = i + 1;
    if (walk_segment(img, i, stats, &swhy, &next, kWalkContain) != 0 || next <= i) {
      problem(r, swhy);
      headers_ok = false;
      next = i + 1;
    }
    i = next;
  }
  Scratch index(nseg * sizeof(uint32_t));
  if (!index.ok() || !build_segment_index(img, index.as<uint32_t>())) {
    // A header that does not walk was reported above; the roots cannot be resolved without them.
    if (headers_ok) {
      why.add("cannot index the segments");
      problem(r, why);
    }
    return PERSIST_E_CORRUPT;
  }
  check_roots(img, index.as<uint32_t>(), lost, r);
  if (img.sb.actions && (!actions_table(img) || lost.has(img.sb.actions))) {
    Msg m;
    m.add("the heap's own area (action log, module tables) at offset ").hex(img.sb.actions)
        .add(" is damaged");
    problem(r, m);
  }
  if (img.sb.sites && (!sites_table(img) || lost.has(img.sb.sites))) {
    Msg m;
    m.add("the allocation-site table at offset ").hex(img.sb.sites).add(" is damaged");
    problem(r, m);
  }
  if ((flags & kCheckReachability) && r->consistent) {
    Reach reach;
    Msg rwhy;
    if (reach.run(img, &rwhy) == 0) {
      r->reach_done = true;
      r->reachable_blocks = reach.blocks;
      r->reachable_bytes = reach.bytes;
      r->unreachable_blocks = r->live_blocks - reach.blocks;
      r->unreachable_bytes = r->live_bytes - reach.bytes;
    }
  }
  return r->consistent ? 0 : PERSIST_E_CORRUPT;
}

}  // namespace persist
