// recover.cpp — see recover.h.
#include "recover.h"

#include <cerrno>
#include <cstring>

#include "crashpoint.h"
#include "modules.h"
#include "relocate.h"

namespace persist {
namespace {

// Module i's scratch range: in the non-canonical hole of the x86-64 and arm64 address spaces
// (between 2^47 and 2^64 - 2^47), where no pointer can be, one slot per module table entry.
constexpr uint64_t kScratchBase = uint64_t{1} << 62;
constexpr uint64_t kScratchSlot = uint64_t{1} << 40;
static_assert(kScratchBase + kModulesMax * kScratchSlot < (uint64_t{1} << 63), "inside the hole");

uint64_t scratch_of(uint32_t i) { return kScratchBase + uint64_t{i} * kScratchSlot; }

bool meets(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen) { return a < b + blen && b < a + alen; }

struct Plan {
  MoveRange r[kModulesMax + 1];
  int n = 0;
  void add(uint64_t from, uint64_t len, uint64_t to) { r[n++] = MoveRange{from, len, to}; }
};

ActionLog *area(Heap *h) { return heap_area(h, false); }

uint64_t dest_of(const ModuleEntry &e) { return e.start - e.bias + e.moving; }

// The ranges of pass `phase` (1 or 2) as the heap records them.
void recorded_ranges(Heap *h, const ModuleTable *t, int phase, Plan *p) {
  if (phase == 1 && (h->sb.flags & kSuperFlagRelocating)) p->add(h->sb.reloc_from, h->sb.size, h->sb.reloc_to);
  for (uint32_t i = 0; t && i < t->count && i < kModulesMax; ++i) {
    const ModuleEntry &e = t->entry[i];
    if (!e.moving || e.end <= e.start) continue;
    const uint64_t len = e.end - e.start;
    if (!e.via) {
      if (phase == 1) p->add(e.start, len, dest_of(e));
    } else if (phase == 1) {
      p->add(e.start, len, scratch_of(i));
    } else {
      p->add(scratch_of(i), len, dest_of(e));
    }
  }
}

bool any_moving(const ModuleTable *t, bool via_only) {
  for (uint32_t i = 0; t && i < t->count && i < kModulesMax; ++i)
    if (t->entry[i].moving && (!via_only || t->entry[i].via)) return true;
  return false;
}

// The blocks that hold no pointers, only addresses and offsets by design: never rewritten.
int pass(Heap *h, const Plan &p, uint64_t *words, Msg *why) {
  *words = 0;
  if (!p.n) return 0;
  Image img = h->image();
  uint64_t skip[2] = {actions_table(img), img.sb.sites};
  return relocate_words(h->base, img, p.r, p.n, skip, 2, words, why);
}

void end_move(Superblock &sb, uint64_t words) {
  sb.base = sb.reloc_to;
  sb.reloc_words = words;
  ++sb.relocations;
  sb.flags &= ~kSuperFlagRelocating;
}

void begin_move(Superblock &sb, uint64_t to) {
  sb.reloc_from = sb.base;
  sb.reloc_to = to;
  sb.flags |= kSuperFlagRelocating;
}

// The moves are done: the module table that says so replaces the current one with one store.
void commit_module_moves(ActionLog *log) {
  const ModuleTable &cur = log->modules[log->modules_current];
  uint32_t next = log->modules_current == 0 ? 1 : 0;
  ModuleTable &t = log->modules[next];
  t = cur;
  for (uint32_t i = 0; i < t.count && i < kModulesMax; ++i) {
    ModuleEntry &e = t.entry[i];
    if (!e.moving) continue;
    uint64_t to = dest_of(e);
    e.end = to + (e.end - e.start), e.start = to, e.bias = e.moving;
    e.moving = 0, e.via = 0;
  }
  std::atomic_thread_fence(std::memory_order_release);
  __atomic_store_n(&log->modules_current, next, __ATOMIC_RELEASE);
  PERSIST_CRASH_POINT("modules.moved");
}

// Perform the moves the heap records, then retire the record: the module table first, then the
// superblock, then the phase (a phase of 2 keeps a resumed open from redoing the first pass,
// whose ranges the second may have moved words into).
int run_recorded(Heap *h, Msg *why) {
  ActionLog *log = area(h);
  ModuleTable *t = log && log->modules_current < 2 ? &log->modules[log->modules_current] : nullptr;
  const bool via = any_moving(t, true);
  uint64_t words = 0, w = 0;
  int rc;
  if (!log || log->reloc_phase != 2) {
    Plan p;
    recorded_ranges(h, t, 1, &p);
    if ((rc = pass(h, p, &w, why))) return rc;
    words += w;
    if (via) {
      __atomic_store_n(&log->reloc_phase, 2u, __ATOMIC_RELEASE);
      PERSIST_CRASH_POINT("reloc.phase");
    }
  }
  if (via) {
    Plan p;
    recorded_ranges(h, t, 2, &p);
    if ((rc = pass(h, p, &w, why))) return rc;
    words += w;
  }
  if (any_moving(t, false)) commit_module_moves(log);
  if (h->sb.flags & kSuperFlagRelocating) heap_update_super(h, end_move, words);
  PERSIST_CRASH_POINT("reloc.done");
  if (log && log->reloc_phase) __atomic_store_n(&log->reloc_phase, 0u, __ATOMIC_RELEASE);
  h->relocated_words += words;
  return 0;
}

// Plan the module moves this open needs into the table (in place: `via` then `moving`, the
// entry's commit). `heap_from` is the heap's old range when it moves too (len 0: it does not).
void plan_modules(Heap *h, ModuleTable *t, uint64_t heap_from, uint64_t heap_len, Msg *notes) {
  struct Cand {
    uint32_t i;
    uint64_t bias;
  } cand[kModulesMax];
  uint32_t n = 0;
  for (uint32_t i = 0; i < t->count && i < kModulesMax; ++i) {
    ModuleEntry &e = t->entry[i];
    if (e.end <= e.start) continue;
    e.path[kModulePathMax - 1] = 0;
    uint64_t bias = 0;
    bool rebuilt = false;
    if (!module_loaded(e, &bias, &rebuilt)) {
      if (rebuilt) notes->add("module ").add(e.path).add(" changed (another build-id): its pointers are left alone; ");
      continue;
    }
    if (bias == e.bias) continue;
    if (e.end - e.start > kScratchSlot) {
      notes->add("module ").add(e.path).add(" is too large to move its pointers; ");
      continue;
    }
    cand[n++] = Cand{i, bias};
  }
  // Words are moved from every candidate's old range (and the heap's): those must not meet, or a
  // word's meaning would be ambiguous (entries recorded by different programs).
  bool ambiguous[kModulesMax] = {};
  for (uint32_t a = 0; a < n; ++a) {
    const ModuleEntry &ea = t->entry[cand[a].i];
    if (heap_len && meets(ea.start, ea.end - ea.start, heap_from, heap_len)) ambiguous[a] = true;
    for (uint32_t b = 0; b < n; ++b)
      if (a != b && meets(ea.start, ea.end - ea.start, t->entry[cand[b].i].start,
                          t->entry[cand[b].i].end - t->entry[cand[b].i].start))
        ambiguous[a] = true;
  }
  for (uint32_t a = 0; a < n; ++a) {
    ModuleEntry &e = t->entry[cand[a].i];
    if (ambiguous[a]) {
      notes->add("module ").add(e.path).add(": its recorded range overlaps another's, its pointers are left alone; ");
      continue;
    }
    const uint64_t len = e.end - e.start, to = e.start - e.bias + cand[a].bias;
    bool direct = !(heap_len && meets(to, len, heap_from, heap_len));
    for (uint32_t b = 0; b < n && direct; ++b)
      if (!ambiguous[b])
        direct = !meets(to, len, t->entry[cand[b].i].start, t->entry[cand[b].i].end - t->entry[cand[b].i].start);
    e.via = direct ? 0 : 1;
    __atomic_store_n(&e.moving, cand[a].bias, __ATOMIC_RELEASE);  // recorded before any word changes
  }
  PERSIST_CRASH_POINT("modules.plan");
}

}  // namespace

bool heap_moves_pending(const Image &img) {
  if (img.sb.flags & kSuperFlagRelocating) return true;
  const ModuleTable *t = modules_table(img);
  return any_moving(t, false);
}

bool heap_range_meets_modules(const Image &img, uint64_t base, uint64_t len) {
  const ModuleTable *t = modules_table(img);
  for (uint32_t i = 0; t && i < t->count && i < kModulesMax; ++i) {
    const ModuleEntry &e = t->entry[i];
    if (e.end > e.start && meets(base, len, e.start, e.end - e.start)) return true;
    if (e.moving && e.end > e.start && meets(base, len, dest_of(e), e.end - e.start)) return true;
  }
  return false;
}

int heap_recover_moves(Heap *h, const RecoverPolicy &policy, Msg *why) {
  // 1. What an interrupted open recorded, exactly as recorded.
  if (heap_moves_pending(h->image())) {
    int rc = run_recorded(h, why);
    if (rc) return rc;
  }
  // 2. What this open needs.
  const uint64_t to = reinterpret_cast<uint64_t>(h->base), size = h->size.load(std::memory_order_relaxed);
  const bool heap_moves = to != h->sb.base;
  ActionLog *log = area(h);
  ModuleTable *t = log && log->modules_current < 2 ? &log->modules[log->modules_current] : nullptr;
  // The heap's move is recorded first: module moves are planned around it (a module's new range
  // may lie in the heap's old one), so a record of them without it would be resumed wrongly.
  const uint64_t from = h->sb.base;
  if (heap_moves) {
    if (meets(to, size, from, size) || heap_range_meets_modules(h->image(), to, size)) {
      why->add("the new address ").hex(to).add(" overlaps a range the heap's pointers point into");
      return -EINVAL;
    }
    heap_update_super(h, begin_move, to);  // recorded before any word changes
    PERSIST_CRASH_POINT("reloc.begin");
  }
  // A heap no root reaches holds nothing a later run can find (the open's collection resets it):
  // its image pointers are not worth a pass over the data.
  if (policy.rewrite_images && t && h->sb.root_table) {
    if (log->reloc_phase) __atomic_store_n(&log->reloc_phase, 0u, __ATOMIC_RELEASE);  // a stale phase
    plan_modules(h, t, heap_moves ? from : 0, heap_moves ? size : 0, &h->notes);
  }
  if (!heap_moves && !any_moving(t, false)) return 0;
  return run_recorded(h, why);
}

}  // namespace persist
