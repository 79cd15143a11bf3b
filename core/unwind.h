// unwind.h — short backtraces for allocation-site sampling, through libunwind.
//
// libunwind (Debian's libunwind8) is loaded with dlopen when site recording is enabled, so that
// libpersist.so itself needs nothing but libc. The walk is libunwind's local cursor (unw_init_local
// and unw_step over a context on the stack): it allocates nothing, in any thread, at any time.
// libunwind's faster unw_backtrace is not used, although a backtrace through its per-thread
// cache takes tens of nanoseconds against about 4 us here (unw_step blocks and unblocks signals
// around libunwind's global cache, two system calls a frame): its cache sits in libunwind's
// thread-local storage, which ld.so allocates with malloc the first time each thread touches it
// (a malloc from inside the recorder, re-entering the allocator), and setting it up costs each
// thread about 90 us (a program starting a thousand threads a second lost a third of its speed).
#pragma once

#include <cstdint>

#include "msg.h"

namespace persist {

// Load libunwind (once; thread-safe). Returns true when backtraces are available; otherwise
// `why` says what is missing. Loading calls dlopen, which allocates: never call it from inside
// an allocation.
bool unwind_load(Msg *why);

// Return addresses of the current call stack, innermost first, skipping frames inside the
// address range [skip_lo, skip_hi) while they lead the stack. At most `max` (<= 32). Never
// allocates. 0 when libunwind is not loaded.
int unwind_backtrace(uintptr_t *pcs, int max, uintptr_t skip_lo, uintptr_t skip_hi);

}  // namespace persist
