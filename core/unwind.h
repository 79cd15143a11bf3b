// unwind.h — short backtraces for allocation-site sampling, through libunwind.
//
// libunwind (Debian's libunwind8) is loaded with dlopen when site recording is enabled, so that
// libpersist.so itself needs nothing but libc. Two ways to walk: unw_step, which allocates
// nothing and needs no set-up, but blocks and unblocks signals (two system calls) per frame,
// about 4 us a backtrace; and libunwind's fast path, unw_backtrace, tens of nanoseconds with its
// per-thread cache of frame layouts, which costs about 90 us to set up in each thread (and one
// small allocation by ld.so for libunwind's thread-local storage). A thread takes its first
// backtraces with unw_step and switches once it has taken enough for the cache to pay: threads
// that sample little (short-lived ones) never pay for it, and those that sample a lot pay for it
// once. The switch happens inside a sample (sites.h: tl_sampling keeps ld.so's allocation from
// being sampled in turn).
#pragma once

#include <cstdint>

#include "msg.h"

namespace persist {

// Load libunwind (once; thread-safe). Returns true when backtraces are available; otherwise
// `why` says what is missing. Loading calls dlopen, which allocates: never call it from inside
// an allocation.
bool unwind_load(Msg *why);

// Return addresses of the current call stack, innermost first, skipping frames inside the
// address range [skip_lo, skip_hi) while they lead the stack. At most `max` (<= 32). Allocates
// nothing but once per thread, when it sets up unw_backtrace (above). 0 when libunwind is not
// loaded.
int unwind_backtrace(uintptr_t *pcs, int max, uintptr_t skip_lo, uintptr_t skip_hi);

}  // namespace persist
