// alloc.cpp — the malloc family on a heap: the fast paths and glibc's edge semantics
// (PRELOAD.md §8) live here, so the shim only forwards.
//
// Fast allocation (small): the thread heap's current run for the size class; set the lowest
// clear bit of the first bitmap word that has one (the commit point), count it: about a dozen
// instructions, no lock, no atomic read-modify-write, one unlikely exit to small_alloc_slow.
// Fast free (small, own run): the shadow map gives the run; clear the bit (the commit point),
// mark its word as having a clear bit. Anything else — another thread's run, large and huge blocks,
// pointers into undiscovered segments — goes through free_slow.
#include <cerrno>
#include <cstdint>
#include <cstring>

#include "alloc_fast.h"
#include "platform.h"
#include "sites.h"

namespace persist {
namespace {

constexpr size_t kMaxRequest = PTRDIFF_MAX;

__attribute__((cold)) void report(const char *what, const void *p) {
  static std::atomic<int> reported{0};
  if (reported.fetch_add(1, std::memory_order_relaxed) >= 8) return;
  Msg m;
  m.add("libpersist: ").add(what).add(" ").hex(reinterpret_cast<uintptr_t>(p)).add(" (ignored)\n");
  os::write_stderr(m.str(), m.size());
}

void *large_alloc_once(Heap *h, size_t size, size_t align, bool zero, bool noscan);
void *sampled_alloc(Heap *h, ThreadHeap *th, size_t size, bool zero);

// Large and huge blocks; on failure the calling thread's empty runs are given back and the
// allocation is tried once more before ENOMEM. A pointer-free block is not sampled: a sample
// would change its span.
void *large_alloc(Heap *h, size_t size, size_t align, bool zero, bool noscan = false) {
  ThreadHeap *th = tl_heaps[h->slot];
  if (PERSIST_UNLIKELY(!noscan && th->heap_id == h->id &&
                       (th->sample_left -= static_cast<int64_t>(size < INT64_MAX ? size : INT64_MAX)) < 0)) {
    if (align > kPageSize) th->sample_left = sites_draw(h, th);  // over-aligned: not sampled
    else if (void *p = sampled_alloc(h, th, size, zero)) return p;
  }
  void *p = large_alloc_once(h, size, align, zero, noscan);
  if (!p && thread_release_empty_runs(h)) p = large_alloc_once(h, size, align, zero, noscan);
  return p;
}

void *large_alloc_once(Heap *h, size_t size, size_t align, bool zero, bool noscan) {
  bool zeroed = false;
  int err = 0;
  // A large block lives in one segment, with the pages needed to align it: beyond that, huge.
  uint64_t padding = align > kPageSize ? align / kPageSize - 1 : 0;
  bool fits = size <= kMaxLarge && pages_for(size) + padding <= kSegmentPages - kFirstDataPage;
  Span *s = fits ? pages_alloc_large(h, size, align > kPageSize ? align : 0, &zeroed, &err,
                                     noscan ? kLargeNoScan : uint8_t{0})
                 : nullptr;
  if (!s && !err) {  // huge: whole segments; alignment beyond a page by over-allocation
    size_t extra = align > kPageSize ? align : 0;
    if (size > kMaxRequest - extra) {
      errno = ENOMEM;
      return nullptr;
    }
    s = pages_alloc_huge(h, size + extra, &zeroed, &err, noscan ? kHugeNoScan : 0u);
    if (s && extra) {
      uintptr_t p = (s->start + align - 1) & ~(uintptr_t{align} - 1);
      if (zero && !zeroed) memset(reinterpret_cast<void *>(p), 0, size);
      return reinterpret_cast<void *>(p);
    }
  }
  if (!s) {
    errno = err == -ENOMEM || err == -ENOSPC || err == 0 ? ENOMEM : -err;
    if (errno != ENOMEM) errno = ENOMEM;  // every allocation failure is ENOMEM to the caller
    return nullptr;
  }
  if (zero && !zeroed) memset(reinterpret_cast<void *>(s->start), 0, size);
  return reinterpret_cast<void *>(s->start);
}

// A sampled allocation (sites.h): a span of its own, page-aligned, carrying its SampleRecord —
// a large block at the end of its span, committed by the kLargeSampled flag in its descriptor; a
// huge block in its segment header, committed by the record's magic. nullptr: allocate normally
// (recording off, re-entered, no backtrace, site table full, or no memory for the bigger span).
// th's countdown ran out: the next distance is drawn here.
void *sampled_alloc(Heap *h, ThreadHeap *th, size_t size, bool zero) {
  th->sample_left = sites_draw(h, th);
  if (!h->sites_interval || tl_sampling || size > kMaxRequest - kPageSize) return nullptr;
  tl_sampling = 1;
  uint32_t site = sites_record(h);
  tl_sampling = 0;
  if (site == kNoSite) {
    h->samples_lost.fetch_add(1, std::memory_order_relaxed);
    return nullptr;
  }
  SampleRecord rec{0, site, size, h->sites_interval, 0};
  bool zeroed = false;
  int err = 0;
  size_t bytes = size + sizeof(SampleRecord);
  void *p = nullptr;
  if (bytes <= kMaxLarge) {
    Span *s = pages_alloc_large(h, bytes, 0, &zeroed, &err);
    if (s) {
      p = reinterpret_cast<void *>(s->start);
      rec.magic = kSampleMagic;
      memcpy(reinterpret_cast<char *>(s->start) + uint64_t{s->pages} * kPageSize - sizeof rec, &rec,
             sizeof rec);
      PERSIST_CRASH_POINT("sample.record");
      pages_mark_sampled(h, s);  // the commit point of the sample
    }
  } else {
    Span *s = pages_alloc_huge(h, size, &zeroed, &err);
    if (s) {
      p = reinterpret_cast<void *>(s->start);
      SampleRecord &hr = h->seg_header(s->page / kSegmentPages)->sample;
      hr.site = rec.site, hr.size = rec.size, hr.interval = rec.interval, hr.reserved = 0;
      __atomic_store_n(&hr.magic, kSampleMagic, __ATOMIC_RELEASE);  // the commit point
    }
  }
  if (!p) {
    h->samples_lost.fetch_add(1, std::memory_order_relaxed);
    return nullptr;
  }
  h->samples.fetch_add(1, std::memory_order_relaxed);
  if (zero && !zeroed) memset(p, 0, size);
  return p;
}

// What an allocation of the huge block s returned: its start, or (over-aligned: large_alloc_once)
// the start rounded up to a power of two beyond a page — the one such address whose own
// alignment exceeds its distance from the start.
bool huge_block_start(const Span *s, uintptr_t a) {
  if (a == s->start) return true;
  const uintptr_t align = a & (~a + 1);  // the lowest set bit: a's own alignment
  return a > s->start && align > kPageSize && a - s->start < align;
}

void free_slow(Heap *h, Span *s, void *p) {
  if (!s && !(s = span_lookup(h, p))) return report("free of a pointer that is not a block:", p);
  auto a = reinterpret_cast<uintptr_t>(p);
  switch (s->kind) {
    case kSpanRun: {
      if (!run_block_start(s, a, run_block_index(s, a))) return report("free of an interior pointer:", p);
      // Batched into a run another thread owns; at once into one in the pool (nobody would
      // collect it) or without a thread heap.
      ThreadHeap *th = tl_heaps[h->slot];
      if (th->heap_id == h->id && s->owner.load(std::memory_order_relaxed))
        return run_free_remote_batched(h, th, s, p);
      return run_free_remote(h, s, p);
    }
    case kSpanLarge:
      if (a != s->start) return report("free of an interior pointer:", p);
      return pages_free_span(h, s);
    case kSpanHuge:
      if (!huge_block_start(s, a)) return report("free of an interior pointer:", p);
      return pages_free_huge(h, s);
    default:
      return report("double free or free of a pointer into free memory:", p);
  }
}

}  // namespace

// The thread's first small allocation on h (or one without a thread heap: the locked path).
void *small_alloc_first(Heap *h, unsigned cls, size_t size) {
  ThreadHeap *th = tl_heaps[h->slot];
  if (th->heap_id != h->id) th = thread_heap_slow(h);
  if (!th) return small_alloc_shared(h, cls);
  if ((th->sample_left -= static_cast<int64_t>(size)) < 0) return small_alloc_sample(h, cls, size);
  return small_alloc_slow(h, th, cls);
}

// The current run is exhausted.
void *small_alloc_miss(Heap *h, unsigned cls) { return small_alloc_slow(h, tl_heaps[h->slot], cls); }

void *small_alloc_sample(Heap *h, unsigned cls, size_t size) {
  ThreadHeap *th = tl_heaps[h->slot];
  if (void *p = sampled_alloc(h, th, size, false)) return p;
  if (void *p = small_alloc_pop(th, cls)) return p;
  return small_alloc_slow(h, th, cls);
}

void *large_malloc(Heap *h, size_t size) {
  if (size > kMaxRequest) {
    errno = ENOMEM;
    return nullptr;
  }
  return large_alloc(h, size, 0, false);
}

void free_miss(Heap *h, void *p) {
  Span *s = h->span_of(p);
  if (s && s->owner.load(std::memory_order_relaxed) == tl_heaps[h->slot]) {
    auto a = reinterpret_cast<uintptr_t>(p);
    if (!run_block_start(s, a, run_block_index(s, a))) return report("free of an interior pointer:", p);
    return report("double free of", p);  // our own run, and the block's bit is clear
  }
  free_slow(h, s, p);
}

void *heap_malloc(Heap *h, size_t size) { return heap_malloc_fast(h, size); }

// A pointer-free block is a large or huge block (its flag lives in a span descriptor or segment
// header), so it takes whole pages whatever its size.
void *heap_malloc_noscan(Heap *h, size_t size) {
  if (size > kMaxRequest) {
    errno = ENOMEM;
    return nullptr;
  }
  return large_alloc(h, size ? size : 1, 0, false, true);
}

void heap_free(Heap *h, void *p) {
  if (!p) return;
  if (PERSIST_UNLIKELY(!h->contains(p))) return report("free of a pointer outside the heap:", p);
  heap_free_fast(h, p);
}

size_t heap_usable_size(Heap *h, const void *p) {
  if (!p || !h->contains(p)) return 0;
  Span *s = h->span_of(p);
  if (!s && !(s = span_lookup(h, p))) return 0;
  auto a = reinterpret_cast<uintptr_t>(p);
  switch (s->kind) {
    case kSpanRun: {
      uintptr_t block = s->start + uint64_t{run_block_index(s, a)} * s->bsize;
      return block + s->bsize - a;
    }
    case kSpanLarge:
      return s->start + uint64_t{s->pages} * kPageSize - (s->sampled ? sizeof(SampleRecord) : 0) - a;
    case kSpanHuge:
      return s->start + uint64_t{s->pages} * kPageSize - a;
    default:
      return 0;
  }
}

void *heap_calloc(Heap *h, size_t n, size_t size) {
  size_t bytes;
  if (__builtin_mul_overflow(n, size, &bytes) || bytes > kMaxRequest) {
    errno = ENOMEM;
    return nullptr;
  }
  if (bytes <= kMaxSmall) {
    void *p = small_alloc_fast(h, size_class(bytes), bytes);
    if (p) memset(p, 0, bytes);
    return p;
  }
  return large_alloc(h, bytes, 0, true);
}

void *heap_aligned(Heap *h, size_t align, size_t size) {
  if (align <= 16) return heap_malloc(h, size);
  if (size > kMaxRequest - align) {
    errno = ENOMEM;
    return nullptr;
  }
  if (align <= kPageSize && size <= kMaxSmall) {
    // Runs start on a page and their blocks sit at multiples of the block size: a class whose
    // size is a multiple of the alignment gives aligned blocks (powers of two always qualify).
    size_t n = size ? (size + align - 1) & ~(align - 1) : align;
    if (n <= kMaxSmall)
      for (unsigned c = size_class(n); c < kNumClasses; ++c)
        if (kClasses.info[c].size % align == 0) return small_alloc_fast(h, c, size);
  }
  return large_alloc(h, size ? size : 1, align, false);
}

void *heap_realloc(Heap *h, void *p, size_t size) {
  if (!p) return heap_malloc(h, size);
  if (size == 0) {  // glibc: realloc(p, 0) frees p and returns NULL
    heap_free(h, p);
    return nullptr;
  }
  if (size > kMaxRequest) {
    errno = ENOMEM;
    return nullptr;
  }
  size_t usable = heap_usable_size(h, p);
  if (usable == 0) {
    report("realloc of a pointer that is not a block:", p);
    errno = EINVAL;
    return nullptr;
  }
  Span *s = h->span_of(p);
  if (s->kind == kSpanRun) {
    // Keep the block when the new size still fits and does not waste more than half of it.
    if (size <= usable && (size > usable / 2 || usable <= 16)) return p;
  } else if (s->kind == kSpanLarge && !s->sampled && reinterpret_cast<uintptr_t>(p) == s->start &&
             size > kMaxSmall && size <= kMaxLarge) {
    if (pages_resize_large(h, s, size)) return p;  // grown or shrunk in place
  } else if (s->kind == kSpanHuge && size <= usable && size > usable / 2) {
    return p;
  }
  // A pointer-free block stays pointer-free.
  void *q = s->kind != kSpanRun && s->noscan ? heap_malloc_noscan(h, size) : heap_malloc(h, size);
  if (!q) return nullptr;  // p is left untouched
  memcpy(q, p, size < usable ? size : usable);
  heap_free(h, p);
  return q;
}

}  // namespace persist
