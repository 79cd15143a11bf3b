// thread.cpp — thread heaps (VOLATILE): one per thread and open heap, found through an
// initial-exec TLS slot, so the common malloc and free touch no lock and no atomic RMW. Also the
// slow paths behind the fast paths in alloc.cpp, and thread exit.
//
// The chain: heap_malloc (alloc.cpp, inline fast path: the lowest clear bit of the current run's
// bitmap) -> small_alloc_slow (this file: remote frees, other owned runs) ->
// run_adopt_from_pool (run.cpp) -> pages_alloc_run (pages.cpp) -> segment_add_normal (segment.cpp).
#include <pthread.h>

#include <cerrno>

#include "crashpoint.h"
#include "heap.h"
#include "platform.h"
#include "sites.h"

namespace persist {

Span g_empty_run{};  // no word with a clear bit: the fast path falls through to the slow path
// A thread heap that belongs to no heap (id 0) and owns nothing: TLS slots start out pointing at
// it, so the fast paths need no null test (its id never matches, no run's owner is ever it).
ThreadHeap g_no_thread_heap{};
#define PERSIST_NO_TH &g_no_thread_heap
__thread ThreadHeap *tl_heaps[kMaxSlots + 1] = {
    PERSIST_NO_TH, PERSIST_NO_TH, PERSIST_NO_TH, PERSIST_NO_TH, PERSIST_NO_TH, PERSIST_NO_TH,
    PERSIST_NO_TH, PERSIST_NO_TH, PERSIST_NO_TH, PERSIST_NO_TH, PERSIST_NO_TH, PERSIST_NO_TH,
    PERSIST_NO_TH, PERSIST_NO_TH, PERSIST_NO_TH, PERSIST_NO_TH, PERSIST_NO_TH};
#undef PERSIST_NO_TH
static_assert(kMaxSlots + 1 == 17, "initialise every slot");

namespace {

__thread int tl_exiting;      // the thread's TLS destructor ran: no new thread heaps
__thread int tl_key_set;      // pthread_setspecific done for this thread
pthread_key_t g_key;
std::atomic<int> g_key_state{0};  // 0 none, 1 creating, 2 ready
std::atomic<uint32_t> g_slots{0};

void retire(Heap *h, ThreadHeap *th) {
  run_flush_remote(h, th);  // before the locks: it may take pool_lock
  Guard t(h->threads_lock);
  if (!th->thread_state) return;
  th->thread_state = 0;
  for (ThreadHeap **pp = &h->threads; *pp; pp = &(*pp)->next_all)
    if (*pp == th) {
      *pp = th->next_all;
      break;
    }
  Guard p(h->pool_lock);
  for (Span *s = th->notify.exchange(nullptr, std::memory_order_acquire); s;) {
    Span *next = s->notify_next;
    s->notified.store(0, std::memory_order_release);
    s = next;
  }
  for (unsigned c = 0; c < kNumClasses; ++c) {
    while (Span *s = th->runs[c].pop()) run_abandon(h, s);
    th->cur[c] = &g_empty_run;
  }
  while (Span *s = th->full.pop()) run_abandon(h, s);
}

void thread_exit(void *) {
  tl_exiting = 1;
  for (unsigned i = 0; i < kMaxSlots; ++i) {
    ThreadHeap *th = tl_heaps[i];
    tl_heaps[i] = &g_no_thread_heap;
    if (!th->thread_state) continue;
    retire(th->heap, th);
    meta_thread_heap_free(th);  // this thread is gone: nobody else points at it
  }
}

void key_init() {
  int st = g_key_state.load(std::memory_order_acquire);
  if (st == 2) return;
  int expect = 0;
  if (g_key_state.compare_exchange_strong(expect, 1, std::memory_order_acq_rel)) {
    pthread_key_create(&g_key, thread_exit);
    g_key_state.store(2, std::memory_order_release);
    return;
  }
  while (g_key_state.load(std::memory_order_acquire) != 2) {
  }
}

ThreadHeap *new_thread_heap(Heap *h) {
  ThreadHeap *th = meta_thread_heap_new();
  if (!th) return nullptr;
  th->heap = h;
  th->heap_id = h->id;
  th->sample_left = sites_draw(h, th);
  for (auto &c : th->cur) c = &g_empty_run;
  th->thread_state = 1;
  Guard t(h->threads_lock);
  th->next_all = h->threads;
  h->threads = th;
  return th;
}

// Park an exhausted run (nothing free, nothing to carve) in the full list. Returns false when a
// remote free raced in, in which case the run stays where it is.
bool park_full(ThreadHeap *th, Span *s) {
  th->runs[s->cls].remove(s);
  th->full.push(s);
  __atomic_store_n(&s->full, 1, __ATOMIC_SEQ_CST);
  if (!s->rpending.load(std::memory_order_seq_cst)) return true;
  __atomic_store_n(&s->full, 0, __ATOMIC_RELAXED);
  th->full.remove(s);
  th->runs[s->cls].push(s);
  return false;
}

// A parked run that got a block back goes to the tail of its class list: the runs ahead of it
// have had longer to collect frees, and a refill that took it at once would find one block and
// park it again (random frees would then send nearly every allocation down the slow path).
void unpark(ThreadHeap *th, Span *s) {
  th->full.remove(s);
  __atomic_store_n(&s->full, 0, __ATOMIC_RELAXED);
  th->runs[s->cls].push_back(s);
}

void process_notify(ThreadHeap *th) {
  for (Span *s = th->notify.exchange(nullptr, std::memory_order_acquire); s;) {
    Span *next = s->notify_next;
    s->notified.store(0, std::memory_order_release);
    if (s->owner.load(std::memory_order_relaxed) == th && s->full) unpark(th, s);
    s = next;
  }
}

}  // namespace

int slot_acquire() {
  key_init();
  uint32_t cur = g_slots.load(std::memory_order_relaxed);
  for (;;) {
    uint32_t freebits = ~cur & ((1u << kMaxSlots) - 1);
    if (!freebits) return kMaxSlots;
    unsigned i = static_cast<unsigned>(__builtin_ctz(freebits));
    if (g_slots.compare_exchange_weak(cur, cur | (1u << i), std::memory_order_acq_rel)) return static_cast<int>(i);
  }
}

void slot_release(unsigned slot) {
  if (slot < kMaxSlots) g_slots.fetch_and(~(1u << slot), std::memory_order_acq_rel);
}

ThreadHeap *thread_heap_slow(Heap *h) {
  if (tl_exiting || h->slot >= kMaxSlots) return nullptr;
  ThreadHeap *th = new_thread_heap(h);
  if (!th) return nullptr;
  tl_heaps[h->slot] = th;  // before setspecific, which may allocate (keys >= 32)
  if (!tl_key_set) {
    tl_key_set = 1;
    pthread_setspecific(g_key, reinterpret_cast<void *>(1));
  }
  return th;
}

void thread_heaps_retire_all(Heap *h) {
  for (;;) {
    ThreadHeap *th;
    {
      Guard t(h->threads_lock);
      th = h->threads;
    }
    if (!th) break;
    retire(h, th);
    // Other threads may still hold this thread heap in their TLS (it fails their heap-id check);
    // only our own, or the shared one, can be recycled.
    if (h->slot < kMaxSlots && tl_heaps[h->slot] == th) {
      tl_heaps[h->slot] = &g_no_thread_heap;
      meta_thread_heap_free(th);
    } else if (th == h->shared_th) {
      meta_thread_heap_free(th);
    }
  }
  h->shared_th = nullptr;
}

Span *small_refill(Heap *h, ThreadHeap *th, unsigned cls) {
  if (th->notify.load(std::memory_order_relaxed)) process_notify(th);
  Span *s = th->cur[cls];
  for (;;) {
    if (s != &g_empty_run) {
      if (run_find_free(s) != UINT32_MAX) break;
      if (run_collect_remote(s) && run_find_free(s) != UINT32_MAX) break;
      if (!park_full(th, s)) continue;
    }
    s = th->runs[cls].head;
    if (s) continue;
    s = run_adopt_from_pool(h, th, cls);
    if (!s) {
      int err = 0;
      s = pages_alloc_run(h, cls, &err, true);
      // Before the heap grows: runs with room in the segments a clean restart deferred (heap.h).
      while (!s && err == -EAGAIN && heap_discover_deferred(h) > 0) {
        if ((s = run_adopt_from_pool(h, th, cls))) break;
        s = pages_alloc_run(h, cls, &err, true);
      }
      if (!s) s = pages_alloc_run(h, cls, &err);
      if (!s && thread_release_empty_runs(h)) s = pages_alloc_run(h, cls, &err);
      if (!s) {
        th->cur[cls] = &g_empty_run;
        errno = ENOMEM;
        return nullptr;
      }
      s->owner.store(th, std::memory_order_release);  // a fresh run; an adopted one has it already
    }
    th->runs[cls].push(s);
  }
  th->cur[cls] = s;
  return s;
}

void thread_flush_frees(Heap *h) {
  if (h->slot >= kMaxSlots) return;
  ThreadHeap *th = tl_heaps[h->slot];
  if (th->heap_id == h->id) run_flush_remote(h, th);
}

void *small_alloc_slow(Heap *h, ThreadHeap *th, unsigned cls) {
  if (th->pend_span) run_flush_remote(h, th);  // the blocks may be what another thread needs
  Span *s = small_refill(h, th, cls);
  if (!s) return nullptr;
  uint32_t idx = run_find_free(s);
  run_take(s, idx);  // the commit point
  std::atomic_signal_fence(std::memory_order_seq_cst);
  PERSIST_CRASH_POINT("alloc.bit.slow");
  return reinterpret_cast<void *>(s->start + uint64_t{idx} * s->bsize);
}

void small_free_local_slow(Heap *h, ThreadHeap *th, Span *s) {
  if (s->full) unpark(th, s);
  if (s->used == 0 && s != th->cur[s->cls] && !s->notified.load(std::memory_order_acquire)) {
    th->runs[s->cls].remove(s);
    s->owner.store(nullptr, std::memory_order_release);
    pages_free_span(h, s);
  }
}

bool thread_release_empty_runs(Heap *h) {
  ThreadHeap *th = h->slot < kMaxSlots ? tl_heaps[h->slot] : nullptr;
  if (!th || th->heap_id != h->id) return false;
  bool any = false;
  for (unsigned c = 0; c < kNumClasses; ++c) {
    Span *s = th->cur[c];
    if (s == &g_empty_run || s->used != 0 || s->notified.load(std::memory_order_acquire)) continue;
    run_collect_remote(s);
    if (s->used != 0) continue;
    th->runs[c].remove(s);
    th->cur[c] = &g_empty_run;
    s->owner.store(nullptr, std::memory_order_release);
    pages_free_span(h, s);
    any = true;
  }
  return any;
}

void *small_alloc_shared(Heap *h, unsigned cls) {
  Guard g(h->shared_lock);
  if (!h->shared_th && !(h->shared_th = new_thread_heap(h))) {
    errno = ENOMEM;
    return nullptr;
  }
  return small_alloc_slow(h, h->shared_th, cls);
}

}  // namespace persist
