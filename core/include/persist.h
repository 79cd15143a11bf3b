/* persist.h — the public C API of libpersist (usable from C and C++).
 *
 * Two ways in:
 *  - the default heap: the one the preload shim opened for this process (PERSIST_FILE). Every
 *    malloc of the program comes from it; persist_root() & co. name entry points in it.
 *  - heap handles: persist_open()/persist_open_region() for programs that manage several heaps or
 *    a caller-provided memory region (shared memory). The same allocator core serves both.
 *
 * Errors: functions returning int return 0 on success or a negative code (a -errno value or one of
 * the PERSIST_E* codes below); persist_strerror() turns a code into a message. Functions returning
 * a pointer return NULL and set errno.
 */
#ifndef PERSIST_H
#define PERSIST_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#pragma GCC visibility push(default)
#endif

/* ---- error codes (besides -errno values) ---------------------------------------------------- */
enum {
  PERSIST_E_BADMAGIC = -1000, /* not a libpersist heap file (foreign or empty file)            */
  PERSIST_E_VERSION = -1001,  /* format major version newer than this library                  */
  PERSIST_E_CHECKSUM = -1002, /* superblock checksum mismatch                                  */
  PERSIST_E_CORRUPT = -1003,  /* metadata inconsistent (see persist_check for details)          */
  PERSIST_E_ADDRINUSE = -1004,/* the heap's recorded address range is occupied                  */
  PERSIST_E_BUSY = -1005,     /* another process holds the heap file                           */
  PERSIST_E_NOHEAP = -1006,   /* no default heap in this process (the shim is not loaded)      */
  PERSIST_E_TOOSMALL = -1007, /* region or file too small to hold a heap                       */
  PERSIST_E_EXISTS = -1008,   /* a root with this tag exists with a smaller size               */
  PERSIST_E_NOTBLOCK = -1009, /* the pointer is not the start of a live block of this heap     */
  PERSIST_E_TAG = -1010,      /* tag empty or longer than PERSIST_TAG_MAX bytes                */
  PERSIST_E_MOVED = -1011,    /* heap recorded at another address and relocation is not enabled */
  PERSIST_E_TYPE = -1012,     /* a typed root exists with another type identity               */
  PERSIST_E_MODE = -1013      /* the heap file's mode lets other users write it (chmod go-w)   */
};

const char *persist_strerror(int code);

/* ---- the default heap (the process heap opened by the preload shim) ------------------------- */
#define PERSIST_TAG_MAX 87 /* longest tag, in bytes, without the terminating NUL */

/* Find the root named tag, or create it as a zeroed block of size bytes. NULL on error (errno:
 * EINVAL bad tag, EEXIST the root exists with a smaller size, ENOMEM, ENODEV no default heap). */
void *persist_root(const char *tag, size_t size);
/* The block the root points at (NULL + errno ENOENT if there is no such root); *size gets the
 * size recorded for it when size is not NULL. */
void *persist_root_get(const char *tag, size_t *size);
/* Point the root at ptr (a block of this heap, or NULL to remove the root). Crash-atomic. */
int persist_root_set(const char *tag, void *ptr);
/* Remove the root. The block it pointed at is not freed. */
int persist_root_remove(const char *tag);
/* Make everything written so far durable against power loss (msync + fsync). */
int persist_sync(void);

/* ---- heap handles ------------------------------------------------------------------------- */
typedef struct persist_heap persist_heap_t;

enum {
  PERSIST_OPEN_CREATE = 1u << 0,   /* create the file (or format the region) if it is new      */
  PERSIST_OPEN_NOLOCK = 1u << 2,   /* do not take the file lock (caller guarantees exclusion)  */
  PERSIST_OPEN_VOLATILE = 1u << 3, /* anonymous memory: a heap that is not persisted at all    */
  PERSIST_OPEN_WAIT = 1u << 4,     /* wait for another process to release the file            */
  PERSIST_OPEN_KEEP_IMAGES = 1u << 5 /* never shift pointers into program images, and do not
                                        record this process's images as what they point into
                                        (tools; programs that keep no such pointers)          */
};

/* What open does when an existing heap cannot be mapped where its pointers were written for
 * (its address range is occupied, or `addr` names another address). */
enum {
  PERSIST_RELOCATE_REWRITE = 0, /* map it elsewhere and shift its raw pointers (the default)   */
  PERSIST_RELOCATE_REFUSE = 1,  /* fail: PERSIST_E_ADDRINUSE, or PERSIST_E_MOVED for `addr`     */
  PERSIST_RELOCATE_READONLY = 2 /* map it anywhere read-only, rewrite nothing (archeology):
                                   persist_translate() converts old pointers                  */
};

typedef struct persist_options {
  uintptr_t addr;    /* base address: for a new heap (0: PERSIST_DEFAULT_ADDR), or where to move
                        an existing one (0: where it was)                                     */
  uint64_t max_size; /* address range reserved, the most the heap may grow to (0: default)  */
  unsigned flags;    /* PERSIST_OPEN_*                                                      */
  unsigned relocate; /* PERSIST_RELOCATE_*                                                  */
} persist_options_t;

#define PERSIST_DEFAULT_ADDR ((uintptr_t)0x200000000000ull) /* 32 TiB */
#define PERSIST_DEFAULT_MAX ((uint64_t)64 << 30)            /* 64 GiB reserved per heap */

/* Open (or create, with PERSIST_OPEN_CREATE) the heap file at path. opts may be NULL. */
int persist_open(const char *path, const persist_options_t *opts, persist_heap_t **out);
/* A heap over caller-provided memory [mem, mem+size): formatted if it holds no heap yet (and
 * PERSIST_OPEN_CREATE is given), attached to otherwise. The region never grows. */
int persist_open_region(void *mem, size_t size, unsigned flags, persist_heap_t **out);
/* Flush thread caches, mark the heap clean and unmap it. The handle is gone afterwards. */
int persist_close(persist_heap_t *heap);

void *persist_alloc(persist_heap_t *heap, size_t size);
void *persist_calloc(persist_heap_t *heap, size_t n, size_t size);
/* A pointer-free block (the idea of Boehm's GC_malloc_atomic): the program promises it holds no
 * pointers, so the collector does not scan it and relocation never rewrites it. A big buffer of
 * bytes then costs the collector nothing, and no word of it that happens to look like an address
 * is ever shifted. It is a block of whole pages (a page at least: meant for buffers of a page or
 * more), not zeroed, freed and sized as any block; realloc keeps it pointer-free. What it points
 * to is not kept alive by it. */
void *persist_alloc_noscan(persist_heap_t *heap, size_t size);
void *persist_malloc_noscan(size_t size); /* on the default heap (the process heap under the shim) */
void *persist_alloc_aligned(persist_heap_t *heap, size_t alignment, size_t size);
void *persist_realloc(persist_heap_t *heap, void *ptr, size_t size);
void persist_free(persist_heap_t *heap, void *ptr);
size_t persist_usable_size(persist_heap_t *heap, const void *ptr);
/* Does ptr lie inside this heap's address range? (No check that it is a live block.) */
int persist_contains(const persist_heap_t *heap, const void *ptr);

void *persist_heap_root(persist_heap_t *heap, const char *tag, size_t size);
void *persist_heap_root_get(persist_heap_t *heap, const char *tag, size_t *size);
int persist_heap_root_set(persist_heap_t *heap, const char *tag, void *ptr);
int persist_heap_root_remove(persist_heap_t *heap, const char *tag);
/* Typed roots (what persist::root<T> is built on). A type identity is a non-zero 64-bit value
 * (persist.hpp derives it from the type's name and size). typed_get: the root's block, or NULL
 * with errno ENOENT (no such root) or EILSEQ (PERSIST_E_TYPE: it was published with another
 * type). publish: create the root pointing at ptr, a live block the caller has fully initialised
 * (so a crash never exposes a half-constructed object); PERSIST_E_EXISTS if the tag exists. */
void *persist_heap_root_typed_get(persist_heap_t *heap, const char *tag, uint64_t type, size_t *size);
int persist_heap_root_publish(persist_heap_t *heap, const char *tag, void *ptr, size_t size, uint64_t type);

/* Call fn for every root (published order); stops early when fn returns non-zero. */
int persist_heap_root_each(persist_heap_t *heap,
                           int (*fn)(const char *tag, void *ptr, size_t size, void *arg),
                           void *arg);
int persist_heap_sync(persist_heap_t *heap);
/* Record allocation sites (what LD_PRELOAD's PERSIST_SITES does for the process heap): on average
 * one allocation per `interval` bytes allocated is sampled, its call stack kept in the heap for
 * `persist sites`. 0 turns recording off. Loads libunwind (libunwind.so.8) on first use: call it
 * outside any allocation (not from a malloc hook). -EINVAL for a volatile or read-only heap,
 * -ENOENT when libunwind cannot be loaded. */
int persist_heap_sample_sites(persist_heap_t *heap, uint64_t interval);

typedef struct persist_stats {
  uint64_t base;           /* address the heap is mapped at                            */
  uint64_t mapped_bytes;   /* extent of the heap (file size)                            */
  uint64_t reserved_bytes; /* address range reserved for growth                         */
  uint64_t live_blocks;    /* blocks allocated by the program (the heap's own not counted) */
  uint64_t live_bytes;     /* usable bytes of those blocks                              */
  uint64_t internal_blocks;/* blocks the heap keeps for itself: root tables, module table */
  uint64_t free_bytes;     /* bytes in free blocks and free pages inside the extent     */
  uint64_t segments;       /* segments in the extent                                   */
  uint64_t roots;          /* published roots                                          */
  int clean_at_open;       /* the heap was closed cleanly before this open              */
  int persistent;          /* 0 for a volatile (anonymous) heap                         */
} persist_stats_t;
int persist_heap_stats(persist_heap_t *heap, persist_stats_t *st);

/* Allocate-and-publish: allocate size bytes, zero-filled, and store the block's address into *slot
 * (an 8-byte aligned word inside this heap: in a live block) as one crash-atomic step — after a
 * crash the slot holds either its old value and no block was allocated, or the new, zero-filled
 * block (fill it in afterwards; a zero field tells "not filled in yet"). NULL + errno on failure
 * (the slot is untouched). Free-and-clear: free *slot and store NULL into it, equally
 * crash-atomic. Other threads must not store into the same slot meanwhile. */
void *persist_heap_alloc_publish(persist_heap_t *heap, size_t size, void **slot);
int persist_heap_free_clear(persist_heap_t *heap, void **slot);
void *persist_alloc_publish(size_t size, void **slot); /* on the default heap */
int persist_free_clear(void **slot);

/* Reclaim every block no root reaches (a conservative mark from the roots, then a sweep); a heap
 * with no roots is emptied. Call it right after persist_open, before anything is allocated or freed
 * (-EBUSY otherwise): nothing outside the heap may point into it. dry_run: only count. Returns 0
 * or a negative code; *freed_bytes (optional) gets what was (or would be) reclaimed. */
int persist_heap_gc(persist_heap_t *heap, int dry_run, uint64_t *freed_bytes);

/* Full consistency check of the authoritative state. Returns 0 when consistent, PERSIST_E_CORRUPT
 * otherwise; the first problem's description goes to msg (may be NULL). Must not run while other
 * threads allocate from the heap. */
int persist_heap_check(persist_heap_t *heap, char *msg, size_t msglen);

/* The default heap, or NULL when the shim is not loaded / persistence is off. */
persist_heap_t *persist_default_heap(void);

/* ---- position-independent links (offsets from the heap base) ------------------------------
 * A persist_offset_t is the block's offset from the heap base with PERSIST_OFFSET_TAG in its top
 * 16 bits (bits no user-space pointer has): the collector recognises tagged offsets stored in
 * reachable blocks as links, just like raw pointers. 0 means "no block". Use the macros. */
typedef uint64_t persist_offset_t;
#define PERSIST_OFFSET_TAG ((uint64_t)0x7e57 << 48)
#define PERSIST_OFFSET_MASK (((uint64_t)1 << 48) - 1)
void *persist_heap_base(const persist_heap_t *heap);
/* A pointer written for the address the heap had before this open (or, read-only, the one its
 * pointers were written for) translated to where the heap is now; NULL if it is not in the heap. */
void *persist_translate(const persist_heap_t *heap, const void *old_ptr);
/* Words the relocation done at this open rewrote (0 when the heap did not move). */
uint64_t persist_relocated_words(const persist_heap_t *heap);
#define PERSIST_OFFSET(heap, p)                                                            \
  ((persist_offset_t)((p) ? (((uintptr_t)(p) - (uintptr_t)persist_heap_base(heap)) |      \
                             PERSIST_OFFSET_TAG)                                           \
                          : 0))
/* Self-relative links (what persist::ptr<T> stores): the signed 48-bit distance from the word's
 * own address to the target, with PERSIST_SELF_TAG in the top 16 bits; 0 means null. Valid in any
 * heap wherever it is mapped, never rewritten by relocation, and followed by the collector. */
#define PERSIST_SELF_TAG ((uint64_t)0x7e58 << 48)
#define PERSIST_PTR(heap, off)                                                             \
  ((void *)((off) ? (uintptr_t)persist_heap_base(heap) + (uintptr_t)((off)&PERSIST_OFFSET_MASK) \
                  : 0))

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

#ifdef __cplusplus
}
#endif
#endif /* PERSIST_H */
