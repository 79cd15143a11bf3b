// walk.h — one traversal of the AUTHORITATIVE state of a heap image, bounds-checked at every step
// so it can run on untrusted files (tools) as well as on the live heap (discovery at runtime).
//
// Invariants it verifies (see layout.h for the format):
//   - segment headers carry the magic and a known kind; huge and free headers cover segments
//     inside the extent; a normal segment's header and bitmap pages are described as meta;
//   - a HEAD descriptor's span lies inside its segment; every page inside a live span carries the
//     matching *_CONT kind and the right distance back (no two spans overlap);
//   - a run's class is valid and its span has the class's page count; no bitmap bit is set past
//     the run's capacity; pages outside live spans are free (stale *_CONT allowed).
//
// Damage is contained to what it touches when the caller asks (kWalkContain): a span whose
// descriptors are inconsistent is reported as one damaged range (its head page and the *_CONT or
// unknown descriptors after it, up to the next free page or HEAD) and the walk goes on with the
// rest of the segment; a run with bits past its capacity and a wrong metadata descriptor are
// reported and walked past. The repair (repair.h) drops exactly what is reported here, so the
// checker's count of problems and the repair's count of fixes agree. Without the flag the walk
// stops at the first problem (the runtime, the collector and relocation use nothing of a
// segment that is not wholly consistent).
#pragma once

#include <cstdint>

#include "layout.h"
#include "msg.h"

namespace persist {

// A heap image: the heap's bytes [mem, mem + len) and its superblock. Offsets are from mem.
struct Image {
  const uint8_t *mem = nullptr;
  uint64_t len = 0;  // bytes readable at mem (>= sb.size for a complete image)
  Superblock sb{};
  uint64_t segment_count() const { return (sb.size + kSegmentSize - 1) / kSegmentSize; }
  // Pages of segment i inside the extent (the last segment of a region heap may be partial).
  uint32_t segment_pages(uint64_t i) const;
  const uint64_t *bitmap(uint64_t page_index) const {  // global page index of a run's head
    uint64_t seg = page_index / kSegmentPages, pg = page_index % kSegmentPages;
    return reinterpret_cast<const uint64_t *>(mem + seg * kSegmentSize + kBitmapOffset) +
           pg * kWordsPerPage;
  }
};

// What a contained problem is (kWalkContain).
enum class Damage : uint8_t {
  kSpan,      // [page, page + count) holds no valid span: not visited as anything
  kBits,      // the run at `page` has allocation bits past its capacity (the run is still visited)
  kMetaDesc,  // the descriptor of metadata page `page` has another kind (nothing else is affected)
};

class WalkVisitor {
 public:
  virtual ~WalkVisitor() = default;
  // Offsets are byte offsets from the heap base; `page` arguments are global page indexes.
  virtual void segment(uint64_t /*index*/, const SegmentHeader & /*h*/) {}
  virtual void free_pages(uint64_t /*page*/, uint32_t /*count*/) {}
  virtual void run(uint64_t /*page*/, uint32_t /*pages*/, unsigned /*cls*/, uint32_t /*used*/) {}
  virtual void large(uint64_t /*page*/, uint32_t /*pages*/) {}
  virtual void huge(uint64_t /*segment*/, uint32_t /*segments*/, uint64_t /*bytes*/) {}
  virtual void free_segments(uint64_t /*segment*/, uint32_t /*count*/) {}
  // Only with kWalkContain, in page order. The walk has read every descriptor of the range (and,
  // for kBits, the run's bitmap) before the call and reads none of them again, so a repair may
  // rewrite them from here.
  virtual void damaged(uint64_t /*page*/, uint32_t /*count*/, Damage /*what*/, const Msg & /*why*/) {}
};

enum WalkFlags : unsigned {
  kWalkContain = 1,  // report damage inside a normal segment to damaged() and keep walking
};

// Walk the segment starting at `index`; *next gets the index of the following segment header.
// Returns 0, or PERSIST_E_CORRUPT with the reason in `why`. With kWalkContain, a problem inside
// a normal segment whose header is valid goes to v.damaged() instead, and the return is 0: the
// segment was walked to its end (the caller counts what damaged() reported).
int walk_segment(const Image &img, uint64_t index, WalkVisitor &v, Msg *why, uint64_t *next,
                 unsigned flags = 0);
// Walk every segment of the extent.
int walk_heap(const Image &img, WalkVisitor &v, Msg *why);

// Where a block lies, found from any address inside it (untrusted-safe).
struct BlockRef {
  uint64_t offset = 0;  // first byte of the block
  uint64_t size = 0;    // usable size
  uint64_t span_page = 0;
  int kind = 0;         // kPageRunHead, kPageLargeHead, or -1 for huge
  uint32_t index = 0;   // block index inside its run
  bool live = false;    // allocated (bit set / span live)
  bool noscan = false;  // a pointer-free block (large or huge): its words are no pointers
};

// Is the large block whose span starts at global page `page`, or the huge block of segment `seg`,
// pointer-free (persist_alloc_noscan)? The mark does not scan such a block, relocation does not
// rewrite it. Bounds-checked; false when in doubt (a block that is scanned is always safe).
bool large_noscan(const Image &img, uint64_t page);
bool huge_noscan(const Image &img, uint64_t seg);
// Resolve an offset to the block that contains it, if any. Bounds-checked. `seg_head` (optional,
// from build_segment_index) makes it O(1); without it the segment headers are walked from 0.
bool find_block(const Image &img, uint64_t offset, BlockRef *out, const uint32_t *seg_head = nullptr);
// Is there a live block starting exactly at `offset` with at least `min_size` usable bytes? (The
// test for a structure named by an offset: a root table, the heap's own area, the site table.)
bool live_block_at(const Image &img, uint64_t offset, uint64_t min_size,
                   const uint32_t *seg_head = nullptr);
// seg_head[i] := the segment whose header covers segment i (UINT32_MAX where none). The array has
// img.segment_count() entries. Returns false when the headers do not chain (a corrupt image).
bool build_segment_index(const Image &img, uint32_t *seg_head);

}  // namespace persist
