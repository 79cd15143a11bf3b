// heap.cpp — opening, creating and closing heaps (file, caller-provided region, or anonymous),
// and superblock updates. The superblock is AUTHORITATIVE; the Heap struct is VOLATILE.
//
// Open never scans the heap: it validates the superblock, maps the file at its recorded base
// (MAP_FIXED_NOREPLACE over a reservation of the whole growth range), marks the heap dirty and
// returns. Segments are discovered lazily (see heap.h), so opening is O(1) in the heap's size.
#include <cerrno>
#include <cstring>

#include "../core/include/persist.h"
#include "crashpoint.h"
#include "heap.h"
#include "platform.h"
#include "modules.h"
#include "recover.h"
#include "superblock.h"

namespace persist {
namespace {

std::atomic<uint64_t> g_next_heap_id{1};

// The dirty mark: this run keeps free_hint a segment start (heap_hint_interior, layout.h).
void set_state(Superblock &sb, uint64_t state) {
  sb.state = static_cast<uint32_t>(state);
  if (state == kStateDirty) {
    ++sb.opens;
    sb.hint_open = sb.opens;
    sb.owner_pid = static_cast<uint64_t>(os::getpid_cached());
  }
}

// The clean mark, and with it where discovery may start next time (heap.h): one slot write.
void set_clean(Superblock &sb, uint64_t free_hint) {
  sb.state = kStateClean;
  sb.free_hint = free_hint;
}

// Volatile side tables sized by the reservation: the shadow map and the segment table.
int alloc_tables(Heap *h) {
  h->shadow_bytes = (h->reserve / kPageSize) * sizeof(Span *);
  h->segs_bytes = (h->reserve / kSegmentSize + 1) * sizeof(SegInfo);
  h->rbits_bytes = (h->reserve / kPageSize) * kWordsPerPage * 8;
  void *a = nullptr, *b = nullptr, *c = nullptr;
  int rc = os::map_anon(h->shadow_bytes, &a);
  if (rc) return rc;
  if ((rc = os::map_anon(h->segs_bytes, &b))) {
    os::unmap(a, h->shadow_bytes);
    return rc;
  }
  if ((rc = os::map_anon(h->rbits_bytes, &c))) {
    os::unmap(a, h->shadow_bytes);
    os::unmap(b, h->segs_bytes);
    return rc;
  }
  h->shadow = static_cast<Span **>(a);
  h->segs = static_cast<SegInfo *>(b);
  h->rbits = static_cast<uint64_t *>(c);
  return 0;
}

Heap *new_heap() {
  Heap *h = meta_heap_new();
  if (h) h->id = g_next_heap_id.fetch_add(1, std::memory_order_relaxed);
  return h;
}

// Give back the volatile Spans of the heap. Every live Span is the shadow entry of its own first
// page (see pages.cpp), so visiting each page's entry where it is the span's head finds each one
// exactly once; stale entries of other pages point at spans whose head is elsewhere.
void release_spans(Heap *h) {
  if (!h->shadow) return;
  uint64_t pages = h->size.load(std::memory_order_relaxed) / kPageSize;
  for (uint64_t p = 0; p < pages; ++p) {
    Span *s = h->shadow[p];
    if (s && s->page == p && s->kind != kSpanNone) meta_span_free(s);
  }
}

// Release everything open() set up (not the file's contents).
void teardown(Heap *h) {
  fork_unregister(h);
  release_spans(h);
  if (h->shadow) os::unmap(h->shadow, h->shadow_bytes);
  if (h->segs) os::unmap(h->segs, h->segs_bytes);
  if (h->rbits) os::unmap(h->rbits, h->rbits_bytes);
  if (h->base && !h->region) os::unmap(h->base, h->reserve);
  heap_file_close(h);
  slot_release(h->slot);
  meta_heap_free(h);
}

// Format a new heap in the mapped range: segment 0 and the superblock.
int format(Heap *h, uint64_t size, uint32_t flags) {
  h->size.store(size, std::memory_order_relaxed);
  int rc = segment_format_first(h);
  if (rc) return rc;
  h->sb = super_new(reinterpret_cast<uint64_t>(h->base), h->reserve, size, flags);
  h->sb.actions = heap_area_format(h);
  h->sb.gc_extent = size;  // nothing to collect yet: the pace starts here
  h->sb.opens = 1;
  h->sb.owner_pid = static_cast<uint64_t>(os::getpid_cached());
  // Both slots are written so that a crash right after creation leaves a valid, older copy.
  Superblock copy = h->sb;
  super_write(h->base, copy);
  PERSIST_CRASH_POINT("create.super");
  super_write(h->base, h->sb);
  return 0;
}

int finish_open(Heap *h) {
  int rc = alloc_tables(h);
  if (rc) return rc;
  int slot = slot_acquire();
  h->slot = static_cast<unsigned>(slot);
  fork_register(h);
  return 0;
}

uint64_t round_reserve(uint64_t v) { return (v + kSegmentSize - 1) & ~(uint64_t{kSegmentSize} - 1); }

// The reservation for a heap of `v` bytes at most, under `ulimit -v`: at most half of the address
// space the limit leaves (the program needs the rest), never less than `floor` (what the heap
// already holds: then the reservation fails and open says so).
uint64_t fit_reserve(uint64_t v, uint64_t floor) {
  uint64_t r = round_reserve(v);
  const uint64_t left = os::address_space_left();
  if (left != UINT64_MAX && r > left / 2) r = (left / 2) & ~(uint64_t{kSegmentSize} - 1);
  return r < round_reserve(floor) ? round_reserve(floor) : r;
}

}  // namespace

Image Heap::image() const {
  Image img;
  img.mem = base;
  img.len = size.load(std::memory_order_acquire);
  img.sb = sb;
  img.sb.size = img.len;
  return img;
}

void heap_update_super(Heap *h, void (*edit)(Superblock &, uint64_t), uint64_t arg) {
  Guard g(h->super_lock);
  edit(h->sb, arg);
  super_write(h->base, h->sb);
}

void heap_hint_interior(Heap *h, uint64_t start, uint64_t first, uint64_t end) {
  Guard g(h->super_lock);
  if (h->sb.free_hint < first || h->sb.free_hint >= end) return;
  h->sb.free_hint = start;
  super_write(h->base, h->sb);
}

namespace {

// The pid recorded by the heap's current owner (0 if unreadable).
uint64_t recorded_owner(int fd) {
  const void *peek = nullptr;
  if (os::map_file_readonly(fd, kPageSize, &peek)) return 0;
  Superblock sb;
  Msg ignored;
  uint64_t pid = super_read(static_cast<const uint8_t *>(peek), kPageSize, &sb, &ignored) ? 0 : sb.owner_pid;
  os::unmap(peek, kPageSize);
  return pid;
}

// Lock the heap's file (unless the caller guarantees exclusion). With PERSIST_OPEN_WAIT, wait for
// the owner to let go — unless the owner is one of our ancestors (a child exec'ed with the same
// environment): it would wait for us, and we for it.
int lock_heap_file(Heap *h, const char *path, unsigned flags, Msg *why) {
  if (flags & PERSIST_OPEN_NOLOCK) return 0;
  int rc = os::lock_file(h->fd, false);
  if (rc == -EWOULDBLOCK && (flags & PERSIST_OPEN_WAIT)) {
    uint64_t owner = recorded_owner(h->fd);
    if (owner && os::is_ancestor(static_cast<int>(owner))) {
      why->add(path).add(" is held by process ").dec(owner).add(", an ancestor of this one: not waiting for it; ");
    } else {
      rc = os::lock_file(h->fd, true);
    }
  }
  if (rc == -EWOULDBLOCK) why->add(path).add(" is in use by another process"), rc = PERSIST_E_BUSY;
  else if (rc) why->add("cannot lock ").add(path).add(": ").add(persist_strerror(rc));
  return rc;
}

// Create a new heap at `path` atomically: it is built, formatted and locked in a temporary file
// and then linked into place, which never replaces anything. A crash leaves either no heap or a
// complete one (and at worst the temporary file). -EEXIST: another process created it first.
int create_heap(const char *path, uintptr_t addr, uint64_t max, unsigned flags, Heap **out, Msg *why) {
  Msg pid;
  pid.add(".creating.").dec(static_cast<uint64_t>(os::getpid_cached()));
  size_t plen = strlen(path);
  if (plen + pid.size() + 1 > 4096) return -ENAMETOOLONG;
  struct {
    char buf[4096];
    const char *str() const { return buf; }
  } tmp;
  memcpy(tmp.buf, path, plen);
  memcpy(tmp.buf + plen, pid.str(), pid.size() + 1);
  uintptr_t want = addr ? addr : PERSIST_DEFAULT_ADDR;
  if (want % kPageSize) {
    why->add("heap address ").hex(want).add(" is not page aligned");
    return -EINVAL;
  }
  Heap *h = new_heap();
  if (!h) return -ENOMEM;
  os::unlink_file(tmp.str());  // a leftover of a creator with our pid that died
  bool created = false;
  int rc = os::open_file(tmp.str(), true, true, &h->fd, &created);
  if (rc) {
    why->add("cannot create ").add(tmp.str()).add(": ").add(persist_strerror(rc));
    teardown(h);
    return rc == -EEXIST ? -EIO : rc;
  }
  if ((rc = lock_heap_file(h, tmp.str(), flags, why))) {
    teardown(h);
    os::unlink_file(tmp.str());
    return rc;
  }
  h->reserve = fit_reserve(max ? max : PERSIST_DEFAULT_MAX, kSegmentSize);
  void *at = nullptr;
  if ((rc = os::reserve(want, h->reserve, &at))) {
    why->add("address range ").hex(want).add("+").hex(h->reserve).add(" is not free");
    teardown(h);
    os::unlink_file(tmp.str());
    return rc == -EEXIST ? PERSIST_E_ADDRINUSE : rc;
  }
  h->base = static_cast<uint8_t *>(at);
  if ((rc = kSegmentSize > os::file_size_limit() ? -EFBIG : 0) ||  // ulimit -f: no SIGXFSZ
      (rc = os::truncate_file(h->fd, kSegmentSize)) ||
      (rc = os::map_file(h->base, h->reserve, h->fd, true)) || (rc = finish_open(h)) ||
      (rc = format(h, kSegmentSize, 0))) {
    why->add("cannot create the heap in ").add(path).add(": ").add(persist_strerror(rc));
    teardown(h);
    os::unlink_file(tmp.str());
    return rc;
  }
  // What this process's pointers will point into, from the start: a run killed before any
  // clean close must leave the record its image pointers were written for.
  h->record_images = !(flags & PERSIST_OPEN_KEEP_IMAGES);
  if (h->record_images) modules_record(h);
  PERSIST_CRASH_POINT("create.formatted");
  rc = os::link_file(tmp.str(), path);  // the commit point: the heap appears, complete
  os::unlink_file(tmp.str());
  if (rc || (rc = heap_file_adopt(h, path))) {
    if (rc != -EEXIST) why->add("cannot create ").add(path).add(": ").add(persist_strerror(rc));
    teardown(h);
    return rc;
  }
  *out = h;
  return 0;
}

// Map the heap somewhere else than where its pointers point (a move): at `addr` when given, else
// at the first free candidate. The new range must meet no range words will be moved from (the
// heap's old range, the recorded program images: recover.h), so that the pass is idempotent; the
// module table is only readable once mapped, so a candidate is mapped, checked, and dropped if it
// meets one.
int map_moved(Heap *h, const Superblock &sb, uintptr_t addr, Msg *why) {
  const uint64_t from = (sb.flags & kSuperFlagRelocating) ? sb.reloc_from : sb.base;
  for (int k = 0; k <= 16; ++k) {
    // Candidates above the default base, 1 TiB apart (far from where Linux puts images and
    // mmaps); the kernel's choice last.
    uintptr_t want = addr ? addr : k < 16 ? PERSIST_DEFAULT_ADDR + (static_cast<uint64_t>(k) + 1) * (uint64_t{1} << 40) : 0;
    void *at = nullptr;
    int rc = os::reserve(want, h->reserve, &at);
    if (rc) {
      if (addr) {
        why->add("the address range ").hex(addr).add("+").hex(h->reserve).add(" is occupied");
        return rc == -EEXIST ? PERSIST_E_ADDRINUSE : rc;
      }
      continue;
    }
    uint64_t b = reinterpret_cast<uint64_t>(at);
    bool bad = b < from + sb.size && from < b + sb.size;
    if (!bad && (rc = os::map_file(at, h->reserve, h->fd, true)) == 0) {
      Image img;
      img.mem = static_cast<uint8_t *>(at), img.len = sb.size, img.sb = sb;
      bad = heap_range_meets_modules(img, b, sb.size);
      if (!bad) {
        h->base = static_cast<uint8_t *>(at);
        return 0;
      }
    }
    os::unmap(at, h->reserve);
    if (rc) return rc;
    if (addr) {
      why->add("the new address ").hex(addr).add(" overlaps the heap's old range at ").hex(from)
          .add(" or a program image its pointers point into");
      return -EINVAL;
    }
  }
  why->add("cannot reserve an address range to move the heap to");
  return -ENOMEM;
}

int open_heap(const char *path, uintptr_t addr, uint64_t max, unsigned flags, unsigned relocate,
              Heap **out, Msg *why) {
  Heap *h = new_heap();
  if (!h) return -ENOMEM;
  bool created = false;
  int rc = os::open_file(path, false, true, &h->fd, &created);
  if (rc) {
    if (rc != -ENOENT || !(flags & PERSIST_OPEN_CREATE))
      why->add("cannot open ").add(path).add(": ").add(persist_strerror(rc));
    teardown(h);
    return rc;
  }
  if ((rc = os::file_owner_is_us(h->fd)) <= 0) {
    if (rc == 0) why->add(path).add(" belongs to another user"), rc = -EPERM;
    teardown(h);
    return rc;
  }
  if ((rc = lock_heap_file(h, path, flags, why)) || (rc = heap_file_adopt(h, path))) {
    teardown(h);
    return rc;
  }
  uint64_t fsize = 0;
  if ((rc = os::file_size(h->fd, &fsize))) {
    teardown(h);
    return rc;
  }
  if (fsize == 0) {
    why->add(path).add(" is empty, not a heap (remove it to have a new heap created)");
    teardown(h);
    return PERSIST_E_BADMAGIC;
  }
  // An existing heap: validate the superblock before mapping anything at its address.
  const void *peek = nullptr;
  uint64_t peek_len = fsize < kPageSize ? fsize : kPageSize;
  if ((rc = os::map_file_readonly(h->fd, peek_len, &peek))) {
    teardown(h);
    return rc;
  }
  Superblock sb;
  Msg reason;
  rc = super_read(static_cast<const uint8_t *>(peek), peek_len, &sb, &reason);
  os::unmap(peek, peek_len);
  if (rc == 0) rc = super_check_mapping(sb, &reason);
  if (rc) {
    why->add(path).add(": ").add(reason.str());
    teardown(h);
    return rc;
  }
  if (fsize < sb.size || (sb.flags & kSuperFlagRegion)) {
    if (sb.flags & kSuperFlagRegion) why->add("the file holds a region heap image");
    else why->add("the file is shorter (").dec(fsize).add(" bytes) than the heap (").dec(sb.size).add(")");
    teardown(h);
    return PERSIST_E_CORRUPT;
  }
  h->reserve = fit_reserve(sb.reserve > max ? sb.reserve : max, sb.size);
  h->old_base = sb.base;
  const bool resuming = sb.flags & kSuperFlagRelocating;
  uint64_t want = addr ? addr : resuming ? sb.reloc_to : sb.base;
  if (resuming && addr && addr != sb.reloc_to) {
    why->add("an interrupted relocation to ").hex(sb.reloc_to).add(" must be finished there first");
    teardown(h);
    return PERSIST_E_MOVED;
  }
  void *at = nullptr;
  rc = want % kPageSize ? -EINVAL : os::reserve(want, h->reserve, &at);
  const uint64_t left = rc == -ENOMEM ? os::address_space_left() : UINT64_MAX;
  if (left != UINT64_MAX) {
    why->add(path).add(" needs ").dec(h->reserve).add(" bytes of address space; the address-space limit (ulimit -v) leaves ")
        .dec(left);
    teardown(h);
    return -ENOMEM;
  }
  if (rc == 0 && want == sb.base && !resuming) {
    h->base = static_cast<uint8_t *>(at);  // where it was: nothing to move
    rc = os::map_file(h->base, h->reserve, h->fd, true);
  } else if (relocate == PERSIST_RELOCATE_READONLY) {
    if (rc == 0) os::unmap(at, h->reserve);
    const void *ro = nullptr;
    if ((rc = os::map_file_readonly(h->fd, sb.size, &ro))) {
      teardown(h);
      return rc;
    }
    h->base = static_cast<uint8_t *>(const_cast<void *>(ro));
    h->reserve = sb.size;
    h->readonly = true;
  } else if (relocate == PERSIST_RELOCATE_REFUSE) {
    if (rc == 0) os::unmap(at, h->reserve);
    if (rc == -EEXIST) why->add("the heap's address range ").hex(want).add("+").hex(h->reserve).add(" is occupied");
    else if (rc == 0) why->add("the heap lives at ").hex(sb.base).add(", not at ").hex(want);
    if (resuming) why->add(" (an interrupted relocation must be finished at ").hex(sb.reloc_to).add(")");
    teardown(h);
    return rc == 0 ? PERSIST_E_MOVED : rc == -EEXIST ? PERSIST_E_ADDRINUSE : rc;
  } else if (rc == 0 && resuming) {
    h->base = static_cast<uint8_t *>(at);  // where an interrupted relocation was going
    rc = os::map_file(h->base, h->reserve, h->fd, true);
  } else if (resuming) {
    why->add("the heap's address range ").hex(want).add("+").hex(h->reserve)
        .add(" is occupied (an interrupted relocation must be finished there)");
    teardown(h);
    return rc == -EEXIST ? PERSIST_E_ADDRINUSE : rc;
  } else {
    if (rc == 0) os::unmap(at, h->reserve);
    rc = map_moved(h, sb, addr, why);
  }
  if (rc || (rc = finish_open(h))) {
    teardown(h);
    return rc;
  }
  h->sb = sb;
  if (h->sb.minor < kFormatMinor && !h->readonly) h->sb.minor = kFormatMinor;
  h->size.store(sb.size, std::memory_order_relaxed);
  h->clean_at_open = sb.state == kStateClean;
  if (h->readonly) {
    *out = h;
    return 0;
  }
  // Recovery is what open does (recover.h): the heap's words agree with where things are now.
  RecoverPolicy policy;
  policy.rewrite_images = !(flags & PERSIST_OPEN_KEEP_IMAGES) && relocate != PERSIST_RELOCATE_REFUSE;
  if (relocate == PERSIST_RELOCATE_REFUSE && heap_moves_pending(h->image())) {
    why->add("an interrupted relocation of its pointers must be finished first (open it with relocation allowed)");
    teardown(h);
    return PERSIST_E_MOVED;
  }
  if ((rc = heap_recover_moves(h, policy, why))) {
    teardown(h);
    return rc;
  }
  // Discovery starts where the last run left room: recorded with its clean mark, or kept by a
  // run of this format that died (layout.h free_hint); before anything frees (the actions do).
  if (h->clean_at_open || (sb.hint_open && sb.hint_open == sb.opens)) discovery_start(h, h->sb.free_hint);
  heap_recover_actions(h);  // finish interrupted publish / clear actions
  h->sb.reserve = h->reserve;
  heap_update_super(h, set_state, kStateDirty);
  PERSIST_CRASH_POINT("open.dirty");
  h->record_images = policy.rewrite_images;  // recorded only where pointers were made to agree
  if (h->record_images) modules_record(h);  // what this process's pointers point into
  *out = h;
  return 0;
}

}  // namespace

int heap_open_file(const char *path, uintptr_t addr, uint64_t max, unsigned flags, unsigned relocate,
                   Heap **out, Msg *why) {
  for (int attempt = 0; attempt < 4; ++attempt) {
    int rc = open_heap(path, addr, max, flags, relocate, out, why);
    if (rc != -ENOENT || !(flags & PERSIST_OPEN_CREATE)) return rc;
    rc = create_heap(path, addr, max, flags, out, why);
    if (rc != -EEXIST) return rc;
    why->clear();  // another process created it meanwhile: open theirs
  }
  why->add("cannot open or create ").add(path);
  return -EAGAIN;
}

int heap_open_region(void *mem, size_t size, unsigned flags, Heap **out, Msg *why) {
  Heap *h = new_heap();
  if (!h) return -ENOMEM;
  h->region = true;
  h->persistent = !(flags & PERSIST_OPEN_VOLATILE);
  h->base = static_cast<uint8_t *>(mem);
  h->reserve = size & ~(kPageSize - 1);
  if (reinterpret_cast<uintptr_t>(mem) % kPageSize || h->reserve < (kFirstDataPage + 1) * kPageSize) {
    why->add("a region must be page aligned and at least ").dec((kFirstDataPage + 1) * kPageSize)
        .add(" bytes");
    h->base = nullptr;
    teardown(h);
    return PERSIST_E_TOOSMALL;
  }
  Superblock sb;
  Msg ignored;
  int rc = super_read(h->base, h->reserve, &sb, &ignored);
  bool fresh = rc == PERSIST_E_BADMAGIC;
  if (fresh && !(flags & PERSIST_OPEN_CREATE)) {
    why->add("the region holds no heap");
    h->base = nullptr;
    teardown(h);
    return PERSIST_E_BADMAGIC;
  }
  if (!fresh && rc == 0 && (sb.base != reinterpret_cast<uint64_t>(mem) || sb.size > h->reserve)) {
    why->add("the region's heap was created at ").hex(sb.base).add(" with ").dec(sb.size)
        .add(" bytes (relocation is not supported yet)");
    rc = sb.base != reinterpret_cast<uint64_t>(mem) ? PERSIST_E_MOVED : PERSIST_E_TOOSMALL;
  } else if (!fresh && rc) {
    super_read(h->base, h->reserve, &sb, why);
  }
  if (!fresh && rc) {
    h->base = nullptr;
    teardown(h);
    return rc;
  }
  if ((rc = finish_open(h))) {
    h->base = nullptr;
    teardown(h);
    return rc;
  }
  if (fresh) {
    uint64_t first = h->reserve < kSegmentSize ? h->reserve : kSegmentSize;
    if ((rc = format(h, first, kSuperFlagRegion))) {
      why->add("cannot format the region: ").add(persist_strerror(rc));
      h->base = nullptr;
      teardown(h);
      return rc;
    }
  } else {
    h->sb = sb;
    h->size.store(sb.size, std::memory_order_relaxed);
    h->clean_at_open = sb.state == kStateClean;
    heap_update_super(h, set_state, kStateDirty);
    heap_recover_actions(h);
  }
  *out = h;
  return 0;
}

int heap_open_anonymous(uintptr_t addr, uint64_t max, Heap **out, Msg *why) {
  uint64_t reserve = fit_reserve(max ? max : PERSIST_DEFAULT_MAX, kSegmentSize);
  void *at = nullptr;
  int rc = os::map_anon_at(addr, reserve, &at);
  if (rc) {
    why->add("cannot reserve ").dec(reserve).add(" bytes of address space");
    return rc;
  }
  rc = heap_open_region(at, reserve, PERSIST_OPEN_CREATE | PERSIST_OPEN_VOLATILE, out, why);
  if (rc) {
    os::unmap(at, reserve);
    return rc;
  }
  (*out)->region = false;  // we own the mapping: unmap it at close, discard freed pages
  (*out)->persistent = false;
  return 0;
}

int heap_sync(Heap *h) {
  if (!h->persistent) return 0;
  int rc = os::sync_range(h->base, h->size.load(std::memory_order_acquire));
  if (!rc && h->fd >= 0) {
    int fd = heap_file(h);
    rc = fd < 0 ? fd : os::sync_file(fd);
  }
  return rc;
}

// The clean mark vouches for everything before it: with `durable`, what it vouches for is synced
// first, then the mark is written and synced itself (only page 0). A crash between the two leaves
// the previous (dirty) mark, never a clean mark over unsynced data.
void heap_mark_clean(Heap *h, bool durable) {
  if (durable && h->persistent) heap_sync(h);
  heap_update_super(h, set_clean, discovery_hint(h));
  PERSIST_CRASH_POINT("close.clean");
  if (durable && h->persistent && h->fd >= 0) {
    os::sync_range(h->base, kPageSize);
    int fd = heap_file(h);
    if (fd >= 0) os::sync_file(fd);
  }
}

int heap_close(Heap *h) {
  if (!h->readonly && h->record_images) modules_record(h);
  thread_heaps_retire_all(h);
  if (!h->readonly) heap_mark_clean(h, true);
  teardown(h);
  return 0;
}

}  // namespace persist
