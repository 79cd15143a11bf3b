// options.cpp — the options table (STYLE.md §9). Each row: the variable, its kind, its default,
// its range and a one-line description; README.md mirrors this table.
#include "options.h"

#include <errno.h>

#include <cstring>

#include "../core/include/persist.h"
#include "msg.h"
#include "platform.h"

extern "C" char *program_invocation_short_name;  // glibc: set before any constructor runs

namespace persist::shim {
namespace {

enum Kind { kPath, kAddress, kSize, kBool, kChoice };

struct OptionRow {
  const char *name;
  Kind kind;
  const char *default_value;
  uint64_t min, max;
  const char *doc;
};

constexpr uint64_t kGiB = uint64_t{1} << 30;
constexpr OptionRow kTable[] = {
    {"PERSIST_FILE", kPath, "persist.heap", 0, 0,
     "heap file; %p expands to the pid, %e to the program name"},
    {"PERSIST_ADDR", kAddress, "0x200000000000", 0x10000, 0x7fff00000000,
     "base address for a new heap (page aligned)"},
    {"PERSIST_MAX", kSize, "64G", 64 << 20, uint64_t{64} << 40,
     "address range reserved for the heap: the most it may grow to (K/M/G/T suffixes)"},
    {"PERSIST_VERBOSE", kBool, "0", 0, 1, "print the configuration and the heap opened"},
    {"PERSIST_STRICT", kBool, "0", 0, 1,
     "make failing to persist fatal instead of running on a volatile heap"},
    {"PERSIST_ON_BUSY", kChoice, "volatile", 0, 2,
     "when another process holds the heap: volatile (private heap, one line on stderr), wait, fail"},
    {"PERSIST_GC", kChoice, "auto", 0, 2,
     "auto: at open, reclaim the blocks no root reaches when the heap has grown by what the last "
     "collection kept (a heap without roots starts empty); open: at every open; never"},
    {"PERSIST_KEEP", kBool, "0", 0, 1, "before reclaiming, keep the previous image as FILE.1"},
    {"PERSIST_RELOCATE", kChoice, "rewrite", 0, 1,
     "when the heap's address range is taken: rewrite (move it and shift its pointers), refuse"},
    {"PERSIST_SYNC", kChoice, "never", 1, 3600000,
     "never; exit (msync+fsync at exit, then the clean mark); or an interval in milliseconds"},
    {"PERSIST_IMAGES", kChoice, "fixed", 0, 2,
     "pointers into the program's images (vtables, function pointers): fixed (run the program "
     "with ASLR off, re-executing it once at start, so they hold with no pass over the heap), "
     "rewrite (keep ASLR; shift them at every open, O(heap)), keep (never shift them)"},
    {"PERSIST_SITES", kChoice, "off", 1, uint64_t{1} << 40,
     "record allocation sites: off; on (one sample per 4M allocated, on average); or the mean "
     "sampling interval in bytes (K/M/G suffixes)"},
};
// A sample costs about 4 us, most of it libunwind's unw_step walk (core/unwind.h). Churn
// benchmarks allocate several GB/s: at 2 MiB (tcmalloc's default) larson slowed by 6-8%, at 4 MiB
// by 3-4% (bench/: T11, under 5%).
constexpr uint64_t kSitesDefaultInterval = 4 << 20;
constexpr const char *kBusyNames[] = {"volatile", "wait", "fail"};
constexpr const char *kGcNames[] = {"auto", "open", "never"};
constexpr const char *kImageNames[] = {"fixed", "rewrite", "keep"};

void warn(const char *name, const char *value, const char *why) {
  Msg m;
  m.add("libpersist: ignoring ").add(name).add("=").add(value).add(": ").add(why)
      .add("; using the default\n");
  os::write_stderr(m.str(), m.size());
}

bool parse_u64(const char *s, uint64_t *out, bool suffixes) {
  if (!s || !*s) return false;
  uint64_t v = 0;
  unsigned base = 10;
  if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) base = 16, s += 2;
  if (!*s) return false;
  for (; *s; ++s) {
    unsigned d;
    if (*s >= '0' && *s <= '9') d = static_cast<unsigned>(*s - '0');
    else if (base == 16 && *s >= 'a' && *s <= 'f') d = static_cast<unsigned>(*s - 'a' + 10);
    else if (base == 16 && *s >= 'A' && *s <= 'F') d = static_cast<unsigned>(*s - 'A' + 10);
    else break;
    if (v > (UINT64_MAX - d) / base) return false;
    v = v * base + d;
  }
  if (*s && suffixes && base == 10) {
    unsigned shift = 0;
    switch (*s | 0x20) {
      case 'k': shift = 10; break;
      case 'm': shift = 20; break;
      case 'g': shift = 30; break;
      case 't': shift = 40; break;
      default: return false;
    }
    if (s[1] && !((s[1] | 0x20) == 'b' && !s[2]) && !((s[1] | 0x20) == 'i' && (s[2] | 0x20) == 'b' && !s[3]))
      return false;
    if (v > (UINT64_MAX >> shift)) return false;
    v <<= shift;
    s = "";
  }
  if (*s) return false;
  *out = v;
  return true;
}

bool parse_bool(const char *s, bool *out) {
  const char *yes[] = {"1", "true", "yes", "on"}, *no[] = {"0", "false", "no", "off", ""};
  for (const char *y : yes)
    if (strcasecmp(s, y) == 0) return *out = true, true;
  for (const char *n : no)
    if (strcasecmp(s, n) == 0) return *out = false, true;
  return false;
}

// Expand %p (pid), %e (program name) and %% into out. False if it does not fit.
bool expand_path(const char *in, char *out, size_t cap) {
  size_t n = 0;
  auto put = [&](const char *s) {
    for (; *s; ++s) {
      if (n + 1 >= cap) return false;
      out[n++] = *s;
    }
    return true;
  };
  for (; *in; ++in) {
    char one[2] = {*in, 0};
    if (*in == '%' && in[1] == 'p') {
      Msg m;
      m.dec(static_cast<uint64_t>(os::getpid_cached()));
      if (!put(m.str())) return false;
      ++in;
    } else if (*in == '%' && in[1] == 'e') {
      const char *name = program_invocation_short_name ? program_invocation_short_name : "program";
      if (!put(name)) return false;
      ++in;
    } else if (*in == '%' && in[1] == '%') {
      if (!put("%")) return false;
      ++in;
    } else if (!put(one)) {
      return false;
    }
  }
  out[n] = 0;
  return true;
}

const OptionRow &row(const char *name) {
  for (const auto &r : kTable)
    if (strcmp(r.name, name) == 0) return r;
  return kTable[0];
}

uint64_t size_option(const char *name) {
  const OptionRow &r = row(name);
  uint64_t v = 0, dflt = 0;
  parse_u64(r.default_value, &dflt, true);
  const char *s = os::getenv_raw(name);
  if (!s || !*s) return dflt;
  if (!parse_u64(s, &v, r.kind == kSize)) {
    warn(name, s, "not a number");
    return dflt;
  }
  if (v < r.min || v > r.max) {
    warn(name, s, "out of range");
    return dflt;
  }
  if (r.kind == kAddress && v % 4096) {
    warn(name, s, "not page aligned");
    return dflt;
  }
  return v;
}

bool bool_option(const char *name) {
  bool v = false;
  parse_bool(row(name).default_value, &v);
  const char *s = os::getenv_raw(name);
  if (s && !parse_bool(s, &v)) {
    warn(name, s, "not a boolean (1/0, yes/no, on/off, true/false)");
    parse_bool(row(name).default_value, &v);
  }
  return v;
}

// A variable whose value is one of names[0..2] (names[0] the default): its index.
int choice_option(const char *name, const char *const (&names)[3], const char *why) {
  const char *v = os::getenv_raw(name);
  if (!v || !*v) return 0;
  for (int i = 0; i < 3; ++i)
    if (strcasecmp(v, names[i]) == 0) return i;
  warn(name, v, why);
  return 0;
}

}  // namespace

void options_load(Options *o) {
  memset(o, 0, sizeof *o);
  if (os::secure_mode()) {  // setuid/setgid: read nothing, persist nothing
    o->secure = true;
    return;
  }
  const char *file = os::getenv_raw("PERSIST_FILE");
  if (!file || !*file) file = row("PERSIST_FILE").default_value;
  if (!expand_path(file, o->file, sizeof o->file)) {
    warn("PERSIST_FILE", file, "too long");
    expand_path(row("PERSIST_FILE").default_value, o->file, sizeof o->file);
  }
  // Unset means "where the heap is" for an existing heap (the core's default for a new one):
  // passing the default address would move every heap created elsewhere.
  if (const char *a = os::getenv_raw("PERSIST_ADDR"); a && *a) o->addr = size_option("PERSIST_ADDR");
  o->max = size_option("PERSIST_MAX");
  o->verbose = bool_option("PERSIST_VERBOSE");
  o->strict = bool_option("PERSIST_STRICT");
  o->keep = bool_option("PERSIST_KEEP");
  o->relocate = PERSIST_RELOCATE_REWRITE;
  if (const char *r = os::getenv_raw("PERSIST_RELOCATE"); r && *r) {
    if (strcasecmp(r, "refuse") == 0 || strcasecmp(r, "readonly") == 0) o->relocate = PERSIST_RELOCATE_REFUSE;
    else if (strcasecmp(r, "rewrite") != 0) warn("PERSIST_RELOCATE", r, "not one of rewrite, refuse, readonly");
    if (strcasecmp(r, "readonly") == 0)
      os::write_stderr("libpersist: PERSIST_RELOCATE=readonly is for tools (a running program needs a "
                       "writable heap): treated as refuse\n");
  }
  o->sync = kSyncNever;
  if (const char *v = os::getenv_raw("PERSIST_SYNC"); v && *v) {
    uint64_t ms = 0;
    const OptionRow &r = row("PERSIST_SYNC");
    if (strcasecmp(v, "exit") == 0) o->sync = kSyncExit;
    else if (strcasecmp(v, "never") == 0) o->sync = kSyncNever;
    else if (parse_u64(v, &ms, false) && ms >= r.min && ms <= r.max) o->sync = static_cast<int>(ms);
    else warn("PERSIST_SYNC", v, "not never, exit, or milliseconds from 1 to 3600000");
  }
  o->sites = 0;
  if (const char *v = os::getenv_raw("PERSIST_SITES"); v && *v) {
    uint64_t bytes = 0;
    const OptionRow &r = row("PERSIST_SITES");
    bool on = false;  // a number is an interval ("1": every allocation), on/yes/true the default
    if ((v[0] < '0' || v[0] > '9') && parse_bool(v, &on)) o->sites = on ? kSitesDefaultInterval : 0;
    else if (strcmp(v, "0") == 0) o->sites = 0;
    else if (parse_u64(v, &bytes, true) && bytes >= r.min && bytes <= r.max) o->sites = bytes;
    else warn("PERSIST_SITES", v, "not off, on, or a sampling interval in bytes from 1 to 1T");
  }
  o->gc = choice_option("PERSIST_GC", kGcNames, "not one of auto, open, never");
  o->on_busy = choice_option("PERSIST_ON_BUSY", kBusyNames, "not one of volatile, wait, fail");
  o->images = choice_option("PERSIST_IMAGES", kImageNames, "not one of fixed, rewrite, keep");
}

void options_print(const Options &o) {
  Msg m;
  m.add("libpersist: PERSIST_FILE=").add(o.file).add(" PERSIST_ADDR=").hex(o.addr)
      .add(" PERSIST_MAX=").dec(o.max).add(" PERSIST_STRICT=").dec(o.strict)
      .add(" PERSIST_ON_BUSY=").add(kBusyNames[o.on_busy]).add(" PERSIST_GC=")
      .add(kGcNames[o.gc]).add(" PERSIST_KEEP=").dec(o.keep).add(" PERSIST_SYNC=");
  if (o.sync == kSyncExit) m.add("exit");
  else if (o.sync == kSyncNever) m.add("never");
  else m.dec(static_cast<uint64_t>(o.sync)).add("ms");
  m.add(" PERSIST_RELOCATE=").add(o.relocate == PERSIST_RELOCATE_REWRITE ? "rewrite" : "refuse");
  m.add(" PERSIST_IMAGES=").add(kImageNames[o.images]);
  m.add(" PERSIST_SITES=");
  if (o.sites) m.dec(o.sites);
  else m.add("off");
  m.add(" PERSIST_VERBOSE=1\n");
  os::write_stderr(m.str(), m.size());
}

}  // namespace persist::shim
