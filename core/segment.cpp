// segment.cpp — the heap's extent: formatting segments, growing the file, and discovering the
// segments of an opened heap. Writes AUTHORITATIVE state (segment headers, the superblock's size)
// in commit order: a header is complete before its kind is stored; the superblock records a new
// extent only after the new segments' headers are in place.
#include <cerrno>
#include <cstdint>
#include <cstring>

#include "../core/include/persist.h"
#include "crashpoint.h"
#include "heap.h"
#include "platform.h"

namespace persist {
namespace {

// Reserve disk space for [off, off+len) of the heap (no-op for memory heaps).
int back(Heap *h, uint64_t off, uint64_t len) {
  if (h->fd < 0 || len == 0) return 0;
  int fd = heap_file(h);
  return fd < 0 ? -ENOSPC : os::allocate(fd, off, len);  // a file we cannot reach cannot grow
}

// Format segment `seg` as a normal segment of `pages` pages. The pages may hold old data.
int format_normal(Heap *h, uint64_t seg, uint32_t pages) {
  uint64_t off = seg * kSegmentSize;
  // Header, descriptors and bitmaps: pages 1 .. kFirstDataPage-1 (page 0 of segment 0 is the
  // superblock and is backed when the heap is created).
  int rc = back(h, off + kHeaderOffset, kFirstDataPage * kPageSize - kHeaderOffset);
  if (rc) return rc;
  SegmentHeader *sh = h->seg_header(seg);
  // The header may be the head of a free segment range (its rest already has a header of its
  // own): shrink it to one free segment first, so it stays valid until its kind is stored.
  // A header past the recorded extent is invisible until the superblock records the growth.
  if (sh->magic == kSegmentMagic && sh->kind == kSegFree)
    __atomic_store_n(&sh->segments, 1u, __ATOMIC_RELEASE);
  PERSIST_CRASH_POINT("segment.format.shrink");
  memset(sh->desc, 0, sizeof sh->desc);
  memset(h->at(off + kBitmapOffset), 0, (kFirstDataPage * kPageSize) - kBitmapOffset);
  for (uint32_t p = 0; p < kFirstDataPage; ++p) sh->desc[p] = PageDesc{kPageMeta, 0, 0, 0};
  sh->magic = kSegmentMagic;
  sh->segments = 1;
  sh->pages = pages;
  sh->huge_bytes = 0;
  PERSIST_CRASH_POINT("segment.format.fields");
  std::atomic_thread_fence(std::memory_order_release);
  __atomic_store_n(&sh->kind, kSegNormal, __ATOMIC_RELEASE);
  PERSIST_CRASH_POINT("segment.format.kind");
  return 0;
}

void set_size(Superblock &sb, uint64_t size) { sb.size = size; }
// A normal segment added at the end: the extent, and the hint moved to the room (heap.h).
void set_size_room(Superblock &sb, uint64_t size) {
  sb.size = size;
  sb.free_hint = (size - 1) / kSegmentSize;
}

class DiscoverVisitor : public WalkVisitor {
 public:
  explicit DiscoverVisitor(Heap *h) : h_(h) {}
  Span *runs = nullptr;  // discovered runs, handed to the pool after page_lock is dropped

  void free_pages(uint64_t page, uint32_t count) override {
    pages_insert_free(h_, page, count, false, false);
  }
  void run(uint64_t page, uint32_t pages, unsigned cls, uint32_t used) override {
    Span *s = meta_span_new();
    if (!s) return;  // out of metadata memory: the run stays unknown (its blocks stay allocated)
    s->kind = kSpanRun;
    s->page = page;
    s->pages = pages;
    s->start = reinterpret_cast<uintptr_t>(h_->base + page * kPageSize);
    run_init_volatile(h_, s, cls, false);
    s->used = used;
    shadow_set(h_, page, pages, s);
    s->next = runs;
    runs = s;
  }
  void large(uint64_t page, uint32_t pages) override {
    Span *s = meta_span_new();
    if (!s) return;
    s->kind = kSpanLarge;
    s->page = page;
    s->pages = pages;
    s->start = reinterpret_cast<uintptr_t>(h_->base + page * kPageSize);
    s->backed = 1;
    const uint8_t flags = h_->seg_header(page / kSegmentPages)->desc[page % kSegmentPages].cls;
    s->sampled = flags & kLargeSampled;
    s->noscan = flags & kLargeNoScan ? 1 : 0;
    shadow_set(h_, page, pages, s);
  }
  void huge(uint64_t seg, uint32_t segments, uint64_t bytes) override {
    Span *s = meta_span_new();
    if (!s) return;
    s->kind = kSpanHuge;
    s->page = seg * kSegmentPages + kHugeFirstPage;
    s->pages = static_cast<uint32_t>(bytes / kPageSize);
    s->segments = segments;
    s->start = reinterpret_cast<uintptr_t>(h_->base + s->page * kPageSize);
    s->backed = 1;
    s->noscan = h_->seg_header(seg)->huge_flags & kHugeNoScan ? 1 : 0;
    shadow_set(h_, s->page, s->pages, s);
    for (uint32_t i = 0; i < segments; ++i) h_->segs[seg + i] = SegInfo{1, i ? uint8_t{0} : uint8_t{kSegHuge}};
  }
  void free_segments(uint64_t seg, uint32_t count) override {
    pages_insert_free_segments(h_, seg, count, false);
  }

 private:
  Heap *h_;
};

}  // namespace

int segment_format_first(Heap *h) {
  uint32_t pages = h->image().segment_pages(0);
  if (pages <= kFirstDataPage) return PERSIST_E_TOOSMALL;
  int rc = back(h, 0, kPageSize);  // the superblock page
  if (rc) return rc;
  return format_normal(h, 0, pages);
}

int segment_grow(Heap *h, uint32_t segments, uint64_t *first) {
  uint64_t size = h->size.load(std::memory_order_relaxed);
  uint64_t seg = (size + kSegmentSize - 1) / kSegmentSize;
  if (size % kSegmentSize) return -ENOMEM;  // a partial last segment: a full region
  uint64_t new_size = (seg + segments) * kSegmentSize;
  if (new_size > h->reserve) {
    // A region may end with a partial segment.
    if (!h->region || segments != 1 || h->reserve - size <= kFirstDataPage * kPageSize)
      return -ENOMEM;
    new_size = h->reserve & ~(kPageSize - 1);
  }
  if (h->fd >= 0) {
    const int fd = heap_file(h);
    if (fd < 0) return -ENOMEM;  // the file is gone or no longer ours: never write another
    uint64_t fsize = 0;
    int rc = os::file_size(fd, &fsize);
    if (rc) return rc;
    if (fsize < new_size && new_size > os::file_size_limit()) return -ENOMEM;  // not SIGXFSZ
    if (fsize < new_size && (rc = os::truncate_file(fd, new_size))) return rc;
    PERSIST_CRASH_POINT("grow.truncate");
  }
  *first = seg;
  h->size.store(new_size, std::memory_order_release);  // visible to contains() from now on
  return 0;
}

int segment_add_normal(Heap *h, uint64_t *seg_out) {
  uint64_t seg = 0;
  int rc = pages_take_free_segments(h, 1, &seg);
  bool grown = false;
  uint64_t old_size = h->size.load(std::memory_order_relaxed);
  if (rc) {
    if ((rc = segment_grow(h, 1, &seg))) return rc;
    grown = true;
  }
  uint64_t size = h->size.load(std::memory_order_relaxed);
  uint32_t pages = h->image().segment_pages(seg);
  rc = format_normal(h, seg, pages);
  if (rc) {
    if (grown) h->size.store(old_size, std::memory_order_release);
    else pages_insert_free_segments(h, seg, 1, false);
    return rc;
  }
  if (grown) heap_update_super(h, set_size_room, size);
  PERSIST_CRASH_POINT("grow.normal");
  h->segs[seg] = SegInfo{1, kSegNormal};
  if (h->discovered == seg) h->discovered = seg + 1;
  pages_insert_free(h, seg * kSegmentPages + kFirstDataPage, pages - kFirstDataPage, grown, false);
  *seg_out = seg;
  return 0;
}

int segment_add_huge(Heap *h, uint32_t segments, uint64_t bytes, uint64_t *seg_out, bool *zeroed,
                     uint32_t huge_flags) {
  uint64_t seg = 0;
  bool grown = false;
  uint64_t old_size = h->size.load(std::memory_order_relaxed);
  // A kept freed huge block that fits; else the kept ones are the wrong size: they are given back
  // (bounding what is kept to what is being reused) and the free ranges looked at again.
  int rc = pages_take_free_segments(h, segments, &seg, zeroed, true);
  if (rc) {
    pages_release_kept_huge(h);
    rc = pages_take_free_segments(h, segments, &seg, zeroed);
  }
  if (rc && pages_release_kept(h)) rc = pages_take_free_segments(h, segments, &seg, zeroed);
  if (rc) {
    if ((rc = segment_grow(h, segments, &seg))) return rc;
    grown = true;
    *zeroed = true;
  }
  if (grown) heap_hint_interior(h, seg, seg + 1, UINT64_MAX);  // a hint past the old extent
  uint64_t off = seg * kSegmentSize;
  rc = back(h, off + kHeaderOffset, kHugeFirstPage * kPageSize - kHeaderOffset + bytes);
  if (rc) {
    if (grown) h->size.store(old_size, std::memory_order_release);
    else pages_insert_free_segments(h, seg, segments, *zeroed);
    return rc;
  }
  SegmentHeader *sh = h->seg_header(seg);
  if (sh->magic == kSegmentMagic && sh->kind == kSegFree)  // as in format_normal
    __atomic_store_n(&sh->segments, segments, __ATOMIC_RELEASE);
  sh->magic = kSegmentMagic;
  sh->segments = segments;
  sh->pages = 0;
  sh->huge_bytes = bytes;
  sh->huge_flags = huge_flags;  // committed with the kind below
  sh->sample = SampleRecord{};  // a freed huge block's sample must not describe this one
  PERSIST_CRASH_POINT("huge.header");
  if (tl_commit_log) {  // an allocate-and-publish: zero-filled, then named, then committed
    if (!*zeroed) memset(h->at(seg * kSegmentSize + kHugeFirstPage * kPageSize), 0, bytes), *zeroed = true;
    __atomic_store_n(tl_commit_log, seg * kSegmentSize + kHugeFirstPage * kPageSize, __ATOMIC_RELEASE);
  }
  __atomic_store_n(&sh->kind, kSegHuge, __ATOMIC_RELEASE);
  PERSIST_CRASH_POINT("huge.kind");
  if (grown) heap_update_super(h, set_size, h->size.load(std::memory_order_relaxed));
  PERSIST_CRASH_POINT("grow.huge");
  for (uint32_t i = 0; i < segments; ++i) h->segs[seg + i] = SegInfo{1, i ? uint8_t{0} : uint8_t{kSegHuge}};
  if (grown && h->discovered == seg) h->discovered = seg + segments;
  *seg_out = seg;
  return 0;
}

bool main_pass_done(const Heap *h) { return h->discovered >= h->image().segment_count(); }

bool segment_known(const Heap *h, uint64_t seg) {
  return seg < h->prefix_next || (seg >= h->prefix_end && seg < h->discovered);
}

bool heap_discovery_started(const Heap *h) { return h->discovered != h->prefix_end || h->prefix_next; }

void discovery_start(Heap *h, uint64_t hint) {
  Image img = h->image();
  if (hint == 0 || hint >= img.segment_count() || heap_discovery_started(h)) return;
  // Only a segment header can start the pass: a hint inside a huge block or range is ignored.
  const SegmentHeader *sh = h->seg_header(hint);
  if (sh->magic != kSegmentMagic || (sh->kind != kSegNormal && sh->kind != kSegHuge && sh->kind != kSegFree))
    return;
  h->discovered = h->prefix_end = hint;
  h->prefix_next = 0;
}

uint64_t discovery_hint(Heap *h) {
  // The lowest segment with room now: a free span of kRoomPages or more, or free segments (O(free
  // spans), volatile state only). Undiscovered segments of the main pass may have room too. Less
  // room below the hint (small holes, runs with free blocks) is found before the heap grows.
  Guard g(h->page_lock);
  uint64_t hint = h->discovered;
  for (const SpanList &bin : h->bins)
    for (const Span *s = bin.head; s; s = s->next)
      if (s->pages >= kRoomPages && s->page / kSegmentPages < hint) hint = s->page / kSegmentPages;
  for (const Span *s = h->free_segs.head; s; s = s->next)
    if (s->page / kSegmentPages < hint) hint = s->page / kSegmentPages;
  const uint64_t count = h->image().segment_count();
  return hint < count ? hint : count;
}

// Discover the next segment of the main pass, or (`prefix`) of the deferred prefix: asked for by a
// lookup (span_lookup), and by the allocator once the main pass is done, before it grows the heap.
// Caller holds pool_lock and page_lock. 1 when a segment was discovered, 0 when that pass is
// done, <0 on corruption.
int segment_discover_next(Heap *h, Span **runs, bool prefix) {
  Image img = h->image();
  if (prefix ? h->prefix_next >= h->prefix_end : main_pass_done(h)) return 0;
  DiscoverVisitor v(h);
  Msg why;
  uint64_t next = 0, seg = prefix ? h->prefix_next : h->discovered;
  int rc = walk_segment(img, seg, v, &why, &next);
  if (rc) {
    os::write_stderr("libpersist: ");
    os::write_stderr(why.str());
    os::write_stderr(" (this part of the heap is left alone)\n");
    // Skip the damaged segment: its pages are neither reused nor freed.
    next = seg + 1;
  } else if (h->segs[seg].kind == 0) {
    h->segs[seg] = SegInfo{1, static_cast<uint8_t>(h->seg_header(seg)->kind)};
  }
  if (prefix) h->prefix_next = next < h->prefix_end ? next : h->prefix_end;
  else h->discovered = next;
  *runs = v.runs;
  return 1;
}

}  // namespace persist
