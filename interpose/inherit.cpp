// inherit.cpp — see inherit.h. Runs only when the heap is busy, inside the first allocation:
// raw /proc reads through the platform layer, no malloc.
#include "inherit.h"

#include <cstdint>
#include <cstring>

#include "layout.h"
#include "platform.h"
#include "superblock.h"

namespace persist::shim {
namespace {

constexpr int kMaxDepth = 64;  // deeper trees are treated as unrelated

// The pid the heap's superblock records as its owner (the last process that opened it), or 0.
int recorded_owner(const char *path) {
  int fd = -1;
  bool created = false;
  if (os::open_file(path, false, false, &fd, &created)) return 0;
  const void *page0 = nullptr;
  uint64_t pid = 0;
  if (os::map_file_readonly(fd, kPageSize, &page0) == 0) {
    Superblock sb;
    Msg ignored;
    if (super_read(static_cast<const uint8_t *>(page0), kPageSize, &sb, &ignored) == 0) pid = sb.owner_pid;
    os::unmap(page0, kPageSize);
  }
  os::close_file(fd);
  return pid > 0 && pid < (uint64_t{1} << 31) ? static_cast<int>(pid) : 0;
}

// Was `pid` started with the same value of `name` as we were (and a non-empty one)?
bool same_env(int pid, const char *name) {
  const char *ours = os::getenv_raw(name);
  if (!ours || !*ours) return false;
  char theirs[4096];
  return os::environ_value(pid, name, theirs, sizeof theirs) == 0 && strcmp(theirs, ours) == 0;
}

}  // namespace

bool held_in_our_tree(const char *path, TreeHolder *out) {
  int owner = recorded_owner(path);
  if (owner <= 1 || owner == os::getpid_cached()) return false;
  int chain[kMaxDepth];  // our ancestors, parent first, down from init
  int n = 0;
  for (int p = os::parent_pid(os::getpid_cached()); p > 1 && n < kMaxDepth; p = os::parent_pid(p))
    chain[n++] = p;
  for (int p = owner, depth = 0; p > 1 && depth < kMaxDepth; p = os::parent_pid(p), ++depth) {
    for (int i = 0; i < n; ++i) {
      if (chain[i] != p) continue;
      // p is the nearest common ancestor: the owner itself, or a process that handed the same
      // configuration to both of us.
      if (p != owner && !(same_env(p, "LD_PRELOAD") && same_env(p, "PERSIST_FILE"))) return false;
      out->holder = owner, out->root = p;
      return true;
    }
  }
  return false;
}

}  // namespace persist::shim
