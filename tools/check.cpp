// check.cpp — `persist check FILE [--json]`: runs the core's checker (check_image, with the
// reachability mark) over a read-only mapping of the file and reports. The verdict is the core's;
// this file only formats it. Exit 0 consistent, 1 inconsistent, 2 unreadable.
#include "check.h"

#include "heapfile.h"
#include <cstring>

#include "tool.h"

namespace persist::tool {
namespace {

struct Verdict {
  const char *path;
  const HeapFile *f;
  bool consistent;
  uint64_t problems;
  std::string problem;  // the first one, when !consistent
  HeapReport rep;
};

void print_text(const Verdict &v) {
  const HeapReport &r = v.rep;
  bool dirty = v.f->image.sb.state != kStateClean;
  if (v.f->owner_live)
    printf("warning: a live process holds this heap; it may change while it is checked\n");
  if (v.consistent) {
    printf("%s: consistent\n", v.path);
  } else {
    printf("%s: INCONSISTENT: %s\n", v.path, v.problem.c_str());
    printf("  problems:    %llu\n", static_cast<unsigned long long>(v.problems));
  }
  printf("  state:       %s\n", dirty ? "dirty (not closed cleanly; the next open recovers it)"
                                      : "clean");
  if (!v.consistent) return;
  printf("  live:        %llu blocks, %s\n", static_cast<unsigned long long>(r.live_blocks),
         fmt_bytes(r.live_bytes).c_str());
  printf("  roots:       %llu\n", static_cast<unsigned long long>(r.roots));
  if (r.reach_done) {
    printf("  reachable:   %llu blocks, %s\n", static_cast<unsigned long long>(r.reachable_blocks),
           fmt_bytes(r.reachable_bytes).c_str());
    printf("  unreachable: %llu blocks, %s%s\n",
           static_cast<unsigned long long>(r.unreachable_blocks),
           fmt_bytes(r.unreachable_bytes).c_str(),
           r.unreachable_blocks ? " (leaked: not reachable from any root; not an error)" : "");
  }
}

void print_json(const Verdict &v) {
  const HeapReport &r = v.rep;
  Json j(stdout);
  j.begin_object();
  j.str("file", v.path);
  j.boolean("readable", true);
  j.boolean("consistent", v.consistent);
  j.num("problems", v.problems);
  if (v.consistent) j.null("first_problem");
  else j.str("first_problem", v.problem);
  j.str("state", v.f->image.sb.state == kStateClean ? "clean" : "dirty");
  j.boolean("owner_live", v.f->owner_live);
  if (v.consistent) {
    j.num("live_blocks", r.live_blocks);
    j.num("live_bytes", r.live_bytes);
    j.num("free_bytes", r.free_bytes);
    j.num("roots", r.roots);
    j.boolean("reachability", r.reach_done);
    if (r.reach_done) {
      j.num("reachable_blocks", r.reachable_blocks);
      j.num("reachable_bytes", r.reachable_bytes);
      j.num("unreachable_blocks", r.unreachable_blocks);
      j.num("unreachable_bytes", r.unreachable_bytes);
    }
  }
  j.end_object();
}

}  // namespace

CheckVerdict check_verdict(const Image &img, HeapReport *rep, unsigned flags) {
  CheckVerdict cv;
  *rep = HeapReport{};
  if (img.len < img.sb.size) {
    // Not handed to the walker: a file shorter than its extent is inconsistent as it stands.
    cv.exit = kExitInconsistent;
    cv.problems = 1;
    cv.problem = "file is " + std::to_string(img.len) + " bytes, shorter than the heap's " +
                 std::to_string(img.sb.size) + "-byte extent (truncated)";
    return cv;
  }
  int rc = check_image(img, rep, flags);
  if (rc == 0 && rep->consistent) return cv;
  cv.exit = kExitInconsistent;
  cv.problems = rep->problems ? rep->problems : 1;
  cv.problem = rep->first_problem.empty() ? "inconsistent (no reason given)" : rep->first_problem.str();
  return cv;
}

int cmd_check(const Command &cmd, int argc, char **argv) {
  // --repair changes the file (after a backup): handled apart from the read-only check.
  for (int i = 1; i < argc; ++i)
    if (!strcmp(argv[i], "--repair")) {
      bool json = false;
      const char *file = nullptr;
      for (int k = 1; k < argc; ++k)
        if (k != i && !strcmp(argv[k], "--json")) json = true;
        else if (k != i && argv[k][0] != '-' && !file) file = argv[k];
        else if (k != i) return usage_error(cmd, argv[k]);
      if (!file) return usage_error(cmd, "FILE is missing");
      return repair_file(file, json);
    }
  FileArgs args;
  int rc = parse_file_args(cmd, argc, argv, &args);
  if (rc >= 0) return rc;

  HeapFile f;
  Msg why;
  rc = open_heap_arg(args.file, &f, &why);
  if (rc < 0) return report_unreadable(args.file, rc, why, args.json);

  Verdict v{};
  v.path = args.file;
  v.f = &f;
  CheckVerdict cv = check_verdict(f.image, &v.rep, kCheckReachability);
  v.consistent = cv.exit == kExitOk;
  v.problems = cv.problems;
  v.problem = cv.problem;

  if (args.json) print_json(v);
  else print_text(v);
  heapfile_close(&f);
  return v.consistent ? kExitOk : kExitInconsistent;
}

}  // namespace persist::tool
