// crashpoint.cpp — see crashpoint.h (compiled to nothing outside the crash-test build).
#include "crashpoint.h"

#ifdef PERSIST_CRASH_POINTS
#include <unistd.h>

#include <atomic>
#include <cstdlib>

#include "msg.h"
#include "platform.h"

namespace persist {
namespace {

std::atomic<uint64_t> g_passages{0};
std::atomic<int64_t> g_crash_at{-1};  // -1: not read yet; 0: never

int64_t crash_at() {
  int64_t v = g_crash_at.load(std::memory_order_relaxed);
  if (v >= 0) return v;
  const char *s = os::getenv_raw("PERSIST_CRASH_AT");
  v = s ? std::strtoll(s, nullptr, 10) : 0;
  if (v < 0) v = 0;
  g_crash_at.store(v, std::memory_order_relaxed);
  if (os::getenv_raw("PERSIST_CRASH_REPORT")) {
    std::atexit([] {
      Msg m;
      m.add("crashpoints: ").dec(g_passages.load()).add("\n");
      os::write_stderr(m.str(), m.size());
    });
  }
  return v;
}

}  // namespace

void crash_point(const char *name) {
  int64_t at = crash_at();
  uint64_t n = g_passages.fetch_add(1, std::memory_order_relaxed) + 1;
  if (at > 0 && n == static_cast<uint64_t>(at)) {
    Msg m;
    m.add("crashpoint ").dec(n).add(": ").add(name).add("\n");
    os::write_stderr(m.str(), m.size());
    _exit(77);
  }
}

uint64_t crash_point_arm(int64_t at) {
  crash_at();  // the environment's setting is read (and replaced) once
  g_crash_at.store(at < 0 ? 0 : at, std::memory_order_relaxed);
  return g_passages.exchange(0, std::memory_order_relaxed);
}

}  // namespace persist
#endif
