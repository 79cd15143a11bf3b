// fork.cpp — heaps across fork(). A child must never write into its parent's heap file, and must
// see a heap that does not change under it: after fork the child's heap is a private copy of the
// parent's heap as it was at the fork (PRELOAD.md §4: re-mapping the file MAP_PRIVATE does not
// give that — untouched private pages keep showing the parent's later writes).
//
// prepare (parent, before fork): take every lock of every open heap in the documented order, then
//   copy each file heap's extent into fresh anonymous memory;
// child: move the copy over the heap with mremap (atomic replacement of the shared mapping),
//   replace the rest of the reservation with anonymous memory, close the file descriptor without
//   unlocking (the OFD lock belongs to the parent's open file description), mark the heap
//   volatile, release the locks;
// parent: drop the copy, release the locks (also when fork failed).
//
// Lock order: the registry lock; then all heaps in registry order, each: actions_lock >
// sites_lock (both taken alone elsewhere) > roots_lock > threads_lock > shared_lock > pool_lock >
// page_lock > super_lock; then the metadata pools. pthread_atfork runs prepare
// handlers newest first and child handlers oldest first; ours is registered at the first open,
// which the shim makes early, so we lock after other libraries (which may still malloc) and
// unlock before them.
//
// Not covered: _Fork() and raw clone() run no handlers; a child made that way shares the heap.
// vfork/posix_spawn children share memory until they exec, which is safe if they only exec.
#include <pthread.h>

#include <cstring>

#include "heap.h"
#include "platform.h"

namespace persist {
namespace {

Lock g_registry_lock;
Heap *g_open = nullptr;
std::atomic<int> g_atfork{0};

void lock_heap(Heap *h) {
  h->actions_lock.lock();  // taken alone elsewhere (publish.cpp): first here
  h->sites_lock.lock();  // taken alone elsewhere: first here (no thread is inside libunwind)
  h->roots_lock.lock();
  h->threads_lock.lock();
  h->shared_lock.lock();
  h->pool_lock.lock();
  h->page_lock.lock();
  h->super_lock.lock();
}

void unlock_heap(Heap *h) {
  h->super_lock.unlock();
  h->page_lock.unlock();
  h->pool_lock.unlock();
  h->shared_lock.unlock();
  h->threads_lock.unlock();
  h->roots_lock.unlock();
  h->sites_lock.unlock();
  h->actions_lock.unlock();
}

// Copy what is in use: every page but the free spans and free segment ranges the page allocator
// knows about (their contents mean nothing; the copy reads as zero there; a range keeps the page of
// its own header). Undiscovered segments are copied whole. Free spans and ranges are found in
// address order through the shadow map, which names each by its first page.
uint64_t free_pages_at(Heap *h, uint64_t p) {
  if (!segment_known(h, p / kSegmentPages)) return 0;
  Span *s = h->shadow[p];
  if (s && s->kind == kSpanFree && !s->segments && s->page == p) return s->pages;
  if (p % kSegmentPages == kHugeFirstPage) {  // a free segment range, named at its page 0
    Span *r = h->shadow[p - kHugeFirstPage];
    if (r && r->kind == kSpanFree && r->segments && r->page + kHugeFirstPage == p)
      return uint64_t{r->segments} * kSegmentPages - kHugeFirstPage;
  }
  return 0;
}

void copy_in_use(Heap *h, uint8_t *copy, uint64_t bytes) {
  uint64_t pages = bytes / kPageSize, p = 0;
  while (p < pages) {
    if (uint64_t n = free_pages_at(h, p)) {
      p += n;
      continue;
    }
    uint64_t q = p + 1;  // copy up to the next free span or range
    while (q < pages && !free_pages_at(h, q)) ++q;
    memcpy(copy + p * kPageSize, h->base + p * kPageSize, (q - p) * kPageSize);
    p = q;
  }
}

void prepare() {
  g_registry_lock.lock();
  for (Heap *h = g_open; h; h = h->next_open) lock_heap(h);
  meta_lock_all();
  for (Heap *h = g_open; h; h = h->next_open) {
    h->fork_copy = nullptr;
    if (h->fd < 0) continue;  // anonymous heaps are copied by fork itself; regions are the caller's
    uint64_t bytes = h->size.load(std::memory_order_relaxed);
    void *copy = nullptr;
    if (os::map_anon_populated(bytes, &copy) != 0) continue;  // the child falls back (see child())
    copy_in_use(h, static_cast<uint8_t *>(copy), bytes);
    h->fork_copy = copy;
    h->fork_bytes = bytes;
  }
}

void parent() {
  for (Heap *h = g_open; h; h = h->next_open)
    if (h->fork_copy) {
      os::unmap(h->fork_copy, h->fork_bytes);
      h->fork_copy = nullptr;
    }
  meta_unlock_all();
  for (Heap *h = g_open; h; h = h->next_open) unlock_heap(h);
  g_registry_lock.unlock();
}

void child() {
  for (Heap *h = g_open; h; h = h->next_open) {
    if (h->fd < 0) continue;
    uint64_t bytes = h->size.load(std::memory_order_relaxed);
    if (h->fork_copy) {
      os::move_mapping(h->fork_copy, bytes, h->base);
    } else {
      // No memory for a copy: a private mapping of the file at least keeps the child's writes
      // out of the parent's file (the child may see some of the parent's later writes).
      int fd = heap_file(h);  // never another file that took the heap's number
      if (fd >= 0) os::map_file_private(h->base, bytes, fd);
    }
    if (h->reserve > bytes) os::map_anon_fixed(h->base + bytes, h->reserve - bytes);
    heap_file_close(h);  // never unlock: the lock is the parent's
    h->persistent = false;
    h->fork_copy = nullptr;
  }
  meta_unlock_all();
  for (Heap *h = g_open; h; h = h->next_open) {
    h->actions_busy = 0;  // the entries other threads were using: those threads are not here
    unlock_heap(h);
  }
  g_registry_lock.unlock();
}

}  // namespace

void fork_register(Heap *h) {
  int expect = 0;
  if (g_atfork.compare_exchange_strong(expect, 1)) pthread_atfork(prepare, parent, child);
  Guard g(g_registry_lock);
  h->next_open = g_open;
  g_open = h;
}

void fork_unregister(Heap *h) {
  Guard g(g_registry_lock);
  for (Heap **pp = &g_open; *pp; pp = &(*pp)->next_open)
    if (*pp == h) {
      *pp = h->next_open;
      break;
    }
}

}  // namespace persist
