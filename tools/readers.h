// readers.h — the reading half of the subcommands roots, dump, stats, blocks, strings, map and
// sites: each takes a heap image already in memory (a Source) and its options, writes its report
// to `out`, messages to stderr, and returns the subcommand's exit status. The cmd_* functions parse
// the command line, open the file (heapfile.h) and call these; the fuzz target calls them on
// images it builds in memory, so everything that reads heap bytes is covered.
#pragma once

#include <cstdint>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "walk.h"

namespace persist {
struct HeapFile;
}

namespace persist::tool {

class Json;
class HeapView;
struct Command;

struct Source {
  const char *path = "";    // the "file" key and messages
  Image img;                // validated superblock; bytes untrusted
  uint64_t file_bytes = 0;  // size of the file
  uint64_t disk_bytes = 0;  // disk space it uses
  bool owner_live = false;  // a process holds the heap
};
Source source_of(const char *path, const HeapFile &f);

// The one FILE operand of a reading subcommand (argv[optind] after its options), or nullptr
// after printing the usage error ("missing FILE", "more than one FILE").
const char *file_operand(const Command &cmd, int argc, char **argv);
// The tail of every reading subcommand: open path (open_for_reading), report on its Source,
// close. Returns report's exit status, or the one open_for_reading gave.
int report_on_file(const Command &cmd, const char *path, bool json,
                   const std::function<int(const Source &)> &report);

// What is wrong with a heap, as far as a reading subcommand saw (the first few, and how many).
struct Problems {
  std::vector<std::string> list;
  uint64_t count = 0;
  void add(const std::string &what);
  void add(const HeapView &v);  // the view's problems
  bool none() const { return count == 0; }
};
// The keys every reading report starts with: file, readable (true), owner_live, state, base,
// extent_bytes, consistent, problems (a count, as in check), first_problem, problem_list.
void json_common(Json &j, const Source &src, const Problems &p);
// The problems on stderr, one line each, after "persist CMD: ": the report on stdout is partial.
void warn_problems(const char *cmd, const Problems &p);

struct RootsOptions {
  bool json = false;
};
int roots_report(const Source &src, const RootsOptions &o, FILE *out);

struct DumpOptions {
  enum By { kRoot, kOffset, kAddr } by = kOffset;
  std::string root;    // kRoot
  uint64_t where = 0;  // kOffset: heap offset; kAddr: address
  bool has_length = false;
  uint64_t length = 0;
  bool raw = false, json = false;
};
int dump_report(const Source &src, const DumpOptions &o, FILE *out);

struct StatsOptions {
  bool json = false;
  bool reachability = true;  // run the checker's mark for the leftovers
};
int stats_report(const Source &src, const StatsOptions &o, FILE *out);

struct BlocksOptions {
  bool json = false;
  uint64_t min_size = 0, max_size = UINT64_MAX;
  std::string needle;  // --contains / --contains-hex (bytes); empty: no content filter
  uint64_t limit = UINT64_MAX;
};
int blocks_report(const Source &src, const BlocksOptions &o, FILE *out);

struct StringsOptions {
  bool json = false;
  unsigned min_len = 4;
  bool all = false;  // also free memory
};
int strings_report(const Source &src, const StringsOptions &o, FILE *out);

struct MapOptions {
  bool json = false;
  const char *output = "";       // the name shown for the SVG ("-": stdout)
  uint64_t pages_per_cell = 0;   // 0: chosen from the heap's size
};
// Writes the SVG to `svg` and, with json, the summary to `out`.
int map_report(const Source &src, const MapOptions &o, FILE *svg, FILE *out);

struct SitesOptions {
  bool json = false;
  bool leaks = false;      // only sampled blocks no root reaches
  unsigned depth = 4;      // text: frames shown per site (JSON: all)
  uint64_t top = 0;        // list the N sites with the most bytes (0: all)
  std::vector<std::string> binaries;  // --binary: files to symbolise from, matched by build-id
  bool symbolize = true;   // read the modules' symbols (false: frames as module+offset)
};
int sites_report(const Source &src, const SitesOptions &o, FILE *out);

}  // namespace persist::tool
