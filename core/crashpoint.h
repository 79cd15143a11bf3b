// crashpoint.h — crash-point injection for the crash-consistency tests.
//
// PERSIST_CRASH_POINT("name") marks a step after which the process may die: every commit point,
// and every step of recovery, growth, relocation and collection. In the test build of the core
// (CMake target persist_core_crash, -DPERSIST_CRASH_POINTS) the process calls _exit(77) at the
// Nth passage through any point when PERSIST_CRASH_AT=N; everything stored before stays in the
// page cache, exactly as after kill -9. PERSIST_CRASH_REPORT=1 prints the number of passages at
// exit, so a test can walk N = 1 .. total. In every other build the macro is empty.
#pragma once

#include <cstdint>

namespace persist {
#ifdef PERSIST_CRASH_POINTS
void crash_point(const char *name);
// For tests that fork the process to crash (rather than exec it with PERSIST_CRASH_AT): from now
// on, die at the `at`-th passage (0: never), counting from zero. Returns the passages so far.
uint64_t crash_point_arm(int64_t at);
#define PERSIST_CRASH_POINT(name) ::persist::crash_point(name)
#else
#define PERSIST_CRASH_POINT(name) ((void)0)
#endif
}  // namespace persist
