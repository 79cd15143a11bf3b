// unwind.cpp — see unwind.h.
#include "unwind.h"

#include <dlfcn.h>

#include <atomic>

#include "heap.h"

namespace persist {
namespace {

using BacktraceFn = int (*)(void **, int);

BacktraceFn g_backtrace;
__thread int tl_ready;  // unwind_thread_setup ran in this thread
std::atomic<int> g_state{0};  // 0 not tried, 1 loaded, -1 unavailable
Lock g_load_lock;

}  // namespace

bool unwind_load(Msg *why) {
  Guard g(g_load_lock);
  if (int st = g_state.load(std::memory_order_acquire)) {
    if (st < 0) why->add("libunwind (libunwind.so.8) could not be loaded");
    return st > 0;
  }
  // RTLD_LOCAL: its _Unwind_* symbols must not take the place of libgcc's for the program.
  void *lib = dlopen("libunwind.so.8", RTLD_NOW | RTLD_LOCAL);
  BacktraceFn bt = lib ? reinterpret_cast<BacktraceFn>(dlsym(lib, "unw_backtrace")) : nullptr;
  if (!bt) {
    const char *err = dlerror();
    why->add("libunwind (libunwind.so.8) could not be loaded");
    if (err) why->add(": ").add(err);
    g_state.store(-1, std::memory_order_release);
    return false;
  }
  g_backtrace = bt;
  g_state.store(1, std::memory_order_release);
  return true;
}

void unwind_thread_setup() {
  if (tl_ready || g_state.load(std::memory_order_acquire) != 1) return;
  void *pc[2];
  g_backtrace(pc, 2);  // allocates libunwind's thread-local storage and trace cache
  tl_ready = 1;
}

int unwind_backtrace(uintptr_t *pcs, int max, uintptr_t skip_lo, uintptr_t skip_hi) {
  if (!tl_ready || g_state.load(std::memory_order_acquire) != 1) return 0;
  constexpr int kSkipMax = 16;  // the allocator's own frames: a handful
  void *raw[32 + kSkipMax];
  if (max > 32) max = 32;
  int n = g_backtrace(raw, max + kSkipMax), first = 0;
  while (first < n && reinterpret_cast<uintptr_t>(raw[first]) - skip_lo < skip_hi - skip_lo) ++first;
  int out = 0;
  for (int i = first; i < n && out < max; ++i) pcs[out++] = reinterpret_cast<uintptr_t>(raw[i]);
  return out;
}

}  // namespace persist
