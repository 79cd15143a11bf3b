// tool.h — what the subcommands of the `persist` tool share: exit codes, the command signature,
// argument parsing for "FILE [--json]", and the output helpers (output.cpp). Each subcommand lives
// in its own file (info.cpp, check.cpp, ...) and is listed once, in the table in main.cpp.
//
// The tool reads heap files as untrusted input: it goes through heapfile.h (read-only mapping,
// superblock validated) and check.h / walk.h (bounds-checked), and never writes the file.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "heapfile.h"
#include "msg.h"

namespace persist::tool {

// Exit codes, the same for every subcommand (documented in README.md and `persist help`).
enum Exit : int {
  kExitOk = 0,            // done; for check: the heap is consistent
  kExitInconsistent = 1,  // the heap was read and is not consistent
  kExitUnreadable = 2,    // the file cannot be read as a heap (missing, foreign, bad superblock)
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

// ---- output helpers (output.cpp) ---------------------------------------------------------------
std::string fmt_bytes(uint64_t bytes);  // "8388608 (8.0 MiB)"
std::string fmt_hex(uint64_t v);        // "0x200000000000"
std::string fmt_uuid(const uint8_t uuid[16]);
std::string fmt_time_ns(uint64_t ns);   // "2024-05-01T12:00:00.123Z" (UTC), "-" for 0
std::string printable(const std::string &s);  // non-printing bytes as \xNN

// A minimal JSON writer: keys in insertion order, strings escaped, two-space indentation.
class Json {
 public:
  explicit Json(FILE *out) : out_(out) {}
  ~Json();
  void begin_object(const char *key = nullptr);
  void end_object();
  void begin_array(const char *key);
  void end_array();
  void str(const char *key, const std::string &v);
  void num(const char *key, uint64_t v);
  void snum(const char *key, int64_t v);
  void boolean(const char *key, bool v);
  void null(const char *key);

 private:
  void item(const char *key);
  void close();
  FILE *out_;
  std::vector<bool> first_;   // per open container: nothing written in it yet
  std::vector<char> closer_;  // per open container: '}' or ']'
};

}  // namespace persist::tool
