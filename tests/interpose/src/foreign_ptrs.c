/* foreign_ptrs.c — pointers libpersist did not allocate reach its free/realloc/
 * malloc_usable_size (issue 3 point 3): blocks from a library that calls glibc's own malloc
 * (foreign_lib.c). They must be recognised by range and handed to glibc, never corrupt the
 * heap, and realloc must move them into the heap with their contents.
 * Usage: foreign_ptrs LIBRARY. Exit status 0 when every check holds. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (argc != 2) return 64;
  void *lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
  if (!lib) return printf("dlopen: %s\n", dlerror()), 1;
  void *(*lib_malloc)(size_t) = (void *(*)(size_t))dlsym(lib, "lib_malloc");
  void *(*lib_calloc)(size_t, size_t) = (void *(*)(size_t, size_t))dlsym(lib, "lib_calloc");
  void *(*lib_realloc)(void *, size_t) = (void *(*)(void *, size_t))dlsym(lib, "lib_realloc");
  void *(*default_heap)(void) = (void *(*)(void))dlsym(RTLD_DEFAULT, "persist_default_heap");
  int (*contains)(const void *, const void *) = (int (*)(const void *, const void *))dlsym(RTLD_DEFAULT, "persist_contains");
  void *heap = default_heap ? default_heap() : NULL;
  int foreign_seen = 0;

  for (int round = 0; round < 200; ++round) {
    size_t n = (size_t)(round * 37 % 5000) + 1;
    unsigned char *p = lib_malloc(n);
    CHECK(p != NULL, "lib_malloc(%zu)", n);
    if (!p) continue;
    if (heap && !contains(heap, p)) ++foreign_seen;
    memset(p, round & 0xff, n);
    CHECK(malloc_usable_size(p) >= n, "malloc_usable_size(foreign block of %zu) = %zu", n, malloc_usable_size(p));
    if (round % 3 == 0) {
      free(p);  /* a foreign free */
    } else {
      size_t m = n * 3 + 100;
      unsigned char *q = realloc(p, m);  /* a foreign realloc: moves it */
      CHECK(q != NULL, "realloc(foreign, %zu)", m);
      if (!q) continue;
      for (size_t k = 0; k < n; ++k)
        if (q[k] != (unsigned char)(round & 0xff)) {
          CHECK(0, "realloc(foreign) lost byte %zu", k);
          break;
        }
      if (heap) CHECK(contains(heap, q), "realloc of a foreign block did not move it into the heap");
      memset(q, 1, m);
      free(q);
    }
    unsigned char *z = lib_calloc(n, 1);
    free(z);
    void *r = lib_realloc(NULL, n);
    free(r);
  }
  /* And the other way round, inside our own heap, everything still works. */
  for (int i = 0; i < 10000; ++i) free(malloc((size_t)(i % 3000) + 1));
  printf("foreign blocks: %s; %d failures\n", heap ? (foreign_seen ? "seen" : "none seen") : "no libpersist", failures);
  if (heap && !foreign_seen) printf("(the library's glibc malloc did not produce foreign blocks: the test proves nothing)\n");
  dlclose(lib);
  return failures || (heap && !foreign_seen) ? 1 : 0;
}
