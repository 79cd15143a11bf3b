// reach.h — conservative reachability from the roots over a heap image (read-only).
//
// Every root table and every root's block is reachable; a reachable block's every aligned 8-byte
// word whose value lies inside the heap's recorded range [base, base + size) — a pointer — or is
// a tagged offset or a tagged self-relative link (persist.h) to a place inside the heap makes
// the block containing that place reachable (interior pointers count). Costs O(reachable bytes) plus the
// segment index. Mark bits are laid out like the allocation bitmaps (bit `index` of a run's
// bitmap area; bit 0 of a large or huge block's first page), so a sweep is a word-wise AND.
#pragma once

#include <cstdint>

#include "msg.h"
#include "walk.h"

namespace persist {

// The mark never gives up on a reachable block: its stack is bounded (max_stack entries, grown
// from a small start while memory allows); a block that finds the stack full stays marked but
// unscanned, and once the stack drains every marked block is scanned again, until a round
// overflows no more (a mark-stack overflow, as in Boehm's collector). So the mark is complete or
// run() fails: never a sweep on a partial mark.
class Reach {
 public:
  static constexpr uint64_t kMaxStack = uint64_t{1} << 24;  // entries (128 MiB)
  explicit Reach(uint64_t max_stack = kMaxStack) : max_stack_(max_stack < 1 ? 1 : max_stack) {}
  ~Reach();
  Reach(const Reach &) = delete;
  Reach &operator=(const Reach &) = delete;

  // Mark from the roots. Returns 0, -ENOMEM (no scratch memory) or PERSIST_E_CORRUPT (a root or
  // root table that is not a live block: the reason goes to `why`).
  int run(const Image &img, Msg *why);

  bool marked(const BlockRef &b) const;
  // The mark words of the run whose first page is `page` (same layout as img.bitmap(page)).
  const uint64_t *run_marks(uint64_t page) const { return bits_ + page * kWordsPerPage; }
  const uint32_t *seg_head() const { return seg_head_; }

  uint64_t blocks = 0, bytes = 0;  // reachable
  uint64_t roots = 0;              // live roots seen
  uint64_t rescans = 0;            // rounds over every marked block after a stack overflow

 private:
  bool mark(const BlockRef &b);
  void push(uint64_t off);
  void scan(uint64_t offset, uint64_t size);
  void drain();
  int rescan_marked(Msg *why);
  uint64_t max_stack_;
  bool overflow_ = false;
  uint64_t *bits_ = nullptr;
  uint32_t *seg_head_ = nullptr;
  uint64_t *stack_ = nullptr;
  uint64_t depth_ = 0, cap_ = 0;
  uint64_t bits_bytes_ = 0, seg_bytes_ = 0, stack_bytes_ = 0;
  const Image *img_ = nullptr;
};

}  // namespace persist
