// recover.h — what open does after mapping a heap and before anything uses it: make the heap's
// words agree with where things are now. Writes AUTHORITATIVE state (user words, the superblock's
// relocation record, the module table) with every move recorded before its first word changes.
//
// A move takes the aligned words of live blocks that fall in a range [from, from + len) to
// [to, to + len): the heap itself when it is mapped at another base than its pointers were written
// for (PERSIST_RELOCATE), and a program image loaded at another address than recorded (the image
// pass). One pass performs every move at once. It is idempotent — so a crash in the middle is
// finished by running it again — when no range words are moved to meets a range words are moved
// from. The heap's new range is chosen so (heap.cpp); a module's new range is wherever the loader
// put it, so a module whose new range meets a range moved from (its own old range, the heap's old
// range, another module's) moves in two passes, through a scratch range in the non-canonical hole
// of the address space, where no pointer can be. What is recorded, and so what a resumed open
// finishes, is in layout.h (superblock: kSuperFlagRelocating; module table: moving, via,
// reloc_phase); the module need not be loaded for its interrupted move to be finished.
//
// What conservative rewriting cannot know: an integer that happens to equal an address in a
// moved range is shifted like a pointer, and a hash keyed by address loses its keys (README).
#pragma once

#include "heap.h"
#include "msg.h"

namespace persist {

struct RecoverPolicy {
  bool rewrite_images = true;  // plan moves for modules loaded elsewhere (else leave them alone)
};

// Finish recorded moves, then plan and perform the ones this open needs (the heap: when h->base is
// not where its pointers point; modules: per the policy). h->relocated_words counts the words
// rewritten, h->notes what was noticed and left alone. 0, or a negative code with `why`.
int heap_recover_moves(Heap *h, const RecoverPolicy &policy, Msg *why);

// Would an open have moves to finish (an interrupted relocation or image pass)?
bool heap_moves_pending(const Image &img);

// Does [base, base + len) meet a range recorded in the heap's module table? (heap.cpp: the heap's
// new range must not, see above.)
bool heap_range_meets_modules(const Image &img, uint64_t base, uint64_t len);

}  // namespace persist
