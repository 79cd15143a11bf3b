// alloc_fast.h — the allocation and free fast paths, inline so that the shim's malloc and free
// (and the handle API) contain them directly. VOLATILE state only, plus the one AUTHORITATIVE
// store each makes: the block's bit in its run's bitmap (the commit point).
//
// malloc, small size, current run has a free block:  TLS load, class lookup, the lowest clear bit
// of the run's first word that has one, set it, count — no lock, no atomic read-modify-write, one
// unlikely exit. free, block of a run this thread owns: shadow lookup, owner compare, clear the
// bit, mark its word as having one, count — the same. Neither touches the block itself (its
// cache line stays wherever the program uses it). Everything else is out of line in alloc.cpp /
// thread.cpp.
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
// p is where block `idx` of the run starts (not a pointer into it).
inline bool run_block_start(const Span *s, uintptr_t p, uint32_t idx) {
  return p == s->start + uint64_t{idx} * s->bsize;
}

// Take a block of class cls from th's current run: the lowest clear bit of the first word that
// has one (nullptr: none has, or only bits past the run's last block are clear — the slow path
// moves on). The empty run has no such word.
inline void *small_alloc_pop(ThreadHeap *th, unsigned cls) {
  Span *s = th->cur[cls];
  uint64_t nonfull = s->nonfull;
  if (PERSIST_UNLIKELY(!nonfull)) return nullptr;
  unsigned wi = static_cast<unsigned>(__builtin_ctzll(nonfull));
  uint64_t word = s->bitmap[wi];
  unsigned b = static_cast<unsigned>(__builtin_ctzll(~word));
  uint32_t idx = wi * 64 + b;
  if (PERSIST_UNLIKELY(idx >= s->capacity)) return nullptr;
  // run_take's work, on the word already loaded and without its branch (calling run_take made
  // glibc-simple 9% slower: bench/alternate.sh 7 rounds).
  word |= uint64_t{1} << b;
  s->bitmap[wi] = word;  // the commit point
  s->nonfull = nonfull & ~(uint64_t{word == ~uint64_t{0}} << wi);
  ++s->used;
  std::atomic_signal_fence(std::memory_order_seq_cst);  // stored before the pointer escapes
  PERSIST_CRASH_POINT("alloc.bit");
  return reinterpret_cast<void *>(s->start + uint64_t{idx} * s->bsize);
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
    const auto a = reinterpret_cast<uintptr_t>(p);
    uint32_t idx = run_block_index(s, a), wi = idx >> 6;
    uint64_t bit = uint64_t{1} << (idx & 63), *w = &s->bitmap[wi];
    uint64_t word = *w;
    if (PERSIST_LIKELY((word & bit) && run_block_start(s, a, idx))) {
      *w = word & ~bit;  // the commit point: the block is free
      PERSIST_CRASH_POINT("free.bit");
      s->nonfull |= uint64_t{1} << (wi & 63);
      if (PERSIST_LIKELY(--s->used != 0 && !s->full)) return;
      return small_free_local_slow(h, th, s);  // emptied, or parked as full
    }
  }
  free_miss(h, p);  // another thread's run, a large or huge block, or a double free
}

}  // namespace persist
