// output.cpp — formatting helpers and the JSON writer shared by the subcommands (see tool.h).
#include <ctime>

#include "heapview.h"
#include "readers.h"
#include <cmath>

#include "tool.h"

namespace persist::tool {

std::string fmt_bytes(uint64_t bytes) {
  static const char *const kUnits[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  std::string s = std::to_string(bytes);
  if (bytes < 1024) return s;
  double v = static_cast<double>(bytes);
  int u = -1;
  while (v >= 1024 && u < 5) v /= 1024, ++u;
  char buf[32];
  snprintf(buf, sizeof buf, " (%.1f %s)", v, kUnits[u]);
  return s + buf;
}

std::string fmt_hex(uint64_t v) {
  char buf[24];
  snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
  return buf;
}

std::string fmt_uuid(const uint8_t uuid[16]) {
  std::string s;
  char buf[4];
  for (int i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) s += '-';
    snprintf(buf, sizeof buf, "%02x", uuid[i]);
    s += buf;
  }
  return s;
}

std::string fmt_time_ns(uint64_t ns) {
  if (ns == 0) return "-";
  time_t secs = static_cast<time_t>(ns / 1000000000u);
  struct tm tm;
  if (!gmtime_r(&secs, &tm)) return std::to_string(ns) + " ns";
  char buf[64];
  size_t n = strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  if (n == 0) return std::to_string(ns) + " ns";
  snprintf(buf + n, sizeof buf - n, ".%03uZ", static_cast<unsigned>(ns % 1000000000u / 1000000u));
  return buf;
}

std::string printable(const std::string &s) {
  std::string out;
  char buf[8];
  for (unsigned char c : s) {
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      out += static_cast<char>(c);
    } else {
      snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    }
  }
  return out;
}

std::string hex_string(const uint8_t *p, size_t n, bool spaced) {
  static const char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(n * 3);
  for (size_t i = 0; i < n; ++i) {
    if (spaced && i) out += ' ';
    out += kDigits[p[i] >> 4];
    out += kDigits[p[i] & 15];
  }
  return out;
}

std::string dotted_text(const uint8_t *p, size_t n) {
  std::string out(n, '.');
  for (size_t i = 0; i < n; ++i)
    if (p[i] >= 0x20 && p[i] < 0x7f) out[i] = static_cast<char>(p[i]);
  return out;
}

std::string fmt_pct(uint64_t part, uint64_t whole) {
  if (whole == 0) return "-";
  char buf[32];
  snprintf(buf, sizeof buf, "%.1f%%", 100.0 * static_cast<double>(part) / static_cast<double>(whole));
  return buf;
}

// ---- reports -----------------------------------------------------------------------------------

int report_unreadable(const char *path, int code, const Msg &why, bool json) {
  fprintf(stderr, "persist: %s\n", why.str());
  if (json) {
    Json j(stdout);
    j.begin_object();
    j.str("file", path);
    j.boolean("readable", false);
    j.str("error", why.str());
    j.snum("code", code);
    j.end_object();
  }
  return kExitUnreadable;
}

void Problems::add(const std::string &what) {
  if (list.size() < 16) list.push_back(what);
  ++count;
}

void Problems::add(const HeapView &v) {
  for (const std::string &s : v.problems()) add(s);
  count += v.problem_count() - v.problems().size();
}

void json_common(Json &j, const Source &src, const Problems &p) {
  j.str("file", src.path);
  j.boolean("readable", true);
  j.boolean("owner_live", src.owner_live);
  j.str("state", src.img.sb.state == kStateClean ? "clean" : "dirty");
  j.str("base", fmt_hex(src.img.sb.base));
  j.num("extent_bytes", src.img.sb.size);
  j.boolean("consistent", p.none());
  j.num("problems", p.count);  // as in `check`
  if (p.list.empty()) j.null("first_problem");
  else j.str("first_problem", p.list.front());
  j.begin_array("problem_list");
  for (const std::string &s : p.list) j.str(nullptr, s);
  j.end_array();
}

void warn_problems(const char *cmd, const Problems &p) {
  if (p.none()) return;
  for (const std::string &s : p.list) fprintf(stderr, "persist %s: damaged heap: %s\n", cmd, s.c_str());
  if (p.count > p.list.size())
    fprintf(stderr, "persist %s: ... %llu problems in all\n", cmd,
            static_cast<unsigned long long>(p.count));
  fprintf(stderr, "persist %s: the report covers the readable part only (see `persist check`)\n",
          cmd);
}

// ---- Json -------------------------------------------------------------------------------------

namespace {

// Heap contents are bytes, not UTF-8: each byte stands for the code point U+00XX (so a byte
// >= 0x80 is written as \u00XX-equivalent UTF-8 and nothing is lost or replaced).
std::string latin1_to_utf8(const std::string &s) {
  std::string out;
  out.reserve(s.size());
  for (unsigned char c : s) {
    if (c < 0x80) {
      out += static_cast<char>(c);
    } else {
      out += static_cast<char>(0xc0 | (c >> 6));
      out += static_cast<char>(0x80 | (c & 0x3f));
    }
  }
  return out;
}

}  // namespace

// The JSON writer is nlohmann::json (Debian's nlohmann-json3-dev), ordered so that keys come out
// in the order the subcommands add them (the documented order).
Json::~Json() {
  while (!open_.empty()) close();
  std::string text = doc_.dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
  fputs(text.c_str(), out_);
  fputc('\n', out_);
  fflush(out_);
}

void Json::add(const char *key, nlohmann::ordered_json v) {
  if (open_.empty()) {
    doc_ = std::move(v);
    return;
  }
  nlohmann::ordered_json &top = open_.back().value;
  if (top.is_array()) top.push_back(std::move(v));
  else top[key ? key : ""] = std::move(v);
}

void Json::close() {
  Frame f = std::move(open_.back());
  open_.pop_back();
  add(f.key.c_str(), std::move(f.value));
}

void Json::begin_object(const char *key) { open_.push_back({key ? key : "", nlohmann::ordered_json::object()}); }
void Json::end_object() { close(); }
void Json::begin_array(const char *key) { open_.push_back({key ? key : "", nlohmann::ordered_json::array()}); }
void Json::end_array() { close(); }
void Json::str(const char *key, const std::string &v) { add(key, latin1_to_utf8(v)); }
void Json::num(const char *key, uint64_t v) { add(key, v); }
void Json::snum(const char *key, int64_t v) { add(key, v); }
void Json::real(const char *key, double v) {
  if (!std::isfinite(v)) return add(key, nullptr);
  add(key, std::round(v * 100) / 100);
}
void Json::raw(const char *key, const std::string &json) {
  add(key, nlohmann::ordered_json::parse(json, nullptr, /*allow_exceptions=*/false));
}
void Json::boolean(const char *key, bool v) { add(key, v); }
void Json::null(const char *key) { add(key, nullptr); }

}  // namespace persist::tool
