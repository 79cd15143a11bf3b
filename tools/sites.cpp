// sites.cpp — `persist sites FILE [--leaks] [--depth N] [--top N] [--binary FILE]... [--json]`:
// where the live memory of a heap was allocated, by call site, estimated from the sampled
// allocations PERSIST_SITES recorded (core/sitesread.h reads and validates the samples and the
// site table; symbols.h names the frames).
//
// A sample of `size` bytes taken at mean interval R stands for 1/p blocks and size/p bytes,
// p = 1 - exp(-size/R); the standard error shown is the square root of the Horvitz-Thompson
// variance estimate sum((1 - p) (size/p)^2). --leaks keeps only the sampled blocks that no root
// reaches (core/reach.h, the checker's conservative mark).
#include <getopt.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <map>
#include <memory>

#include "heapview.h"
#include "progress.h"
#include "reach.h"      // core: conservative reachability
#include "readers.h"
#include "sitesread.h"  // core: samples and the site table
#include "symbols.h"
#include "tool.h"

namespace persist::tool {
namespace {

// "512 B", "4.0 KiB", "12.3 MiB" (a table column; exact figures are in --json).
std::string short_bytes(double v) {
  static const char *const kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  int u = 0;
  while (v >= 1024 && u < 6) v /= 1024, ++u;
  char buf[32];
  if (u == 0) snprintf(buf, sizeof buf, "%.0f B", v);
  else snprintf(buf, sizeof buf, "%.1f %s", v, kUnits[u]);
  return buf;
}

std::string pct(double part, double whole) {
  if (!(whole > 0)) return "-";
  char buf[32];
  snprintf(buf, sizeof buf, "%.1f%%", 100 * part / whole);
  return buf;
}

uint64_t rounded(double v) { return v > 0 && v < 1.8e19 ? static_cast<uint64_t>(std::llround(v)) : 0; }

struct Row {
  uint32_t site;
  const SiteSum *sum;
};

// One frame of a site, named.
struct FrameOut {
  int module = -1;     // index in the table's modules, -1: none
  uint64_t offset = 0;
  FrameName name;
};

// The site table's modules, read once (the table is read-only here but a live owner may add).
class Modules {
 public:
  Modules(const Image &img, uint64_t table) {
    for (uint32_t i = 0; i < kSiteModules; ++i) ok_[i] = table && site_module(img, table, i, &m_[i]);
  }
  bool ok(uint32_t i) const { return i < kSiteModules && ok_[i]; }
  const SiteModule &at(uint32_t i) const { return m_[i]; }

 private:
  SiteModule m_[kSiteModules];
  bool ok_[kSiteModules];
};

FrameOut frame(const SiteEntry &e, unsigned k, const Modules &mods, Symbolizer &sym, bool symbolize,
               std::map<uint32_t, bool> *used) {
  FrameOut f;
  f.offset = e.offset[k];
  char buf[64];
  if (e.module[k] == 0) {  // in no module known when it was recorded: the address's low 32 bits
    snprintf(buf, sizeof buf, "0x%llx (no module)", static_cast<unsigned long long>(f.offset));
    f.name.text = buf;
    return f;
  }
  const uint32_t mi = e.module[k] - 1u;
  if (!mods.ok(mi)) {
    snprintf(buf, sizeof buf, "module#%u+0x%llx", mi, static_cast<unsigned long long>(f.offset));
    f.name.text = buf;
    return f;
  }
  f.module = static_cast<int>(mi);
  (*used)[mi] = true;
  const SiteModule &m = mods.at(mi);
  if (symbolize) {
    f.name = sym.name(m.path, m.build_id, m.id_len, f.offset);
  } else {
    f.name.module = base_name(m.path);
    snprintf(buf, sizeof buf, "+0x%llx", static_cast<unsigned long long>(f.offset));
    f.name.text = f.name.module + buf;
  }
  return f;
}

// What the text output shows for a frame: "alloc_a+0x1c (prog)" or "prog+0x11c9".
std::string shown(const FrameOut &f) {
  return f.name.resolved ? f.name.text + " (" + f.name.module + ")" : f.name.text;
}

}  // namespace

int sites_report(const Source &src, const SitesOptions &o, FILE *out) {
  const Image &img = src.img;
  HeapView v(img);
  Problems p;
  p.add(v);

  // The table: none (never recorded, or dropped by a repair), damaged, or readable.
  const uint64_t table = sites_table(img);
  const char *table_state = table ? "present" : img.sb.sites ? "damaged" : "none";
  if (img.sb.sites && !table) {
    Msg m;
    m.add("the allocation-site table at offset ").hex(img.sb.sites).add(" is damaged");
    p.add(m.str());
  }

  // Reachability for --leaks (the core's mark needs a heap that walks completely).
  std::unique_ptr<Reach> reach;
  bool reach_failed = false;
  if (o.leaks) {
    if (v.complete()) {
      reach.reset(new Reach);
      Msg why;
      Busy busy("persist: marking reachable blocks");
      int rc = reach->run(img, &why);
      if (rc != 0) {
        p.add(rc == -ENOMEM ? std::string("no memory for the reachability marks")
                            : why.empty() ? std::string("the roots do not mark") : why.str());
        reach.reset();
      }
    }
    reach_failed = !reach;
  }

  // The sums (segments that do not walk are skipped: the view above reported them). Without the
  // mark, --leaks lists nothing, but the records are still read and checked.
  std::unique_ptr<SiteTotals> t(new SiteTotals);
  Msg scan_why;
  if (!reach_failed) {
    sum_sites(img, reach.get(), t.get(), &scan_why);
  } else {
    SampleVisitor none;
    scan_samples(img, none, &t->scan, &scan_why);
  }
  const SampleScan &scan = t->scan;
  for (unsigned f = kSampleBadMagic; f < kSampleFaults; ++f) {
    if (!scan.fault[f] || f == kSampleNoTable) continue;  // no table: reported once, above
    p.add(std::to_string(scan.fault[f]) + " sample record" + (scan.fault[f] == 1 ? "" : "s") +
          " not counted: " + sample_fault_text(f));
  }

  std::vector<Row> rows;
  for (uint32_t i = 0; i < kSiteCapacity; ++i)
    if (t->site[i].samples) rows.push_back(Row{i, &t->site[i]});
  std::sort(rows.begin(), rows.end(), [](const Row &a, const Row &b) {
    if (a.sum->bytes != b.sum->bytes) return a.sum->bytes > b.sum->bytes;
    if (a.sum->samples != b.sum->samples) return a.sum->samples > b.sum->samples;
    return a.site < b.site;
  });
  const size_t all_rows = rows.size();
  if (o.top && rows.size() > o.top) rows.resize(o.top);

  Modules mods(img, table);
  Symbolizer sym;
  for (const std::string &b : o.binaries) sym.add_candidate(b);
  std::map<uint32_t, bool> used;  // modules named by the listed frames
  const SiteSum &tot = t->total;
  const uint64_t seen = scan.valid + scan.invalid;

  std::unique_ptr<Json> j;
  if (o.json) {
    j.reset(new Json(out));
    j->begin_object();
    json_common(*j, src, p);
    j->str("site_table", table_state);
    if (img.sb.sites) j->num("site_table_offset", img.sb.sites);
    else j->null("site_table_offset");
    j->boolean("leaks", o.leaks);
    if (o.leaks) j->boolean("reachability", reach != nullptr);
    else j->null("reachability");
    j->num("sample_records", seen);
    j->num("valid_samples", scan.valid);
    j->num("invalid_samples", scan.invalid);
    j->begin_object("invalid");
    for (unsigned f = kSampleBadMagic; f < kSampleFaults; ++f) j->num(sample_fault_key(f), scan.fault[f]);
    j->end_object();
    if (o.leaks) j->num("reachable_samples_skipped", t->reached_skipped);
    else j->null("reachable_samples_skipped");
    j->num("samples", tot.samples);
    j->num("sampled_bytes", tot.sampled_bytes);
    j->num("estimated_bytes", rounded(tot.bytes));
    j->num("estimated_bytes_stderr", rounded(std::sqrt(tot.bytes_var)));
    j->real("estimated_blocks", tot.blocks);
    if (t->interval_min) j->num("interval_min", t->interval_min), j->num("interval_max", t->interval_max);
    else j->null("interval_min"), j->null("interval_max");
    j->num("sites_total", all_rows);
    j->num("sites_listed", rows.size());
    j->begin_array("sites");
  } else {
    if (!table) {
      if (img.sb.sites)
        fprintf(out, "%s: the allocation-site table is damaged: the sites cannot be named\n", src.path);
      else
        fprintf(out, "%s: no allocation sites recorded (PERSIST_SITES was never used on this heap%s)\n",
                src.path, seen ? ", or check --repair dropped its table" : "");
      if (seen)
        fprintf(out, "%llu sampled block%s remain%s without a site\n",
                static_cast<unsigned long long>(seen), seen == 1 ? "" : "s", seen == 1 ? "s" : "");
    } else if (o.leaks && reach_failed) {
      fprintf(out, "%s: leaks cannot be told: the heap is damaged (see `persist check`)\n", src.path);
    } else {
      std::string iv = t->interval_min == t->interval_max
                           ? std::to_string(t->interval_min)
                           : std::to_string(t->interval_min) + "-" + std::to_string(t->interval_max);
      fprintf(out, "%s: %zu allocation site%s, %llu sample%s%s%s\n", src.path, all_rows,
              all_rows == 1 ? "" : "s", static_cast<unsigned long long>(tot.samples),
              tot.samples == 1 ? "" : "s", tot.samples ? " (mean interval " : "",
              tot.samples ? (iv + " bytes)").c_str() : "");
      if (o.leaks)
        fprintf(out, "leaks only: sampled blocks no root reaches (%llu reachable sample%s left out)\n",
                static_cast<unsigned long long>(t->reached_skipped), t->reached_skipped == 1 ? "" : "s");
      if (tot.samples)
        fprintf(out, "estimated %s: %s in %.0f blocks (+-%s)\n\n",
                o.leaks ? "leaked" : "live", fmt_bytes(rounded(tot.bytes)).c_str(), tot.blocks,
                pct(std::sqrt(tot.bytes_var), tot.bytes).c_str());
    }
    if (!rows.empty())
      fprintf(out, "%11s %7s %7s %10s %8s  %s\n", "BYTES", "SHARE", "+-ERR", "BLOCKS", "SAMPLES",
              "SITE (top frame first)");
  }

  SiteEntry e;
  for (const Row &r : rows) {
    const SiteSum &s = *r.sum;
    const bool named = site_entry(img, table, r.site, &e);  // (valid samples name live entries)
    const unsigned depth = named ? e.depth : 0;
    if (o.json) {
      j->begin_object();
      j->num("site", r.site);
      j->num("estimated_bytes", rounded(s.bytes));
      j->num("estimated_bytes_stderr", rounded(std::sqrt(s.bytes_var)));
      j->real("estimated_blocks", s.blocks);
      j->real("share_pct", tot.bytes > 0 ? 100 * s.bytes / tot.bytes : 0);
      j->num("samples", s.samples);
      j->num("sampled_bytes", s.sampled_bytes);
      j->num("depth", depth);
      j->begin_array("frames");
      for (unsigned k = 0; k < depth; ++k) {
        FrameOut f = frame(e, k, mods, sym, o.symbolize, &used);
        j->begin_object();
        if (f.module >= 0) {
          const SiteModule &m = mods.at(static_cast<uint32_t>(f.module));
          j->num("module_index", static_cast<uint64_t>(f.module));
          j->str("module", m.path);
          if (m.id_len) j->str("build_id", build_id_hex(m.build_id, m.id_len));
          else j->null("build_id");
        } else {
          j->null("module_index"), j->null("module"), j->null("build_id");
        }
        j->num("offset", f.offset);
        if (f.name.resolved) j->str("symbol", f.name.function), j->num("symbol_offset", f.name.function_offset);
        else j->null("symbol"), j->null("symbol_offset");
        j->str("text", f.name.text);
        j->end_object();
      }
      j->end_array();
      j->end_object();
    } else {
      std::string top = depth ? shown(frame(e, 0, mods, sym, o.symbolize, &used)) : "(no frames)";
      fprintf(out, "%11s %7s %7s %10.0f %8llu  %s\n", short_bytes(s.bytes).c_str(),
              pct(s.bytes, tot.bytes).c_str(), pct(std::sqrt(s.bytes_var), s.bytes).c_str(), s.blocks,
              static_cast<unsigned long long>(s.samples), top.c_str());
      for (unsigned k = 1; k < depth && k < o.depth; ++k)
        fprintf(out, "%49s  %s\n", "", shown(frame(e, k, mods, sym, o.symbolize, &used)).c_str());
      if (depth > o.depth)
        fprintf(out, "%49s  ... %u more frame%s (--depth)\n", "", depth - o.depth,
                depth - o.depth == 1 ? "" : "s");
    }
  }

  // The modules the listed frames are in, and why some could not be symbolised.
  if (o.json) {
    j->end_array();
    j->begin_array("modules");
    for (const auto &u : used) {
      const SiteModule &m = mods.at(u.first);
      j->begin_object();
      j->num("index", u.first);
      j->str("path", m.path);
      if (m.id_len) j->str("build_id", build_id_hex(m.build_id, m.id_len));
      else j->null("build_id");
      const Symbolizer::ModuleInfo *mi = o.symbolize ? sym.info(m.path, m.build_id, m.id_len) : nullptr;
      if (mi) {
        j->str("status", module_status_text(mi->status));
        if (mi->file.empty()) j->null("symbols_from");
        else j->str("symbols_from", mi->file);
        if (mi->problem.empty()) j->null("problem");
        else j->str("problem", mi->problem);
      } else {
        j->str("status", "not read"), j->null("symbols_from"), j->null("problem");
      }
      j->end_object();
    }
    j->end_array();
    j->end_object();
    j.reset();
  } else {
    if (rows.size() < all_rows)
      fprintf(out, "... %zu more site%s (--top)\n", all_rows - rows.size(),
              all_rows - rows.size() == 1 ? "" : "s");
    if (table && tot.samples == 0 && !(o.leaks && reach_failed))
      fprintf(out, o.leaks ? "no sampled block is unreachable\n" : "no sampled block is live\n");
    for (const auto &u : used) {
      const SiteModule &m = mods.at(u.first);
      const Symbolizer::ModuleInfo *mi = o.symbolize ? sym.info(m.path, m.build_id, m.id_len) : nullptr;
      if (mi && mi->status != ModuleStatus::kOk)
        fprintf(out, "note: frames in %s are shown as offsets (%s): %s\n", base_name(m.path).c_str(),
                module_status_text(mi->status), mi->problem.c_str());
    }
  }
  warn_problems("sites", p);
  return p.none() ? kExitOk : kExitInconsistent;
}

int cmd_sites(const Command &cmd, int argc, char **argv) {
  static const option kLong[] = {{"leaks", no_argument, nullptr, 'l'},
                                 {"depth", required_argument, nullptr, 'd'},
                                 {"top", required_argument, nullptr, 't'},
                                 {"binary", required_argument, nullptr, 'b'},
                                 {"json", no_argument, nullptr, 'j'},
                                 {"help", no_argument, nullptr, 'h'},
                                 {nullptr, 0, nullptr, 0}};
  SitesOptions o;
  for (int c; (c = getopt_long(argc, argv, ":h", kLong, nullptr)) != -1;) {
    switch (c) {
      case 'l': o.leaks = true; break;
      case 'd': {
        uint64_t n = 0;
        if (!parse_u64_arg(optarg, &n, false) || n < 1 || n > 1000)
          return usage_error(cmd, "bad --depth (frames to show per site, 1 or more)");
        o.depth = static_cast<unsigned>(n);
        break;
      }
      case 't':
        if (!parse_u64_arg(optarg, &o.top, false) || o.top < 1)
          return usage_error(cmd, "bad --top (the number of sites to list, 1 or more)");
        break;
      case 'b':
        if (!*optarg) return usage_error(cmd, "empty --binary");
        o.binaries.push_back(optarg);
        break;
      case 'j': o.json = true; break;
      case 'h': print_command_help(cmd, stdout); return kExitOk;
      default: return option_error(cmd, c, argc, argv);
    }
  }
  const char *path = file_operand(cmd, argc, argv);
  if (!path) return kExitUsage;
  return report_on_file(cmd, path, o.json, [&](const Source &s) { return sites_report(s, o, stdout); });
}

}  // namespace persist::tool
