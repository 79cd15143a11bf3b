// modules.cpp — see modules.h. The ModuleTable is AUTHORITATIVE (a heap block the superblock names).
#include "modules.h"

#include <cstring>

#include "crashpoint.h"
#include "platform.h"

namespace persist {
namespace {

constexpr uint32_t kMaxModules = 4096;

struct Loaded {  // a module loaded now, matched by build-id
  const ModuleEntry *want;
  bool found = false;
  bool same_path_other_id = false;
  uint64_t bias = 0, start = 0, end = 0;
};

const char *base_name(const char *p) {
  const char *s = strrchr(p, '/');
  return s ? s + 1 : p;
}

int match(const os::ModuleInfo &m, void *arg) {
  auto *l = static_cast<Loaded *>(arg);
  const ModuleEntry &e = *l->want;
  if (m.id_len == e.id_len && m.id_len && memcmp(m.build_id, e.build_id, m.id_len) == 0) {
    l->found = true, l->bias = m.bias, l->start = m.start, l->end = m.end;
    return 1;
  }
  if (m.path && m.path[0] && strcmp(base_name(m.path), base_name(e.path)) == 0) l->same_path_other_id = true;
  return 0;
}

bool disjoint(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen) { return a + alen <= b || b + blen <= a; }

ModuleTable *table(Heap *h) {
  uint64_t off = modules_table(h->image());
  return off ? reinterpret_cast<ModuleTable *>(h->base + off) : nullptr;
}

}  // namespace

uint64_t modules_table(const Image &img) {
  uint64_t off = img.sb.modules;
  BlockRef b;
  if (!off || !find_block(img, off, &b) || !b.live || b.offset != off) return 0;
  const auto *t = reinterpret_cast<const ModuleTable *>(img.mem + off);
  if (t->magic != kModuleTableMagic || t->count > kMaxModules ||
      offsetof(ModuleTable, entry) + uint64_t{t->count} * sizeof(ModuleEntry) > b.size)
    return 0;
  return off;
}

void modules_plan(Heap *h, MoveRange *out, int max, int *n, Msg *report) {
  ModuleTable *t = table(h);
  if (!t) return;
  for (uint32_t i = 0; i < t->count && *n < max; ++i) {
    ModuleEntry &e = t->entry[i];
    if (!e.id_len || e.id_len > kModuleIdMax || e.end <= e.start) continue;
    e.path[kModulePathMax - 1] = 0;
    Loaded l{&e};
    os::each_module(match, &l);
    if (!l.found) {
      if (l.same_path_other_id) report->add("module ").add(e.path).add(" changed (another build-id): its pointers are left alone; ");
      continue;
    }
    uint64_t len = e.end - e.start;
    if (e.moving && e.moving != l.bias) {  // an interrupted pass towards another address
      uint64_t mid = e.start - e.bias + e.moving, now = e.start - e.bias + l.bias;
      if (*n + 2 > max || !disjoint(e.start, len, now, len) || !disjoint(mid, len, now, len)) {
        report->add("module ").add(e.path).add(": an interrupted move cannot be finished; ");
        continue;
      }
      out[(*n)++] = MoveRange{mid, len, now};
    } else if (!e.moving && l.bias == e.bias) {
      continue;  // where it was
    }
    uint64_t now = e.start - e.bias + l.bias;
    if (!disjoint(e.start, len, now, len)) {
      report->add("module ").add(e.path).add(" moved by less than its size: its pointers are left alone; ");
      continue;
    }
    __atomic_store_n(&e.moving, l.bias, __ATOMIC_RELEASE);  // recorded before any word changes
    out[(*n)++] = MoveRange{e.start, len, now};
  }
  PERSIST_CRASH_POINT("modules.plan");
}

void modules_done(Heap *h) {
  ModuleTable *t = table(h);
  if (!t) return;
  for (uint32_t i = 0; i < t->count; ++i) {
    ModuleEntry &e = t->entry[i];
    if (!e.moving) continue;
    uint64_t delta = e.moving - e.bias;
    e.start += delta, e.end += delta, e.bias = e.moving;
    __atomic_store_n(&e.moving, uint64_t{0}, __ATOMIC_RELEASE);
  }
}

namespace {

struct Collect {
  ModuleTable *t;
  uint32_t cap;
};

int collect(const os::ModuleInfo &m, void *arg) {
  auto *c = static_cast<Collect *>(arg);
  if (c->t && c->t->count >= c->cap) return 1;
  if (!m.id_len || m.id_len > kModuleIdMax) return 0;  // never matched later: not recorded
  if (c->t) {
    ModuleEntry &e = c->t->entry[c->t->count++];
    memset(&e, 0, sizeof e);
    e.bias = m.bias, e.start = m.start, e.end = m.end, e.id_len = m.id_len;
    memcpy(e.build_id, m.build_id, m.id_len);
    const char *p = m.path && m.path[0] ? m.path : "(main program)";
    strncpy(e.path, p, kModulePathMax - 1);
  } else {
    ++c->cap;
  }
  return 0;
}

void set_modules(Superblock &sb, uint64_t off) { sb.modules = off; }

}  // namespace

void modules_record(Heap *h) {
  Collect count{nullptr, 0};
  os::each_module(collect, &count);
  if (!count.cap) return;
  uint32_t cap = count.cap + 8;  // modules may be loaded meanwhile
  auto *t = static_cast<ModuleTable *>(heap_calloc(h, 1, offsetof(ModuleTable, entry) + cap * sizeof(ModuleEntry)));
  if (!t) return;
  t->magic = kModuleTableMagic;
  Collect fill{t, cap};
  os::each_module(collect, &fill);
  uint64_t old = modules_table(h->image());
  heap_update_super(h, set_modules, h->off(t));  // the commit point
  if (old) heap_free(h, h->base + old);
}

}  // namespace persist
