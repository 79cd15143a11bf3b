// heap.h — the runtime heap: VOLATILE state only (process memory, rebuilt from the file).
//
// Nothing declared here is trusted across opens. Per page of the reserved range there is a
// shadow pointer to the volatile Span that describes it; per segment a discovery flag. Segments
// are discovered lazily, one at a time, when the allocator first needs space or first sees a
// pointer into them: discovery walks the segment's authoritative descriptors (walk.h) and builds
// its Spans in O(metadata). A clean open therefore costs O(1), whatever the heap's size, and a
// dirty one costs the same plus, later, O(metadata) per segment touched.
//
// Ownership: a run (Span of kind kSpanRun) belongs to at most one ThreadHeap (`owner`); only the
// owner touches its counters and bitmap words. The owner allocates straight from the
// AUTHORITATIVE bitmap (the lowest clear bit of the first word `nonfull` names): there is no
// volatile free list, so neither malloc nor free touches the block itself. Other threads hand
// blocks back by setting their bits in `rbits` (atomic ORs, batched per thread) and counting them
// in `rpending`; the owner applies them to the bitmap later. A run with no owner is in the heap's pool and protected
// by pool_lock.
//
// Lock order (outermost first; never take an earlier one while holding a later one):
//   the heap file's OFD lock > roots_lock > threads_lock > shared_lock > pool_lock > page_lock >
//   super_lock > the metadata pools (meta.cpp); actions_lock is taken alone (publish.cpp), and so
//   is sites_lock (sites.cpp; fork.cpp takes it first); file_lock is innermost (heapfd.cpp)
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "layout.h"
#include "msg.h"
#include "platform.h"
#include "sizeclass.h"
#include "walk.h"

struct persist_heap {};  // the public handle type; persist::Heap derives from it

namespace persist {

struct ThreadHeap;
struct Heap;
struct SiteCache;

// A futex-based mutex of our own: pthread_mutex_lock can be interposed (sanitizer runtimes do,
// and their real pointer is still null when ld.so first calls malloc), and this lock is taken
// inside malloc. 0 free, 1 held, 2 held with waiters.
class Lock {
 public:
  void lock() {
    int c = 0;
    if (__builtin_expect(state_.compare_exchange_strong(c, 1, std::memory_order_acquire), 1)) return;
    lock_slow(c);
  }
  void unlock() {
    if (__builtin_expect(state_.exchange(0, std::memory_order_release) == 2, 0)) os::futex_wake(&state_);
  }

 private:
  void lock_slow(int c) {
    for (int spin = 0; spin < 100 && c != 0; ++spin) {
      __builtin_ia32_pause();
      c = state_.load(std::memory_order_relaxed);
      if (c == 0 && state_.compare_exchange_strong(c, 1, std::memory_order_acquire)) return;
    }
    if (c != 2) c = state_.exchange(2, std::memory_order_acquire);
    while (c != 0) {
      os::futex_wait(&state_, 2);
      c = state_.exchange(2, std::memory_order_acquire);
    }
  }
  std::atomic<int> state_{0};
};

class Guard {
 public:
  explicit Guard(Lock &l) : l_(l) { l_.lock(); }
  ~Guard() { l_.unlock(); }
  Guard(const Guard &) = delete;
  Guard &operator=(const Guard &) = delete;

 private:
  Lock &l_;
};

enum SpanKind : uint8_t { kSpanNone = 0, kSpanFree, kSpanRun, kSpanLarge, kSpanHuge };

// Volatile description of a span of pages: a run of small blocks, a large block, a huge block, or
// free pages. Fields used by the allocation fast path come first.
struct Span {
  // -- the owner's: written by the allocation and free fast paths
  uint64_t nonfull;     // run: bit w set: bitmap word w has a clear bit (owner only; a run has
                        // at most 64 words). Bits past the last block may be the only clear ones.
  uint32_t used;        // run: blocks whose bit is set (owner only)
  uint32_t capacity;    // run: blocks in the run
  uintptr_t start;      // address of the first page
  uint64_t recip;       // run: ceil(2^40 / block size)
  uint64_t *bitmap;     // run: persistent allocation bits (in the segment header)
  uint32_t bsize;       // run: block size
  uint8_t cls;          // run: size class
  uint8_t zeroed;       // free/large: every page reads as zero (fresh or punched)
  uint8_t backed;       // free/large: disk space reserved for every page
  uint8_t sampled;      // large: a sampled allocation; its SampleRecord ends the span
  uint8_t noscan;       // large/huge: pointer-free (kLargeNoScan, kHugeNoScan: layout.h)
  // -- read by threads that free into the run, written rarely: a cache line of its own, so
  // that a producer's allocations and a consumer's frees do not pass lines back and forth
  alignas(64) std::atomic<ThreadHeap *> owner;  // run: owning thread heap, nullptr in the pool
  uint64_t *rbits;      // run: blocks freed by other threads, one bit each (Heap::rbits)
  uintptr_t rstart;     // run: start and recip again, for the other threads
  uint64_t rrecip;
  uint8_t kind;         // SpanKind
  uint8_t full;         // run: out of its owner's class list because nothing was free
  std::atomic<uint8_t> notified;  // run: queued on its owner's notify stack
  uint8_t in_list;      // linked in some SpanList
  Span *notify_next;    // owner's notify stack link
  // -- written by the threads that free into the run; the page allocator's fields
  alignas(64) std::atomic<uint32_t> rpending;  // run: remote frees since the owner collected
  uint32_t pages;       // length in pages (huge: pages of the whole block)
  Span *next, *prev;    // SpanList links
  uint64_t page;        // global page index of the first page
  uint32_t segments;    // huge / free segment ranges: segments covered
};
static_assert(sizeof(Span) == 192, "three cache lines");

struct SpanList {
  Span *head = nullptr;
  Span *tail = nullptr;
  uint64_t count = 0;
  void push(Span *s);
  void remove(Span *s);
  Span *pop();
  void push_back(Span *s);
  bool empty() const { return head == nullptr; }
};

// Per-thread, per-heap allocation state: the fast path's data.
struct ThreadHeap {
  Span *cur[kNumClasses];       // the run allocations come from (g_empty_run when none)
  Heap *heap;
  uint64_t heap_id;             // Heap::id of the open it belongs to
  int64_t sample_left;          // bytes to allocate before the next sample (sites.h)
  uint64_t sample_rng;          // the sampler's random state
  // Blocks this thread freed into another thread's run pend_span, handed over in one batch
  // (run.cpp).
  Span *pend_span;
  uint32_t pend_count;
  void *pend[32];
  SpanList runs[kNumClasses];   // owned runs with (possibly) free blocks, cur included
  SpanList full;                // owned runs with nothing free (any class)
  std::atomic<Span *> notify;   // full runs that received remote frees
  ThreadHeap *next_all;         // heap's registry of thread heaps
  ThreadHeap *next_free;        // recycling
  int thread_state;             // 1 live, 0 retired
};

constexpr unsigned kMaxSlots = 16;  // heaps with a thread-local fast path per thread
constexpr unsigned kSpanBins = 64;  // free spans: bins by page count (last bin: larger)

struct SegInfo {
  uint8_t discovered;
  uint8_t kind;        // SegmentKind once discovered (0 inside a huge or free range)
};

struct Heap : persist_heap {
  // -- mapping (fixed while open)
  uint64_t id = 0;          // unique per open in this process (thread heaps check it)
  uint8_t *base = nullptr;
  uint64_t reserve = 0;
  int fd = -1;              // the heap's file, kept high: used only through heap_file()
  uint64_t file_dev = 0, file_ino = 0;  // what fd must refer to (heapfd.cpp)
  Lock file_lock;                       // innermost: only to open the file again
  char file_path[4096] = {};            // absolute, to open the file again if fd was closed
  bool persistent = true;   // false: anonymous volatile heap
  bool region = false;      // caller-provided memory
  bool clean_at_open = false;
  bool readonly = false;        // mapped read-only for archeology (PERSIST_RELOCATE_READONLY)
  bool record_images = true;    // record the loaded modules at open and close (not KEEP_IMAGES)
  uint64_t old_base = 0;        // where the heap's pointers pointed before this open
  uint64_t relocated_words = 0; // words the relocation at this open rewrote
  Msg notes;                    // things open noticed and left alone (changed program images)
  unsigned slot = kMaxSlots;  // thread-local fast path slot (kMaxSlots: none, locked path)
  Span **shadow = nullptr;  // per page of the reserve
  uint64_t *rbits = nullptr;  // per page of the reserve, kWordsPerPage words: remote-free bits,
                              // laid out like the allocation bitmaps (a run's from its head page)
  uint64_t rbits_bytes = 0;
  SegInfo *segs = nullptr;  // per segment of the reserve
  uint64_t shadow_bytes = 0, segs_bytes = 0;

  // -- extent and discovery (page_lock)
  std::atomic<uint64_t> size{0};   // bytes of initialised segments
  // Discovery walks segments in address order from `discovered` to the end of the extent. After a
  // clean close, it starts at the recorded free_hint (layout.h), the lowest segment that had room
  // then (a free span of kRoomPages pages, or free segments): the segments below it,
  // [prefix_next, prefix_end), are discovered later — when a pointer into one is freed or looked
  // up, and before the heap grows (space below is always used before the file grows). So a clean
  // restart discovers only where there is room.
  uint64_t discovered = 0;         // next segment of the main pass
  uint64_t prefix_next = 0, prefix_end = 0;  // the deferred segments still to discover
  SpanList bins[kSpanBins];        // free spans inside normal segments
  uint64_t bin_mask = 0;           // bit b set: bins[b] is not empty
  SpanList free_segs;              // free segment ranges (freed huge blocks)
  uint64_t retained_pages = 0;     // free pages still backed by disk (bins and free segments)
  uint64_t kept_empty = UINT64_MAX;  // one entirely free normal segment kept for reuse
  Lock page_lock;

  // -- runs without an owner (pool_lock)
  SpanList pool[kNumClasses];
  Lock pool_lock;

  // -- thread heaps (threads_lock)
  ThreadHeap *threads = nullptr;
  ThreadHeap *shared_th = nullptr;  // used under shared_lock when there is no per-thread one
  Lock threads_lock;
  Lock shared_lock;

  // -- roots (roots_lock)
  Lock roots_lock;

  // -- action log entries in use (actions_lock)
  Lock actions_lock;
  uint64_t actions_busy = 0;

  // -- allocation sites (sites_lock, taken alone: no other lock is held with it; sites.h)
  uint64_t sites_interval = 0;      // PERSIST_SITES: mean bytes between samples; 0: off
  SiteTable *sites = nullptr;       // the site table in the heap
  SiteCache *site_cache = nullptr;  // volatile lookup tables (sites.cpp)
  uintptr_t sites_skip_lo = 0, sites_skip_hi = 0;  // the allocator's own code (not recorded)
  std::atomic<uint64_t> samples{0}, samples_lost{0};
  Lock sites_lock;

  // -- superblock (super_lock)
  Superblock sb{};
  Lock super_lock;

  // -- the process's registry of open heaps (fork.cpp)
  Heap *next_open = nullptr;
  void *fork_copy = nullptr;  // prepare: the extent copied for the child
  uint64_t fork_bytes = 0;

  Image image() const;
  uint8_t *at(uint64_t off) const { return base + off; }
  uint64_t off(const void *p) const { return static_cast<uint64_t>(static_cast<const uint8_t *>(p) - base); }
  bool contains(const void *p) const {
    return static_cast<uint64_t>(static_cast<const uint8_t *>(p) - base) < size.load(std::memory_order_relaxed);
  }
  SegmentHeader *seg_header(uint64_t seg) const {
    return reinterpret_cast<SegmentHeader *>(base + seg * kSegmentSize + kHeaderOffset);
  }
  uint64_t *bitmap_of(uint64_t page) const {
    return reinterpret_cast<uint64_t *>(base + (page / kSegmentPages) * kSegmentSize + kBitmapOffset) +
           (page % kSegmentPages) * kWordsPerPage;
  }
  Span *span_of(const void *p) const {
    return shadow[static_cast<uint64_t>(static_cast<const uint8_t *>(p) - base) >> kPageShift];
  }
};

// ---- heap.cpp: open, close, superblock updates
int heap_open_file(const char *path, uintptr_t addr, uint64_t max, unsigned flags, unsigned relocate,
                   Heap **out, Msg *why);
int heap_open_region(void *mem, size_t size, unsigned flags, Heap **out, Msg *why);
int heap_open_anonymous(uintptr_t addr, uint64_t max, Heap **out, Msg *why);  // volatile heap
int heap_close(Heap *h);
void heap_mark_clean(Heap *h, bool durable);  // orderly end; durable: sync first (see heap.cpp)
int heap_sync(Heap *h);
void heap_update_super(Heap *h, void (*edit)(Superblock &, uint64_t), uint64_t arg);
// ---- heapfd.cpp: the heap's file descriptor, which the program may close or reuse
int heap_file_adopt(Heap *h, const char *path);  // at open, once locked: record it, move it high
int heap_file(Heap *h);        // fd checked to be the heap's file (opened again if not), or <0
void heap_file_close(Heap *h);  // closes it only if it is still ours
// The free_hint stays a segment start while the heap is dirty (layout.h), so that a restart after
// a crash can begin discovery there: before segments [first, end) become the interior of a range
// that starts at `start`, a hint among them moves to `start` (takes super_lock). Growth of a
// normal segment moves the hint to it (segment.cpp): that is where the room is.
void heap_hint_interior(Heap *h, uint64_t start, uint64_t first, uint64_t end);

// ---- meta.cpp: volatile metadata memory (never malloc)
Span *meta_span_new();
void meta_span_free(Span *s);
ThreadHeap *meta_thread_heap_new();
void meta_thread_heap_free(ThreadHeap *t);
Heap *meta_heap_new();
void meta_heap_free(Heap *h);
void meta_lock_all();    // fork: the metadata pools' locks (innermost of all)
void meta_unlock_all();

// ---- segment.cpp: extent, growth, discovery (page_lock held unless said otherwise)
int segment_format_first(Heap *h);
int segment_grow(Heap *h, uint32_t segments, uint64_t *first);
int segment_add_normal(Heap *h, uint64_t *seg);
int segment_add_huge(Heap *h, uint32_t segments, uint64_t bytes, uint64_t *seg, bool *zeroed,
                     uint32_t huge_flags = 0);
int segment_discover_next(Heap *h, Span **runs, bool prefix = false);  // pool_lock, page_lock held
// Takes the locks; 1 discovered, 0 nothing left, <0 error. `prefix`: from the deferred prefix.
int heap_discover_one(Heap *h, bool prefix = false);
// Once the main pass is done: discover the next deferred segment (its runs with room go to the
// pool). 1 discovered, 0 none left (takes the locks).
int heap_discover_deferred(Heap *h);
constexpr uint32_t kRoomPages = 64;  // a free span this long is room worth starting discovery at
bool main_pass_done(const Heap *h);               // every segment from `discovered` on is known
bool segment_known(const Heap *h, uint64_t seg);  // discovered (page_lock held)
bool heap_discovery_started(const Heap *h);       // anything discovered since open
void discovery_start(Heap *h, uint64_t hint);     // at open: start the main pass at a valid hint
uint64_t discovery_hint(Heap *h);                 // at close: the free_hint to record (takes page_lock)

// ---- pages.cpp: spans of pages (take page_lock inside unless said otherwise)
// `in_place`: only from free pages already known (no growth, no deferred discovery): -EAGAIN.
Span *pages_alloc_run(Heap *h, unsigned cls, int *err, bool in_place = false);
// `flags`: kLargeNoScan / kHugeNoScan, committed with the block (a pointer-free block).
Span *pages_alloc_large(Heap *h, size_t bytes, size_t align, bool *zeroed, int *err, uint8_t flags = 0);
Span *pages_alloc_huge(Heap *h, size_t bytes, bool *zeroed, int *err, uint32_t flags = 0);
void pages_free_span(Heap *h, Span *s);  // an empty run or a large block
void pages_mark_sampled(Heap *h, Span *s);  // a large block's SampleRecord is written: commit it
void pages_free_huge(Heap *h, Span *s);
// A large block at [page, page + pages) of a segment nothing has discovered yet (a heap being
// formatted): disk space, then its descriptors, CONT first and HEAD last; discovery finds it.
int pages_format_large(Heap *h, uint64_t page, uint32_t pages);
bool pages_resize_large(Heap *h, Span *s, size_t bytes);  // in place; false if not possible
void pages_trim(Heap *h);                                 // give back free pages' disk space
bool pages_release_kept(Heap *h);  // page_lock held: turn the kept empty segments into free ones
bool pages_release_kept_huge(Heap *h);  // held: give the kept freed huge blocks' pages back
void pages_insert_free(Heap *h, uint64_t page, uint32_t pages, bool zeroed, bool backed);  // held
// Free segment ranges (page_lock held). `backed`: a freed huge block kept within the retained
// budget (its pages not given back); `kept_only` takes only those.
void pages_insert_free_segments(Heap *h, uint64_t seg, uint32_t count, bool zeroed,
                                bool backed = false);
int pages_take_free_segments(Heap *h, uint32_t count, uint64_t *seg, bool *zeroed = nullptr,
                             bool kept_only = false);
void shadow_set(Heap *h, uint64_t page, uint32_t pages, Span *s);
Span *span_lookup(Heap *h, const void *p);  // discovers p's segment if needed

// ---- run.cpp: runs of small blocks
void run_init_volatile(Heap *h, Span *s, unsigned cls, bool fresh);
bool run_collect_remote(Span *s);        // owner: apply remote frees; true if any
uint32_t run_find_free(Span *s);         // owner: the block index the fast path would take
                                         // next, or UINT32_MAX when every block is allocated
// Owner: allocate block idx of run s (a clear bit). Setting its bit is the commit point. The
// slow paths use this; small_alloc_pop (alloc_fast.h) does the same inline.
inline void run_take(Span *s, uint32_t idx) {
  uint64_t *w = &s->bitmap[idx >> 6], word = *w | uint64_t{1} << (idx & 63);
  *w = word;
  if (word == ~uint64_t{0}) s->nonfull &= ~(uint64_t{1} << (idx >> 6));
  ++s->used;
}
Span *run_adopt_from_pool(Heap *h, ThreadHeap *th, unsigned cls);
void run_pool_insert(Heap *h, Span *runs);  // discovered runs (a list through ->next)
void run_abandon(Heap *h, Span *s);      // pool_lock held: the owner gives the run up
void run_free_remote(Heap *h, Span *s, void *p);  // a block freed by a non-owner
void run_free_remote_batched(Heap *h, ThreadHeap *th, Span *s, void *p);  // the same, batched
void run_flush_remote(Heap *h, ThreadHeap *th);  // hand th's batch over now
void thread_flush_frees(Heap *h);  // the calling thread's batch, if it has a thread heap on h

// ---- thread.cpp: thread heaps and the fast paths
ThreadHeap *thread_heap_slow(Heap *h);   // the calling thread's, created on demand (or null)
void thread_heaps_retire_all(Heap *h);   // close: flush and release every thread heap
void *small_alloc_slow(Heap *h, ThreadHeap *th, unsigned cls);
Span *small_refill(Heap *h, ThreadHeap *th, unsigned cls);  // cur[cls] with a free block, or null
void small_free_local_slow(Heap *h, ThreadHeap *th, Span *s);  // s emptied, or was parked full
void *small_alloc_shared(Heap *h, unsigned cls);
bool thread_release_empty_runs(Heap *h);  // the calling thread's empty runs; true if any
int slot_acquire();
void slot_release(unsigned slot);
extern Span g_empty_run;
extern ThreadHeap g_no_thread_heap;  // what an unused TLS slot points at (never null)
extern __thread ThreadHeap *tl_heaps[kMaxSlots + 1];  // unused slots: &g_no_thread_heap

// ---- alloc.cpp: malloc-family semantics on a heap
void *heap_malloc(Heap *h, size_t size);
void *heap_malloc_noscan(Heap *h, size_t size);  // pointer-free: never scanned nor rewritten
void *heap_calloc(Heap *h, size_t n, size_t size);
void *heap_realloc(Heap *h, void *p, size_t size);
void *heap_aligned(Heap *h, size_t align, size_t size);
void heap_free(Heap *h, void *p);
size_t heap_usable_size(Heap *h, const void *p);

// ---- gc.cpp: reclaim what no root reaches (stop-the-world, before the heap is used)
struct GcReport {
  uint64_t roots = 0;
  uint64_t kept_blocks = 0, kept_bytes = 0;    // reachable
  uint64_t freed_blocks = 0, freed_bytes = 0;  // reclaimed (or, dry run, reclaimable)
  uint64_t old_size = 0, new_size = 0;         // extent before / after
  uint64_t ns = 0;                             // time taken
};
int heap_collect(Heap *h, bool dry_run, GcReport *rep, Msg *why);
// Is a collection at this open worth its cost (gc.cpp: pacing)? O(1): reads the superblock only.
constexpr uint64_t kGcAlwaysBelow = uint64_t{32} << 20;
bool heap_gc_due(const Heap *h);

// ---- fork.cpp: open heaps across fork (the child gets a private copy; the file is the parent's)
void fork_register(Heap *h);    // at open
void fork_unregister(Heap *h);  // at close

// ---- publish.cpp: allocate-and-publish, free-and-clear (crash-atomic through the action log)
// While set, the large and huge allocation paths store the new block's offset here just before
// their commit store (the action log entry of an allocate-and-publish).
extern __thread uint64_t *tl_commit_log;
void *heap_alloc_publish(Heap *h, size_t size, void **slot, int *err);
int heap_free_clear(Heap *h, void **slot);
int heap_recover_actions(Heap *h);  // at open: finish what active entries describe
uint64_t actions_table(const Image &img);  // the heap's own area's offset if valid, else 0
ActionLog *heap_area(Heap *h, bool create);  // the heap's own area (created on first need)
// A new heap's own area, placed in segment 0 before the heap is handed out (so that a process
// killed before its first close has still recorded its program images). 0, or the area offset.
uint64_t heap_area_format(Heap *h);

// ---- roots.cpp
void *roots_find_or_create(Heap *h, const char *tag, size_t size, int *err);
void *roots_get(Heap *h, const char *tag, size_t *size, int *err);
int roots_set(Heap *h, const char *tag, void *ptr);
int roots_remove(Heap *h, const char *tag);
int roots_each(Heap *h, int (*fn)(const char *, void *, size_t, void *), void *arg);
void *roots_typed_get(Heap *h, const char *tag, uint64_t type, size_t *size, int *err);
int roots_publish(Heap *h, const char *tag, void *ptr, size_t size, uint64_t type);

}  // namespace persist
