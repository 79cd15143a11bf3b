// sites.h — recording allocation sites (PERSIST_SITES; DESIGN.md "Allocation sites").
//
// Sampling: each thread heap counts `sample_left` down by the bytes it is asked for (one
// subtraction and one predictable branch on the fast paths); when it drops below zero, that
// allocation is sampled and the next distance is drawn from an exponential distribution with mean
// `sites_interval`, so samples form a Poisson process over allocated bytes (as in jemalloc's and
// tcmalloc's heap profilers) and an allocation of s bytes is sampled with p = 1 - exp(-s/interval).
// With recording off the counter starts at INT64_MAX and never runs out.
//
// A sampled block gets a span of its own carrying its SampleRecord (layout.h; alloc.cpp), and its
// call stack is interned in the heap's site table here: frames as (module, offset) with the
// module's build-id, so that `persist sites` can name them in a later run despite ASLR. Recording
// allocates nothing: libunwind's local cursor on the stack, lookup tables in anonymous memory.
#pragma once

#include <cstdint>

#include "heap.h"

namespace persist {

constexpr uint32_t kNoSite = UINT32_MAX;

// Turn recording on for h with a mean interval of `interval` bytes (0: off). Loads libunwind and
// creates the site table if the heap has none; on failure recording stays off and `why` says why.
// Threads already allocating pick the interval up with their next draw (see sites.cpp).
int sites_enable(Heap *h, uint64_t interval, Msg *why);

// The next sampling distance for th (INT64_MAX when recording is off).
int64_t sites_draw(Heap *h, ThreadHeap *th);

// Set while this thread records a site: an allocation made meanwhile (there is none; a guard
// against whatever libunwind might do in another version) is not sampled in turn.
extern __thread int tl_sampling;

// The caller's call stack interned in the site table: its index, or kNoSite when it could not be
// recorded (no backtrace, table full). Takes sites_lock; call with no other lock held.
uint32_t sites_record(Heap *h);

}  // namespace persist
