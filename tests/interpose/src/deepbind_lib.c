/* deepbind_lib.c — a library the foreign-pointer test loads with RTLD_DEEPBIND: its own calls to
 * malloc/realloc bind to glibc (its dependencies come before the global scope), so the blocks it
 * returns come from glibc's heap, not libpersist's (PRELOAD.md §1, §7). */
#include <stdlib.h>
#include <string.h>

void *lib_malloc(size_t n) { return malloc(n); }
void *lib_calloc(size_t n, size_t size) { return calloc(n, size); }
void *lib_realloc(void *p, size_t n) { return realloc(p, n); }
