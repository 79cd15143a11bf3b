// modules.cpp — see modules.h. The module tables are AUTHORITATIVE (in the heap's own area).
#include "modules.h"

#include <cstring>

#include "crashpoint.h"
#include "platform.h"

namespace persist {
namespace {

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
  ActionLog *log = heap_area(h, false);
  return log && log->modules_current < 2 ? &log->modules[log->modules_current] : nullptr;
}

int collect(const os::ModuleInfo &m, void *arg) {
  auto *t = static_cast<ModuleTable *>(arg);
  if (t->count >= kModulesMax) return 1;
  if (!m.id_len || m.id_len > kModuleIdMax) return 0;  // never matched later: not recorded
  ModuleEntry &e = t->entry[t->count++];
  memset(&e, 0, sizeof e);
  e.bias = m.bias, e.start = m.start, e.end = m.end, e.id_len = m.id_len;
  memcpy(e.build_id, m.build_id, m.id_len);
  const char *p = m.path && m.path[0] ? m.path : "(main program)";
  strncpy(e.path, p, kModulePathMax - 1);
  return 0;
}

}  // namespace

void modules_plan(Heap *h, MoveRange *out, int max, int *n, Msg *report) {
  ModuleTable *t = table(h);
  if (!t) return;
  for (uint32_t i = 0; i < t->count && i < kModulesMax && *n < max; ++i) {
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
  for (uint32_t i = 0; i < t->count && i < kModulesMax; ++i) {
    ModuleEntry &e = t->entry[i];
    if (!e.moving) continue;
    uint64_t delta = e.moving - e.bias;
    e.start += delta, e.end += delta, e.bias = e.moving;
    __atomic_store_n(&e.moving, uint64_t{0}, __ATOMIC_RELEASE);
  }
}

void modules_record(Heap *h) {
  ActionLog *log = heap_area(h, true);
  if (!log) return;
  uint32_t next = log->modules_current == 0 ? 1 : 0;
  ModuleTable *t = &log->modules[next];
  t->count = 0;
  os::each_module(collect, t);
  // Keep what was recorded of modules this process has not loaded (another program's executable,
  // when a tool or a second program closes the heap): their pointers must still be found later.
  if (const ModuleTable *old = table(h)) {
    for (uint32_t i = 0; i < old->count && i < kModulesMax && t->count < kModulesMax; ++i) {
      const ModuleEntry &e = old->entry[i];
      bool loaded = false;
      for (uint32_t k = 0; k < t->count && !loaded; ++k)
        loaded = t->entry[k].id_len == e.id_len && memcmp(t->entry[k].build_id, e.build_id, e.id_len) == 0;
      if (!loaded && !e.moving) t->entry[t->count++] = e;
    }
  }
  std::atomic_thread_fence(std::memory_order_release);
  __atomic_store_n(&log->modules_current, next, __ATOMIC_RELEASE);  // the commit point
  PERSIST_CRASH_POINT("modules.record");
}

}  // namespace persist
