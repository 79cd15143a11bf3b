// run.cpp — runs of small blocks: volatile set-up, finding a free block in the bitmap, applying
// remote frees, the pool of runs without an owner, and adoption. A run's free blocks are its
// AUTHORITATIVE bitmap's clear bits, found through the volatile `nonfull` word mask, which is
// recomputed from the bitmap whenever a thread takes a run over: nothing else about them has to be
// trusted across owners or opens.
#include <cstring>

#include "../core/include/persist.h"
#include "crashpoint.h"
#include "heap.h"
#include "platform.h"

namespace persist {
namespace {

constexpr int kAdoptTries = 8;     // pool runs examined per adoption before making a new run

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
  // A fresh run's bitmap is cleared as it is published; a discovered run's words are looked at
  // when a thread adopts it (run_rescan).
  uint32_t words = (ci.capacity + 63) / 64;
  s->nonfull = fresh ? (words == 64 ? ~uint64_t{0} : (uint64_t{1} << words) - 1) : 0;
  s->used = 0;
  s->full = 0;
  s->rbits = h->rbits + s->page * kWordsPerPage;
  s->rstart = s->start;
  s->rrecip = s->recip;
  if (fresh) memset(s->rbits, 0, (uint64_t{ci.capacity} + 63) / 64 * 8);
  s->rpending.store(0, std::memory_order_relaxed);
  s->owner.store(nullptr, std::memory_order_relaxed);
  s->notified.store(0, std::memory_order_relaxed);
}

// The owner's `nonfull` from the bitmap, for a run a thread takes over.
static void run_rescan(Span *s) {
  uint32_t words = (s->capacity + 63) / 64;
  uint64_t m = 0;
  for (uint32_t w = 0; w < words; ++w)
    if (s->bitmap[w] != ~uint64_t{0}) m |= uint64_t{1} << w;
  s->nonfull = m;
}

uint32_t run_find_free(Span *s) {
  if (s->used >= s->capacity) return UINT32_MAX;
  uint32_t last = (s->capacity - 1) / 64, tail = s->capacity % 64;
  while (s->nonfull) {
    unsigned w = static_cast<unsigned>(__builtin_ctzll(s->nonfull));
    uint64_t free_bits = ~s->bitmap[w];
    if (w == last && tail) free_bits &= (uint64_t{1} << tail) - 1;
    if (free_bits) return w * 64 + static_cast<unsigned>(__builtin_ctzll(free_bits));
    s->nonfull &= s->nonfull - 1;  // only bits past the last block were clear
  }
  return UINT32_MAX;
}

namespace {

// Apply the remote-free bits of run s to its bitmap (the owner, or pool_lock without one): each
// block's persistent bit is cleared (the commit point of the free), and its word marked as having
// a clear bit. Returns the number of blocks freed.
uint32_t apply_remote_bits(Span *s) {
  uint32_t words = (s->capacity + 63) / 64, n = 0;
  for (uint32_t w = 0; w < words; ++w) {
    if (!__atomic_load_n(&s->rbits[w], __ATOMIC_RELAXED)) continue;
    uint64_t bits = __atomic_exchange_n(&s->rbits[w], 0, __ATOMIC_ACQUIRE);
    if (bits) s->nonfull |= uint64_t{1} << w;
    while (bits) {
      unsigned b = static_cast<unsigned>(__builtin_ctzll(bits));
      bits &= bits - 1;
      uintptr_t p = s->start + uint64_t{w * 64 + b} * s->bsize;
      if (!clear_bit(s, p)) {
        report("double free (detected when a remote free was applied) of", reinterpret_cast<void *>(p));
        continue;
      }
      PERSIST_CRASH_POINT("remote.apply");
      ++n;
    }
  }
  return n;
}

}  // namespace

bool run_collect_remote(Span *s) {
  if (!s->rpending.load(std::memory_order_relaxed)) return false;
  s->rpending.exchange(0, std::memory_order_acquire);
  return apply_remote_bits(s) != 0;
}

Span *run_adopt_from_pool(Heap *h, ThreadHeap *th, unsigned cls) {
  Guard g(h->pool_lock);
  SpanList &pool = h->pool[cls];
  for (int i = 0; i < kAdoptTries && !pool.empty(); ++i) {
    Span *s = pool.pop();
    // Without an owner the pool lock stands in for one: apply what other threads handed back.
    s->rpending.store(0, std::memory_order_relaxed);
    apply_remote_bits(s);
    if (s->used == s->capacity) {
      pool.push_back(s);  // full: look at it again later
      continue;
    }
    run_rescan(s);  // its bitmap may have changed in any word since it was last owned
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
  s->rpending.store(0, std::memory_order_relaxed);
  apply_remote_bits(s);
  __atomic_store_n(&s->full, 0, __ATOMIC_RELAXED);
  if (s->used == 0 && !s->notified.load(std::memory_order_acquire)) {
    pages_free_span(h, s);
    return;
  }
  h->pool[s->cls].push(s);
}

namespace {

// Hand blocks p[0..n) of run s over to the run: their remote-free bits set (one atomic OR per
// bitmap word) while it has an owner, their bitmap bits cleared under pool_lock while it has none.
// Nothing touches the blocks themselves: their cache lines stay with the thread that uses them.
void free_remote_blocks(Heap *h, Span *s, void *const *p, uint32_t n) {
  for (;;) {
    ThreadHeap *owner = s->owner.load(std::memory_order_acquire);
    if (owner) {
      uint32_t word = UINT32_MAX;
      uint64_t mask = 0;
      for (uint32_t i = 0; i < n; ++i) {
        auto idx = static_cast<uint32_t>(((reinterpret_cast<uintptr_t>(p[i]) - s->rstart) * s->rrecip) >> kRecipShift);
        if (idx >> 6 != word) {
          if (mask) __atomic_fetch_or(&s->rbits[word], mask, __ATOMIC_RELEASE);
          word = idx >> 6, mask = 0;
        }
        mask |= uint64_t{1} << (idx & 63);
      }
      __atomic_fetch_or(&s->rbits[word], mask, __ATOMIC_RELEASE);
      s->rpending.fetch_add(n, std::memory_order_seq_cst);
      // The owner parks an exhausted run as full and then re-checks `rpending`; we counted and now
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
      report("free of a pointer into a released run:", p[0]);
      return;
    }
    for (uint32_t i = 0; i < n; ++i) {
      if (!clear_bit(s, reinterpret_cast<uintptr_t>(p[i]))) report("double free of", p[i]);
      PERSIST_CRASH_POINT("pool.free");
    }
    if (s->used == 0 && !s->notified.load(std::memory_order_acquire)) release_unowned(h, s);
    return;
  }
}

constexpr uint32_t kRemoteBatch = sizeof(ThreadHeap::pend) / sizeof(void *);

}  // namespace

void run_free_remote(Heap *h, Span *s, void *p) { free_remote_blocks(h, s, &p, 1); }

// A producer/consumer pattern frees many blocks of the same run in a row: they are collected
// here and handed over together. Until then they stay allocated (their bits set: the run cannot
// be released, a crash leaks them to the collector), at most kRemoteBatch blocks per thread.
void run_free_remote_batched(Heap *h, ThreadHeap *th, Span *s, void *p) {
  if (th->pend_span != s) {
    if (th->pend_span) run_flush_remote(h, th);
    th->pend_span = s;
  }
  th->pend[th->pend_count] = p;
  if (++th->pend_count >= kRemoteBatch) run_flush_remote(h, th);
}

void run_flush_remote(Heap *h, ThreadHeap *th) {
  Span *s = th->pend_span;
  if (!s) return;
  uint32_t n = th->pend_count;
  th->pend_span = nullptr;
  th->pend_count = 0;
  free_remote_blocks(h, s, th->pend, n);
}

int heap_discover_deferred(Heap *h) {
  {
    Guard p(h->page_lock);
    if (!main_pass_done(h) || h->prefix_next >= h->prefix_end) return 0;
  }
  return heap_discover_one(h, true);
}

int heap_discover_one(Heap *h, bool prefix) {
  Guard g(h->pool_lock);
  Span *runs = nullptr;
  int rc;
  {
    Guard p(h->page_lock);
    rc = segment_discover_next(h, &runs, prefix);
  }
  run_pool_insert(h, runs);
  return rc;
}

}  // namespace persist
