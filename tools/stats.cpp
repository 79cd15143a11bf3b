// stats.cpp — `persist stats FILE [--json]`: where the heap's memory goes, from the span model
// (heapview.h): by size class, large and huge blocks, free memory and its fragmentation, the file
// against its disk usage, and the leftovers (live blocks no root reaches, from check_image's mark).
#include "check.h"
#include "heapview.h"
#include "progress.h"
#include "readers.h"
#include "tool.h"

namespace persist::tool {
namespace {

struct ClassRow {
  uint64_t runs = 0, live = 0, run_bytes = 0;
};

struct Stats {
  ClassRow cls[kNumClasses];
  uint64_t runs = 0, small_blocks = 0, small_bytes = 0;
  uint64_t large_blocks = 0, large_bytes = 0, huge_blocks = 0, huge_bytes = 0;
  uint64_t run_free_bytes = 0;  // free slots and tails inside runs
  uint64_t free_page_bytes = 0, free_page_spans = 0, largest_free_span = 0;
  uint64_t free_segment_bytes = 0, huge_slack_bytes = 0;
  uint64_t meta_bytes = 0, damaged_bytes = 0, missing_bytes = 0;
  bool reach = false;
  HeapReport rep;  // valid when reach
};

Stats collect(const HeapView &v) {
  Stats s;
  for (const Span &sp : v.spans()) {
    switch (sp.area) {
      case Area::kRun: {
        const ClassInfo &ci = kClasses.info[sp.cls];
        ClassRow &r = s.cls[sp.cls];
        ++r.runs, r.live += sp.used, r.run_bytes += sp.bytes;
        ++s.runs, s.small_blocks += sp.used;
        s.small_bytes += uint64_t{sp.used} * ci.size;
        s.run_free_bytes += sp.bytes - uint64_t{sp.used} * ci.size;
        break;
      }
      case Area::kLarge: ++s.large_blocks, s.large_bytes += sp.bytes; break;
      case Area::kHuge: ++s.huge_blocks, s.huge_bytes += sp.bytes; break;
      case Area::kFree:
        if (sp.free == FreeKind::kSegments) {
          s.free_segment_bytes += sp.bytes;
        } else if (sp.free == FreeKind::kHugeSlack) {
          s.huge_slack_bytes += sp.bytes;
        } else {
          s.free_page_bytes += sp.bytes, ++s.free_page_spans;
          if (sp.bytes > s.largest_free_span) s.largest_free_span = sp.bytes;
        }
        break;
      case Area::kMeta: s.meta_bytes += sp.bytes; break;
      case Area::kDamaged: s.damaged_bytes += sp.bytes; break;
      case Area::kMissing: s.missing_bytes += sp.bytes; break;
    }
  }
  return s;
}

uint64_t free_total(const Stats &s) {
  return s.run_free_bytes + s.free_page_bytes + s.free_segment_bytes;
}

void print_text(const Source &src, const HeapView &v, const Stats &s, FILE *out) {
  const uint64_t live = v.live_bytes();
  auto u = [](uint64_t x) { return static_cast<unsigned long long>(x); };
  fprintf(out, "file           %s (state %s, owner %s)\n", src.path,
          src.img.sb.state == kStateClean ? "clean" : "dirty", src.owner_live ? "live" : "none");
  fprintf(out, "extent         %s\n", fmt_bytes(src.img.sb.size).c_str());
  fprintf(out, "file size      %s\n", fmt_bytes(src.file_bytes).c_str());
  fprintf(out, "disk usage     %s\n", fmt_bytes(src.disk_bytes).c_str());
  fprintf(out, "live           %llu blocks, %s (%s of the extent, %s of the disk usage)\n",
          u(v.live_blocks()), fmt_bytes(live).c_str(), fmt_pct(live, src.img.sb.size).c_str(),
          fmt_pct(live, src.disk_bytes).c_str());
  fprintf(out, "metadata       %s\n", fmt_bytes(s.meta_bytes).c_str());
  if (s.runs) {
    fprintf(out, "small blocks   %llu in %llu runs, %s\n", u(s.small_blocks), u(s.runs),
            fmt_bytes(s.small_bytes).c_str());
    fprintf(out, "  %5s %6s %6s %9s %12s %9s %7s\n", "CLASS", "SIZE", "RUNS", "LIVE", "LIVE BYTES",
            "CAPACITY", "FILL");
    for (unsigned c = 0; c < kNumClasses; ++c) {
      const ClassRow &r = s.cls[c];
      if (!r.runs) continue;
      const ClassInfo &ci = kClasses.info[c];
      uint64_t cap = r.runs * ci.capacity;
      fprintf(out, "  %5u %6u %6llu %9llu %12llu %9llu %7s\n", c, ci.size, u(r.runs), u(r.live),
              u(r.live * ci.size), u(cap), fmt_pct(r.live, cap).c_str());
    }
  } else {
    fprintf(out, "small blocks   none\n");
  }
  fprintf(out, "large blocks   %llu, %s\n", u(s.large_blocks), fmt_bytes(s.large_bytes).c_str());
  fprintf(out, "huge blocks    %llu, %s\n", u(s.huge_blocks), fmt_bytes(s.huge_bytes).c_str());
  fprintf(out, "free           %s in all\n", fmt_bytes(free_total(s)).c_str());
  fprintf(out, "  in runs      %s (free slots: usable only by their size class)\n",
          fmt_bytes(s.run_free_bytes).c_str());
  fprintf(out, "  free pages   %s in %llu spans, the largest %s\n",
          fmt_bytes(s.free_page_bytes).c_str(), u(s.free_page_spans),
          fmt_bytes(s.largest_free_span).c_str());
  fprintf(out, "  free segments %s\n", fmt_bytes(s.free_segment_bytes).c_str());
  if (s.huge_slack_bytes)
    fprintf(out, "  huge slack   %s (after huge blocks, to their segments' end)\n",
            fmt_bytes(s.huge_slack_bytes).c_str());
  fprintf(out, "fragmentation  %s of free memory is inside runs; external %s (1 - largest free "
               "span / free pages)\n",
          fmt_pct(s.run_free_bytes, free_total(s)).c_str(),
          s.free_page_bytes ? fmt_pct(s.free_page_bytes - s.largest_free_span, s.free_page_bytes).c_str()
                            : "-");
  if (s.damaged_bytes || s.missing_bytes)
    fprintf(out, "unreadable     %s damaged, %s missing (past the end of the file)\n",
            fmt_bytes(s.damaged_bytes).c_str(), fmt_bytes(s.missing_bytes).c_str());
  if (s.reach) {
    fprintf(out, "reachable      %llu blocks, %s\n", u(s.rep.reachable_blocks),
            fmt_bytes(s.rep.reachable_bytes).c_str());
    fprintf(out, "leftovers      %llu blocks, %s not reachable from any root%s\n",
            u(s.rep.unreachable_blocks), fmt_bytes(s.rep.unreachable_bytes).c_str(),
            s.rep.unreachable_blocks ? " (leaked, or held by a program without roots)" : "");
  } else {
    fprintf(out, "leftovers      unknown (the heap is damaged: no reachability)\n");
  }
}

void print_json(const Source &src, const HeapView &v, const Problems &p, const Stats &s,
                FILE *out) {
  Json j(out);
  j.begin_object();
  json_common(j, src, p);
  j.num("file_bytes", src.file_bytes);
  j.num("disk_bytes", src.disk_bytes);
  j.num("live_blocks", v.live_blocks());
  j.num("live_bytes", v.live_bytes());
  j.num("metadata_bytes", s.meta_bytes);
  j.num("runs", s.runs);
  j.num("small_blocks", s.small_blocks);
  j.num("small_bytes", s.small_bytes);
  j.begin_array("classes");
  for (unsigned c = 0; c < kNumClasses; ++c) {
    const ClassRow &r = s.cls[c];
    if (!r.runs) continue;
    const ClassInfo &ci = kClasses.info[c];
    uint64_t cap = r.runs * ci.capacity;
    j.begin_object();
    j.num("class", c);
    j.num("block_size", ci.size);
    j.num("runs", r.runs);
    j.num("live_blocks", r.live);
    j.num("live_bytes", r.live * ci.size);
    j.num("capacity_blocks", cap);
    j.num("capacity_bytes", cap * ci.size);
    j.num("run_bytes", r.run_bytes);
    j.real("fill_pct", 100.0 * static_cast<double>(r.live) / static_cast<double>(cap));
    j.end_object();
  }
  j.end_array();
  j.num("large_blocks", s.large_blocks);
  j.num("large_bytes", s.large_bytes);
  j.num("huge_blocks", s.huge_blocks);
  j.num("huge_bytes", s.huge_bytes);
  j.num("free_bytes", free_total(s));
  j.num("run_free_bytes", s.run_free_bytes);
  j.num("free_page_bytes", s.free_page_bytes);
  j.num("free_page_spans", s.free_page_spans);
  j.num("largest_free_span_bytes", s.largest_free_span);
  j.num("free_segment_bytes", s.free_segment_bytes);
  j.num("huge_slack_bytes", s.huge_slack_bytes);
  uint64_t ft = free_total(s);
  if (ft) j.real("free_in_runs_pct", 100.0 * static_cast<double>(s.run_free_bytes) / static_cast<double>(ft));
  else j.null("free_in_runs_pct");
  if (s.free_page_bytes)
    j.real("external_fragmentation_pct",
           100.0 * static_cast<double>(s.free_page_bytes - s.largest_free_span) /
               static_cast<double>(s.free_page_bytes));
  else j.null("external_fragmentation_pct");
  j.num("damaged_bytes", s.damaged_bytes);
  j.num("missing_bytes", s.missing_bytes);
  j.boolean("reachability", s.reach);
  if (s.reach) {
    j.num("reachable_blocks", s.rep.reachable_blocks);
    j.num("reachable_bytes", s.rep.reachable_bytes);
    j.num("unreachable_blocks", s.rep.unreachable_blocks);
    j.num("unreachable_bytes", s.rep.unreachable_bytes);
  } else {
    j.null("reachable_blocks");
    j.null("reachable_bytes");
    j.null("unreachable_blocks");
    j.null("unreachable_bytes");
  }
  j.end_object();
}

}  // namespace

int stats_report(const Source &src, const StatsOptions &o, FILE *out) {
  HeapView v(src.img);
  Problems p;
  p.add(v);
  Stats s = collect(v);
  if (v.complete()) {
    // The checker's verdict and mark: root problems show here, and the leftovers are its count.
    Busy busy(o.reachability ? "persist: checking reachability" : "persist: checking");
    int rc = check_image(src.img, &s.rep, o.reachability ? unsigned{kCheckReachability} : 0u);
    if (rc != 0 || !s.rep.consistent)
      p.add(s.rep.first_problem.empty() ? "inconsistent (check_image)" : s.rep.first_problem.str());
    s.reach = s.rep.reach_done;
  }
  if (o.json) print_json(src, v, p, s, out);
  else print_text(src, v, s, out);
  warn_problems("stats", p);
  return p.none() ? kExitOk : kExitInconsistent;
}

int cmd_stats(const Command &cmd, int argc, char **argv) {
  FileArgs args;
  if (int rc = parse_file_args(cmd, argc, argv, &args); rc >= 0) return rc;
  StatsOptions o;
  o.json = args.json;
  return report_on_file(cmd, args.file, args.json, [&](const Source &s) { return stats_report(s, o, stdout); });
}

}  // namespace persist::tool
