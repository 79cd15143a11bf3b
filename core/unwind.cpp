// unwind.cpp — see unwind.h.
#include "unwind.h"

#include <dlfcn.h>

#define UNW_LOCAL_ONLY
#include <libunwind.h>  // types and register numbers only: the functions come from dlopen

#include <atomic>

#include "heap.h"

namespace persist {
namespace {

struct Unwinder {
  int (*getcontext)(unw_context_t *);
  int (*init_local)(unw_cursor_t *, unw_context_t *);
  int (*step)(unw_cursor_t *);
  int (*get_reg)(unw_cursor_t *, unw_regnum_t, unw_word_t *);
};

Unwinder g_unw;
std::atomic<int> g_state{0};  // 0 not tried, 1 loaded, -1 unavailable
Lock g_load_lock;

template <class T>
bool sym(void *lib, const char *name, T *out) {
  *out = reinterpret_cast<T>(dlsym(lib, name));
  return *out != nullptr;
}

int step_walk(void **raw, int max) {
  unw_context_t ctx;
  unw_cursor_t cur;
  if (g_unw.getcontext(&ctx) != 0 || g_unw.init_local(&cur, &ctx) != 0) return 0;
  int n = 0;
  while (n < max && g_unw.step(&cur) > 0) {
    unw_word_t ip = 0;
    if (g_unw.get_reg(&cur, UNW_REG_IP, &ip) != 0 || ip == 0) break;
    raw[n++] = reinterpret_cast<void *>(ip);
  }
  return n;
}

}  // namespace

bool unwind_load(Msg *why) {
  Guard g(g_load_lock);
  if (int st = g_state.load(std::memory_order_acquire)) {
    if (st < 0) why->add("libunwind (libunwind.so.8) could not be loaded");
    return st > 0;
  }
  // RTLD_LOCAL: its _Unwind_* symbols must not take the place of libgcc's for the program.
  void *lib = dlopen("libunwind.so.8", RTLD_NOW | RTLD_LOCAL);
  Unwinder u{};
  if (!lib || !sym(lib, "_Ux86_64_getcontext", &u.getcontext) ||
      !sym(lib, "_ULx86_64_init_local", &u.init_local) || !sym(lib, "_ULx86_64_step", &u.step) ||
      !sym(lib, "_ULx86_64_get_reg", &u.get_reg)) {
    const char *err = dlerror();
    why->add("libunwind (libunwind.so.8) could not be loaded");
    if (err) why->add(": ").add(err);
    g_state.store(-1, std::memory_order_release);
    return false;
  }
  g_unw = u;
  g_state.store(1, std::memory_order_release);
  return true;
}

int unwind_backtrace(uintptr_t *pcs, int max, uintptr_t skip_lo, uintptr_t skip_hi) {
  if (g_state.load(std::memory_order_acquire) != 1) return 0;
  constexpr int kSkipMax = 8;  // the allocator's own frames: five or six (each costs a step)
  void *raw[32 + kSkipMax];
  if (max > 32) max = 32;
  int n = step_walk(raw, max + kSkipMax), first = 0;
  while (first < n && reinterpret_cast<uintptr_t>(raw[first]) - skip_lo < skip_hi - skip_lo) ++first;
  int out = 0;
  for (int i = first; i < n && out < max; ++i) pcs[out++] = reinterpret_cast<uintptr_t>(raw[i]);
  return out;
}

}  // namespace persist
