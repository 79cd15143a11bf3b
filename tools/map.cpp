// map.cpp — `persist map FILE -o OUT.svg [--pages-per-cell N] [--json]`: a picture of the heap
// from the span model (heapview.h). One cell per page (or per N pages), rows of 64 cells, one band
// of rows per segment (several segments a row when cells are coarse), colored by what the pages
// hold. The SVG is written by hand; text is escaped and restricted to ASCII so it is valid XML.
#include <getopt.h>

#include <cerrno>
#include <cstring>

#include "heapview.h"
#include "newfile.h"
#include "readers.h"
#include "tool.h"

namespace persist::tool {
namespace {

constexpr uint64_t kMaxCells = 32768;  // auto pages-per-cell keeps the picture below this
constexpr uint64_t kMaxCellsAsked = 1 << 20;  // the most --pages-per-cell may ask for
constexpr uint64_t kTitleCells = 8192; // per-cell tooltips up to this many cells
constexpr int kCols = 64, kPitch = 10, kCell = 9, kLeft = 170, kTop = 100, kBandGap = 6;
constexpr int kAreas = 7;  // Area values

struct Cell {
  uint64_t pages[kAreas] = {};
  double fill = 0;  // sum over run pages of the run's fill fraction
  uint8_t cls = 0;  // the class of the last run seen (tooltips)
};

std::string xml_text(const std::string &s) {
  std::string out;
  for (unsigned char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default: out += c >= 0x20 && c < 0x7f ? static_cast<char>(c) : '?';
    }
  }
  return out;
}

const char *area_color(int a) {
  static const char *const kColors[kAreas] = {"#7f7f7f", "#6baed6", "#f28e2b", "#d62728",
                                              "#e2e2e2", "#000000", "url(#missing)"};
  return kColors[a];
}

// Runs: from light (empty) to dark (full) blue.
std::string run_color(double fill) {
  if (fill < 0) fill = 0;
  if (fill > 1) fill = 1;
  const int lo[3] = {0xc6, 0xdb, 0xef}, hi[3] = {0x08, 0x30, 0x6b};
  char buf[8];
  int c[3];
  for (int i = 0; i < 3; ++i) c[i] = static_cast<int>(lo[i] + (hi[i] - lo[i]) * fill + 0.5);
  snprintf(buf, sizeof buf, "#%02x%02x%02x", c[0], c[1], c[2]);
  return buf;
}

int dominant(const Cell &c) {
  int best = -1;
  for (int a = 0; a < kAreas; ++a)
    if (c.pages[a] && (best < 0 || c.pages[a] > c.pages[best])) best = a;
  return best;
}

}  // namespace

int map_report(const Source &src, const MapOptions &o, FILE *svg, FILE *out) {
  HeapView v(src.img);
  Problems p;
  p.add(v);
  const Superblock &sb = src.img.sb;
  // Drawn: what the view covers, and the rest of the segment where a truncated file ends.
  uint64_t draw_end = v.end();
  if (sb.size > draw_end) {
    uint64_t seg_end = (draw_end / kSegmentSize + 1) * kSegmentSize;
    draw_end = sb.size < seg_end ? sb.size : seg_end;
  }
  const uint64_t pages = (draw_end + kPageSize - 1) / kPageSize;
  uint64_t ppc = o.pages_per_cell;
  if (!ppc)
    for (ppc = 1; (pages + ppc - 1) / ppc > kMaxCells;) ppc *= 2;
  const uint64_t ncells = (pages + ppc - 1) / ppc;
  if (ncells > kMaxCellsAsked) {
    fprintf(stderr, "persist map: %llu cells at %llu pages a cell is too many; give a larger "
                    "--pages-per-cell\n",
            static_cast<unsigned long long>(ncells), static_cast<unsigned long long>(ppc));
    return kExitUsage;
  }
  std::vector<Cell> cells(ncells);
  uint64_t totals[kAreas] = {};
  for (const Span &s : v.spans()) {
    if (s.offset >= draw_end) break;
    uint64_t first = s.offset / kPageSize;
    uint64_t end = s.offset + s.bytes < draw_end ? s.offset + s.bytes : draw_end;
    uint64_t last = (end + kPageSize - 1) / kPageSize;  // exclusive
    int a = static_cast<int>(s.area);
    double fill = 0;
    if (s.area == Area::kRun)
      fill = static_cast<double>(s.used) / kClasses.info[s.cls].capacity;
    totals[a] += last - first;
    for (uint64_t c = first / ppc; c * ppc < last; ++c) {
      uint64_t lo = c * ppc > first ? c * ppc : first;
      uint64_t hi = (c + 1) * ppc < last ? (c + 1) * ppc : last;
      cells[c].pages[a] += hi - lo;
      if (s.area == Area::kRun) cells[c].fill += fill * static_cast<double>(hi - lo), cells[c].cls = s.cls;
    }
  }

  // Layout: rows of kCols cells; with per-segment bands when a segment fills whole rows.
  const uint64_t cells_per_seg = kSegmentPages / ppc;  // 0 when a cell spans several segments
  const bool bands = cells_per_seg >= static_cast<uint64_t>(kCols);
  const uint64_t rows = (ncells + kCols - 1) / kCols;
  const uint64_t rows_per_band = bands ? cells_per_seg / kCols : 1;
  const uint64_t gaps = bands && rows ? (rows - 1) / rows_per_band : 0;
  const uint64_t width = kLeft + kCols * kPitch + 20;
  const uint64_t height = kTop + rows * kPitch + gaps * kBandGap + 20;

  fprintf(svg,
          "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
          "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%llu\" height=\"%llu\" "
          "viewBox=\"0 0 %llu %llu\" font-family=\"monospace\" font-size=\"11\">\n",
          static_cast<unsigned long long>(width), static_cast<unsigned long long>(height),
          static_cast<unsigned long long>(width), static_cast<unsigned long long>(height));
  std::string name = xml_text(src.path);
  fprintf(svg, "<title>persist map of %s</title>\n", name.c_str());
  fputs("<defs><pattern id=\"missing\" width=\"4\" height=\"4\" patternUnits=\"userSpaceOnUse\" "
        "patternTransform=\"rotate(45)\"><rect width=\"4\" height=\"4\" fill=\"#ffffff\"/>"
        "<line x1=\"0\" y1=\"0\" x2=\"0\" y2=\"4\" stroke=\"#d62728\" stroke-width=\"1.5\"/>"
        "</pattern></defs>\n",
        svg);
  fputs("<rect width=\"100%\" height=\"100%\" fill=\"#ffffff\"/>\n", svg);
  fprintf(svg, "<text x=\"10\" y=\"18\" font-size=\"13\" font-weight=\"bold\">persist map: %s</text>\n",
          name.c_str());
  std::string sub = "extent " + fmt_bytes(sb.size) + ", live " + fmt_bytes(v.live_bytes()) +
                    " in " + std::to_string(v.live_blocks()) + " blocks" +
                    (v.complete() ? "" : "; DAMAGED (see persist check)");
  std::string scale = "1 cell = " + std::to_string(ppc) + (ppc == 1 ? " page" : " pages") +
                      " of 4 KiB" + (bands ? "; one band per 4 MiB segment" : "");
  if (sb.size > draw_end) scale += "; " + fmt_bytes(sb.size - draw_end) + " missing, not drawn";
  fprintf(svg, "<text x=\"10\" y=\"34\">%s</text>\n<text x=\"10\" y=\"50\">%s</text>\n",
          xml_text(sub).c_str(), xml_text(scale).c_str());
  // Legend.
  struct Item {
    std::string color;
    const char *label;
  };
  const Item legend[] = {{area_color(0), "metadata"},  {run_color(0), "run 0%"},
                         {run_color(0.5), "run 50%"},  {run_color(1), "run 100%"},
                         {area_color(2), "large"},     {area_color(3), "huge"},
                         {area_color(4), "free"},      {area_color(5), "damaged"},
                         {area_color(6), "missing"}};
  int x = 10;
  for (const Item &it : legend) {
    fprintf(svg, "<rect x=\"%d\" y=\"62\" width=\"%d\" height=\"%d\" fill=\"%s\" stroke=\"#999999\" "
                 "stroke-width=\"0.5\"/><text x=\"%d\" y=\"71\">%s</text>\n",
            x, kCell, kCell, it.color.c_str(), x + 13, it.label);
    x += 13 + 7 * static_cast<int>(strlen(it.label)) + 14;
  }
  // Cells.
  const bool titles = ncells <= kTitleCells;
  for (uint64_t r = 0; r < rows; ++r) {
    uint64_t y = kTop + r * kPitch + (bands ? r / rows_per_band : 0) * kBandGap;
    uint64_t first_cell = r * kCols;
    uint64_t off = first_cell * ppc * kPageSize;
    if (!bands || r % rows_per_band == 0) {
      std::string label = (bands ? "seg " + std::to_string(off / kSegmentSize) + " " : "") + fmt_hex(off);
      fprintf(svg, "<text x=\"10\" y=\"%llu\">%s</text>\n", static_cast<unsigned long long>(y + kCell - 1),
              label.c_str());
    }
    for (uint64_t c = first_cell; c < ncells && c < first_cell + kCols; ++c) {
      const Cell &cell = cells[c];
      int a = dominant(cell);
      if (a < 0) continue;
      std::string color = a == static_cast<int>(Area::kRun)
                              ? run_color(cell.fill / static_cast<double>(cell.pages[a]))
                              : area_color(a);
      fprintf(svg, "<rect x=\"%llu\" y=\"%llu\" width=\"%d\" height=\"%d\" fill=\"%s\"",
              static_cast<unsigned long long>(kLeft + (c - first_cell) * kPitch),
              static_cast<unsigned long long>(y), kCell, kCell, color.c_str());
      if (!titles) {
        fputs("/>\n", svg);
        continue;
      }
      std::string t = fmt_hex(c * ppc * kPageSize) + ": " + area_name(static_cast<Area>(a));
      if (a == static_cast<int>(Area::kRun))
        t += " of " + std::to_string(kClasses.info[cell.cls].size) + "-byte blocks, " +
             fmt_pct(static_cast<uint64_t>(cell.fill * 1000 + 0.5), cell.pages[a] * 1000) + " full";
      if (ppc > 1) t += " (mostly; " + std::to_string(ppc) + " pages)";
      fprintf(svg, "><title>%s</title></rect>\n", xml_text(t).c_str());
    }
  }
  fputs("</svg>\n", svg);
  fflush(svg);

  if (o.json) {
    Json j(out);
    j.begin_object();
    json_common(j, src, p);
    j.str("output", o.output);
    j.num("pages_per_cell", ppc);
    j.num("cells", ncells);
    j.num("rows", rows);
    j.boolean("segment_bands", bands);
    j.begin_object("pages");
    for (int a = 0; a < kAreas; ++a) j.num(area_name(static_cast<Area>(a)), totals[a]);
    j.end_object();
    j.end_object();
  }
  warn_problems("map", p);
  return p.none() ? kExitOk : kExitInconsistent;
}

int cmd_map(const Command &cmd, int argc, char **argv) {
  static const option kLong[] = {{"output", required_argument, nullptr, 'o'},
                                 {"pages-per-cell", required_argument, nullptr, 'p'},
                                 {"json", no_argument, nullptr, 'j'},
                                 {"help", no_argument, nullptr, 'h'},
                                 {nullptr, 0, nullptr, 0}};
  MapOptions o;
  const char *output = nullptr;
  for (int c; (c = getopt_long(argc, argv, ":ho:", kLong, nullptr)) != -1;) {
    switch (c) {
      case 'o': output = optarg; break;
      case 'p':
        if (!parse_u64_arg(optarg, &o.pages_per_cell, false) || o.pages_per_cell == 0 ||
            (o.pages_per_cell & (o.pages_per_cell - 1)) || o.pages_per_cell > (1u << 20))
          return usage_error(cmd, "bad --pages-per-cell (a power of two)");
        break;
      case 'j': o.json = true; break;
      case 'h': print_command_help(cmd, stdout); return kExitOk;
      default: return option_error(cmd, c, argc, argv);
    }
  }
  const char *path = file_operand(cmd, argc, argv);
  if (!path) return kExitUsage;
  if (!output || !*output) return usage_error(cmd, "missing -o OUT.svg");
  const bool to_stdout = strcmp(output, "-") == 0;
  const bool to_stream = !to_stdout && newfile_is_stream(output);  // /dev/null, a pipe: written as is
  if (to_stdout && o.json) return usage_error(cmd, "-o - and --json both want stdout");
  o.output = output;
  return report_on_file(cmd, path, o.json, [&](const Source &s) {
    // OUT is a new private file given its name when complete (newfile.h): an existing OUT is
    // replaced, never written into (nor followed, if it is a symlink). A stream (/dev/null, a
    // pipe) is written into as it is: it holds nothing to replace.
    NewFile nf;
    FILE *svg = stdout;
    if (to_stream && !(svg = fopen(output, "w"))) {
      fprintf(stderr, "persist map: cannot write %s: %s\n", output, strerror(errno));
      return int{kExitUnreadable};
    } else if (!to_stdout && !to_stream) {
      int e = newfile_create(output, &nf);
      svg = e ? nullptr : fdopen(nf.fd, "w");
      if (!svg) {
        fprintf(stderr, "persist map: cannot write %s: %s\n", output, strerror(e ? -e : errno));
        newfile_close(&nf);
        return int{kExitUnreadable};
      }
      nf.fd = -1;  // the FILE owns it now
    }
    int rc = map_report(s, o, svg, stdout);
    bool write_failed = ferror(svg) != 0;
    if (!to_stdout && fclose(svg) != 0) write_failed = true;
    int e = write_failed || to_stdout || to_stream ? 0 : newfile_replace(&nf, output);
    newfile_close(&nf);
    if (write_failed || e) {
      fprintf(stderr, "persist map: writing %s failed%s%s\n", output, e ? ": " : "", e ? strerror(-e) : "");
      return int{kExitUnreadable};
    }
    return rc;
  });
}

}  // namespace persist::tool
