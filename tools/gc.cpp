// gc.cpp — `persist gc FILE [--dry-run] [--json]`: reclaim offline what no root reaches, as the
// shim does at open (core/gc.cpp), and report it. Opens the heap for writing (taking its lock: a
// heap a live process holds is refused); --dry-run only counts.
#include <cstring>

#include "../core/include/persist.h"
#include "heap.h"
#include "tool.h"

namespace persist::tool {

int cmd_gc(const Command &cmd, int argc, char **argv) {
  const char *file = nullptr;
  bool dry = false, json = false;
  for (int i = 1; i < argc; ++i) {
    if (!strcmp(argv[i], "--dry-run")) dry = true;
    else if (!strcmp(argv[i], "--json")) json = true;
    else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) return print_command_help(cmd, stdout), kExitOk;
    else if (argv[i][0] == '-' || file) return usage_error(cmd, argv[i]);
    else file = argv[i];
  }
  if (!file) return usage_error(cmd, "FILE is missing");
  Heap *h = nullptr;
  Msg why;
  int rc = heap_open_file(file, 0, 0, 0, PERSIST_RELOCATE_REFUSE, &h, &why);
  if (rc) return report_unreadable(file, rc, why, json);
  GcReport rep;
  rc = heap_collect(h, dry, &rep, &why);
  heap_close(h);
  if (rc) {
    fprintf(stderr, "persist gc: %s: %s\n", file, why.empty() ? persist_strerror(rc) : why.str());
    return kExitInconsistent;
  }
  if (json) {
    Json j(stdout);
    j.begin_object();
    j.str("file", file);
    j.boolean("dry_run", dry);
    j.num("roots", rep.roots);
    j.num("kept_blocks", rep.kept_blocks);
    j.num("kept_bytes", rep.kept_bytes);
    j.num("freed_blocks", rep.freed_blocks);
    j.num("freed_bytes", rep.freed_bytes);
    j.num("old_extent", rep.old_size);
    j.num("new_extent", rep.new_size);
    j.num("ns", rep.ns);
    j.end_object();
  } else {
    printf("%s: %s %llu blocks (%llu bytes) that no root reaches; kept %llu blocks (%llu bytes) from %llu roots\n",
           file, dry ? "would free" : "freed", (unsigned long long)rep.freed_blocks,
           (unsigned long long)rep.freed_bytes, (unsigned long long)rep.kept_blocks,
           (unsigned long long)rep.kept_bytes, (unsigned long long)rep.roots);
    if (rep.new_size != rep.old_size)
      printf("  extent %llu -> %llu bytes%s\n", (unsigned long long)rep.old_size,
             (unsigned long long)rep.new_size, dry ? " (would shrink)" : "");
  }
  return kExitOk;
}

}  // namespace persist::tool
