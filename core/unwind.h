// unwind.h — short backtraces for allocation-site sampling, through libunwind.
//
// libunwind (Debian's libunwind8) is loaded with dlopen when site recording is enabled, so that
// libpersist.so itself needs nothing but libc. The walk uses libunwind's local cursor
// (unw_init_local / unw_step): unlike unw_backtrace's per-thread trace cache, which lives in a
// dynamically allocated TLS block (ld.so mallocs it in every new thread), it allocates nothing.
#pragma once

#include <cstdint>

#include "msg.h"

namespace persist {

// Load libunwind (once; thread-safe). Returns true when backtraces are available; otherwise
// `why` says what is missing. Loading calls dlopen, which allocates: never call it from inside
// an allocation.
bool unwind_load(Msg *why);

// Return addresses of the current call stack, innermost first, skipping frames inside the
// address range [skip_lo, skip_hi) while they lead the stack. At most `max`. Never allocates.
// 0 when libunwind is not loaded.
int unwind_backtrace(uintptr_t *pcs, int max, uintptr_t skip_lo, uintptr_t skip_hi);

}  // namespace persist
