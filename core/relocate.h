// relocate.h — the offset rewrite layer: when a heap is mapped at another address than the one its
// raw pointers were written for, every aligned 8-byte word inside a live block that points into
// an old range is shifted into the new one. Metadata is in offsets and never needs this; nor do
// tagged offsets and self-relative links (persist.h).
//
// Idempotence: the new range is chosen disjoint from every old range, so a word already shifted
// no longer matches; a pass interrupted by a crash is finished by running it again, which open
// does when the superblock says "relocation from A to B in progress" (recorded before the pass).
#pragma once

#include <cstdint>

#include "msg.h"
#include "walk.h"

namespace persist {

struct MoveRange {
  uint64_t from, len, to;  // words in [from, from + len) become word - from + to
};

// Rewrite the live blocks of the heap image at `mem` (writable): each word in some ranges[k].from
// range moves by that range's delta (the first that matches). Returns 0 and the number of words
// changed, or PERSIST_E_CORRUPT (the walk failed; nothing after the damage was touched).
// skip[0..nskip) (offsets, 0: none) name blocks left alone: the heap's own area, whose module table
// holds addresses inside the ranges by design, and the site table (no pointers).
int relocate_words(uint8_t *mem, const Image &img, const MoveRange *ranges, int n, const uint64_t *skip,
                   int nskip, uint64_t *words, Msg *why);

}  // namespace persist
