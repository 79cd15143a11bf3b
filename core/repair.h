// repair.h — rebuilding what can be rebuilt in a damaged heap image (persist check --repair).
//
// Ordered steps, each a check and a fix, on a writable mapping of the whole file (anywhere: the
// image is addressed by offsets): (1) superblock: a damaged slot is rewritten from the valid one;
// (2) extent: a file shorter than the recorded extent loses the missing segments; (3) segments:
// a damaged header becomes a free segment, clamped counts, rewritten meta descriptors; a span
// whose descriptors are inconsistent is dropped (its blocks are lost); allocation bits past a
// run's capacity are cleared; (4) roots: a damaged table cuts the chain, malformed entries and
// roots that do not point at live blocks are removed. Every fix is reported. The heap is left
// marked dirty. The caller makes the backup and makes sure nobody else has the file open.
#pragma once

#include <cstdint>

#include "msg.h"

namespace persist {

struct RepairReport {
  uint64_t fixes = 0;          // things changed
  uint64_t lost_spans = 0;     // runs / large / huge blocks dropped
  uint64_t lost_roots = 0;     // root entries removed
  bool superblock_lost = false;  // neither slot valid: nothing could be done
  void (*log)(const char *line, void *arg) = nullptr;  // one line per fix
  void *log_arg = nullptr;
  void note(const Msg &m) {
    ++fixes;
    if (log) log(m.str(), log_arg);
  }
};

// Repair the image [mem, mem + len). Returns 0 when the result is consistent (check_image),
// PERSIST_E_CORRUPT if it is still not, or the superblock's error when no slot is valid.
int repair_image(uint8_t *mem, uint64_t len, RepairReport *rep);

}  // namespace persist
