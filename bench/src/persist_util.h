// persist_util.h — helpers for the bench programs that use libpersist's heap handles directly
// (reopen, heapsize, the map peer): open or die, the file's allocated size.
#pragma once

#include <persist.h>
#include <sys/stat.h>

#include <cstdio>
#include <cstdlib>

namespace bench {

inline persist_heap_t *open_or_die(const char *path, unsigned flags, uintptr_t addr = 0) {
  persist_options_t o{};
  o.addr = addr;
  o.flags = flags;
  persist_heap_t *h = nullptr;
  int rc = persist_open(path, &o, &h);
  if (rc) {
    fprintf(stderr, "persist_open %s: %s\n", path, persist_strerror(rc));
    exit(1);
  }
  return h;
}

// Bytes the file system holds for the file (what `du` reports), and its apparent size.
inline void file_sizes(const char *path, double *allocated, double *apparent) {
  struct stat st {};
  if (stat(path, &st) != 0) {
    *allocated = *apparent = 0;
    return;
  }
  *allocated = double(st.st_blocks) * 512;
  *apparent = double(st.st_size);
}

}  // namespace bench
