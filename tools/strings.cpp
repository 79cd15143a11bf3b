// strings.cpp — `persist strings FILE [-n MIN] [--all] [--json]`: strings(1) -t x over the live
// blocks of a heap (heapview.h) — how the text a killed program held is found again. A string
// never crosses a block boundary. --all also scans free memory and damaged segments, marked.
// Metadata is never scanned.
#include <getopt.h>

#include <cstring>
#include <memory>

#include "heapview.h"
#include "progress.h"
#include "readers.h"
#include "tool.h"

namespace persist::tool {
namespace {

struct Printable {
  bool t[256];
  constexpr Printable() : t() {
    for (int c = 0; c < 256; ++c) t[c] = (c >= 0x20 && c < 0x7f) || c == '\t';
  }
};
constexpr Printable kPrintable{};

class Scanner {
 public:
  Scanner(const Source &src, const HeapView &v, const StringsOptions &o, FILE *out)
      : v_(v), o_(o), out_(out), base_(src.img.sb.base) {
    if (o.json) {
      j_.reset(new Json(out));
      j_->begin_object();
    }
  }
  Json *json() { return j_.get(); }

  // Scans [off, off + n) as one area: `where` is "live" (block_off: the block), "free" or
  // "damaged".
  void scan(uint64_t off, uint64_t n, const char *where, uint64_t block_off) {
    const uint8_t *p = v_.at(off, n);
    if (!p) return;
    for (uint64_t i = 0; i < n;) {
      if (!kPrintable.t[p[i]]) {
        ++i;
        // Heaps are mostly zeros (free pages, padding): skip them a word at a time.
        for (uint64_t w; i % 8 == 0 && n - i >= 8 && (memcpy(&w, p + i, 8), w == 0);) i += 8;
        continue;
      }
      uint64_t s = i;
      while (i < n && kPrintable.t[p[i]]) ++i;
      if (i - s >= o_.min_len) emit(off + s, p + s, i - s, where, block_off);
    }
  }
  uint64_t count() const { return count_; }
  void finish() {
    if (!j_) return;
    j_->end_array();
    j_->num("count", count_);
    j_->end_object();
    j_.reset();
  }

 private:
  void emit(uint64_t off, const uint8_t *p, uint64_t n, const char *where, uint64_t block_off) {
    ++count_;
    if (j_) {
      j_->begin_object();
      j_->num("offset", off);
      j_->str("address", fmt_hex(base_ + off));
      j_->str("where", where);
      if (where[0] == 'l') j_->num("block_offset", block_off);
      else j_->null("block_offset");
      j_->num("length", n);
      j_->str("text", std::string(reinterpret_cast<const char *>(p), n));
      j_->end_object();
      return;
    }
    if (o_.all) fprintf(out_, "%8llx %-7s ", static_cast<unsigned long long>(off), where);
    else fprintf(out_, "%8llx ", static_cast<unsigned long long>(off));
    fwrite(p, 1, n, out_);
    fputc('\n', out_);
  }
  const HeapView &v_;
  const StringsOptions &o_;
  FILE *out_;
  uint64_t base_, count_ = 0;
  std::unique_ptr<Json> j_;
};

}  // namespace

int strings_report(const Source &src, const StringsOptions &o, FILE *out) {
  HeapView v(src.img);
  Problems p;
  p.add(v);
  Scanner sc(src, v, o, out);
  if (Json *j = sc.json()) {
    json_common(*j, src, p);
    j->num("min_length", o.min_len);
    j->boolean("all", o.all);
    j->begin_array("strings");
  }
  uint64_t total = 0, done = 0;
  for (const Span &s : v.spans())
    if (o.all || s.area == Area::kRun || s.area == Area::kLarge || s.area == Area::kHuge)
      total += s.bytes;
  Progress progress("persist: scanning", total);
  for (const Span &s : v.spans()) {
    switch (s.area) {
      case Area::kRun: {
        const ClassInfo &ci = kClasses.info[s.cls];
        uint64_t free_start = 0, free_len = 0;  // free slots next to each other scan as one area
        auto flush = [&] {
          if (free_len) sc.scan(free_start, free_len, "free", 0);
          free_len = 0;
        };
        for (uint32_t i = 0; i < ci.capacity; ++i) {
          Block b = v.slot(s, i);
          if (v.slot_live(s, i)) {
            flush();
            sc.scan(b.offset, b.size, "live", b.offset);
          } else if (o.all) {
            if (!free_len) free_start = b.offset;
            free_len += b.size;
          }
        }
        uint64_t used = uint64_t{ci.capacity} * ci.size;
        if (o.all && s.bytes > used) {
          if (!free_len) free_start = s.offset + used;
          free_len += s.bytes - used;
        }
        flush();
        break;
      }
      case Area::kLarge:
      case Area::kHuge: sc.scan(s.offset, s.bytes, "live", s.offset); break;
      case Area::kFree:
        if (o.all) sc.scan(s.offset, s.bytes, "free", 0);
        break;
      case Area::kDamaged:
        if (o.all) sc.scan(s.offset, s.bytes, "damaged", 0);
        break;
      case Area::kMeta:
      case Area::kMissing: break;
    }
    if (o.all || s.area == Area::kRun || s.area == Area::kLarge || s.area == Area::kHuge)
      done += s.bytes;
    progress.update(done);
  }
  sc.finish();
  warn_problems("strings", p);
  return p.none() ? kExitOk : kExitInconsistent;
}

int cmd_strings(const Command &cmd, int argc, char **argv) {
  static const option kLong[] = {{"all", no_argument, nullptr, 'a'},
                                 {"bytes", required_argument, nullptr, 'n'},
                                 {"json", no_argument, nullptr, 'j'},
                                 {"help", no_argument, nullptr, 'h'},
                                 {nullptr, 0, nullptr, 0}};
  StringsOptions o;
  for (int c; (c = getopt_long(argc, argv, ":hn:a", kLong, nullptr)) != -1;) {
    switch (c) {
      case 'n': {
        uint64_t n = 0;
        if (!parse_u64_arg(optarg, &n, false) || n < 1 || n > 1u << 20)
          return usage_error(cmd, "bad -n (a length from 1 to 1048576)");
        o.min_len = static_cast<unsigned>(n);
        break;
      }
      case 'a': o.all = true; break;
      case 'j': o.json = true; break;
      case 'h': print_command_help(cmd, stdout); return kExitOk;
      default: return option_error(cmd, c, argc, argv);
    }
  }
  const char *path = file_operand(cmd, argc, argv);
  if (!path) return kExitUsage;
  return report_on_file(cmd, path, o.json, [&](const Source &s) { return strings_report(s, o, stdout); });
}

}  // namespace persist::tool
