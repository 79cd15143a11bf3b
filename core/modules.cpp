// modules.cpp — see modules.h. The module tables are AUTHORITATIVE (in the heap's own area).
#include "modules.h"

#include <cstring>

#include "crashpoint.h"
#include "heapfile.h"
#include "platform.h"

namespace persist {
namespace {

struct Match {  // looking for one recorded module among the loaded ones
  const ModuleEntry *want;
  bool found = false, rebuilt = false;
  uint64_t bias = 0;
};

const char *base_name(const char *p) {
  const char *s = strrchr(p, '/');
  return s ? s + 1 : p;
}

bool valid_entry(const ModuleEntry &e) {
  return e.id_len && e.id_len <= kModuleIdMax && e.end > e.start && memchr(e.path, 0, kModulePathMax);
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

bool same_id(const ModuleEntry &a, const ModuleEntry &b) {
  return a.id_len == b.id_len && memcmp(a.build_id, b.build_id, a.id_len) == 0;
}

bool overlaps(const ModuleEntry &a, const ModuleEntry &b) { return a.start < b.end && b.start < a.end; }

}  // namespace

const ModuleTable *modules_table(const Image &img) {
  uint64_t off = actions_table(img);
  if (!off) return nullptr;
  const auto *log = reinterpret_cast<const ActionLog *>(img.mem + off);
  return log->modules_current < 2 ? &log->modules[log->modules_current] : nullptr;
}

ModuleTable *modules_table(Heap *h) { return const_cast<ModuleTable *>(modules_table(h->image())); }

bool module_loaded(const ModuleEntry &e, uint64_t *bias, bool *rebuilt) {
  Match m{&e};
  if (valid_entry(e))
    os::each_module(
        [](const os::ModuleInfo &mi, void *arg) -> int {
          auto *l = static_cast<Match *>(arg);
          const ModuleEntry &w = *l->want;
          if (mi.id_len == w.id_len && memcmp(mi.build_id, w.build_id, mi.id_len) == 0) {
            l->found = true, l->bias = mi.bias;
            return 1;
          }
          if (mi.path && mi.path[0] && strcmp(base_name(mi.path), base_name(w.path)) == 0) l->rebuilt = true;
          return 0;
        },
        &m);
  *bias = m.bias;
  if (rebuilt) *rebuilt = !m.found && m.rebuilt;
  return m.found;
}

bool modules_moved(const ModuleTable *t) {
  if (!t) return false;
  for (uint32_t i = 0; i < t->count && i < kModulesMax; ++i) {
    uint64_t bias = 0;
    if (module_loaded(t->entry[i], &bias, nullptr) && bias != t->entry[i].bias) return true;
  }
  return false;
}

bool modules_moved_in_file(const char *path) {
  HeapFile f;
  if (heapfile_open(path, &f, nullptr) != 0) return false;
  bool moved = !f.owner_live && f.image.sb.root_table && modules_moved(modules_table(f.image));
  heapfile_close(&f);
  return moved;
}

void modules_record(Heap *h) {
  ActionLog *log = heap_area(h, true);
  if (!log) return;
  const ModuleTable *old = log->modules_current < 2 ? &log->modules[log->modules_current] : nullptr;
  for (uint32_t i = 0; old && i < old->count && i < kModulesMax; ++i)
    if (old->entry[i].moving) return;  // an interrupted move: recover.cpp finishes it first
  uint32_t next = log->modules_current == 0 ? 1 : 0;
  ModuleTable *t = &log->modules[next];
  t->count = 0;
  os::each_module(collect, t);
  // Keep what was recorded of modules this process has not loaded (another program's executable,
  // when a tool or a second program closes the heap): their pointers must still be found later,
  // as long as they cannot be mistaken for pointers into what is loaded now.
  const uint32_t loaded = t->count;
  for (uint32_t i = 0; old && i < old->count && i < kModulesMax && t->count < kModulesMax; ++i) {
    const ModuleEntry &e = old->entry[i];
    if (!valid_entry(e)) continue;
    bool keep = true;
    for (uint32_t k = 0; k < t->count && keep; ++k)
      keep = !same_id(t->entry[k], e) && !(k < loaded && overlaps(t->entry[k], e));
    if (keep) t->entry[t->count++] = e;
  }
  std::atomic_thread_fence(std::memory_order_release);
  __atomic_store_n(&log->modules_current, next, __ATOMIC_RELEASE);  // the commit point
  PERSIST_CRASH_POINT("modules.record");
}

}  // namespace persist
