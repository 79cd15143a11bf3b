// main.cpp — the `persist` command-line tool: the one table of subcommands, `persist help [CMD]`,
// argument parsing shared by the subcommands, usage errors and exit codes. Each subcommand is one
// file (info.cpp, check.cpp, roots.cpp, ...); adding one is an entry in kCommands and a cmd_*
// function declared in tool.h. The process entry point is program.cpp (run_tool below), so that
// tests can link everything else.
#include <getopt.h>
#include <sys/stat.h>

#include <cctype>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>

#include "readers.h"
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
    {"check", "FILE [--json] [--repair]", "verify the whole authoritative state of a heap file",
     "Walks every segment, span, bitmap and root of the heap and checks them against each other\n"
     "(valid structures, no overlapping blocks, every root at the start of a live block), then\n"
     "marks conservatively from the roots. Prints \"consistent\", or the first problem and the\n"
     "number of problems. A heap left dirty by a crash is consistent when the next open would\n"
     "recover it: check says it is dirty and reports unreachable (leaked) blocks without failing\n"
     "for them. Never modifies the file, except with --repair: then it rebuilds what can be\n"
     "rebuilt (a damaged superblock copy, missing segments, damaged segment headers and spans,\n"
     "bits past a run's capacity, damaged root tables and roots) in a copy and reports every fix\n"
     "and what was lost. The repair is applied only when the copy is no worse than FILE (as\n"
     "readable, and consistent if FILE was) and fixed something; FILE's contents are first kept\n"
     "in the first free name of FILE.bak, FILE.bak.1, ... (never replaced). Otherwise FILE is left\n"
     "as it was. A heap a live process holds, or other users may write, is refused.\n"
     "Exit status: 0 consistent (after --repair: consistent now), 1 inconsistent, 2 the file cannot\n"
     "be read as a heap (or, with --repair, written).",
     cmd_check},
    {"roots", "FILE [--json]", "list the roots: tag, offset, address, size, block",
     "Lists the published entries of the root table in table order: the tag, the offset of the\n"
     "block from the heap base, its address at the recorded base (where the program saw it),\n"
     "the size recorded in the entry, the type of a typed root, and what the offset points at\n"
     "(\"live\" when it is the start of a live block). Never modifies the file.\n"
     "Exit status: 0 every root is readable and points at a live block, 1 the root table or the\n"
     "heap is damaged (what can be read is listed), 2 the file cannot be read as a heap.",
     cmd_roots},
    {"dump", "FILE (--root TAG | --offset OFF | --addr ADDR) [--raw] [--length N] [--json]",
     "hex dump (or raw bytes) of one live block",
     "Finds a live block by root tag, by heap offset (decimal or 0x-hex) or by an address in\n"
     "the heap's recorded address space (hex, 0x optional: an old pointer value from a log or a\n"
     "core file), and writes it to stdout as a hex dump in the format of xxd (left column: heap\n"
     "offset), or with --raw as raw bytes. An offset or address inside a block selects the\n"
     "whole block. --length N dumps N bytes starting at the given offset or address instead\n"
     "(never past the end of the block). A line on stderr says which block was found.\n"
     "Refuses anything that is not inside a live block (free slot, free pages, metadata,\n"
     "outside the heap) and says what it is. Never modifies the file.\n"
     "Exit status: 0 dumped, 1 not a live block / no such root / the heap is damaged, 2 the\n"
     "file cannot be read as a heap.",
     cmd_dump},
    {"stats", "FILE [--json]", "usage by size class, fragmentation, file vs live bytes, leftovers",
     "For each size class in use: runs, live blocks, live bytes, capacity and fill. Large and\n"
     "huge blocks. Free memory split into free slots inside runs (usable only by their class),\n"
     "free pages and free segments, the largest free page span and the external fragmentation\n"
     "(1 - largest free span / free page bytes). The file size against the disk space it uses,\n"
     "the extent, metadata and live bytes. Leftovers: blocks and bytes not reachable from any\n"
     "root (the checker's conservative mark), typically what a program leaked or what an\n"
     "unaware program held when it was killed. Never modifies the file.\n"
     "Exit status: 0 described, 1 the heap is damaged (partial figures), 2 the file cannot be\n"
     "read as a heap.",
     cmd_stats},
    {"blocks", "FILE [--min-size N] [--max-size N] [--contains STR | --contains-hex HEX] "
               "[--limit N] [--json]",
     "list live blocks, filtered by size and content",
     "Lists the live blocks in offset order: offset, address at the recorded base, usable\n"
     "size, kind (small blocks with their size class, large, huge), whether the block is\n"
     "reachable from a root (conservatively, as `persist check` marks), and its first 16 bytes\n"
     "in hex and as text. --min-size/--max-size keep blocks whose usable size is in range\n"
     "(K/M/G suffixes accepted); --contains keeps blocks holding the string, --contains-hex\n"
     "blocks holding the bytes (e.g. deadbeef); --limit stops after N blocks.\n"
     "Exit status: 0 listed (also when nothing matched), 1 the heap is damaged (the readable\n"
     "part is listed), 2 the file cannot be read as a heap.",
     cmd_blocks},
    {"strings", "FILE [-n MIN] [--all] [--json]", "printable text held in live blocks, with offsets",
     "Like strings(1) -t x, but over the heap's live blocks only: each run of at least MIN\n"
     "(default 4) printable ASCII characters (and tabs) inside one live block, with its heap\n"
     "offset in hex. This is how the text a killed program held is recovered. --all also\n"
     "scans free memory (free slots, free pages and segments) and damaged segments, marking\n"
     "each string \"live\", \"free\" or \"damaged\". Metadata is never scanned. Never modifies\n"
     "the file.\n"
     "Exit status: 0 scanned, 1 the heap is damaged (the readable part is scanned), 2 the file\n"
     "cannot be read as a heap.",
     cmd_strings},
    {"map", "FILE -o OUT.svg [--pages-per-cell N] [--json]", "draw the heap's occupancy as an SVG",
     "Writes an SVG picture of the heap: one cell per page (or per N pages for big heaps,\n"
     "chosen so that the picture stays below about 32768 cells; --pages-per-cell, a power of\n"
     "two, overrides), one band of rows per segment, colored by what the pages hold: metadata,\n"
     "runs of small blocks (darker when fuller), large blocks, huge blocks, free pages, and\n"
     "damaged or missing parts of a damaged file; with a legend. OUT is a new file (mode 0600)\n"
     "that replaces an existing OUT by name (a symlink is not followed); -o - writes to stdout.\n"
     "Exit status: 0 drawn, 1 the heap is damaged (drawn as far as readable), 2 the file cannot\n"
     "be read as a heap or OUT cannot be written.",
     cmd_map},
    {"sites", "FILE [--leaks] [--depth N] [--top N] [--binary FILE]... [--json]",
     "live memory by allocation site, from the samples PERSIST_SITES recorded",
     "Estimates, from the sampled allocations a program recorded with PERSIST_SITES, how many\n"
     "live bytes and blocks each call site holds: a sample of s bytes taken at mean interval R\n"
     "stands for 1/p blocks and s/p bytes, p = 1 - exp(-s/R). Sites are listed by estimated\n"
     "bytes, largest first, with their share of the estimated total, the standard error of the\n"
     "estimate, the estimated blocks and the samples behind it, and their call stack: the\n"
     "allocating function first, then its callers (--depth N frames, default 4; JSON gives all\n"
     "frames with module path, build-id and offset). Frames are named from the symbols of the\n"
     "recorded module files (.symtab, else .dynsym, else a debug file in /usr/lib/debug/.build-id)\n"
     "only when the file still has the recorded build-id; otherwise as module+0xOFFSET, with a\n"
     "note. --binary FILE (repeatable) names a copy of a module to use when its build-id matches.\n"
     "--leaks keeps the sampled blocks that no root reaches (as `persist check` marks), the ones\n"
     "the next open's collection would free. --top N lists the N largest sites. A heap that\n"
     "never ran with PERSIST_SITES has no site table: that is said, and nothing listed.\n"
     "Exit status: 0 listed (also when there is nothing to list), 1 the heap, its site table or\n"
     "some sample records are damaged (what is readable is listed), 2 the file cannot be read as\n"
     "a heap.",
     cmd_sites},
    {"snapshot", "FILE DEST [--json]", "consistent copy of a heap, also of one in use",
     "Copies the heap to DEST (which must not exist): with a reflink (FICLONE) where the file\n"
     "system supports it, else a sparse copy. Page 0 (the superblock) is read before anything\n"
     "else and written last, so the copy never records an extent or root table newer than its\n"
     "contents. The heap may be in use by a running program: that is reported, and the copy of\n"
     "a live heap is dirty, like a heap after a crash, which the format recovers from. The copy\n"
     "is verified with the checker (retried a few times while the owner runs) before it is\n"
     "linked as DEST (a new file, mode 0600, never over anything). Never modifies FILE.\n"
     "Exit status: 0 copied and consistent, 1 copied but inconsistent (the source is), 2 FILE\n"
     "cannot be read as a heap or DEST cannot be written.",
     cmd_snapshot},
    {"run", "[--file F] [--lib PATH] [--verbose] -- CMD [ARGS...]",
     "run a program on a persistent heap (sets LD_PRELOAD and PERSIST_FILE)",
     "Runs CMD with LD_PRELOAD set to the libpersist.so next to this persist binary (or the one\n"
     "given with --lib, a file or a directory) and PERSIST_FILE set to F (default ./%e.heap: the\n"
     "program's name; %p expands to the pid, which exec keeps). Prints \"persist: heap PATH\"\n"
     "to stderr, warns when another process holds that heap, then replaces itself with CMD.\n"
     "--verbose also sets PERSIST_VERBOSE=1 (the shim prints its configuration).\n"
     "Exit status: CMD's; 2 libpersist.so not found, 126/127 CMD cannot be run, 64 usage.",
     cmd_run},
    {"gc", "FILE [--dry-run] [--json]", "reclaim offline what no root reaches",
     "Does what the shim does at open (PERSIST_GC=open): marks conservatively from the roots\n"
     "(pointers, tagged offsets and persist::ptr links; interior pointers count) and frees every\n"
     "block nothing reaches; a heap with no roots is emptied; the file shrinks past the last live\n"
     "segment. --dry-run only counts. Takes the heap's lock: a heap a live process holds is\n"
     "refused. JSON keys: file, dry_run, roots, kept_blocks, kept_bytes, freed_blocks,\n"
     "freed_bytes, old_extent, new_extent, ns.\n"
     "Exit status: 0 done; 1 the collection failed (a damaged root table); 2 unreadable or busy.",
     cmd_gc},
    {"relocate", "FILE --to ADDR [--json]", "move a heap to another base address offline",
     "Maps the heap at ADDR (page aligned; the range must be free and must not overlap the old\n"
     "one) and rewrites every pointer-sized word of every live block that points into the old\n"
     "range, as an open with PERSIST_RELOCATE=rewrite does. A crash in the middle is finished by\n"
     "the next open. JSON keys: file, from, to, words.\n"
     "Exit status: 0 done; 2 unreadable, busy, or the address cannot be used.",
     cmd_relocate},
    {"help", "[COMMAND]", "list the commands, or explain one", nullptr, cmd_help},
};

void print_overview(FILE *out) {
  fputs("usage: persist COMMAND [ARGS]\n\n"
        "Inspect libpersist heap files, and run programs on them. Heap files are read as\n"
        "untrusted input and never modified, except by gc, relocate and check --repair.\n\ncommands:\n",
        out);
  for (const Command &c : kCommands) fprintf(out, "  %-9s %s\n", c.name, c.summary);
  fputs("\nexit status: 0 success (check: consistent), 1 heap inconsistent or damaged, or the\n"
        "thing asked for not found, 2 file unreadable as a heap (or output not writable), 64 usage\n"
        "error; `run` exits with the program's status.\n"
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

Source source_of(const char *path, const HeapFile &f) {
  Source s;
  s.path = path;
  s.img = f.image;
  s.file_bytes = f.file_bytes;
  struct stat st;
  s.disk_bytes = fstat(f.fd, &st) == 0 ? static_cast<uint64_t>(st.st_blocks) * 512 : 0;
  s.owner_live = f.owner_live;
  return s;
}

int open_for_reading(const Command &cmd, const char *path, bool json, HeapFile *f) {
  Msg why;
  int rc = open_heap_arg(path, f, &why);
  if (rc < 0) return report_unreadable(path, rc, why, json);
  if (f->owner_live)
    fprintf(stderr,
            "persist %s: warning: a live process holds %s; reading a heap that may change\n",
            cmd.name, path);
  return -1;
}

const char *file_operand(const Command &cmd, int argc, char **argv) {
  if (optind >= argc) return usage_error(cmd, "missing FILE"), nullptr;
  if (argc - optind > 1) return usage_error(cmd, "more than one FILE"), nullptr;
  return argv[optind];
}

int report_on_file(const Command &cmd, const char *path, bool json,
                   const std::function<int(const Source &)> &report) {
  HeapFile f;
  int rc = open_for_reading(cmd, path, json, &f);
  if (rc >= 0) return rc;
  rc = report(source_of(path, f));
  heapfile_close(&f);
  return rc;
}

bool parse_u64_arg(const char *s, uint64_t *out, bool size_suffix, bool hex) {
  if (!s || !*s || *s == '-' || *s == '+' || isspace(static_cast<unsigned char>(*s))) return false;
  int base = 10;
  if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
    base = 16, s += 2;
    if (!isxdigit(static_cast<unsigned char>(*s))) return false;
  } else if (hex) {
    base = 16;
  }
  errno = 0;
  char *end = nullptr;
  unsigned long long v = strtoull(s, &end, base);
  if (errno || end == s) return false;
  if (*end && size_suffix) {
    unsigned shift = 0;
    switch (*end) {
      case 'k': case 'K': shift = 10; break;
      case 'm': case 'M': shift = 20; break;
      case 'g': case 'G': shift = 30; break;
      case 't': case 'T': shift = 40; break;
      default: return false;
    }
    ++end;
    if (*end == 'i' && end[1] == 'B') end += 2;
    else if (*end == 'B') ++end;
    if (v > (~0ull >> shift)) return false;
    v <<= shift;
  }
  if (*end) return false;
  *out = v;
  return true;
}

void reset_getopt() {
  optind = 0;  // glibc: 0 re-initialises completely (also the permutation state)
  opterr = 0;
}

int option_error(const Command &cmd, int c, int argc, char **argv) {
  std::string what;
  const char *arg = optind - 1 < argc && optind >= 1 ? argv[optind - 1] : "";
  if (c == ':') {  // argv[optind - 1] is the option as typed (-o or --root)
    what = std::string("option ") + arg + " needs an argument";
  } else if (optopt) {
    what = std::string("unknown option -") + static_cast<char>(optopt);
  } else {
    what = std::string("unknown option ") + arg;
  }
  return usage_error(cmd, what.c_str());
}

int run_tool(int argc, char **argv) {
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
  reset_getopt();
  return c->run(*c, argc - 1, argv + 1);
}

}  // namespace persist::tool
