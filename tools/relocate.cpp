// relocate.cpp — `persist relocate FILE --to ADDR [--json]`: move a heap offline to another base
// address, rewriting its raw pointers (core/relocate.h). The new range must not overlap the old.
#include <cstdlib>
#include <cstring>

#include "../core/include/persist.h"
#include "heap.h"
#include "tool.h"

namespace persist::tool {

int cmd_relocate(const Command &cmd, int argc, char **argv) {
  const char *file = nullptr, *to = nullptr;
  bool json = false;
  for (int i = 1; i < argc; ++i) {
    if (!strcmp(argv[i], "--to") && i + 1 < argc) to = argv[++i];
    else if (!strcmp(argv[i], "--json")) json = true;
    else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) return print_command_help(cmd, stdout), kExitOk;
    else if (argv[i][0] == '-' || file) return usage_error(cmd, argv[i]);
    else file = argv[i];
  }
  if (!file || !to) return usage_error(cmd, "FILE and --to ADDR are required");
  char *end = nullptr;
  unsigned long long addr = strtoull(to, &end, 0);
  if (!*to || *end || addr == 0 || addr % 4096) return usage_error(cmd, "ADDR must be a page-aligned address");
  Heap *h = nullptr;
  Msg why;
  int rc = heap_open_file(file, static_cast<uintptr_t>(addr), 0, PERSIST_OPEN_KEEP_IMAGES, PERSIST_RELOCATE_REWRITE, &h, &why);
  if (rc) return report_unreadable(file, rc, why, json);
  unsigned long long from = h->old_base, words = h->relocated_words;
  heap_close(h);
  if (json) {
    char hex[2][32];
    snprintf(hex[0], sizeof hex[0], "0x%llx", from);
    snprintf(hex[1], sizeof hex[1], "0x%llx", addr);
    Json j(stdout);
    j.begin_object();
    j.str("file", file);
    j.str("from", hex[0]);
    j.str("to", hex[1]);
    j.num("words", words);
    j.end_object();
  } else
    printf("%s: moved from 0x%llx to 0x%llx, %llu words rewritten\n", file, from, addr, words);
  return kExitOk;
}

}  // namespace persist::tool
