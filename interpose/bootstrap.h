// bootstrap.h — the process heap's lifecycle in the shim: lazy, thread-safe initialisation that
// never recurses into malloc, and the static arena that serves allocations made before the heap
// is ready (or made by the initialising thread while it initialises).
#pragma once

#include <cstddef>

#include "heap.h"

namespace persist::shim {

extern std::atomic<Heap *> g_heap;  // the process heap once ready

// The process heap, initialising it on first use; nullptr while this thread is initialising it
// (the caller then uses the bootstrap arena).
Heap *process_heap_slow();
inline Heap *process_heap() {
  Heap *h = g_heap.load(std::memory_order_acquire);
  return __builtin_expect(h != nullptr, 1) ? h : process_heap_slow();
}

// The bootstrap arena: a bump allocator in static memory; its blocks are never freed.
void *boot_alloc(size_t size, size_t align);
bool boot_contains(const void *p);
size_t boot_usable_size(const void *p);

// Pointers from neither the heap nor the arena (allocated before we were loaded, or by another
// allocator): handed to the next definition of the function (glibc's).
void foreign_free(void *p);
size_t foreign_usable_size(void *p);

}  // namespace persist::shim
