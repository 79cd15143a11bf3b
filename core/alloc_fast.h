// alloc_fast.h — the allocation and free fast paths, inline so that the shim's malloc and free
// (and the handle API) contain them directly. VOLATILE state only, plus the one AUTHORITATIVE
// store each makes: the block's bit in its run's bitmap (the commit point).
//
// malloc, small size, current run has a free block:  TLS load, class lookup, pop the run's free
// list, set the bit, count — no lock, no atomic read-modify-write, one unlikely exit.
// free, block of a run this thread owns: shadow lookup, owner compare, clear the bit, push on the
// run's free list, count — the same. Everything else is out of line in alloc.cpp / thread.cpp.
#pragma once

#include "crashpoint.h"
#include "heap.h"

#define PERSIST_LIKELY(x) __builtin_expect(!!(x), 1)
#define PERSIST_UNLIKELY(x) __builtin_expect(!!(x), 0)

namespace persist {

// Out-of-line continuations (alloc.cpp).
__attribute__((noinline)) void *small_alloc_first(Heap *h, unsigned cls, size_t size);
__attribute__((noinline)) void *small_alloc_miss(Heap *h, unsigned cls);
__attribute__((noinline)) void *small_alloc_sample(Heap *h, unsigned cls, size_t size);
__attribute__((noinline)) void *large_malloc(Heap *h, size_t size);
__attribute__((noinline)) void free_miss(Heap *h, void *p);

inline uint32_t run_block_index(const Span *s, uintptr_t p) {
  return static_cast<uint32_t>(((p - s->start) * s->recip) >> kRecipShift);
}

// Pop a block of class cls from th's current run (nullptr: the run is exhausted).
inline void *small_alloc_pop(ThreadHeap *th, unsigned cls) {
  Span *s = th->cur[cls];
  Block *b = s->free;
  if (PERSIST_UNLIKELY(!b)) return nullptr;
  s->free = b->next;
  uint32_t idx = run_block_index(s, reinterpret_cast<uintptr_t>(b));
  s->bitmap[idx >> 6] |= uint64_t{1} << (idx & 63);  // the commit point
  ++s->used;
  std::atomic_signal_fence(std::memory_order_seq_cst);  // stored before the pointer escapes
  PERSIST_CRASH_POINT("alloc.bit");
  return b;
}

// A small block for a request of `size` bytes in class cls. The sampler's countdown (sites.h) is
// the one extra branch; a sampled block is page-aligned, so it serves aligned requests too.
inline void *small_alloc_fast(Heap *h, unsigned cls, size_t size) {
  ThreadHeap *th = tl_heaps[h->slot];
  if (PERSIST_UNLIKELY(th->heap_id != h->id)) return small_alloc_first(h, cls, size);
  if (PERSIST_UNLIKELY((th->sample_left -= static_cast<int64_t>(size)) < 0))
    return small_alloc_sample(h, cls, size);
  void *b = small_alloc_pop(th, cls);
  if (PERSIST_UNLIKELY(!b)) return small_alloc_miss(h, cls);
  return b;
}

inline void *heap_malloc_fast(Heap *h, size_t size) {
  if (PERSIST_LIKELY(size <= kMaxSmall)) return small_alloc_fast(h, size_class(size), size);
  return large_malloc(h, size);
}

// p must lie inside h (Heap::contains).
inline void heap_free_fast(Heap *h, void *p) {
  Span *s = h->span_of(p);
  ThreadHeap *th = tl_heaps[h->slot];
  if (PERSIST_LIKELY(s && s->owner.load(std::memory_order_relaxed) == th)) {
    uint32_t idx = run_block_index(s, reinterpret_cast<uintptr_t>(p));
    uint64_t bit = uint64_t{1} << (idx & 63), *w = &s->bitmap[idx >> 6];
    uint64_t word = *w;
    if (PERSIST_LIKELY(word & bit)) {
      *w = word & ~bit;  // the commit point: the block is free
      PERSIST_CRASH_POINT("free.bit");
      auto *b = reinterpret_cast<Block *>(s->start + uint64_t{idx} * s->bsize);
      b->next = s->free;
      s->free = b;
      if (PERSIST_LIKELY(--s->used != 0 && !s->full)) return;
    }
  }
  free_miss(h, p);
}

}  // namespace persist
