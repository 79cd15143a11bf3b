// roots.cpp — `persist roots FILE [--json]`: the root table (rootlist.h), each root with its
// address at the recorded base and what its offset points at (heapview.h). Read-only.
#include "heapview.h"
#include "readers.h"
#include "rootlist.h"
#include "tool.h"

namespace persist::tool {
namespace {

struct Row {
  RootInfo r;
  Where w;
  const char *status;  // README: "live", "none", "interior", "free", "metadata", ...
};

const char *status_of(const RootInfo &r, const Where &w) {
  if (r.offset == 0) return "none";
  switch (w.kind) {
    case Where::kLive: return w.block.offset == r.offset ? "live" : "interior";
    case Where::kFree:
    case Where::kFreeSlot: return "free";
    case Where::kMetadata: return "metadata";
    case Where::kDamaged: return "damaged";
    case Where::kMissing: return "missing";
    case Where::kOutside: return "outside";
  }
  return "?";
}

void print_text(const Source &src, const std::vector<Row> &rows, FILE *out) {
  if (rows.empty()) {
    fprintf(out, "no roots\n");
    return;
  }
  fprintf(out, "%-24s %-12s %-16s %-10s %s\n", "TAG", "OFFSET", "ADDRESS", "SIZE", "BLOCK");
  for (const Row &row : rows) {
    const RootInfo &r = row.r;
    std::string block = row.status;
    if (row.w.kind == Where::kLive)
      block += std::string(" (") + block_kind(row.w.block) + ", " +
               std::to_string(row.w.block.size) + " bytes)";
    fprintf(out, "%-24s %-12s %-16s %-10llu %s%s\n", printable(r.tag).c_str(),
            fmt_hex(r.offset).c_str(), r.offset ? fmt_hex(src.img.sb.base + r.offset).c_str() : "-",
            static_cast<unsigned long long>(r.size), block.c_str(),
            r.type ? (" type " + fmt_hex(r.type)).c_str() : "");
  }
}

void print_json(const Source &src, const Problems &p, const std::vector<Row> &rows, FILE *out) {
  Json j(out);
  j.begin_object();
  json_common(j, src, p);
  j.num("roots_count", rows.size());
  j.begin_array("roots");
  for (const Row &row : rows) {
    const RootInfo &r = row.r;
    j.begin_object();
    j.str("tag", r.tag);
    j.num("offset", r.offset);
    if (r.offset) j.str("address", fmt_hex(src.img.sb.base + r.offset));
    else j.null("address");
    j.num("size", r.size);
    j.num("type", r.type);
    j.str("status", row.status);
    if (row.w.kind == Where::kLive) {
      j.num("block_offset", row.w.block.offset);
      j.num("block_size", row.w.block.size);
      j.str("block_kind", block_kind(row.w.block));
    } else {
      j.null("block_offset");
      j.null("block_size");
      j.null("block_kind");
    }
    j.end_object();
  }
  j.end_array();
  j.end_object();
}

}  // namespace

int roots_report(const Source &src, const RootsOptions &o, FILE *out) {
  HeapView v(src.img);
  Problems p;
  p.add(v);
  std::vector<RootInfo> roots;
  std::string problem;
  if (!read_roots(src.img, &roots, &problem)) p.add("root table: " + problem);
  std::vector<Row> rows;
  rows.reserve(roots.size());
  for (RootInfo &r : roots) {
    Row row{std::move(r), Where{}, ""};
    if (row.r.offset) row.w = v.locate(row.r.offset);
    row.status = status_of(row.r, row.w);
    std::string s = row.status;
    if (s != "live" && s != "none")
      p.add("root \"" + printable(row.r.tag) + "\" at " + fmt_hex(row.r.offset) +
            " is not the start of a live block: " + s);
    rows.push_back(std::move(row));
  }
  if (o.json) print_json(src, p, rows, out);
  else print_text(src, rows, out);
  warn_problems("roots", p);
  return p.none() ? kExitOk : kExitInconsistent;
}

int cmd_roots(const Command &cmd, int argc, char **argv) {
  FileArgs args;
  if (int rc = parse_file_args(cmd, argc, argv, &args); rc >= 0) return rc;
  RootsOptions o;
  o.json = args.json;
  return report_on_file(cmd, args.file, args.json, [&](const Source &s) { return roots_report(s, o, stdout); });
}

}  // namespace persist::tool
