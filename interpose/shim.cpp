// shim.cpp — the exported malloc family and C++ operators. Each forwards to the core (alloc.cpp
// holds the semantics); what is left here is only where a pointer comes from: the heap, the
// bootstrap arena (before the heap is ready), or another allocator (glibc, before we loaded).
#include <errno.h>

#include <cstring>
#include <new>

#include "alloc_fast.h"
#include "bootstrap.h"

// libstdc++ is reached through weak references so that C programs do not depend on it.
namespace std {
[[noreturn]] void __throw_bad_alloc() __attribute__((weak));
new_handler get_new_handler() noexcept __attribute__((weak));
}  // namespace std

#define PERSIST_EXPORT extern "C" __attribute__((visibility("default")))
#define PERSIST_EXPORT_CXX __attribute__((visibility("default")))

using persist::Heap;
using persist::shim::process_heap;

namespace {

constexpr size_t kPage = 4096;

inline void *do_malloc(size_t n) {
  Heap *h = process_heap();
  if (__builtin_expect(h != nullptr, 1)) return persist::heap_malloc_fast(h, n);
  void *p = persist::shim::boot_alloc(n, 16);
  if (!p) errno = ENOMEM;
  return p;
}

inline void *do_aligned(size_t align, size_t n) {
  Heap *h = process_heap();
  if (h) return persist::heap_aligned(h, align, n);
  void *p = persist::shim::boot_alloc(n, align);
  if (!p) errno = ENOMEM;
  return p;
}

inline void do_free(void *p) {
  if (!p) return;
  Heap *h = persist::shim::g_heap.load(std::memory_order_relaxed);
  if (__builtin_expect(h && h->contains(p), 1)) return persist::heap_free_fast(h, p);
  if (persist::shim::boot_contains(p)) return;  // bootstrap blocks are never reused
  persist::shim::foreign_free(p);
}

inline size_t do_usable(void *p) {
  if (!p) return 0;
  Heap *h = persist::shim::g_heap.load(std::memory_order_relaxed);
  if (h && h->contains(p)) return persist::heap_usable_size(h, p);
  if (persist::shim::boot_contains(p)) return persist::shim::boot_usable_size(p);
  return persist::shim::foreign_usable_size(p);
}

void *do_realloc(void *p, size_t n) {
  Heap *h = process_heap();
  if (p && h && h->contains(p)) return persist::heap_realloc(h, p, n);
  if (!p) return do_malloc(n);
  if (n == 0) {
    do_free(p);
    return nullptr;
  }
  // A bootstrap or foreign block: move it into our heap.
  size_t old = do_usable(p);
  void *q = do_malloc(n);
  if (!q) return nullptr;
  memcpy(q, p, old < n ? old : n);
  do_free(p);
  return q;
}

size_t round_pow2(size_t a) {
  if (a <= 16) return 16;
  if (!(a & (a - 1))) return a;
  if (a > (SIZE_MAX >> 1)) return 0;
  return size_t{1} << (64 - __builtin_clzll(a));
}

// operator new: retry through the new-handler, then throw (or return NULL for nothrow forms).
void *new_impl(size_t n, size_t align, bool nothrow) {
  for (;;) {
    void *p = align > 16 ? do_aligned(align, n) : do_malloc(n);
    if (__builtin_expect(p != nullptr, 1)) return p;
    std::new_handler handler = &std::get_new_handler ? std::get_new_handler() : nullptr;
    if (!handler) {
      if (nothrow) return nullptr;
      if (&std::__throw_bad_alloc) std::__throw_bad_alloc();
      __builtin_trap();
    }
    handler();  // frees memory, throws bad_alloc, or terminates
  }
}

}  // namespace

PERSIST_EXPORT void *malloc(size_t n) { return do_malloc(n); }
PERSIST_EXPORT void free(void *p) { do_free(p); }
PERSIST_EXPORT void *calloc(size_t n, size_t size) {
  Heap *h = process_heap();
  if (h) return persist::heap_calloc(h, n, size);
  size_t bytes;
  if (__builtin_mul_overflow(n, size, &bytes)) {
    errno = ENOMEM;
    return nullptr;
  }
  return do_malloc(bytes);  // the bootstrap arena is static memory: zero until used, never reused
}
PERSIST_EXPORT void *realloc(void *p, size_t n) { return do_realloc(p, n); }
PERSIST_EXPORT void *reallocarray(void *p, size_t n, size_t size) {
  size_t bytes;
  if (__builtin_mul_overflow(n, size, &bytes)) {
    errno = ENOMEM;
    return nullptr;
  }
  return do_realloc(p, bytes);
}
PERSIST_EXPORT int posix_memalign(void **out, size_t align, size_t n) {
  if (align < sizeof(void *) || (align & (align - 1))) return EINVAL;
  int saved = errno;
  void *p = do_aligned(align, n);
  if (!p) {
    errno = saved;
    return ENOMEM;
  }
  *out = p;
  return 0;
}
PERSIST_EXPORT void *aligned_alloc(size_t align, size_t n) {
  size_t a = round_pow2(align);  // glibc 2.36 accepts any alignment (rounds it up)
  if (!a) {
    errno = EINVAL;
    return nullptr;
  }
  return do_aligned(a, n);
}
PERSIST_EXPORT void *memalign(size_t align, size_t n) {
  size_t a = round_pow2(align);
  if (!a) {
    errno = EINVAL;
    return nullptr;
  }
  return do_aligned(a, n);
}
PERSIST_EXPORT void *valloc(size_t n) { return do_aligned(kPage, n); }
PERSIST_EXPORT void *pvalloc(size_t n) {
  size_t rounded = (n + kPage - 1) & ~(kPage - 1);
  if (rounded < n) {
    errno = ENOMEM;
    return nullptr;
  }
  return do_aligned(kPage, rounded ? rounded : kPage);
}
PERSIST_EXPORT size_t malloc_usable_size(void *p) { return do_usable(p); }
PERSIST_EXPORT int malloc_trim(size_t) {
  Heap *h = process_heap();
  if (h) persist::pages_trim(h);
  return 1;
}
PERSIST_EXPORT int mallopt(int, int) { return 1; }  // accepted and ignored

// glibc's internal names: some programs and libraries call these directly.
PERSIST_EXPORT void *__libc_malloc(size_t n) { return do_malloc(n); }
PERSIST_EXPORT void __libc_free(void *p) { do_free(p); }
PERSIST_EXPORT void *__libc_calloc(size_t n, size_t s) { return calloc(n, s); }
PERSIST_EXPORT void *__libc_realloc(void *p, size_t n) { return do_realloc(p, n); }
PERSIST_EXPORT void *__libc_valloc(size_t n) { return valloc(n); }
PERSIST_EXPORT void *__libc_pvalloc(size_t n) { return pvalloc(n); }

// C++: all 20 forms of operator new and delete.
PERSIST_EXPORT_CXX void *operator new(size_t n) { return new_impl(n, 0, false); }
PERSIST_EXPORT_CXX void *operator new[](size_t n) { return new_impl(n, 0, false); }
PERSIST_EXPORT_CXX void *operator new(size_t n, const std::nothrow_t &) noexcept { return new_impl(n, 0, true); }
PERSIST_EXPORT_CXX void *operator new[](size_t n, const std::nothrow_t &) noexcept { return new_impl(n, 0, true); }
PERSIST_EXPORT_CXX void *operator new(size_t n, std::align_val_t a) { return new_impl(n, static_cast<size_t>(a), false); }
PERSIST_EXPORT_CXX void *operator new[](size_t n, std::align_val_t a) { return new_impl(n, static_cast<size_t>(a), false); }
PERSIST_EXPORT_CXX void *operator new(size_t n, std::align_val_t a, const std::nothrow_t &) noexcept {
  return new_impl(n, static_cast<size_t>(a), true);
}
PERSIST_EXPORT_CXX void *operator new[](size_t n, std::align_val_t a, const std::nothrow_t &) noexcept {
  return new_impl(n, static_cast<size_t>(a), true);
}
PERSIST_EXPORT_CXX void operator delete(void *p) noexcept { do_free(p); }
PERSIST_EXPORT_CXX void operator delete[](void *p) noexcept { do_free(p); }
PERSIST_EXPORT_CXX void operator delete(void *p, size_t) noexcept { do_free(p); }
PERSIST_EXPORT_CXX void operator delete[](void *p, size_t) noexcept { do_free(p); }
PERSIST_EXPORT_CXX void operator delete(void *p, const std::nothrow_t &) noexcept { do_free(p); }
PERSIST_EXPORT_CXX void operator delete[](void *p, const std::nothrow_t &) noexcept { do_free(p); }
PERSIST_EXPORT_CXX void operator delete(void *p, std::align_val_t) noexcept { do_free(p); }
PERSIST_EXPORT_CXX void operator delete[](void *p, std::align_val_t) noexcept { do_free(p); }
PERSIST_EXPORT_CXX void operator delete(void *p, size_t, std::align_val_t) noexcept { do_free(p); }
PERSIST_EXPORT_CXX void operator delete[](void *p, size_t, std::align_val_t) noexcept { do_free(p); }
PERSIST_EXPORT_CXX void operator delete(void *p, std::align_val_t, const std::nothrow_t &) noexcept { do_free(p); }
PERSIST_EXPORT_CXX void operator delete[](void *p, std::align_val_t, const std::nothrow_t &) noexcept { do_free(p); }
