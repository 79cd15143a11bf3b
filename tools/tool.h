// tool.h — what the subcommands of the `persist` tool share: exit codes, the command signature,
// argument parsing, opening a heap for reading, and the output helpers (output.cpp). Each
// subcommand lives in its own file (info.cpp, check.cpp, roots.cpp, ...) and is listed once, in the
// table in main.cpp. The reading half of each newer subcommand works on an in-memory image and is
// declared in readers.h (the fuzz target calls it without a file).
//
// The tool reads heap files as untrusted input: it goes through heapfile.h (read-only mapping,
// superblock validated), check.h / walk.h and heapview.h (bounds-checked), and never writes the
// file (snapshot writes only its copy).
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "check.h"
#include "heapfile.h"
#include "msg.h"

namespace persist::tool {

// Exit codes, the same for every subcommand (documented in README.md and `persist help`).
enum Exit : int {
  kExitOk = 0,            // done; for check: the heap is consistent
  kExitInconsistent = 1,  // the heap was read and is not consistent
  kExitUnreadable = 2,    // the file cannot be read as a heap (missing, foreign, bad superblock),
                          // or an output file cannot be written
  kExitUsage = 64,        // bad command line
};

struct Command;
using CommandFn = int (*)(const Command &cmd, int argc, char **argv);

struct Command {
  const char *name;
  const char *args;     // e.g. "FILE [--json]"
  const char *summary;  // one line
  const char *help;     // paragraphs shown by `persist help NAME`
  CommandFn run;
};

// Subcommands (one file each).
int cmd_info(const Command &cmd, int argc, char **argv);
int cmd_check(const Command &cmd, int argc, char **argv);
int cmd_roots(const Command &cmd, int argc, char **argv);
int cmd_dump(const Command &cmd, int argc, char **argv);
int cmd_stats(const Command &cmd, int argc, char **argv);
int cmd_blocks(const Command &cmd, int argc, char **argv);
int cmd_strings(const Command &cmd, int argc, char **argv);
int cmd_map(const Command &cmd, int argc, char **argv);
int cmd_snapshot(const Command &cmd, int argc, char **argv);
int cmd_run(const Command &cmd, int argc, char **argv);
int cmd_gc(const Command &cmd, int argc, char **argv);
int cmd_relocate(const Command &cmd, int argc, char **argv);
int cmd_sites(const Command &cmd, int argc, char **argv);
// check --repair (repair.cpp): rebuild what can be rebuilt in a copy of FILE, and only when the
// copy is no worse than FILE, keep FILE's contents in the first free FILE.bak[.N] and put the
// repaired contents in FILE. Reports every fix.
int repair_file(const char *file, bool json);
// `persist check`'s verdict on an image whose superblock is valid: kExitOk (consistent) or
// kExitInconsistent with the number of problems and the first (check.cpp). A file shorter than
// its extent is inconsistent as it stands (not walked). rep gets check_image's report.
struct CheckVerdict {
  int exit = kExitOk;
  uint64_t problems = 0;
  std::string problem;  // the first one, when exit != kExitOk
};
CheckVerdict check_verdict(const Image &img, HeapReport *rep, unsigned flags);

// The whole tool: argv[1] names the subcommand (main.cpp). program.cpp's main() calls it; tests
// call it in a forked child.
int run_tool(int argc, char **argv);

// Prints "usage: persist NAME ARGS" and a hint to stderr; returns kExitUsage.
int usage_error(const Command &cmd, const char *problem);
// Prints the command's full help to `out`.
void print_command_help(const Command &cmd, FILE *out);

// The common command line "FILE [--json]" (also -h/--help). Returns -1 to go on, or the exit
// code to return (help printed, or a usage error reported).
struct FileArgs {
  const char *file = nullptr;
  bool json = false;
};
int parse_file_args(const Command &cmd, int argc, char **argv, FileArgs *out);

// heapfile_open for a path from the command line: refuses non-regular files before opening them
// (a FIFO would block the open) and follows a symbolic link (heapfile_open does not).
int open_heap_arg(const char *path, HeapFile *f, Msg *why);

// A file that heapfile_open refused: prints the reason (and, with json, an object with keys file,
// readable=false, error, code) and returns kExitUnreadable.
int report_unreadable(const char *path, int code, const Msg &why, bool json);

// Opens FILE for a reading subcommand: open_heap_arg, report_unreadable on failure (returns its
// exit code), and a warning on stderr when a live process holds the heap. Returns -1 when open.
int open_for_reading(const Command &cmd, const char *path, bool json, HeapFile *f);

// A number from the command line: decimal, or hex with 0x; with `size_suffix` also K/M/G/T
// (binary). `hex` reads digits as hex even without 0x (addresses). False when malformed.
bool parse_u64_arg(const char *s, uint64_t *out, bool size_suffix, bool hex = false);
// The usage error for getopt_long's result `c` ('?' unknown option, ':' missing argument; the
// option string must start with ':' and opterr be 0). Returns kExitUsage.
int option_error(const Command &cmd, int c, int argc, char **argv);
// Resets getopt_long for a new argument vector (the tool may parse more than once per process).
void reset_getopt();

// ---- output helpers (output.cpp) ---------------------------------------------------------------
std::string fmt_bytes(uint64_t bytes);  // "8388608 (8.0 MiB)"
std::string fmt_hex(uint64_t v);        // "0x200000000000"
std::string fmt_uuid(const uint8_t uuid[16]);
std::string fmt_time_ns(uint64_t ns);   // "2024-05-01T12:00:00.123Z" (UTC), "-" for 0
std::string printable(const std::string &s);  // non-printing bytes as \xNN
std::string hex_string(const uint8_t *p, size_t n, bool spaced);  // "48 65" or "4865"
std::string dotted_text(const uint8_t *p, size_t n);  // printable ASCII, '.' for the rest
std::string fmt_pct(uint64_t part, uint64_t whole);   // "58.6%", "-" when whole is 0

// A minimal JSON writer: keys in insertion order, strings escaped, two-space indentation.
class Json {
 public:
  explicit Json(FILE *out) : out_(out) {}
  ~Json();  // writes the document (indented) and a newline
  void begin_object(const char *key = nullptr);
  void end_object();
  void begin_array(const char *key);
  void end_array();
  void str(const char *key, const std::string &v);
  void num(const char *key, uint64_t v);
  void snum(const char *key, int64_t v);
  void real(const char *key, double v);  // rounded to two decimals (null when not finite)
  void raw(const char *key, const std::string &json);  // a value already in JSON form
  void boolean(const char *key, bool v);
  void null(const char *key);

 private:
  struct Frame {
    std::string key;
    nlohmann::ordered_json value;
  };
  void add(const char *key, nlohmann::ordered_json v);
  void close();
  FILE *out_;
  nlohmann::ordered_json doc_;
  std::vector<Frame> open_;  // containers begun and not yet ended, innermost last
};

}  // namespace persist::tool
