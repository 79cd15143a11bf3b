// api.cpp — the public C API (persist.h): argument checks, error codes and errno, forwarding to
// the core. Owns no state but the pointer to the process's default heap.
#include <cerrno>
#include <cstring>
#include <initializer_list>

#include "../core/include/persist.h"
#include "api.h"
#include "check.h"
#include "heap.h"
#include "sites.h"

namespace persist {
namespace {

std::atomic<Heap *> g_default{nullptr};
Heap *(*g_default_provider)() = nullptr;

Heap *as_heap(persist_heap_t *h) { return static_cast<Heap *>(h); }

Heap *default_heap() {
  Heap *h = g_default.load(std::memory_order_acquire);
  if (!h && g_default_provider) h = g_default_provider();  // the shim opens it on first use
  return h;
}

int set_errno(int code) {
  if (code > -1000) errno = -code;
  else if (code == PERSIST_E_TAG) errno = EINVAL;
  else if (code == PERSIST_E_EXISTS) errno = EEXIST;
  else if (code == PERSIST_E_NOHEAP) errno = ENODEV;
  else if (code == PERSIST_E_NOTBLOCK) errno = EINVAL;
  else if (code == PERSIST_E_TYPE) errno = EILSEQ;
  else errno = EIO;
  return code;
}

struct StrErr {
  int code;
  const char *msg;
};

// Our own table: strerror may allocate (locale translations), and this runs inside malloc.
constexpr StrErr kMessages[] = {
    {0, "success"},
    {PERSIST_E_BADMAGIC, "not a libpersist heap (bad magic)"},
    {PERSIST_E_VERSION, "heap format version is newer than this library"},
    {PERSIST_E_CHECKSUM, "superblock checksum mismatch"},
    {PERSIST_E_CORRUPT, "heap metadata is inconsistent"},
    {PERSIST_E_ADDRINUSE, "the heap's address range is occupied"},
    {PERSIST_E_BUSY, "the heap is in use by another process"},
    {PERSIST_E_NOHEAP, "no default heap in this process"},
    {PERSIST_E_TOOSMALL, "too small to hold a heap"},
    {PERSIST_E_EXISTS, "a root with this tag exists with a smaller size"},
    {PERSIST_E_NOTBLOCK, "not the start of a live block of this heap"},
    {PERSIST_E_TAG, "root tag is empty or too long"},
    {PERSIST_E_MOVED, "the heap was created at another address"},
    {PERSIST_E_TYPE, "the root was published with another type"},
    {PERSIST_E_MODE, "the file is writable by other users than its owner (chmod go-w it if its "
                     "contents can be trusted)"},
    {-ENOENT, "no such file or directory"},
    {-EACCES, "permission denied"},
    {-EPERM, "operation not permitted"},
    {-ENOSPC, "no space left on device"},
    {-EDQUOT, "disk quota exceeded"},
    {-ENOMEM, "out of memory"},
    {-EEXIST, "already exists"},
    {-EISDIR, "is a directory"},
    {-ENOTDIR, "not a directory"},
    {-EINVAL, "invalid argument"},
    {-EROFS, "read-only file system"},
    {-ELOOP, "is a symbolic link (not followed)"},
    {-EWOULDBLOCK, "locked by another process"},
    {-EBUSY, "busy"},
    {-EFBIG, "file too large"},
    {-EIO, "input/output error"},
    {-ENAMETOOLONG, "file name too long"},
    {-ENODEV, "no such device"},
    {-EOPNOTSUPP, "operation not supported"},
};

}  // namespace

void api_set_default_heap(Heap *h) { g_default.store(h, std::memory_order_release); }
void api_set_default_provider(Heap *(*fn)()) { g_default_provider = fn; }

}  // namespace persist

using persist::as_heap;
using persist::default_heap;
using persist::Heap;
using persist::set_errno;

extern "C" {

const char *persist_strerror(int code) {
  for (const auto &m : persist::kMessages)
    if (m.code == code) return m.msg;
  return code < 0 && code > -1000 ? "system error" : "unknown error";
}

persist_heap_t *persist_default_heap(void) { return default_heap(); }

void *persist_root(const char *tag, size_t size) {
  Heap *h = default_heap();
  if (!h) return set_errno(PERSIST_E_NOHEAP), nullptr;
  return persist_heap_root(h, tag, size);
}
void *persist_root_get(const char *tag, size_t *size) {
  Heap *h = default_heap();
  if (!h) return set_errno(PERSIST_E_NOHEAP), nullptr;
  return persist_heap_root_get(h, tag, size);
}
int persist_root_set(const char *tag, void *ptr) {
  Heap *h = default_heap();
  return h ? persist_heap_root_set(h, tag, ptr) : set_errno(PERSIST_E_NOHEAP);
}
int persist_root_remove(const char *tag) {
  Heap *h = default_heap();
  return h ? persist_heap_root_remove(h, tag) : set_errno(PERSIST_E_NOHEAP);
}
int persist_sync(void) {
  Heap *h = default_heap();
  return h ? persist_heap_sync(h) : set_errno(PERSIST_E_NOHEAP);
}

int persist_open(const char *path, const persist_options_t *opts, persist_heap_t **out) {
  if (!out) return set_errno(-EINVAL);
  *out = nullptr;
  persist_options_t o = opts ? *opts : persist_options_t{0, 0, 0, 0};
  Heap *h = nullptr;
  persist::Msg why;
  int rc = (o.flags & PERSIST_OPEN_VOLATILE) ? persist::heap_open_anonymous(o.addr, o.max_size, &h, &why)
           : path ? persist::heap_open_file(path, o.addr, o.max_size, o.flags, o.relocate, &h, &why)
                  : -EINVAL;
  if (rc) return set_errno(rc);
  *out = h;
  return 0;
}

int persist_open_region(void *mem, size_t size, unsigned flags, persist_heap_t **out) {
  if (!out || !mem) return set_errno(-EINVAL);
  *out = nullptr;
  Heap *h = nullptr;
  persist::Msg why;
  int rc = persist::heap_open_region(mem, size, flags, &h, &why);
  if (rc) return set_errno(rc);
  *out = h;
  return 0;
}

int persist_close(persist_heap_t *heap) {
  if (!heap) return set_errno(-EINVAL);
  if (heap == persist::g_default.load()) return set_errno(-EBUSY);  // the process heap stays
  return persist::heap_close(as_heap(heap));
}

// A heap opened read-only (archeology) allocates nothing and frees nothing.
#define PERSIST_WRITABLE_OR(heap, fail)   \
  if (as_heap(heap)->readonly) {          \
    errno = EROFS;                        \
    return fail;                          \
  }

void *persist_alloc(persist_heap_t *heap, size_t size) {
  PERSIST_WRITABLE_OR(heap, nullptr);
  return persist::heap_malloc(as_heap(heap), size);
}
void *persist_alloc_noscan(persist_heap_t *heap, size_t size) {
  PERSIST_WRITABLE_OR(heap, nullptr);
  return persist::heap_malloc_noscan(as_heap(heap), size);
}
void *persist_malloc_noscan(size_t size) {
  Heap *h = default_heap();
  if (!h) return set_errno(PERSIST_E_NOHEAP), nullptr;
  return persist_alloc_noscan(h, size);
}
void *persist_calloc(persist_heap_t *heap, size_t n, size_t size) {
  PERSIST_WRITABLE_OR(heap, nullptr);
  return persist::heap_calloc(as_heap(heap), n, size);
}
void *persist_alloc_aligned(persist_heap_t *heap, size_t alignment, size_t size) {
  PERSIST_WRITABLE_OR(heap, nullptr);
  if (alignment == 0 || (alignment & (alignment - 1))) return errno = EINVAL, nullptr;
  return persist::heap_aligned(as_heap(heap), alignment, size);
}
void *persist_realloc(persist_heap_t *heap, void *ptr, size_t size) {
  PERSIST_WRITABLE_OR(heap, nullptr);
  return persist::heap_realloc(as_heap(heap), ptr, size);
}
void persist_free(persist_heap_t *heap, void *ptr) {
  PERSIST_WRITABLE_OR(heap, );
  persist::heap_free(as_heap(heap), ptr);
}
size_t persist_usable_size(persist_heap_t *heap, const void *ptr) {
  return persist::heap_usable_size(as_heap(heap), ptr);
}
int persist_contains(const persist_heap_t *heap, const void *ptr) {
  return static_cast<const Heap *>(heap)->contains(ptr);
}

void *persist_heap_root(persist_heap_t *heap, const char *tag, size_t size) {
  PERSIST_WRITABLE_OR(heap, nullptr);
  int err = 0;
  void *p = persist::roots_find_or_create(as_heap(heap), tag, size, &err);
  if (!p) set_errno(err ? err : -ENOMEM);
  return p;
}
void *persist_heap_root_get(persist_heap_t *heap, const char *tag, size_t *size) {
  int err = 0;
  void *p = persist::roots_get(as_heap(heap), tag, size, &err);
  if (!p) set_errno(err ? err : -ENOENT);
  return p;
}
int persist_heap_root_set(persist_heap_t *heap, const char *tag, void *ptr) {
  PERSIST_WRITABLE_OR(heap, set_errno(-EROFS));
  int rc = persist::roots_set(as_heap(heap), tag, ptr);
  return rc ? set_errno(rc) : 0;
}
int persist_heap_root_remove(persist_heap_t *heap, const char *tag) {
  PERSIST_WRITABLE_OR(heap, set_errno(-EROFS));
  int rc = persist::roots_remove(as_heap(heap), tag);
  return rc ? set_errno(rc) : 0;
}
void *persist_heap_root_typed_get(persist_heap_t *heap, const char *tag, uint64_t type, size_t *size) {
  int err = 0;
  void *p = persist::roots_typed_get(as_heap(heap), tag, type, size, &err);
  if (!p) set_errno(err ? err : -ENOENT);
  return p;
}
int persist_heap_root_publish(persist_heap_t *heap, const char *tag, void *ptr, size_t size, uint64_t type) {
  PERSIST_WRITABLE_OR(heap, set_errno(-EROFS));
  int rc = persist::roots_publish(as_heap(heap), tag, ptr, size, type);
  return rc ? set_errno(rc) : 0;
}
int persist_heap_root_each(persist_heap_t *heap,
                           int (*fn)(const char *, void *, size_t, void *), void *arg) {
  if (!heap || !fn) return set_errno(-EINVAL);
  return persist::roots_each(as_heap(heap), fn, arg);
}
int persist_heap_sync(persist_heap_t *heap) {
  if (as_heap(heap)->readonly) return 0;
  int rc = persist::heap_sync(as_heap(heap));
  return rc ? set_errno(rc) : 0;
}

int persist_heap_sample_sites(persist_heap_t *heap, uint64_t interval) {
  if (!heap) return set_errno(-EINVAL);
  persist::Msg why;
  return set_errno(persist::sites_enable(as_heap(heap), interval, &why));
}

int persist_heap_stats(persist_heap_t *heap, persist_stats_t *st) {
  if (!heap || !st) return set_errno(-EINVAL);
  Heap *h = as_heap(heap);
  persist::thread_flush_frees(h);  // this thread's batched frees count as freed
  persist::HeapReport r;
  persist::check_image(h->image(), &r, 0);
  memset(st, 0, sizeof *st);
  st->base = reinterpret_cast<uint64_t>(h->base);
  st->mapped_bytes = h->size.load();
  st->reserved_bytes = h->reserve;
  // The heap's own blocks: the root tables and the module table.
  persist::Image img = h->image();
  uint64_t internal = 0, internal_bytes = 0;
  for (uint64_t off = img.sb.root_table; off && internal < (1u << 20);) {
    persist::BlockRef b;
    if (!persist::find_block(img, off, &b) || !b.live) break;
    ++internal, internal_bytes += b.size;
    off = reinterpret_cast<const persist::RootTableHeader *>(img.mem + off)->next;
  }
  if (uint64_t off = persist::actions_table(img)) {
    persist::BlockRef b;
    if (persist::find_block(img, off, &b)) ++internal, internal_bytes += b.size;
  }
  st->live_blocks = r.live_blocks - internal;
  st->live_bytes = r.live_bytes - internal_bytes;
  st->internal_blocks = internal;
  st->free_bytes = r.free_bytes;
  st->segments = r.segments;
  st->roots = r.roots;
  st->clean_at_open = h->clean_at_open;
  st->persistent = h->persistent;
  return 0;
}

int persist_heap_gc(persist_heap_t *heap, int dry_run, uint64_t *freed_bytes) {
  if (!heap) return set_errno(-EINVAL);
  if (!dry_run) PERSIST_WRITABLE_OR(heap, set_errno(-EROFS));
  persist::GcReport rep;
  persist::Msg why;
  int rc = persist::heap_collect(as_heap(heap), dry_run != 0, &rep, &why);
  if (rc) return set_errno(rc);
  if (freed_bytes) *freed_bytes = rep.freed_bytes;
  return 0;
}

void *persist_heap_alloc_publish(persist_heap_t *heap, size_t size, void **slot) {
  PERSIST_WRITABLE_OR(heap, nullptr);
  int err = 0;
  void *p = persist::heap_alloc_publish(as_heap(heap), size, slot, &err);
  if (!p) set_errno(err ? err : -ENOMEM);
  return p;
}
int persist_heap_free_clear(persist_heap_t *heap, void **slot) {
  PERSIST_WRITABLE_OR(heap, set_errno(-EROFS));
  int rc = persist::heap_free_clear(as_heap(heap), slot);
  return rc ? set_errno(rc) : 0;
}
void *persist_alloc_publish(size_t size, void **slot) {
  Heap *h = default_heap();
  if (!h) return set_errno(PERSIST_E_NOHEAP), nullptr;
  return persist_heap_alloc_publish(h, size, slot);
}
int persist_free_clear(void **slot) {
  Heap *h = default_heap();
  return h ? persist_heap_free_clear(h, slot) : set_errno(PERSIST_E_NOHEAP);
}

int persist_heap_check(persist_heap_t *heap, char *msg, size_t msglen) {
  if (!heap) return set_errno(-EINVAL);
  persist::HeapReport r;
  int rc = persist::check_image(as_heap(heap)->image(), &r);
  if (msg && msglen) {
    if (rc) r.first_problem.copy_to(msg, msglen);
    else msg[0] = 0;
  }
  return rc;
}

void *persist_heap_base(const persist_heap_t *heap) { return static_cast<const Heap *>(heap)->base; }

void *persist_translate(const persist_heap_t *heap, const void *old_ptr) {
  const Heap *h = static_cast<const Heap *>(heap);
  uint64_t size = h->size.load(), p = reinterpret_cast<uint64_t>(old_ptr);
  if (p - h->old_base < size) return h->base + (p - h->old_base);
  return nullptr;
}

uint64_t persist_relocated_words(const persist_heap_t *heap) {
  return static_cast<const Heap *>(heap)->relocated_words;
}

}  // extern "C"
