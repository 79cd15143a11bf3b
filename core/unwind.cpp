// unwind.cpp — see unwind.h.
#include "unwind.h"

#include <dlfcn.h>

#define UNW_LOCAL_ONLY
#include <libunwind.h>  // types and register numbers only: the functions come from dlopen

#include <atomic>

#include "heap.h"

namespace persist {
namespace {

using GetContextFn = int (*)(unw_context_t *);
using InitLocalFn = int (*)(unw_cursor_t *, unw_context_t *);
using StepFn = int (*)(unw_cursor_t *);
using GetRegFn = int (*)(unw_cursor_t *, unw_regnum_t, unw_word_t *);

struct Unwinder {
  GetContextFn getcontext;
  InitLocalFn init_local;
  StepFn step;
  GetRegFn get_reg;
};

Unwinder g_unw;
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
  Unwinder u{};
  if (lib) {
    u.getcontext = reinterpret_cast<GetContextFn>(dlsym(lib, "_Ux86_64_getcontext"));
    u.init_local = reinterpret_cast<InitLocalFn>(dlsym(lib, "_ULx86_64_init_local"));
    u.step = reinterpret_cast<StepFn>(dlsym(lib, "_ULx86_64_step"));
    u.get_reg = reinterpret_cast<GetRegFn>(dlsym(lib, "_ULx86_64_get_reg"));
  }
  if (!lib || !u.getcontext || !u.init_local || !u.step || !u.get_reg) {
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
  unw_context_t ctx;
  unw_cursor_t cur;
  if (g_unw.getcontext(&ctx) != 0 || g_unw.init_local(&cur, &ctx) != 0) return 0;
  int n = 0;
  bool leading = true;
  while (n < max && g_unw.step(&cur) > 0) {
    unw_word_t ip = 0;
    if (g_unw.get_reg(&cur, UNW_REG_IP, &ip) != 0 || ip == 0) break;
    if (leading && ip >= skip_lo && ip < skip_hi) continue;  // the allocator's own frames
    leading = false;
    pcs[n++] = ip;
  }
  return n;
}

}  // namespace persist
