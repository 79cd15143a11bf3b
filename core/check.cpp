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

class StatsVisitor : public WalkVisitor {
 public:
  explicit StatsVisitor(HeapReport *r) : r_(r) {}
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

 private:
  HeapReport *r_;
};

void problem(HeapReport *r, const Msg &m) {
  if (r->consistent) r->first_problem = m;
  r->consistent = false;
  ++r->problems;
}

void check_roots(const Image &img, const uint32_t *seg_head, HeapReport *r) {
  uint64_t off = img.sb.root_table;
  for (uint64_t n = 0; off; ++n) {
    BlockRef b;
    Msg m;
    if (n > img.sb.size / kRootTableBytes || !find_block(img, off, &b, seg_head) || !b.live ||
        b.offset != off || b.size < kRootTableBytes) {
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
      if (!find_block(img, e[i].offset, &rb, seg_head) || !rb.live || rb.offset != e[i].offset) {
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
  StatsVisitor stats(r);
  if (img.len < img.sb.size) {
    why.add("the image is shorter (").dec(img.len).add(" bytes) than the heap's extent (")
        .dec(img.sb.size).add(")");
    problem(r, why);
    return PERSIST_E_CORRUPT;
  }
  if (walk_heap(img, stats, &why) != 0) {
    problem(r, why);
    return PERSIST_E_CORRUPT;
  }
  const uint64_t nseg = img.segment_count();
  Scratch index(nseg * sizeof(uint32_t));
  if (!index.ok() || !build_segment_index(img, index.as<uint32_t>())) {
    why.add("cannot index the segments");
    problem(r, why);
    return PERSIST_E_CORRUPT;
  }
  check_roots(img, index.as<uint32_t>(), r);
  if (img.sb.actions && !actions_table(img)) {
    Msg m;
    m.add("the heap's own area (action log, module tables) at offset ").hex(img.sb.actions)
        .add(" is damaged");
    problem(r, m);
  }
  if (img.sb.sites && !sites_table(img)) {
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
