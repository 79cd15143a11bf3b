// run.cpp — runs of small blocks: volatile set-up, carving fresh blocks, applying remote frees,
// the pool of runs without an owner, and adoption (which rebuilds a run's free list from its
// AUTHORITATIVE bitmap, so a run's volatile state never has to be trusted across owners or opens).
#include <cstring>

#include "../core/include/persist.h"
#include "crashpoint.h"
#include "heap.h"
#include "platform.h"

namespace persist {
namespace {

constexpr int kAdoptTries = 8;     // pool runs examined per adoption before making a new run
constexpr size_t kExtendBytes = kPageSize;  // bytes carved from the bump area at a time

inline uint32_t block_index(const Span *s, uintptr_t p) {
  return static_cast<uint32_t>(((p - s->start) * s->recip) >> kRecipShift);
}

// Clear the bit of block p (owner or pool_lock holder). False when it was not set (double free).
inline bool clear_bit(Span *s, uintptr_t p) {
  uint32_t idx = block_index(s, p);
  uint64_t bit = uint64_t{1} << (idx & 63), *w = &s->bitmap[idx >> 6];
  if (!(*w & bit)) return false;
  *w &= ~bit;
  --s->used;
  return true;
}

// Rebuild the free list from the bitmap: every clear bit below the bump area is a free block.
void rebuild_free(Span *s) {
  uint32_t limit = static_cast<uint32_t>((reinterpret_cast<uintptr_t>(s->bump) - s->start) / s->bsize);
  Block *list = nullptr;
  for (uint32_t w = (limit + 63) / 64; w-- > 0;) {
    uint64_t free_bits = ~s->bitmap[w];
    if (w * 64 + 64 > limit) free_bits &= (limit % 64) ? (uint64_t{1} << (limit % 64)) - 1 : ~uint64_t{0};
    while (free_bits) {
      unsigned b = 63 - static_cast<unsigned>(__builtin_clzll(free_bits));
      free_bits &= ~(uint64_t{1} << b);
      auto *blk = reinterpret_cast<Block *>(s->start + uint64_t{w * 64 + b} * s->bsize);
      blk->next = list;
      list = blk;
    }
  }
  s->free = list;
}

void report(const char *what, const void *p) {
  Msg m;
  m.add("libpersist: ").add(what).add(" ").hex(reinterpret_cast<uintptr_t>(p)).add("\n");
  os::write_stderr(m.str(), m.size());
}

// Release an empty run without an owner (pool_lock held).
void release_unowned(Heap *h, Span *s) {
  if (s->in_list) h->pool[s->cls].remove(s);
  pages_free_span(h, s);
}

}  // namespace

void run_init_volatile(Heap *h, Span *s, unsigned cls, bool fresh) {
  const ClassInfo &ci = kClasses.info[cls];
  s->cls = static_cast<uint8_t>(cls);
  s->bsize = ci.size;
  s->capacity = ci.capacity;
  s->recip = ci.recip;
  s->bitmap = h->bitmap_of(s->page);
  s->free = nullptr;
  s->used = 0;
  s->full = 0;
  s->bump_end = reinterpret_cast<char *>(s->start + uint64_t{ci.capacity} * ci.size);
  // A fresh run's blocks are carved lazily from the bump area; a discovered run's free blocks are
  // found from its bitmap when it is adopted.
  s->bump = fresh ? reinterpret_cast<char *>(s->start) : s->bump_end;
  s->remote.store(nullptr, std::memory_order_relaxed);
  s->owner.store(nullptr, std::memory_order_relaxed);
  s->notified.store(0, std::memory_order_relaxed);
}

void run_extend(Span *s) {
  char *end = s->bump + kExtendBytes;
  if (end > s->bump_end || s->bsize > kExtendBytes) end = s->bump_end;
  Block *list = s->free;
  // Carve back to front so the list comes out in address order.
  uint32_t n = static_cast<uint32_t>((end - s->bump) / s->bsize);
  if (n == 0) n = 1;
  char *last = s->bump + uint64_t{n - 1} * s->bsize;
  for (char *p = last;; p -= s->bsize) {
    auto *b = reinterpret_cast<Block *>(p);
    b->next = list;
    list = b;
    if (p == s->bump) break;
  }
  s->free = list;
  s->bump = last + s->bsize;
}

bool run_collect_remote(Span *s) {
  Block *b = s->remote.exchange(nullptr, std::memory_order_acquire);
  if (!b) return false;
  while (b) {
    Block *next = b->next;
    if (clear_bit(s, reinterpret_cast<uintptr_t>(b))) {
      PERSIST_CRASH_POINT("remote.apply");
      b->next = s->free;
      s->free = b;
    } else {
      report("double free (detected when a remote free was applied) of", b);
    }
    b = next;
  }
  return true;
}

Span *run_adopt_from_pool(Heap *h, ThreadHeap *th, unsigned cls) {
  Guard g(h->pool_lock);
  SpanList &pool = h->pool[cls];
  for (int i = 0; i < kAdoptTries && !pool.empty(); ++i) {
    Span *s = pool.pop();
    // Without an owner the pool lock stands in for one: apply what other threads handed back.
    Block *b = s->remote.exchange(nullptr, std::memory_order_acquire);
    while (b) {
      Block *next = b->next;
      clear_bit(s, reinterpret_cast<uintptr_t>(b));
      b = next;
    }
    if (s->used == s->capacity && s->bump >= s->bump_end) {
      pool.push_back(s);  // full: look at it again later
      continue;
    }
    rebuild_free(s);
    s->full = 0;
    s->owner.store(th, std::memory_order_release);
    return s;
  }
  return nullptr;
}

void run_pool_insert(Heap *h, Span *runs) {
  // pool_lock held by the caller (discovery)
  while (runs) {
    Span *s = runs;
    runs = s->next;
    s->next = nullptr;
    if (s->used == 0) pages_free_span(h, s);  // an empty run left over: give its pages back
    else h->pool[s->cls].push_back(s);
  }
}

void run_abandon(Heap *h, Span *s) {
  // pool_lock held; the caller was the owner
  s->owner.store(nullptr, std::memory_order_release);
  Block *b = s->remote.exchange(nullptr, std::memory_order_acquire);
  while (b) {
    Block *next = b->next;
    clear_bit(s, reinterpret_cast<uintptr_t>(b));
    b = next;
  }
  __atomic_store_n(&s->full, 0, __ATOMIC_RELAXED);
  if (s->used == 0 && !s->notified.load(std::memory_order_acquire)) {
    pages_free_span(h, s);
    return;
  }
  h->pool[s->cls].push(s);
}

void run_free_remote(Heap *h, Span *s, void *p) {
  auto *blk = reinterpret_cast<Block *>(s->start + uint64_t{block_index(s, reinterpret_cast<uintptr_t>(p))} * s->bsize);
  for (;;) {
    ThreadHeap *owner = s->owner.load(std::memory_order_acquire);
    if (owner) {
      Block *head = s->remote.load(std::memory_order_relaxed);
      do blk->next = head;
      while (!s->remote.compare_exchange_weak(head, blk, std::memory_order_seq_cst,
                                               std::memory_order_relaxed));
      // The owner parks an exhausted run as full and then re-checks `remote`; we pushed and now
      // check `full`: one of the two sees the other (both sides order with a full fence).
      if (__atomic_load_n(&s->full, __ATOMIC_SEQ_CST) &&
          s->notified.exchange(1, std::memory_order_acq_rel) == 0) {
        Span *top = owner->notify.load(std::memory_order_relaxed);
        do s->notify_next = top;
        while (!owner->notify.compare_exchange_weak(top, s, std::memory_order_release,
                                                    std::memory_order_relaxed));
      }
      return;
    }
    Guard g(h->pool_lock);
    if (s->owner.load(std::memory_order_acquire)) continue;  // adopted meanwhile
    if (s->kind != kSpanRun) {
      report("free of a pointer into a released run:", p);
      return;
    }
    if (!clear_bit(s, reinterpret_cast<uintptr_t>(blk))) {
      report("double free of", blk);
      return;
    }
    PERSIST_CRASH_POINT("pool.free");
    if (s->used == 0 && !s->notified.load(std::memory_order_acquire)) release_unowned(h, s);
    return;
  }
}

int heap_discover_one(Heap *h) {
  Guard g(h->pool_lock);
  Span *runs = nullptr;
  int rc;
  {
    Guard p(h->page_lock);
    rc = segment_discover_next(h, &runs);
  }
  run_pool_insert(h, runs);
  return rc;
}

}  // namespace persist
