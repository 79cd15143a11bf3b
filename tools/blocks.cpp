// blocks.cpp — `persist blocks FILE [--min-size N] [--max-size N] [--contains STR |
// --contains-hex HEX] [--limit N] [--json]`: the live blocks (heapview.h) that pass the filters,
// with where they are, what they are, whether a root reaches them (core/reach.h, the checker's
// mark) and how they start.
#include <getopt.h>

#include <cerrno>
#include <cstring>
#include <memory>

#include "heapview.h"
#include "progress.h"
#include "reach.h"  // core: conservative reachability
#include "readers.h"
#include "tool.h"

namespace persist::tool {
namespace {

constexpr size_t kFirstBytes = 16;

bool contains(const uint8_t *p, uint64_t n, const std::string &needle) {
  return memmem(p, n, needle.data(), needle.size()) != nullptr;
}

bool parse_hex_bytes(const char *s, std::string *out) {
  auto digit = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) s += 2;
  out->clear();
  for (;;) {
    while (*s == ' ' || *s == ':') ++s;
    if (!*s) break;
    int hi = digit(s[0]), lo = s[1] ? digit(s[1]) : -1;
    if (hi < 0 || lo < 0) return false;
    out->push_back(static_cast<char>(hi * 16 + lo));
    s += 2;
  }
  return !out->empty();
}

}  // namespace

int blocks_report(const Source &src, const BlocksOptions &o, FILE *out) {
  HeapView v(src.img);
  Problems p;
  p.add(v);
  // The core's mark (the checker's), which needs a heap that walks completely.
  std::unique_ptr<Reach> reach;
  if (v.complete()) {
    reach.reset(new Reach);
    Msg why;
    Busy busy("persist: marking reachable blocks");
    int rc = reach->run(src.img, &why);
    if (rc != 0) {
      if (rc != -ENOMEM) p.add(why.empty() ? "the roots do not mark" : why.str());
      reach.reset();
    }
  }

  const uint64_t base = src.img.sb.base;
  std::unique_ptr<Json> j;
  if (o.json) {
    j.reset(new Json(out));
    j->begin_object();
    json_common(*j, src, p);
    j->boolean("reachability", reach != nullptr);
    j->begin_array("blocks");
  } else {
    fprintf(out, "%-12s %-16s %9s %-9s %-5s %s\n", "OFFSET", "ADDRESS", "SIZE", "KIND", "REACH",
            "FIRST BYTES");
  }
  uint64_t listed = 0, bytes = 0;
  bool limited = false;
  Progress progress("persist: listing blocks", v.live_bytes());
  uint64_t seen = 0;
  v.each_live([&](const Block &b) {
    seen += b.size;
    progress.update(seen);
    if (b.size < o.min_size || b.size > o.max_size) return true;
    const uint8_t *data = v.at(b.offset, b.size);
    if (!data) return true;
    if (!o.needle.empty() && !contains(data, b.size, o.needle)) return true;
    if (listed == o.limit) {
      limited = true;
      return false;
    }
    ++listed, bytes += b.size;
    size_t k = b.size < kFirstBytes ? static_cast<size_t>(b.size) : kFirstBytes;
    std::string kind = block_kind(b);
    if (o.json) {
      j->begin_object();
      j->num("offset", b.offset);
      j->str("address", fmt_hex(base + b.offset));
      j->num("size", b.size);
      j->str("kind", kind);
      if (b.area == Area::kRun) j->num("class", b.cls);
      else j->null("class");
      if (reach) j->boolean("reachable", reach->marked(block_ref(b)));
      else j->null("reachable");
      j->str("first_hex", hex_string(data, k, false));
      j->str("first_text", dotted_text(data, k));
      j->end_object();
    } else {
      if (b.area == Area::kRun) kind += "/" + std::to_string(b.cls);
      fprintf(out, "%-12s %-16s %9llu %-9s %-5s %-47s |%s|\n", fmt_hex(b.offset).c_str(),
              fmt_hex(base + b.offset).c_str(), static_cast<unsigned long long>(b.size),
              kind.c_str(), reach ? (reach->marked(block_ref(b)) ? "yes" : "no") : "?",
              hex_string(data, k, true).c_str(), dotted_text(data, k).c_str());
    }
    return true;
  });
  if (o.json) {
    j->end_array();
    j->num("listed", listed);
    j->num("listed_bytes", bytes);
    j->boolean("limit_reached", limited);
    j->end_object();
    j.reset();
  } else {
    fprintf(out, "%llu blocks, %s%s\n", static_cast<unsigned long long>(listed),
            fmt_bytes(bytes).c_str(), limited ? " (--limit reached; more blocks match)" : "");
  }
  warn_problems("blocks", p);
  return p.none() ? kExitOk : kExitInconsistent;
}

int cmd_blocks(const Command &cmd, int argc, char **argv) {
  static const option kLong[] = {
      {"min-size", required_argument, nullptr, 'm'}, {"max-size", required_argument, nullptr, 'M'},
      {"contains", required_argument, nullptr, 'c'}, {"contains-hex", required_argument, nullptr, 'x'},
      {"limit", required_argument, nullptr, 'l'},    {"json", no_argument, nullptr, 'j'},
      {"help", no_argument, nullptr, 'h'},           {nullptr, 0, nullptr, 0}};
  BlocksOptions o;
  int content = 0;
  for (int c; (c = getopt_long(argc, argv, ":h", kLong, nullptr)) != -1;) {
    switch (c) {
      case 'm':
        if (!parse_u64_arg(optarg, &o.min_size, true)) return usage_error(cmd, "bad --min-size");
        break;
      case 'M':
        if (!parse_u64_arg(optarg, &o.max_size, true)) return usage_error(cmd, "bad --max-size");
        break;
      case 'c':
        o.needle = optarg, ++content;
        if (o.needle.empty()) return usage_error(cmd, "empty --contains");
        break;
      case 'x':
        if (!parse_hex_bytes(optarg, &o.needle))
          return usage_error(cmd, "bad --contains-hex (pairs of hex digits, e.g. deadbeef)");
        ++content;
        break;
      case 'l':
        if (!parse_u64_arg(optarg, &o.limit, false)) return usage_error(cmd, "bad --limit");
        break;
      case 'j': o.json = true; break;
      case 'h': print_command_help(cmd, stdout); return kExitOk;
      default: return option_error(cmd, c, argc, argv);
    }
  }
  if (content > 1) return usage_error(cmd, "give one --contains or --contains-hex");
  const char *path = file_operand(cmd, argc, argv);
  if (!path) return kExitUsage;
  return report_on_file(cmd, path, o.json, [&](const Source &s) { return blocks_report(s, o, stdout); });
}

}  // namespace persist::tool
