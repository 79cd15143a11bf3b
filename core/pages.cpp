// pages.cpp — spans of pages: free-span bins with coalescing, runs' and large blocks' spans, huge
// blocks (whole segments), free segment ranges, and giving disk space back (punch hole).
//
// VOLATILE: the bins, the free segment list and the shadow map. AUTHORITATIVE writes done here:
// page descriptors (CONT first, HEAD last; HEAD := FREE to free) and huge/free segment headers.
// Shadow invariant: every page of a live span points at its Span; a free span's first and last
// pages point at it; a free segment range's first and last segments' page 0 point at it.
#include <cerrno>
#include <cstring>

#include "../core/include/persist.h"
#include "crashpoint.h"
#include "heap.h"
#include "platform.h"

namespace persist {
namespace {

constexpr uint32_t kPunchPages = 64;  // free spans this large may give their disk space back

// Free pages kept backed (their memory or disk space not given back) for reuse without a system
// call: 32 MiB plus half the extent. A freed span of kPunchPages or more is punched only when
// keeping it would exceed this; reusing a punched span costs a fallocate and page faults, and a
// program that frees and allocates large blocks in turn would pay both every time.
uint64_t retain_budget(Heap *h) {
  return ((uint64_t{32} << 20) + h->size.load(std::memory_order_relaxed) / 2) / kPageSize;
}

void release_segment(Heap *h, uint64_t seg);

unsigned bin_of(uint32_t n) {
  if (n <= 32) return n - 1;
  unsigned lg = 31 - static_cast<unsigned>(__builtin_clz(n - 1));
  unsigned b = 32 + 4 * (lg - 5) + (((n - 1) >> (lg - 2)) & 3);
  return b < kSpanBins ? b : kSpanBins - 1;
}

uint64_t seg_first_data(uint64_t page) { return (page / kSegmentPages) * kSegmentPages + kFirstDataPage; }
uint64_t seg_end(Heap *h, uint64_t page) {
  uint64_t seg = page / kSegmentPages;
  return seg * kSegmentPages + h->image().segment_pages(seg);
}

void store_desc(Heap *h, uint64_t page, PageDesc d) {
  SegmentHeader *sh = h->seg_header(page / kSegmentPages);
  uint64_t v;
  memcpy(&v, &d, sizeof v);
  __atomic_store_n(reinterpret_cast<uint64_t *>(&sh->desc[page % kSegmentPages]), v, __ATOMIC_RELEASE);
}

int back_pages(Heap *h, uint64_t page, uint32_t pages) {
  if (h->fd < 0) return 0;
  int fd = heap_file(h);
  return fd < 0 ? -ENOSPC : os::allocate(fd, page * kPageSize, uint64_t{pages} * kPageSize);
}

// Give the pages' memory or disk space back; true when they now read as zero. (A region's memory
// belongs to the caller and is left alone.)
bool punch_pages(Heap *h, uint64_t page, uint64_t pages) {
  if (h->fd >= 0) {
    int fd = heap_file(h);
    return fd >= 0 && os::punch_hole(fd, page * kPageSize, pages * kPageSize) == 0;
  }
  if (h->region) return false;
  os::discard_anon(h->at(page * kPageSize), pages * kPageSize);
  return true;
}

// Give back the pages of free segments [seg, seg+count) but the header page (page 1) of the first:
// true when they now read as zero, as a huge block placed there expects. Page 0 as well: reserved
// in a segment of its own, it holds data when a huge block ran across it, and a kept block's
// segments may become the first of a range after a split. (Segment 0 is never free.)
bool punch_free_range(Heap *h, uint64_t seg, uint64_t count) {
  uint64_t first = seg * kSegmentPages;
  bool zeroed = punch_pages(h, first + kHugeFirstPage, count * kSegmentPages - kHugeFirstPage);
  return punch_pages(h, first, 1) && zeroed;
}

void bin_push(Heap *h, Span *s) {
  unsigned b = bin_of(s->pages);
  h->bins[b].push(s);
  h->bin_mask |= uint64_t{1} << b;
}

void bin_remove(Heap *h, Span *s) {
  unsigned b = bin_of(s->pages);
  h->bins[b].remove(s);
  if (h->bins[b].empty()) h->bin_mask &= ~(uint64_t{1} << b);
}

// Take a free span of at least n pages out of the bins (page_lock held).
Span *take_free(Heap *h, uint32_t n) {
  uint64_t mask = h->bin_mask & (~uint64_t{0} << bin_of(n));
  while (mask) {
    unsigned b = static_cast<unsigned>(__builtin_ctzll(mask));
    mask &= mask - 1;
    for (Span *s = h->bins[b].head; s; s = s->next)
      if (s->pages >= n) {
        bin_remove(h, s);
        return s;
      }
  }
  return nullptr;
}

// Split the first n pages off free span s (removed from the bins); the rest goes back.
void split_front(Heap *h, Span *s, uint32_t n) {
  if (s->pages == n) return;
  Span *rest = meta_span_new();
  if (!rest) return;  // no metadata memory: keep the whole span (the tail stays with it)
  rest->kind = kSpanFree;
  rest->page = s->page + n;
  rest->pages = s->pages - n;
  rest->zeroed = s->zeroed;
  rest->backed = s->backed;
  s->pages = n;
  h->shadow[rest->page] = rest;
  h->shadow[rest->page + rest->pages - 1] = rest;
  bin_push(h, rest);
}

// Publish span s ([page, page+pages)) as a live span of the given head kind (page_lock held).
void publish_span(Heap *h, Span *s, uint8_t head, uint8_t cont, uint8_t cls) {
  for (uint32_t q = 1; q < s->pages; ++q)
    store_desc(h, s->page + q, PageDesc{cont, head == kPageRunHead ? cls : uint8_t{0},  // large: flags
                                        static_cast<uint16_t>(q), 0});
  PERSIST_CRASH_POINT("span.cont");
  if (head == kPageRunHead) memset(h->bitmap_of(s->page), 0, uint64_t{s->pages} * kWordsPerPage * 8);
  PERSIST_CRASH_POINT("span.bitmap");
  if (head == kPageLargeHead && tl_commit_log)  // an allocate-and-publish: name the block first
    __atomic_store_n(tl_commit_log, s->page * kPageSize, __ATOMIC_RELEASE);
  std::atomic_thread_fence(std::memory_order_release);
  store_desc(h, s->page, PageDesc{head, cls, 0, s->pages});  // the commit point
  PERSIST_CRASH_POINT("span.head");
  shadow_set(h, s->page, s->pages, s);
}

// Get a free span of n pages (aligned to align_pages, a power of two counted in pages from the
// address 0) backed by disk. Discovers and grows as needed (`in_place`: neither grows nor
// discovers the deferred segments: -EAGAIN once the main pass is done). nullptr with *err set.
Span *get_span(Heap *h, uint32_t n, uint64_t align, int *err, bool in_place = false) {
  uint32_t extra = align > kPageSize ? static_cast<uint32_t>(align / kPageSize) - 1 : 0;
  if (uint64_t{n} + extra > kSegmentPages - kFirstDataPage) {
    *err = -ENOMEM;
    return nullptr;
  }
  for (;;) {
    Span *taken = nullptr;  // a span that needs disk space: reserved below, outside the lock
    bool prefix = false;    // the main pass is done: discover the deferred segments next
    {
      Guard g(h->page_lock);
      Span *s = take_free(h, n + extra);
      if (s) {
        // Taken: no longer a free span, so frees of its neighbours cannot coalesce with it while
        // the caller turns it into a run or a large block outside the lock.
        s->kind = kSpanNone;
        if (s->page / kSegmentPages == h->kept_empty) h->kept_empty = UINT64_MAX;
        if (extra) {  // split off the pages before the aligned start
          uintptr_t addr = reinterpret_cast<uintptr_t>(h->at(s->page * kPageSize));
          uint32_t lead = static_cast<uint32_t>(((align - addr % align) % align) / kPageSize);
          if (lead) {
            uint64_t page = s->page;
            bool z = s->zeroed, b = s->backed;
            s->page += lead;
            s->pages -= lead;
            if (b) h->retained_pages -= lead;  // counted with s; counted again when inserted
            pages_insert_free(h, page, lead, z, b);
          }
        }
        split_front(h, s, n);
        if (s->backed) {
          if (h->retained_pages >= s->pages) h->retained_pages -= s->pages;
          return s;
        }
        taken = s;
      } else if (main_pass_done(h) && in_place) {
        *err = -EAGAIN;
        return nullptr;
      } else if (main_pass_done(h) && h->prefix_next < h->prefix_end) {
        prefix = true;
      } else if (main_pass_done(h)) {
        uint64_t seg;
        int rc = segment_add_normal(h, &seg);
        if (rc) {
          *err = rc == -ENOSPC ? -ENOMEM : rc;
          return nullptr;
        }
        continue;
      }
    }
    if (taken) {
      // Nobody else can reach a taken span: fallocate without holding up the other threads.
      int rc = back_pages(h, taken->page, taken->pages);
      if (rc) {
        Guard g(h->page_lock);
        pages_insert_free(h, taken->page, taken->pages, taken->zeroed, false);
        meta_span_free(taken);
        *err = rc == -ENOSPC ? -ENOMEM : rc;
        return nullptr;
      }
      taken->backed = 1;
      return taken;
    }
    heap_discover_one(h, prefix);
  }
}

// Turn an entirely free normal segment into a free segment (page_lock held). The kind store is
// the commit point: descriptors of a free segment mean nothing.
void release_segment(Heap *h, uint64_t seg) {
  Span *s = h->shadow[seg * kSegmentPages + kFirstDataPage];
  bin_remove(h, s);
  if (s->backed && h->retained_pages >= s->pages) h->retained_pages -= s->pages;
  SegmentHeader *sh = h->seg_header(seg);
  __atomic_store_n(&sh->kind, kSegFree, __ATOMIC_RELEASE);  // segments is already 1
  PERSIST_CRASH_POINT("segment.release");
  // A free segment range is "zeroed" when every page but its own header page reads as zero, as
  // a huge block placed there expects: punch the descriptors and bitmaps as well as the data.
  bool zeroed = punch_free_range(h, seg, 1);
  h->shadow[s->page] = nullptr;
  h->shadow[s->page + s->pages - 1] = nullptr;
  meta_span_free(s);
  pages_insert_free_segments(h, seg, 1, zeroed);
}

}  // namespace

void SpanList::push(Span *s) {
  s->prev = nullptr;
  s->next = head;
  if (head) head->prev = s;
  else tail = s;
  head = s;
  s->in_list = 1;
  ++count;
}

void SpanList::push_back(Span *s) {
  s->next = nullptr;
  s->prev = tail;
  if (tail) tail->next = s;
  else head = s;
  tail = s;
  s->in_list = 1;
  ++count;
}

void SpanList::remove(Span *s) {
  if (s->prev) s->prev->next = s->next;
  else head = s->next;
  if (s->next) s->next->prev = s->prev;
  else tail = s->prev;
  s->next = s->prev = nullptr;
  s->in_list = 0;
  --count;
}

Span *SpanList::pop() {
  Span *s = head;
  if (s) remove(s);
  return s;
}

void shadow_set(Heap *h, uint64_t page, uint32_t pages, Span *s) {
  Span **sh = h->shadow + page;
  for (uint32_t i = 0; i < pages; ++i) sh[i] = s;
}

void pages_insert_free(Heap *h, uint64_t page, uint32_t pages, bool zeroed, bool backed) {
  if (pages == 0) return;
  Span *s = meta_span_new();
  if (!s) return;  // leaks the pages for this process's lifetime (metadata memory exhausted)
  s->kind = kSpanFree;
  s->page = page;
  s->pages = pages;
  s->zeroed = zeroed;
  s->backed = backed;
  // Neighbours are merged when both are backed or both are not: a backed span merged into an
  // unbacked one would be backed again (a fallocate) at every reuse, as when a program frees and
  // allocates the same few pages next to the unbacked rest of a new segment. They are merged
  // anyway when together they make a whole free segment (which can then be released).
  // retained_pages counts the pages of backed free spans.
  uint64_t uncount = 0;
  uint64_t end = page + pages;
  Span *n = nullptr, *p = nullptr;
  if (end < seg_end(h, page)) {
    n = h->shadow[end];
    if (!(n && n->kind == kSpanFree && n->page == end)) n = nullptr;
  }
  if (page > seg_first_data(page)) {
    p = h->shadow[page - 1];
    if (!(p && p->kind == kSpanFree && p->page + p->pages == page)) p = nullptr;
  }
  const bool whole = uint64_t{pages} + (n ? n->pages : 0) + (p ? p->pages : 0) ==
                     kSegmentPages - kFirstDataPage;
  // Join free span `second`, which follows `first`, into `first` (a neighbour leaves its bin).
  auto join = [&](Span *first, Span *second, Span *neighbour) {
    bin_remove(h, neighbour);
    if (neighbour->backed) uncount += neighbour->pages;
    first->pages += second->pages;
    first->zeroed &= second->zeroed;
    first->backed &= second->backed;
    meta_span_free(second);
  };
  if (n && (whole || n->backed == s->backed)) join(s, n, n);
  if (p && (whole || p->backed == s->backed)) join(p, s, p), s = p;
  h->shadow[s->page] = s;
  h->shadow[s->page + s->pages - 1] = s;
  bin_push(h, s);
  h->retained_pages = h->retained_pages - uncount + (s->backed ? s->pages : 0);
  uint64_t seg = s->page / kSegmentPages;
  if (seg != 0 && s->page == seg * kSegmentPages + kFirstDataPage &&
      s->pages == kSegmentPages - kFirstDataPage) {
    // The whole segment is free. Keep it for reuse (one always, more within the retained
    // budget); give the others back as free segments, which huge blocks can use again (and
    // pages_release_kept gives the kept ones back when a huge block needs them).
    if (h->kept_empty == UINT64_MAX) h->kept_empty = seg;
    else if (h->kept_empty != seg && h->retained_pages > retain_budget(h)) release_segment(h, seg);
  }
}

bool pages_release_kept(Heap *h) {
  h->kept_empty = UINT64_MAX;
  bool released = false;
  SpanList &bin = h->bins[bin_of(kSegmentPages - kFirstDataPage)];
  for (Span *s = bin.head, *next; s; s = next) {
    next = s->next;
    uint64_t seg = s->page / kSegmentPages;
    if (s->kind == kSpanFree && seg != 0 && s->page == seg * kSegmentPages + kFirstDataPage &&
        s->pages == kSegmentPages - kFirstDataPage) {
      release_segment(h, seg);
      released = true;
    }
  }
  return released;
}

bool pages_release_kept_huge(Heap *h) {
  bool released = false;
  for (Span *s = h->free_segs.head, *next; s; s = next) {
    next = s->next;
    if (!s->backed) continue;
    uint64_t seg = s->page / kSegmentPages;
    uint32_t count = s->segments;
    h->free_segs.remove(s);
    h->retained_pages -= uint64_t{count} * kSegmentPages;
    bool zeroed = punch_free_range(h, seg, count);
    h->shadow[s->page] = nullptr;
    h->shadow[(seg + count - 1) * kSegmentPages] = nullptr;
    meta_span_free(s);
    pages_insert_free_segments(h, seg, count, zeroed);
    released = true;
    next = h->free_segs.head;  // the list changed under us (merges): start over
  }
  return released;
}

int pages_format_large(Heap *h, uint64_t page, uint32_t pages) {
  if (int rc = back_pages(h, page, pages)) return rc;
  for (uint32_t q = 1; q < pages; ++q)
    store_desc(h, page + q, PageDesc{kPageLargeCont, 0, static_cast<uint16_t>(q), 0});
  std::atomic_thread_fence(std::memory_order_release);
  store_desc(h, page, PageDesc{kPageLargeHead, 0, 0, pages});
  return 0;
}

Span *pages_alloc_run(Heap *h, unsigned cls, int *err, bool in_place) {
  const ClassInfo &ci = kClasses.info[cls];
  Span *s = get_span(h, ci.pages, 0, err, in_place);
  if (!s) return nullptr;
  s->kind = kSpanRun;
  s->start = reinterpret_cast<uintptr_t>(h->at(s->page * kPageSize));
  run_init_volatile(h, s, cls, true);
  Guard g(h->page_lock);
  publish_span(h, s, kPageRunHead, kPageRunCont, static_cast<uint8_t>(cls));
  return s;
}

Span *pages_alloc_large(Heap *h, size_t bytes, size_t align, bool *zeroed, int *err, uint8_t flags) {
  uint32_t n = static_cast<uint32_t>(pages_for(bytes));
  Span *s = get_span(h, n, align, err);
  if (!s) return nullptr;
  s->kind = kSpanLarge;
  s->start = reinterpret_cast<uintptr_t>(h->at(s->page * kPageSize));
  *zeroed = s->zeroed;
  if (tl_commit_log && !s->zeroed) {  // an allocate-and-publish: zero-filled before its commit
    memset(reinterpret_cast<void *>(s->start), 0, uint64_t{s->pages} * kPageSize);
    *zeroed = true;
  }
  s->zeroed = 0;
  s->sampled = 0;
  s->noscan = flags & kLargeNoScan ? 1 : 0;
  Guard g(h->page_lock);
  publish_span(h, s, kPageLargeHead, kPageLargeCont, flags);
  return s;
}

void pages_mark_sampled(Heap *h, Span *s) {
  Guard g(h->page_lock);
  store_desc(h, s->page, PageDesc{kPageLargeHead, kLargeSampled, 0, s->pages});
  s->sampled = 1;
}

void pages_free_span(Heap *h, Span *s) {
  // The span is the caller's alone until it is inserted: its descriptor and the punch need no lock.
  store_desc(h, s->page, PageDesc{kPageFree, 0, 0, s->pages});  // the commit point
  PERSIST_CRASH_POINT("span.free");
  uint64_t page = s->page;
  uint32_t pages = s->pages;
  bool punch = pages >= kPunchPages &&
               __atomic_load_n(&h->retained_pages, __ATOMIC_RELAXED) + pages > retain_budget(h);
  bool zeroed = punch && punch_pages(h, page, pages);
  bool backed = !zeroed || h->fd < 0;
  Guard g(h->page_lock);
  meta_span_free(s);
  pages_insert_free(h, page, pages, zeroed, backed);
}

namespace {

// The HEAD descriptor of large block s resized to n pages: it keeps its pointer-free flag.
PageDesc large_head(const Span *s, uint32_t n) {
  return PageDesc{kPageLargeHead, s->noscan ? kLargeNoScan : uint8_t{0}, 0, n};
}

}  // namespace

bool pages_resize_large(Heap *h, Span *s, size_t bytes) {
  uint32_t n = static_cast<uint32_t>(pages_for(bytes));
  Guard g(h->page_lock);
  if (n == s->pages) return true;
  if (n < s->pages) {  // shrink: the tail becomes free; the HEAD is rewritten first
    uint32_t old = s->pages;
    store_desc(h, s->page, large_head(s, n));
    PERSIST_CRASH_POINT("large.shrink");
    s->pages = n;
    pages_insert_free(h, s->page + n, old - n, false, true);
    return true;
  }
  uint64_t end = s->page + s->pages;
  if (end >= seg_end(h, s->page)) return false;
  Span *next = h->shadow[end];
  if (!next || next->kind != kSpanFree || next->page != end || s->pages + next->pages < n)
    return false;
  bin_remove(h, next);
  uint32_t grow = n - s->pages;
  if (next->pages > grow) {  // keep the rest of the free span
    Span *rest = meta_span_new();
    if (!rest) {
      bin_push(h, next);
      return false;
    }
    rest->kind = kSpanFree;
    rest->page = next->page + grow;
    rest->pages = next->pages - grow;
    rest->zeroed = next->zeroed;
    rest->backed = next->backed;
    h->shadow[rest->page] = rest;
    h->shadow[rest->page + rest->pages - 1] = rest;
    bin_push(h, rest);
  }
  if (!next->backed && back_pages(h, end, grow) != 0) {
    pages_insert_free(h, end, grow, next->zeroed, false);
    meta_span_free(next);
    return false;
  }
  if (next->backed) h->retained_pages -= grow;  // it was counted as a free backed span
  meta_span_free(next);
  for (uint32_t q = s->pages; q < n; ++q)
    store_desc(h, s->page + q, PageDesc{kPageLargeCont, 0, static_cast<uint16_t>(q), 0});
  PERSIST_CRASH_POINT("large.grow.cont");
  std::atomic_thread_fence(std::memory_order_release);
  store_desc(h, s->page, large_head(s, n));  // the commit point
  PERSIST_CRASH_POINT("large.grow.head");
  shadow_set(h, end, grow, s);
  s->pages = n;
  return true;
}

void pages_insert_free_segments(Heap *h, uint64_t seg, uint32_t count, bool zeroed, bool backed) {
  // Callers pass the head of a range whose header already says kSegFree (a freed huge block, a
  // range taken and given back, a discovered range); only its length may need updating.
  SegmentHeader *sh = h->seg_header(seg);
  if (sh->segments != count) __atomic_store_n(&sh->segments, count, __ATOMIC_RELEASE);
  Span *s = meta_span_new();
  if (!s) return;
  s->kind = kSpanFree;
  s->page = seg * kSegmentPages;
  s->segments = count;
  s->zeroed = zeroed;
  s->backed = backed;
  if (backed) h->retained_pages += uint64_t{count} * kSegmentPages;
  for (uint32_t i = 0; i < count; ++i) h->segs[seg + i] = SegInfo{1, i ? uint8_t{0} : uint8_t{kSegFree}};
  // Ranges merge only when both are kept backed or neither is (as free spans do, pages_insert_free).
  uint64_t end = seg + count;
  if (end < h->image().segment_count()) {
    Span *n = h->shadow[end * kSegmentPages];
    if (n && n->kind == kSpanFree && n->page == end * kSegmentPages && n->segments && n->backed == s->backed) {
      heap_hint_interior(h, seg, end, end + 1);  // before `end` becomes interior
      h->free_segs.remove(n);
      s->segments += n->segments;
      s->zeroed &= n->zeroed;
      h->shadow[end * kSegmentPages] = nullptr;
      meta_span_free(n);
      __atomic_store_n(&sh->segments, s->segments, __ATOMIC_RELEASE);
      PERSIST_CRASH_POINT("segments.merge.next");
      if (s->zeroed) s->zeroed = punch_pages(h, end * kSegmentPages + 1, 1);  // header now interior
    }
  }
  if (seg > 0) {
    Span *p = h->shadow[(seg - 1) * kSegmentPages];
    if (p && p->kind == kSpanFree && p->segments && p->backed == s->backed &&
        p->page / kSegmentPages + p->segments == seg) {
      heap_hint_interior(h, p->page / kSegmentPages, seg, seg + 1);  // before `seg` becomes interior
      h->free_segs.remove(p);
      p->segments += s->segments;
      p->zeroed &= s->zeroed;
      __atomic_store_n(&h->seg_header(p->page / kSegmentPages)->segments, p->segments, __ATOMIC_RELEASE);
      PERSIST_CRASH_POINT("segments.merge.prev");
      if (p->zeroed) p->zeroed = punch_pages(h, seg * kSegmentPages + 1, 1);  // header now interior
      h->shadow[seg * kSegmentPages] = nullptr;
      meta_span_free(s);
      s = p;
    }
  }
  uint64_t first = s->page / kSegmentPages;
  h->shadow[s->page] = s;
  h->shadow[(first + s->segments - 1) * kSegmentPages] = s;
  h->free_segs.push(s);
}

int pages_take_free_segments(Heap *h, uint32_t count, uint64_t *seg, bool *zeroed, bool kept_only) {
  Span *s = nullptr;  // kept_only: the smallest kept range that fits; else the first that fits
  for (Span *r = h->free_segs.head; r; r = r->next)
    if (r->segments >= count && (!kept_only || r->backed) && (!s || r->segments < s->segments)) {
      s = r;
      if (!kept_only) break;
    }
  if (s) {
    uint64_t first = s->page / kSegmentPages;
    h->free_segs.remove(s);
    if (zeroed) *zeroed = s->zeroed;
    if (s->backed) h->retained_pages -= uint64_t{count} * kSegmentPages;  // the rest stays counted
    if (s->segments > count) {  // the rest stays free, with a header of its own (written first)
      uint64_t rest = first + count;
      SegmentHeader *rh = h->seg_header(rest);
      __atomic_store_n(&rh->kind, 0u, __ATOMIC_RELAXED);
      rh->magic = kSegmentMagic;
      rh->segments = s->segments - count;
      rh->pages = 0;
      rh->huge_bytes = 0;
      __atomic_store_n(&rh->kind, kSegFree, __ATOMIC_RELEASE);
      PERSIST_CRASH_POINT("segments.split");
      s->segments -= count;
      s->page = rest * kSegmentPages;
      h->shadow[s->page] = s;
      h->free_segs.push(s);
    } else {
      h->shadow[(first + s->segments - 1) * kSegmentPages] = nullptr;
      meta_span_free(s);
    }
    h->shadow[first * kSegmentPages] = nullptr;
    *seg = first;
    return 0;
  }
  return -ENOMEM;
}

Span *pages_alloc_huge(Heap *h, size_t bytes, bool *zeroed, int *err, uint32_t flags) {
  uint64_t block = pages_for(bytes) * kPageSize;
  uint64_t segs = (block + kHugeFirstPage * kPageSize + kSegmentSize - 1) / kSegmentSize;
  if (segs > h->reserve / kSegmentSize) {
    *err = -ENOMEM;
    return nullptr;
  }
  // Reuse freed segments of earlier runs: discover everything before growing.
  for (;;) {
    bool prefix;
    {
      Guard g(h->page_lock);
      prefix = main_pass_done(h);
      if (prefix && h->prefix_next >= h->prefix_end) break;
    }
    heap_discover_one(h, prefix);
  }
  Span *s = meta_span_new();
  if (!s) {
    *err = -ENOMEM;
    return nullptr;
  }
  Guard g(h->page_lock);
  uint64_t seg = 0;
  int rc = segment_add_huge(h, static_cast<uint32_t>(segs), block, &seg, zeroed, flags);
  if (rc) {
    meta_span_free(s);
    *err = rc == -ENOSPC ? -ENOMEM : rc;
    return nullptr;
  }
  s->kind = kSpanHuge;
  s->page = seg * kSegmentPages + kHugeFirstPage;
  s->pages = static_cast<uint32_t>(block / kPageSize);
  s->segments = static_cast<uint32_t>(segs);
  s->start = reinterpret_cast<uintptr_t>(h->at(s->page * kPageSize));
  s->backed = 1;
  s->noscan = flags & kHugeNoScan ? 1 : 0;
  shadow_set(h, s->page, s->pages, s);
  return s;
}

void pages_free_huge(Heap *h, Span *s) {
  Guard g(h->page_lock);
  uint64_t seg = s->page / kSegmentPages;
  SegmentHeader *sh = h->seg_header(seg);
  __atomic_store_n(&sh->kind, kSegFree, __ATOMIC_RELEASE);  // the commit point
  PERSIST_CRASH_POINT("huge.free");
  uint32_t count = s->segments;
  // Kept backed within the retained budget: a program that frees and allocates huge blocks in
  // turn would otherwise fault in (and the kernel clear) every page of every block again.
  bool keep = h->retained_pages + uint64_t{count} * kSegmentPages <= retain_budget(h);
  bool zeroed = !keep && punch_free_range(h, seg, count);
  memset(h->shadow + s->page, 0, uint64_t{s->pages} * sizeof(Span *));
  meta_span_free(s);
  pages_insert_free_segments(h, seg, count, zeroed, keep);
}

void pages_trim(Heap *h) {
  Guard g(h->page_lock);
  pages_release_kept_huge(h);
  h->retained_pages = 0;
  for (auto &bin : h->bins)
    for (Span *s = bin.head; s; s = s->next) {
      if (s->backed && punch_pages(h, s->page, s->pages)) {
        s->backed = h->fd < 0;
        s->zeroed = 1;
      }
      if (s->backed) h->retained_pages += s->pages;
    }
}

Span *span_lookup(Heap *h, const void *p) {
  if (!h->contains(p)) return nullptr;
  uint64_t seg = h->off(p) / kSegmentSize;
  for (;;) {
    bool prefix;
    {
      Guard g(h->page_lock);
      if (segment_known(h, seg)) break;
      prefix = seg < h->prefix_end;
      if (!prefix && main_pass_done(h)) break;
    }
    if (heap_discover_one(h, prefix) <= 0) break;
  }
  return h->span_of(p);
}

}  // namespace persist
