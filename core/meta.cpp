// meta.cpp — memory for VOLATILE metadata (Span, ThreadHeap, Heap structs), taken from
// anonymous mappings in chunks and recycled through free lists. Never calls malloc: the core runs
// inside malloc. Everything here dies with the process.
#include <cstring>
#include <new>

#include "heap.h"
#include "platform.h"

namespace persist {
namespace {

constexpr size_t kChunk = size_t{1} << 20;

struct FreeNode {
  FreeNode *next;
};

// A pool of fixed-size objects carved from anonymous chunks.
class ObjectPool {
 public:
  constexpr explicit ObjectPool(size_t size) : size_((size + 63) & ~size_t{63}) {}
  void *get() {
    Guard g(lock_);
    if (free_) {
      FreeNode *n = free_;
      free_ = n->next;
      memset(static_cast<void *>(n), 0, size_);
      return n;
    }
    if (!bump_ || static_cast<size_t>(end_ - bump_) < size_) {
      void *chunk = nullptr;
      size_t bytes = size_ > kChunk ? size_ : kChunk;
      if (os::map_anon(bytes, &chunk) != 0) return nullptr;
      bump_ = static_cast<char *>(chunk), end_ = bump_ + bytes;
    }
    void *p = bump_;
    bump_ += size_;
    return p;  // fresh anonymous memory is zero
  }
  void lock() { lock_.lock(); }
  void unlock() { lock_.unlock(); }
  void put(void *p) {
    Guard g(lock_);
    auto *n = static_cast<FreeNode *>(p);
    n->next = free_;
    free_ = n;
  }

 private:
  size_t size_;
  Lock lock_;
  FreeNode *free_ = nullptr;
  char *bump_ = nullptr, *end_ = nullptr;
};

ObjectPool g_spans(sizeof(Span));
ObjectPool g_threads(sizeof(ThreadHeap));
ObjectPool g_heaps(sizeof(Heap));

}  // namespace

Span *meta_span_new() {
  void *p = g_spans.get();
  return p ? new (p) Span() : nullptr;
}
void meta_span_free(Span *s) {
  s->kind = kSpanNone;  // stale shadow entries may still point here: mark it dead
  g_spans.put(s);
}

ThreadHeap *meta_thread_heap_new() {
  void *p = g_threads.get();
  return p ? new (p) ThreadHeap() : nullptr;
}
void meta_thread_heap_free(ThreadHeap *t) { g_threads.put(t); }

Heap *meta_heap_new() {
  void *p = g_heaps.get();
  return p ? new (p) Heap() : nullptr;
}
void meta_lock_all() {
  g_heaps.lock();
  g_threads.lock();
  g_spans.lock();
}

void meta_unlock_all() {
  g_spans.unlock();
  g_threads.unlock();
  g_heaps.unlock();
}

void meta_heap_free(Heap *h) {
  h->~Heap();
  g_heaps.put(h);
}

}  // namespace persist
