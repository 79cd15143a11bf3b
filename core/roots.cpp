// roots.cpp — the root table (AUTHORITATIVE): named entry points into the heap.
//
// Tables are ordinary heap blocks of kRootTableBytes, chained by offset from the superblock. An
// entry is filled while its state is kRootEmpty and published with one release store of
// kRootLive; a new table is linked (superblock field or previous table's `next`) only after it is
// initialised. A crash therefore never exposes a half-written root; at worst it leaks the block
// that was about to be published. Mutations are serialised by roots_lock.
#include <cerrno>
#include <cstring>

#include "../core/include/persist.h"
#include "crashpoint.h"
#include "heap.h"

namespace persist {
namespace {

uint64_t fnv1a(const char *s, size_t n) {
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < n; ++i) h = (h ^ static_cast<unsigned char>(s[i])) * 1099511628211ull;
  return h;
}

int check_tag(const char *tag, size_t *len) {
  if (!tag) return PERSIST_E_TAG;
  size_t n = strnlen(tag, kRootTagBytes);
  if (n == 0 || n >= kRootTagBytes) return PERSIST_E_TAG;
  *len = n;
  return 0;
}

// The table at offset `off`, or nullptr if the offset does not lead to a valid table.
RootTableHeader *table_at(Heap *h, uint64_t off) {
  uint64_t size = h->size.load(std::memory_order_acquire);
  if (off == 0 || off % 16 || off > size || size - off < kRootTableBytes) return nullptr;
  auto *t = reinterpret_cast<RootTableHeader *>(h->at(off));
  if (t->magic != kRootTableMagic || t->capacity != kRootsPerTable) return nullptr;
  return t;
}

RootEntry *entries(RootTableHeader *t) { return reinterpret_cast<RootEntry *>(t + 1); }

template <class Fn>
void for_each_table(Heap *h, Fn fn) {
  uint64_t off = __atomic_load_n(&h->sb.root_table, __ATOMIC_ACQUIRE);
  for (unsigned guard = 0; guard < (1u << 20); ++guard) {
    RootTableHeader *t = table_at(h, off);
    if (!t || !fn(t)) return;
    off = __atomic_load_n(&t->next, __ATOMIC_ACQUIRE);
  }
}

RootEntry *find(Heap *h, const char *tag, size_t len) {
  uint64_t hash = fnv1a(tag, len);
  RootEntry *found = nullptr;
  for_each_table(h, [&](RootTableHeader *t) {
    RootEntry *e = entries(t);
    for (uint32_t i = 0; i < kRootsPerTable; ++i)
      if (__atomic_load_n(&e[i].state, __ATOMIC_ACQUIRE) == kRootLive && e[i].tag_hash == hash &&
          e[i].tag_len == len && memcmp(e[i].tag, tag, len) == 0) {
        found = &e[i];
        return false;
      }
    return true;
  });
  return found;
}

void set_root_table(Superblock &sb, uint64_t off) { sb.root_table = off; }

// An empty entry, adding a table when all are full (roots_lock held).
RootEntry *free_entry(Heap *h) {
  RootEntry *slot = nullptr;
  RootTableHeader *last = nullptr;
  for_each_table(h, [&](RootTableHeader *t) {
    last = t;
    RootEntry *e = entries(t);
    for (uint32_t i = 0; i < kRootsPerTable; ++i)
      if (__atomic_load_n(&e[i].state, __ATOMIC_ACQUIRE) == kRootEmpty) {
        slot = &e[i];
        return false;
      }
    return true;
  });
  if (slot) return slot;
  auto *t = static_cast<RootTableHeader *>(heap_calloc(h, 1, kRootTableBytes));
  if (!t) return nullptr;
  t->magic = kRootTableMagic;
  t->capacity = kRootsPerTable;
  t->next = 0;
  PERSIST_CRASH_POINT("roottable.init");
  std::atomic_thread_fence(std::memory_order_release);
  uint64_t off = h->off(t);
  if (last) __atomic_store_n(&last->next, off, __ATOMIC_RELEASE);  // publish the table
  else heap_update_super(h, set_root_table, off);
  PERSIST_CRASH_POINT("roottable.link");
  return entries(t);
}

// Is p the first byte of a live block of h? Returns its usable size, or 0.
size_t live_block_size(Heap *h, void *p) {
  if (!p || !h->contains(p)) return 0;
  Span *s = h->span_of(p);
  if (!s && !(s = span_lookup(h, p))) return 0;
  auto a = reinterpret_cast<uintptr_t>(p);
  if (s->kind == kSpanLarge || s->kind == kSpanHuge)
    return a == s->start ? uint64_t{s->pages} * kPageSize : 0;
  if (s->kind != kSpanRun) return 0;
  uint64_t rel = a - s->start;
  if (rel % s->bsize) return 0;
  uint64_t idx = rel / s->bsize;
  if (idx >= s->capacity || !((s->bitmap[idx / 64] >> (idx % 64)) & 1)) return 0;
  return s->bsize;
}

int publish(Heap *h, const char *tag, size_t len, void *p, size_t size, uint64_t type = 0) {
  RootEntry *e = free_entry(h);
  if (!e) return -ENOMEM;
  memset(e->tag, 0, sizeof e->tag);
  memcpy(e->tag, tag, len);
  e->tag_len = static_cast<uint32_t>(len);
  e->tag_hash = fnv1a(tag, len);
  e->offset = h->off(p);
  e->size = size;
  e->type = type;
  PERSIST_CRASH_POINT("root.fill");
  __atomic_store_n(&e->state, kRootLive, __ATOMIC_RELEASE);  // the commit point
  PERSIST_CRASH_POINT("root.publish");
  return 0;
}

}  // namespace

void *roots_find_or_create(Heap *h, const char *tag, size_t size, int *err) {
  size_t len;
  if ((*err = check_tag(tag, &len))) return nullptr;
  Guard g(h->roots_lock);
  if (RootEntry *e = find(h, tag, len)) {
    if (e->size < size) {
      *err = PERSIST_E_EXISTS;
      return nullptr;
    }
    return e->offset ? h->at(e->offset) : nullptr;
  }
  void *p = heap_calloc(h, 1, size ? size : 1);
  if (!p) {
    *err = -ENOMEM;
    return nullptr;
  }
  if ((*err = publish(h, tag, len, p, size))) {
    heap_free(h, p);
    return nullptr;
  }
  return p;
}

void *roots_get(Heap *h, const char *tag, size_t *size, int *err) {
  size_t len;
  if ((*err = check_tag(tag, &len))) return nullptr;
  Guard g(h->roots_lock);
  RootEntry *e = find(h, tag, len);
  if (!e) {
    *err = -ENOENT;
    return nullptr;
  }
  if (size) *size = e->size;
  return e->offset ? h->at(e->offset) : nullptr;
}

int roots_set(Heap *h, const char *tag, void *ptr) {
  size_t len;
  int rc = check_tag(tag, &len);
  if (rc) return rc;
  if (!ptr) return roots_remove(h, tag);
  size_t usable = live_block_size(h, ptr);
  if (!usable) return PERSIST_E_NOTBLOCK;
  Guard g(h->roots_lock);
  if (RootEntry *e = find(h, tag, len)) {
    // Two stores, ordered so that the state between them is valid too (the recorded size never
    // exceeds the block the entry points at): growing, the offset goes first; shrinking, the size.
    if (usable >= e->size) {
      __atomic_store_n(&e->offset, h->off(ptr), __ATOMIC_RELEASE);  // the commit point
      PERSIST_CRASH_POINT("root.set.offset");
      __atomic_store_n(&e->size, usable, __ATOMIC_RELEASE);
    } else {
      __atomic_store_n(&e->size, usable, __ATOMIC_RELEASE);
      PERSIST_CRASH_POINT("root.set.size");
      __atomic_store_n(&e->offset, h->off(ptr), __ATOMIC_RELEASE);  // the commit point
    }
    PERSIST_CRASH_POINT("root.set");
    return 0;
  }
  return publish(h, tag, len, ptr, usable);
}

void *roots_typed_get(Heap *h, const char *tag, uint64_t type, size_t *size, int *err) {
  size_t len;
  if ((*err = check_tag(tag, &len))) return nullptr;
  Guard g(h->roots_lock);
  RootEntry *e = find(h, tag, len);
  if (!e) {
    *err = -ENOENT;
    return nullptr;
  }
  if (e->type != type) {
    *err = PERSIST_E_TYPE;
    return nullptr;
  }
  if (size) *size = e->size;
  return e->offset ? h->at(e->offset) : nullptr;
}

int roots_publish(Heap *h, const char *tag, void *ptr, size_t size, uint64_t type) {
  size_t len;
  int rc = check_tag(tag, &len);
  if (rc) return rc;
  size_t usable = live_block_size(h, ptr);
  if (!usable) return PERSIST_E_NOTBLOCK;
  if (size > usable) return -EINVAL;
  Guard g(h->roots_lock);
  if (find(h, tag, len)) return PERSIST_E_EXISTS;
  return publish(h, tag, len, ptr, size, type);
}

int roots_remove(Heap *h, const char *tag) {
  size_t len;
  int rc = check_tag(tag, &len);
  if (rc) return rc;
  Guard g(h->roots_lock);
  RootEntry *e = find(h, tag, len);
  if (!e) return -ENOENT;
  __atomic_store_n(&e->state, kRootEmpty, __ATOMIC_RELEASE);
  PERSIST_CRASH_POINT("root.remove");
  return 0;
}

int roots_each(Heap *h, int (*fn)(const char *, void *, size_t, void *), void *arg) {
  // No lock: tables are only appended and entries published with release stores, so fn may
  // itself create, change or remove roots.
  int stop = 0;
  for_each_table(h, [&](RootTableHeader *t) {
    RootEntry *e = entries(t);
    for (uint32_t i = 0; i < kRootsPerTable && !stop; ++i)
      if (__atomic_load_n(&e[i].state, __ATOMIC_ACQUIRE) == kRootLive) {
        char tag[kRootTagBytes];
        memcpy(tag, e[i].tag, sizeof tag);
        tag[kRootTagBytes - 1] = 0;
        stop = fn(tag, e[i].offset ? h->at(e[i].offset) : nullptr, e[i].size, arg);
      }
    return !stop;
  });
  return stop;
}

}  // namespace persist
