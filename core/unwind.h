// unwind.h — short backtraces for allocation-site sampling, through libunwind.
//
// libunwind (Debian's libunwind8) is loaded with dlopen when site recording is enabled, so that
// libpersist.so itself needs nothing but libc. Backtraces use its fast path, unw_backtrace, which
// keeps a per-thread cache of frame layouts (tens of nanoseconds a backtrace, against micro-
// seconds for a unw_step walk, which also blocks and unblocks signals with two system calls per
// frame). That cache lives in libunwind's thread-local storage, which ld.so allocates with malloc
// the first time a thread touches it: unwind_thread_setup() does that once per thread, when the
// thread's heap is created, so that taking a backtrace never allocates.
#pragma once

#include <cstdint>

#include "msg.h"

namespace persist {

// Load libunwind (once; thread-safe). Returns true when backtraces are available; otherwise
// `why` says what is missing. Loading calls dlopen, which allocates: never call it from inside
// an allocation.
bool unwind_load(Msg *why);

// Set up libunwind's per-thread state for the calling thread (once per thread; may allocate
// through ld.so). Call where a nested allocation is safe and is not itself sampled.
void unwind_thread_setup();

// Return addresses of the current call stack, innermost first, skipping frames inside the
// address range [skip_lo, skip_hi) while they lead the stack. At most `max` (<= 32). Never
// allocates once unwind_thread_setup() ran in this thread. 0 when libunwind is not loaded.
int unwind_backtrace(uintptr_t *pcs, int max, uintptr_t skip_lo, uintptr_t skip_hi);

}  // namespace persist
