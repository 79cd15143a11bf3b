// publish.cpp — allocate-and-publish and free-and-clear: linking a block into (or out of) a
// persistent structure as one crash-atomic step, through an entry of the action log (layout.h,
// AUTHORITATIVE). The references are the seed libpmemalloc's on-active actions and PMDK's
// pmemobj_alloc(&dest...).
//
// allocate-and-publish: (1) entry {slot, block 0} becomes active; (2) the allocator zero-fills the
// block and stores its offset in the entry just before its own commit store; (3) *slot = block;
// (4) the entry goes idle. After a crash, open finds the entry active: a block that is not live
// was never committed (nothing to do); a live one gets the slot store redone. Either no block,
// or a linked, zero-filled one (the program can tell "linked, not yet filled in" from a zero).
// free-and-clear: (1) entry {slot, block} active; (2) *slot = NULL; (3) free; (4) idle. After a
// crash, open redoes (2) and frees the block if nothing reaches it (it may have been freed and
// reused by another thread before the crash, in which case something reaches it).
#include <cerrno>
#include <cstring>

#include "../core/include/persist.h"
#include "crashpoint.h"
#include "heap.h"
#include "reach.h"

namespace persist {

__thread uint64_t *tl_commit_log;

namespace {

void set_actions(Superblock &sb, uint64_t off) { sb.actions = off; }

}  // namespace

ActionLog *heap_area(Heap *h, bool create) {
  uint64_t off = actions_table(h->image());
  if (off) return reinterpret_cast<ActionLog *>(h->at(off));
  if (!create) return nullptr;
  auto *log = static_cast<ActionLog *>(heap_calloc(h, 1, sizeof(ActionLog)));
  if (!log) return nullptr;
  log->magic = kActionLogMagic;
  log->capacity = kActionEntries;
  log->modules_current = kNoModules;
  heap_update_super(h, set_actions, h->off(log));  // a crash before this leaks the area only
  return log;
}

uint64_t heap_area_format(Heap *h) {
  const uint32_t pages = static_cast<uint32_t>(pages_for(sizeof(ActionLog)));
  if (h->image().segment_pages(0) < kFirstDataPage + 2 * pages) return 0;  // a small region: later
  uint64_t off = uint64_t{kFirstDataPage} * kPageSize;
  auto *log = reinterpret_cast<ActionLog *>(h->at(off));
  if (pages_format_large(h, kFirstDataPage, pages)) return 0;  // no disk space: created on need
  memset(log, 0, uint64_t{pages} * kPageSize);
  log->magic = kActionLogMagic;
  log->capacity = kActionEntries;
  log->modules_current = kNoModules;
  return off;
}

namespace {

// Claim an idle entry (they are few and short-lived: wait for one if all are busy).
ActionEntry *claim(Heap *h, ActionLog *log, unsigned *index) {
  for (;;) {
    {
      Guard g(h->actions_lock);
      if (~h->actions_busy) {
        unsigned i = static_cast<unsigned>(__builtin_ctzll(~h->actions_busy));
        h->actions_busy |= uint64_t{1} << i;
        *index = i;
        return &log->entry[i];
      }
    }
    os::yield();
  }
}

void release(Heap *h, ActionEntry *e, unsigned index) {
  __atomic_store_n(&e->state, kActionIdle, __ATOMIC_RELEASE);
  Guard g(h->actions_lock);
  h->actions_busy &= ~(uint64_t{1} << index);
}

bool valid_slot(Heap *h, void **slot) {
  return h->contains(slot) && !(reinterpret_cast<uintptr_t>(slot) & 7) &&
         h->off(slot) + 8 <= h->size.load(std::memory_order_acquire);
}

// The small-block path with the log store before the commit (thread.cpp does the refill).
void *small_alloc_logged(Heap *h, ThreadHeap *th, unsigned cls, uint64_t *log) {
  Span *s = small_refill(h, th, cls);
  if (!s) return nullptr;
  uint32_t idx = run_find_free(s);
  void *b = reinterpret_cast<void *>(s->start + uint64_t{idx} * s->bsize);
  memset(b, 0, s->bsize);  // zero-filled before it can be linked
  __atomic_store_n(log, h->off(b), __ATOMIC_RELEASE);  // named before it is committed
  PERSIST_CRASH_POINT("publish.named");
  run_take(s, idx);  // the commit point
  return b;
}

void *small_alloc_logged(Heap *h, unsigned cls, uint64_t *log) {
  ThreadHeap *th = tl_heaps[h->slot];
  if (th->heap_id != h->id) th = thread_heap_slow(h);
  if (th) return small_alloc_logged(h, th, cls, log);
  Guard g(h->shared_lock);  // no thread heap of our own (thread exiting, or too many heaps)
  if (!h->shared_th) return nullptr;
  return small_alloc_logged(h, h->shared_th, cls, log);
}

}  // namespace

uint64_t actions_table(const Image &img) {
  uint64_t off = img.sb.actions;
  if (!live_block_at(img, off, sizeof(ActionLog))) return 0;
  const auto *log = reinterpret_cast<const ActionLog *>(img.mem + off);
  bool ok = log->magic == kActionLogMagic && log->capacity == kActionEntries &&
            log->modules_current <= kNoModules && log->modules[0].count <= kModulesMax &&
            log->modules[1].count <= kModulesMax;
  return ok ? off : 0;
}

void *heap_alloc_publish(Heap *h, size_t size, void **slot, int *err) {
  if (!valid_slot(h, slot)) {
    *err = PERSIST_E_NOTBLOCK;
    return nullptr;
  }
  ActionLog *log = heap_area(h, true);
  if (!log) {
    *err = -ENOMEM;
    return nullptr;
  }
  unsigned index;
  ActionEntry *e = claim(h, log, &index);
  e->kind = kActionPublish;
  e->slot = h->off(slot);
  e->block = 0;
  __atomic_store_n(&e->state, kActionActive, __ATOMIC_RELEASE);
  PERSIST_CRASH_POINT("publish.begin");
  void *b;
  if (size <= kMaxSmall) {
    b = small_alloc_logged(h, size_class(size), &e->block);
  } else {
    tl_commit_log = &e->block;
    b = heap_malloc(h, size);
    tl_commit_log = nullptr;
  }
  if (!b) {
    release(h, e, index);
    *err = -ENOMEM;
    return nullptr;
  }
  PERSIST_CRASH_POINT("publish.committed");
  __atomic_store_n(slot, b, __ATOMIC_RELEASE);
  PERSIST_CRASH_POINT("publish.linked");
  release(h, e, index);
  return b;
}

int heap_free_clear(Heap *h, void **slot) {
  if (!valid_slot(h, slot)) return PERSIST_E_NOTBLOCK;
  void *b = __atomic_load_n(slot, __ATOMIC_ACQUIRE);
  if (!b) return 0;
  if (!h->contains(b)) return PERSIST_E_NOTBLOCK;
  ActionLog *log = heap_area(h, true);
  if (!log) return -ENOMEM;
  unsigned index;
  ActionEntry *e = claim(h, log, &index);
  e->kind = kActionFreeClear;
  e->slot = h->off(slot);
  e->block = h->off(b);
  __atomic_store_n(&e->state, kActionActive, __ATOMIC_RELEASE);
  PERSIST_CRASH_POINT("clear.begin");
  __atomic_store_n(slot, static_cast<void *>(nullptr), __ATOMIC_RELEASE);
  PERSIST_CRASH_POINT("clear.unlinked");
  heap_free(h, b);
  PERSIST_CRASH_POINT("clear.freed");
  release(h, e, index);
  return 0;
}

int heap_recover_actions(Heap *h) {
  ActionLog *log = heap_area(h, false);
  if (!log) return 0;
  Image img = h->image();
  bool clears = false;
  for (auto &e : log->entry) {
    if (e.state != kActionActive) continue;
    if (e.slot + 8 > img.len || (e.slot & 7)) {  // not a slot of this heap: nothing to finish
      e.state = kActionIdle;
      continue;
    }
    auto *slot = reinterpret_cast<void **>(h->at(e.slot));
    BlockRef b;
    bool live = e.block && find_block(img, e.block, &b) && b.live && b.offset == e.block;
    if (e.kind == kActionPublish) {
      if (live) __atomic_store_n(slot, static_cast<void *>(h->at(e.block)), __ATOMIC_RELEASE);  // redo
      PERSIST_CRASH_POINT("recover.publish");
      __atomic_store_n(&e.state, kActionIdle, __ATOMIC_RELEASE);
    } else if (e.kind == kActionFreeClear) {
      __atomic_store_n(slot, static_cast<void *>(nullptr), __ATOMIC_RELEASE);  // redo
      clears = true;
    } else {
      e.state = kActionIdle;
    }
  }
  if (!clears) return 0;
  // Finish the frees: only blocks nothing reaches (the entries themselves are not roots).
  Reach reach;
  Msg why;
  bool reach_ok = reach.run(img, &why) == 0;
  for (auto &e : log->entry) {
    if (e.state != kActionActive || e.kind != kActionFreeClear) continue;
    BlockRef b;
    if (reach_ok && e.block && find_block(img, e.block, &b) && b.live && b.offset == e.block &&
        !reach.marked(b))
      heap_free(h, h->at(e.block));
    PERSIST_CRASH_POINT("recover.clear");
    __atomic_store_n(&e.state, kActionIdle, __ATOMIC_RELEASE);
  }
  return 0;
}

}  // namespace persist
