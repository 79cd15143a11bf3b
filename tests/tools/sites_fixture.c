/* sites_fixture.c — a program with known functions for the symbolizer test (sites_test.cpp),
 * built as a PIE and as a non-PIE executable: the test finds the functions' addresses with nm and
 * checks that tools/symbols.cpp names return addresses inside them. fx_delta lives in
 * sites_fixture_cxx.cpp (a C++ name, demangled). Not meant to be run for anything useful. */
#include <stdio.h>
#include <stdlib.h>

int fx_delta_call(int n); /* sites_fixture_cxx.cpp */

__attribute__((noinline)) void *fx_alpha(size_t n) {
  void *p = malloc(n);
  __asm__ volatile("" ::: "memory");
  return p;
}

__attribute__((noinline)) void *fx_beta(size_t n) {
  void *p = calloc(1, n);
  __asm__ volatile("" ::: "memory");
  return p;
}

/* A function with internal linkage: in .symtab only (never in .dynsym). */
__attribute__((noinline)) static void *fx_gamma_static(size_t n) {
  void *p = malloc(n + 1);
  __asm__ volatile("" ::: "memory");
  return p;
}

int main(int argc, char **argv) {
  (void)argv;
  void *a = fx_alpha(16), *b = fx_beta(32), *c = fx_gamma_static(64);
  printf("%p %p %p %d\n", a, b, c, fx_delta_call(argc));
  free(a), free(b), free(c);
  return 0;
}
