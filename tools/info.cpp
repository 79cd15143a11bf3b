// info.cpp — `persist info FILE [--json]`: what a heap file holds, from its superblock, one walk of
// the authoritative state (check_image without the reachability mark: O(metadata)) and the root
// table. Read-only; the file is untrusted.
#include <sys/stat.h>

#include "check.h"
#include "heapfile.h"
#include "include/persist.h"
#include "rootlist.h"
#include "tool.h"

namespace persist::tool {
namespace {

struct Info {
  const char *path;
  const HeapFile *f;
  uint64_t disk_bytes;
  bool truncated;  // the file is shorter than the extent the superblock records
  bool consistent;
  std::string problem;  // when !consistent
  HeapReport rep;       // valid only when consistent
  std::vector<RootInfo> roots;
  bool roots_ok;
  std::string roots_problem;
};

const char *state_name(uint32_t s) { return s == kStateClean ? "clean" : "dirty"; }

void print_text(const Info &in) {
  const Superblock &sb = in.f->image.sb;
  const HeapReport &r = in.rep;
  printf("file          %s\n", in.path);
  printf("format        %u.%u\n", sb.major, sb.minor);
  printf("uuid          %s\n", fmt_uuid(sb.uuid).c_str());
  printf("state         %s%s\n", state_name(sb.state),
         sb.state == kStateClean ? "" : " (not closed cleanly: crashed, or open right now)");
  printf("owner         %s\n", in.f->owner_live
                                   ? "live (a process holds the heap; figures are a snapshot)"
                                   : "none");
  printf("base          %s\n", fmt_hex(sb.base).c_str());
  printf("reserve       %s\n", fmt_bytes(sb.reserve).c_str());
  printf("extent        %s\n", fmt_bytes(sb.size).c_str());
  printf("file size     %s\n", fmt_bytes(in.f->file_bytes).c_str());
  printf("disk usage    %s\n", fmt_bytes(in.disk_bytes).c_str());
  printf("opens         %llu\n", static_cast<unsigned long long>(sb.opens));
  printf("relocations   %llu (the last rewrote %llu words)%s\n", static_cast<unsigned long long>(sb.relocations),
         static_cast<unsigned long long>(sb.reloc_words),
         (sb.flags & kSuperFlagRelocating) ? "; one is in progress" : "");
  printf("created       %s\n", fmt_time_ns(sb.created_ns).c_str());
  if (!in.consistent) {
    printf("consistency   INCONSISTENT: %s\n", in.problem.c_str());
    printf("              (block statistics unavailable; run `persist check`)\n");
  } else {
    printf("segments      %llu (normal %llu, huge %llu, free %llu)\n",
           static_cast<unsigned long long>(r.segments),
           static_cast<unsigned long long>(r.normal_segments),
           static_cast<unsigned long long>(r.huge_segments),
           static_cast<unsigned long long>(r.free_segments));
    printf("runs          %llu\n", static_cast<unsigned long long>(r.runs));
    printf("large blocks  %llu\n", static_cast<unsigned long long>(r.large_blocks));
    printf("huge blocks   %llu\n", static_cast<unsigned long long>(r.huge_blocks));
    printf("live          %llu blocks, %s\n", static_cast<unsigned long long>(r.live_blocks),
           fmt_bytes(r.live_bytes).c_str());
    printf("free          %s\n", fmt_bytes(r.free_bytes).c_str());
    printf("metadata      %s\n", fmt_bytes(r.meta_bytes).c_str());
  }
  printf("roots         %zu%s\n", in.roots.size(),
         in.roots_ok ? "" : (" (root table damaged: " + in.roots_problem + ")").c_str());
  if (!in.roots.empty()) {
    printf("  %-32s %-18s %s\n", "TAG", "OFFSET", "SIZE");
    for (const RootInfo &ri : in.roots)
      printf("  %-32s %-18s %llu%s\n", printable(ri.tag).c_str(), fmt_hex(ri.offset).c_str(),
             static_cast<unsigned long long>(ri.size), ri.in_bounds ? "" : "  (outside the file)");
  }
}

void print_json(const Info &in) {
  const Superblock &sb = in.f->image.sb;
  const HeapReport &r = in.rep;
  Json j(stdout);
  j.begin_object();
  j.str("file", in.path);
  j.boolean("readable", true);
  j.num("format_major", sb.major);
  j.num("format_minor", sb.minor);
  j.str("uuid", fmt_uuid(sb.uuid));
  j.str("state", state_name(sb.state));
  j.boolean("owner_live", in.f->owner_live);
  j.str("base", fmt_hex(sb.base));
  j.num("reserve_bytes", sb.reserve);
  j.num("extent_bytes", sb.size);
  j.num("file_bytes", in.f->file_bytes);
  j.num("disk_bytes", in.disk_bytes);
  j.num("opens", sb.opens);
  j.num("relocations", sb.relocations);
  j.num("relocated_words", sb.reloc_words);
  j.num("created_ns", sb.created_ns);
  j.str("created", fmt_time_ns(sb.created_ns));
  j.boolean("consistent", in.consistent);
  if (in.consistent) j.null("problem");
  else j.str("problem", in.problem);
  if (in.consistent) {
    j.num("segments", r.segments);
    j.num("normal_segments", r.normal_segments);
    j.num("huge_segments", r.huge_segments);
    j.num("free_segments", r.free_segments);
    j.num("runs", r.runs);
    j.num("large_blocks", r.large_blocks);
    j.num("huge_blocks", r.huge_blocks);
    j.num("live_blocks", r.live_blocks);
    j.num("live_bytes", r.live_bytes);
    j.num("free_bytes", r.free_bytes);
    j.num("meta_bytes", r.meta_bytes);
  }
  j.num("roots_count", in.roots.size());
  if (in.roots_ok) j.null("roots_problem");
  else j.str("roots_problem", in.roots_problem);
  j.begin_array("roots");
  for (const RootInfo &ri : in.roots) {
    j.begin_object();
    j.str("tag", ri.tag);
    j.num("offset", ri.offset);
    j.num("size", ri.size);
    j.boolean("in_bounds", ri.in_bounds);
    j.end_object();
  }
  j.end_array();
  j.end_object();
}

}  // namespace

int cmd_info(const Command &cmd, int argc, char **argv) {
  FileArgs args;
  int rc = parse_file_args(cmd, argc, argv, &args);
  if (rc >= 0) return rc;

  HeapFile f;
  Msg why;
  rc = open_heap_arg(args.file, &f, &why);
  if (rc < 0) return report_unreadable(args.file, rc, why, args.json);

  Info in{};
  in.path = args.file;
  in.f = &f;
  struct stat st;
  in.disk_bytes = fstat(f.fd, &st) == 0 ? static_cast<uint64_t>(st.st_blocks) * 512 : 0;
  in.truncated = f.image.len < f.image.sb.size;
  if (in.truncated) {
    in.consistent = false;
    in.problem = "file is " + std::to_string(f.image.len) + " bytes, shorter than the heap's " +
                 std::to_string(f.image.sb.size) + "-byte extent (truncated)";
  } else {
    in.consistent = check_image(f.image, &in.rep, 0) == 0 && in.rep.consistent;
    if (!in.consistent)
      in.problem = in.rep.first_problem.empty() ? "inconsistent (no reason given)"
                                                : in.rep.first_problem.str();
  }
  in.roots_ok = read_roots(f.image, &in.roots, &in.roots_problem);

  if (args.json) print_json(in);
  else print_text(in);
  heapfile_close(&f);
  return in.consistent && in.roots_ok ? kExitOk : kExitInconsistent;
}

}  // namespace persist::tool
