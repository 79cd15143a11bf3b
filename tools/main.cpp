// main.cpp — the `persist` command-line tool: the one table of subcommands, `persist help [CMD]`,
// usage errors and exit codes. Each subcommand is one file (info.cpp, check.cpp, ...); adding one
// is a line in kCommands and a cmd_* function declared in tool.h.
#include <sys/stat.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>

#include "tool.h"

namespace persist::tool {
namespace {

int cmd_help(const Command &cmd, int argc, char **argv);

const Command kCommands[] = {
    {"info", "FILE [--json]", "describe a heap file: format, addresses, sizes, state, roots",
     "Prints the superblock (format version, uuid, base address, reserved range, extent, clean or\n"
     "dirty, number of opens, creation time), the file size against the disk space it really\n"
     "uses, whether a live process holds the heap, block statistics (segments, runs, large and\n"
     "huge blocks, live blocks and bytes, free bytes) and the root list (tag, offset, size).\n"
     "Never modifies the file. Exit status: 0 described, 1 the heap is inconsistent (the\n"
     "statistics are then incomplete; run `persist check`), 2 the file cannot be read as a heap.",
     cmd_info},
    {"check", "FILE [--json]", "verify the whole authoritative state of a heap file",
     "Walks every segment, span, bitmap and root of the heap and checks them against each other\n"
     "(valid structures, no overlapping blocks, every root at the start of a live block), then\n"
     "marks conservatively from the roots. Prints \"consistent\", or the first problem and the\n"
     "number of problems. A heap left dirty by a crash is consistent when the next open would\n"
     "recover it: check says it is dirty and reports unreachable (leaked) blocks without failing\n"
     "for them. Never modifies the file.\n"
     "Exit status: 0 consistent, 1 inconsistent, 2 the file cannot be read as a heap.",
     cmd_check},
    {"help", "[COMMAND]", "list the commands, or explain one", nullptr, cmd_help},
};

void print_overview(FILE *out) {
  fputs("usage: persist COMMAND [ARGS]\n\n"
        "Inspect libpersist heap files. Heap files are read as untrusted input and never\n"
        "modified by these commands.\n\ncommands:\n",
        out);
  for (const Command &c : kCommands) fprintf(out, "  %-7s %-16s %s\n", c.name, c.args, c.summary);
  fputs("\nexit status: 0 success (check: consistent), 1 heap inconsistent, 2 file unreadable as a\n"
        "heap, 64 usage error.\n"
        "`persist help COMMAND` explains a command; --json gives machine-readable output (keys\n"
        "in README.md).\n",
        out);
}

const Command *find_command(const char *name) {
  for (const Command &c : kCommands)
    if (strcmp(c.name, name) == 0) return &c;
  return nullptr;
}

int cmd_help(const Command &cmd, int argc, char **argv) {
  if (argc < 2) {
    print_overview(stdout);
    return kExitOk;
  }
  if (argc > 2) return usage_error(cmd, "too many arguments");
  const Command *c = find_command(argv[1]);
  if (!c) {
    fprintf(stderr, "persist: no command '%s' (see `persist help`)\n", argv[1]);
    return kExitUsage;
  }
  print_command_help(*c, stdout);
  return kExitOk;
}

}  // namespace

void print_command_help(const Command &cmd, FILE *out) {
  fprintf(out, "usage: persist %s %s\n\n%s\n", cmd.name, cmd.args, cmd.summary);
  if (cmd.help) fprintf(out, "\n%s\n", cmd.help);
}

int usage_error(const Command &cmd, const char *problem) {
  fprintf(stderr, "persist %s: %s\nusage: persist %s %s  (see `persist help %s`)\n", cmd.name,
          problem, cmd.name, cmd.args, cmd.name);
  return kExitUsage;
}

int parse_file_args(const Command &cmd, int argc, char **argv, FileArgs *out) {
  bool options_done = false;
  for (int i = 1; i < argc; ++i) {
    const char *a = argv[i];
    if (!options_done && a[0] == '-' && a[1] != 0) {
      if (strcmp(a, "--") == 0) {
        options_done = true;
      } else if (strcmp(a, "--json") == 0) {
        out->json = true;
      } else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
        print_command_help(cmd, stdout);
        return kExitOk;
      } else {
        std::string msg = std::string("unknown option ") + a;
        return usage_error(cmd, msg.c_str());
      }
    } else if (!out->file) {
      out->file = a;
    } else {
      return usage_error(cmd, "more than one FILE");
    }
  }
  if (!out->file) return usage_error(cmd, "missing FILE");
  return -1;
}

int open_heap_arg(const char *path, HeapFile *f, Msg *why) {
  struct stat st;
  if (stat(path, &st) != 0) {
    int e = errno;
    why->add("cannot open ").add(path).add(": ").add(strerror(e));
    return -e;
  }
  if (!S_ISREG(st.st_mode)) {
    why->add("cannot open ").add(path).add(": ").add(S_ISDIR(st.st_mode) ? "is a directory"
                                                                         : "not a regular file");
    return S_ISDIR(st.st_mode) ? -EISDIR : -EINVAL;
  }
  char resolved[PATH_MAX];
  if (lstat(path, &st) == 0 && S_ISLNK(st.st_mode) && realpath(path, resolved))
    return heapfile_open(resolved, f, why);
  return heapfile_open(path, f, why);
}

}  // namespace persist::tool

int main(int argc, char **argv) {
  using namespace persist::tool;
  if (argc < 2) {
    print_overview(stderr);
    return kExitUsage;
  }
  const char *name = argv[1];
  if (strcmp(name, "-h") == 0 || strcmp(name, "--help") == 0) name = "help";
  const Command *c = find_command(name);
  if (!c) {
    fprintf(stderr, "persist: no command '%s' (see `persist help`)\n", argv[1]);
    return kExitUsage;
  }
  return c->run(*c, argc - 1, argv + 1);
}
