// gc.cpp — reclaiming what no root reaches: the leftovers every process leaves (stdio buffers,
// interpreter state...) and the blocks a crash leaked. Writes AUTHORITATIVE state only, through
// the same commit points as free(): clearing a block's bit, storing kPageFree into a span's HEAD,
// storing kSegFree into a huge block's header, and shrinking the extent in the superblock before
// the file. Each step leaves a consistent heap, so a crash in the middle of a collection is fine
// and the next collection finishes it.
//
// Stop-the-world: it runs on a heap that nothing else uses yet (at open, before the program runs;
// or offline), before any segment is discovered, so there is no volatile state to keep in step.
// A heap without roots is reset entirely (its root tables too). Cost: O(reachable bytes) to mark
// plus O(metadata) to sweep.
//
// Pacing (heap_gc_due): the shim collects at open only when it pays for itself, as a paced
// collector does: when the extent has grown, since the last collection, by at least what that
// collection kept (and by kGcAlwaysBelow). So the mark's cost, O(what is reachable), is paid once
// per doubling, amortised over what was allocated, not at every start. A heap without roots is
// reset at every open (O(metadata), no data read); a heap of at most kGcAlwaysBelow is collected
// at every open (a bounded cost, and its leftovers stay small). The record is the superblock's
// gc_extent and gc_kept (zero in heaps no collection has seen: then the next open collects).
#include <cerrno>
#include <new>

#include "../core/include/persist.h"
#include "crashpoint.h"
#include "heap.h"
#include "platform.h"
#include "reach.h"

namespace persist {
namespace {

constexpr uint32_t kPunchPages = 64;

void store_desc_free(Heap *h, uint64_t page, uint32_t pages) {
  PageDesc d{kPageFree, 0, 0, pages};
  uint64_t v;
  __builtin_memcpy(&v, &d, sizeof v);
  SegmentHeader *sh = h->seg_header(page / kSegmentPages);
  __atomic_store_n(reinterpret_cast<uint64_t *>(&sh->desc[page % kSegmentPages]), v, __ATOMIC_RELEASE);
}

void punch(Heap *h, uint64_t page, uint64_t pages) {
  int fd = heap_file(h);  // <0: no file, or not reachable
  if (fd >= 0) os::punch_hole(fd, page * kPageSize, pages * kPageSize);
}

class Sweep : public WalkVisitor {
 public:
  Sweep(Heap *h, const Reach &r, bool dry, GcReport *rep) : h_(h), r_(r), dry_(dry), rep_(rep) {}
  uint64_t last_live_segment = 0;

  void run(uint64_t page, uint32_t pages, unsigned cls, uint32_t) override {
    uint64_t *bm = h_->bitmap_of(page);
    const uint64_t *marks = r_.run_marks(page);
    uint64_t left = 0, freed = 0;
    for (uint32_t w = 0; w < pages * kWordsPerPage; ++w) {
      uint64_t dead = bm[w] & ~marks[w];
      freed += static_cast<uint64_t>(__builtin_popcountll(dead));
      uint64_t keep = bm[w] & marks[w];
      left += static_cast<uint64_t>(__builtin_popcountll(keep));
      if (!dry_ && dead) {
        __atomic_store_n(&bm[w], keep, __ATOMIC_RELEASE);
        PERSIST_CRASH_POINT("gc.run.word");
      }
    }
    rep_->freed_blocks += freed;
    rep_->freed_bytes += freed * kClasses.info[cls].size;
    if (left) {
      live(page);
    } else if (!dry_) {
      store_desc_free(h_, page, pages);  // an empty run: its pages are free again
      PERSIST_CRASH_POINT("gc.run.free");
    }
  }
  void large(uint64_t page, uint32_t pages) override {
    BlockRef b{page * kPageSize, uint64_t{pages} * kPageSize, page, kPageLargeHead, 0, true};
    if (r_.marked(b)) return live(page);
    ++rep_->freed_blocks, rep_->freed_bytes += b.size;
    if (dry_) return;
    store_desc_free(h_, page, pages);
    PERSIST_CRASH_POINT("gc.large");
    if (pages >= kPunchPages) punch(h_, page, pages);
  }
  void huge(uint64_t seg, uint32_t segments, uint64_t bytes) override {
    uint64_t page = seg * kSegmentPages + kHugeFirstPage;
    BlockRef b{page * kPageSize, bytes, page, -1, 0, true};
    if (r_.marked(b)) return live(seg * kSegmentPages + uint64_t{segments} * kSegmentPages - 1);
    ++rep_->freed_blocks, rep_->freed_bytes += bytes;
    if (dry_) return;
    __atomic_store_n(&h_->seg_header(seg)->kind, kSegFree, __ATOMIC_RELEASE);
    PERSIST_CRASH_POINT("gc.huge");
    punch(h_, page, bytes / kPageSize);
  }

 private:
  void live(uint64_t page) {
    uint64_t seg = page / kSegmentPages;
    if (seg > last_live_segment) last_live_segment = seg;
  }
  Heap *h_;
  const Reach &r_;
  bool dry_;
  GcReport *rep_;
};

void set_root_table(Superblock &sb, uint64_t off) { sb.root_table = off; }
void set_size(Superblock &sb, uint64_t size) { sb.size = size; }
void set_gc_record(Superblock &sb, uint64_t kept) { sb.gc_kept = kept, sb.gc_extent = sb.size; }

}  // namespace

bool heap_gc_due(const Heap *h) {
  const Superblock &sb = h->sb;
  const uint64_t size = h->size.load(std::memory_order_relaxed);
  if (!sb.root_table || size <= kGcAlwaysBelow) return true;  // a reset, or a small heap: cheap
  if (!sb.gc_extent || size < sb.gc_extent) return true;     // never collected (or shrunk since)
  uint64_t grown = size - sb.gc_extent;
  return grown >= sb.gc_kept && grown >= kGcAlwaysBelow;
}

int heap_collect(Heap *h, bool dry_run, GcReport *rep, Msg *why) {
  *rep = GcReport{};
  if (!dry_run && (heap_discovery_started(h) || h->threads || h->shared_th)) {
    // The volatile state of this session would not match what the sweep changes.
    why->add("the heap has been used since it was opened: collect right after opening");
    return -EBUSY;
  }
  uint64_t t0 = os::monotonic_ns();
  Reach reach;
  int rc = reach.run(h->image(), why);
  if (rc) return rc;  // never sweep a heap whose roots we do not understand
  rep->roots = reach.roots;
  if (reach.roots == 0 && h->sb.root_table) {
    // No roots: the tables themselves are leftovers too. Unlink them first, then mark again.
    if (!dry_run) {
      heap_update_super(h, set_root_table, 0);
      PERSIST_CRASH_POINT("gc.unlink");
      reach.~Reach();
      new (&reach) Reach();
      if ((rc = reach.run(h->image(), why))) return rc;
    }
  }
  rep->kept_blocks = reach.blocks;
  rep->kept_bytes = reach.bytes;
  // The mark cannot see through a damaged segment (what only its blocks point to would look
  // unreachable), and the sweep writes as it walks: the whole heap must walk cleanly first.
  WalkVisitor validate;
  if ((rc = walk_heap(h->image(), validate, why))) return rc;
  Sweep sweep(h, reach, dry_run, rep);
  if ((rc = walk_heap(h->image(), sweep, why))) return rc;
  if (reach.roots == 0 && dry_run) {
    // A real run would unlink the (empty) root tables first and free them too: count them.
    Image img = h->image();
    for (uint64_t off = img.sb.root_table, n = 0; off && n < (1u << 20); ++n) {
      BlockRef b;
      if (!find_block(img, off, &b) || !b.live || b.offset != off) break;
      ++rep->freed_blocks, rep->freed_bytes += b.size;
      --rep->kept_blocks, rep->kept_bytes -= b.size;
      off = reinterpret_cast<const RootTableHeader *>(img.mem + off)->next;
    }
  }
  // Give back the segments past the last one with anything live.
  uint64_t size = h->size.load(std::memory_order_relaxed);
  uint64_t keep = (sweep.last_live_segment + 1) * kSegmentSize;
  rep->old_size = size;
  rep->new_size = size;
  if (!dry_run && keep < size && !h->region) {
    heap_update_super(h, set_size, keep);  // the commit point: the extent shrinks
    PERSIST_CRASH_POINT("gc.shrink");
    h->size.store(keep, std::memory_order_release);
    int fd = heap_file(h);
    if (fd >= 0) os::truncate_file(fd, keep);
    rep->new_size = keep;
  } else if (dry_run && keep < size) {
    rep->new_size = keep;
  }
  if (!dry_run) {  // the pace of the next collection: the extent must grow by what was kept
    heap_update_super(h, set_gc_record, reach.bytes);
    h->discovered = h->prefix_end = h->prefix_next = 0;  // the sweep made room anywhere
  }
  rep->ns = os::monotonic_ns() - t0;
  return 0;
}

}  // namespace persist
