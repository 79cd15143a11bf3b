// dump.cpp — `persist dump FILE (--root TAG | --offset OFF | --addr ADDR) [--raw] [--length N]
// [--json]`: one live block, found by root, heap offset or old address, as an xxd-style hex dump,
// raw bytes or JSON. Anything that is not inside a live block is refused with what it is.
#include <getopt.h>

#include "heapview.h"
#include "progress.h"
#include "readers.h"
#include "rootlist.h"
#include "tool.h"

namespace persist::tool {
namespace {

// xxd's layout: "OFFSET: 4865 6c6c ...  text", 16 bytes a line, the offset being the heap offset.
void hexdump(FILE *out, uint64_t offset, const uint8_t *p, uint64_t n) {
  static const char kDigits[] = "0123456789abcdef";
  Progress progress("persist: dumping", n);
  char line[128];
  for (uint64_t i = 0; i < n; i += 16) {
    uint64_t k = n - i < 16 ? n - i : 16;
    int len = 0, digits = 8;
    for (uint64_t v = (offset + i) >> 32; v; v >>= 4) ++digits;  // at least 8 digits, like xxd
    for (int d = digits - 1; d >= 0; --d) line[len++] = kDigits[((offset + i) >> (4 * d)) & 15];
    line[len++] = ':';
    for (uint64_t b = 0; b < 16; ++b) {
      if (b % 2 == 0) line[len++] = ' ';
      line[len++] = b < k ? kDigits[p[i + b] >> 4] : ' ';
      line[len++] = b < k ? kDigits[p[i + b] & 15] : ' ';
    }
    line[len++] = ' ', line[len++] = ' ';
    for (uint64_t b = 0; b < k; ++b) {
      uint8_t c = p[i + b];
      line[len++] = c >= 0x20 && c < 0x7f ? static_cast<char>(c) : '.';
    }
    line[len++] = '\n';
    fwrite(line, 1, static_cast<size_t>(len), out);
    progress.update(i);
  }
}

const char *by_name(DumpOptions::By by) {
  return by == DumpOptions::kRoot ? "root" : by == DumpOptions::kAddr ? "addr" : "offset";
}

// Refuses with a message on stderr (and a JSON object with found = false).
int refuse(const Source &src, const DumpOptions &o, const Problems &p, const std::string &why,
           FILE *out) {
  fprintf(stderr, "persist dump: %s\n", why.c_str());
  if (o.json) {
    Json j(out);
    j.begin_object();
    json_common(j, src, p);
    j.str("by", by_name(o.by));
    j.boolean("found", false);
    j.str("error", why);
    j.end_object();
  }
  warn_problems("dump", p);
  return kExitInconsistent;
}

}  // namespace

int dump_report(const Source &src, const DumpOptions &o, FILE *out) {
  HeapView v(src.img);
  Problems p;
  p.add(v);
  const Superblock &sb = src.img.sb;
  uint64_t off = 0;
  std::string what;  // how the position was given, for messages
  if (o.by == DumpOptions::kRoot) {
    std::vector<RootInfo> roots;
    std::string problem;
    bool ok = read_roots(src.img, &roots, &problem);
    if (!ok) p.add("root table: " + problem);
    const RootInfo *found = nullptr;
    for (const RootInfo &r : roots)
      if (r.tag == o.root) {
        found = &r;
        break;
      }
    if (!found)
      return refuse(src, o, p,
                    "no root named \"" + printable(o.root) + "\"" +
                        (ok ? " (see `persist roots`)" : " (the root table is damaged: " + problem + ")"),
                    out);
    if (found->offset == 0)
      return refuse(src, o, p, "root \"" + printable(o.root) + "\" points at no block", out);
    off = found->offset;
    what = "root \"" + printable(o.root) + "\" (offset " + fmt_hex(off) + ")";
  } else if (o.by == DumpOptions::kAddr) {
    if (o.where < sb.base || o.where - sb.base >= sb.size)
      return refuse(src, o, p,
                    "address " + fmt_hex(o.where) + " is outside the heap's address range " +
                        fmt_hex(sb.base) + "-" + fmt_hex(sb.base + sb.size),
                    out);
    off = o.where - sb.base;
    what = "address " + fmt_hex(o.where) + " (offset " + fmt_hex(off) + ")";
  } else {
    off = o.where;
    what = "offset " + fmt_hex(off);
  }
  Where w = v.locate(off);
  if (w.kind != Where::kLive)
    return refuse(src, o, p, what + " is not inside a live block: it is " + describe(w), out);
  const Block &b = w.block;
  uint64_t start = b.offset, len = b.size;
  if (o.has_length) {
    start = off;
    len = b.offset + b.size - off;
    if (o.length < len) len = o.length;
  }
  const uint8_t *bytes = v.at(start, len);
  if (!bytes) return refuse(src, o, p, what + " lies outside the file", out);

  if (!o.json)
    fprintf(stderr, "persist dump: %s block%s at offset %s (address %s), %llu bytes; %llu bytes from %s\n",
            block_kind(b),
            b.area == Area::kRun ? (" (class " + std::to_string(b.cls) + ")").c_str() : "",
            fmt_hex(b.offset).c_str(), fmt_hex(sb.base + b.offset).c_str(),
            static_cast<unsigned long long>(b.size), static_cast<unsigned long long>(len),
            fmt_hex(start).c_str());
  if (o.raw) {
    fwrite(bytes, 1, len, out);
    fflush(out);
  } else if (o.json) {
    Json j(out);
    j.begin_object();
    json_common(j, src, p);
    j.str("by", by_name(o.by));
    j.boolean("found", true);
    if (o.by == DumpOptions::kRoot) j.str("root", o.root);
    else j.null("root");
    j.num("block_offset", b.offset);
    j.str("block_address", fmt_hex(sb.base + b.offset));
    j.num("block_size", b.size);
    j.str("block_kind", block_kind(b));
    if (b.area == Area::kRun) j.num("class", b.cls);
    else j.null("class");
    j.num("start", start);
    j.num("length", len);
    j.str("hex", hex_string(bytes, len, false));
    j.end_object();
  } else {
    hexdump(out, start, bytes, len);
  }
  warn_problems("dump", p);
  return p.none() ? kExitOk : kExitInconsistent;
}

int cmd_dump(const Command &cmd, int argc, char **argv) {
  static const option kLong[] = {
      {"root", required_argument, nullptr, 'R'},   {"offset", required_argument, nullptr, 'O'},
      {"addr", required_argument, nullptr, 'A'},   {"length", required_argument, nullptr, 'n'},
      {"raw", no_argument, nullptr, 'r'},          {"json", no_argument, nullptr, 'j'},
      {"help", no_argument, nullptr, 'h'},         {nullptr, 0, nullptr, 0}};
  DumpOptions o;
  int given = 0;
  for (int c; (c = getopt_long(argc, argv, ":h", kLong, nullptr)) != -1;) {
    switch (c) {
      case 'R':
        o.by = DumpOptions::kRoot, o.root = optarg, ++given;
        break;
      case 'O':
        if (!parse_u64_arg(optarg, &o.where, false)) return usage_error(cmd, "bad --offset");
        o.by = DumpOptions::kOffset, ++given;
        break;
      case 'A':
        if (!parse_u64_arg(optarg, &o.where, false, /*hex=*/true))
          return usage_error(cmd, "bad --addr (hex, 0x optional)");
        o.by = DumpOptions::kAddr, ++given;
        break;
      case 'n':
        if (!parse_u64_arg(optarg, &o.length, true)) return usage_error(cmd, "bad --length");
        o.has_length = true;
        break;
      case 'r': o.raw = true; break;
      case 'j': o.json = true; break;
      case 'h': print_command_help(cmd, stdout); return kExitOk;
      default: return option_error(cmd, c, argc, argv);
    }
  }
  const char *path = file_operand(cmd, argc, argv);
  if (!path) return kExitUsage;
  if (given != 1) return usage_error(cmd, "give exactly one of --root, --offset, --addr");
  if (o.raw && o.json) return usage_error(cmd, "--raw and --json exclude each other");
  return report_on_file(cmd, path, o.json, [&](const Source &s) { return dump_report(s, o, stdout); });
}

}  // namespace persist::tool
