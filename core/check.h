// check.h — the consistency checker and heap statistics over an image (never modifies it).
//
// check_image verifies everything walk.h verifies, plus the root table (chain in bounds, entries
// well formed, every root pointing at the start of a live block) and, conservatively from the
// roots, which live blocks are reachable. Unreachable blocks are reported, not failed: a heap left
// dirty by a crash may leak blocks (DESIGN.md, "commit points"), that is consistent.
#pragma once

#include <cstdint>

#include "msg.h"
#include "sizeclass.h"
#include "walk.h"

namespace persist {

struct HeapReport {
  bool consistent = true;
  uint64_t problems = 0;
  Msg first_problem;  // the first reason found when !consistent
  bool dirty = false;
  uint64_t segments = 0, normal_segments = 0, huge_segments = 0, free_segments = 0;
  uint64_t runs = 0, large_blocks = 0, huge_blocks = 0;
  uint64_t live_blocks = 0, live_bytes = 0;  // usable bytes
  uint64_t free_bytes = 0;                   // free pages + free slots of runs
  uint64_t meta_bytes = 0;                   // headers, bitmaps, superblock
  uint64_t class_blocks[kNumClasses] = {};   // live small blocks per class
  uint64_t class_runs[kNumClasses] = {};
  uint64_t roots = 0;
  bool reach_done = false;  // reachability computed (consistent heaps only)
  uint64_t reachable_blocks = 0, reachable_bytes = 0;
  uint64_t unreachable_blocks = 0, unreachable_bytes = 0;
};

enum CheckFlags : unsigned {
  kCheckReachability = 1,  // also mark from the roots (costs O(reachable bytes))
};

// Returns 0 when consistent, PERSIST_E_CORRUPT otherwise (details in the report).
int check_image(const Image &img, HeapReport *report, unsigned flags = kCheckReachability);

}  // namespace persist
