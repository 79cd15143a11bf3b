/* foreign_lib.c — a library whose blocks come from glibc's heap, not libpersist's (PRELOAD.md
 * §7): it calls glibc's own malloc/calloc/realloc, looked up in libc.so.6 itself. (A library
 * loaded with RTLD_DEEPBIND used to be the way to get them; the shim now drops that flag,
 * interpose/dlopen.cpp.) The foreign-pointer test frees and reallocs these blocks in the program. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>

static void *libc_fn(const char *name) {
  void *libc = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
  void *f = libc ? dlsym(libc, name) : NULL;
  if (!f) abort();
  return f;
}

void *lib_malloc(size_t n) { return ((void *(*)(size_t))libc_fn("malloc"))(n); }
void *lib_calloc(size_t n, size_t size) { return ((void *(*)(size_t, size_t))libc_fn("calloc"))(n, size); }
void *lib_realloc(void *p, size_t n) { return ((void *(*)(void *, size_t))libc_fn("realloc"))(p, n); }
