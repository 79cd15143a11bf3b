/* leaker.c — an unaware program (no persist.h) for the growth test: it allocates blocks of mixed
 * sizes, frees about half, leaks the rest, and exits. Under the shim, every run leaves ~1,500
 * small blocks, a few large ones and (every run) one 5 MiB block in the heap file; reclaiming at
 * open must keep the file from growing run over run. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(void) {
  uint64_t s = (uint64_t)getpid() * 0x9E3779B97F4A7C15ull | 1;
  enum { N = 3000 };
  static void *keep[N];
  size_t total = 0;
  for (int i = 0; i < N; ++i) {
    s ^= s << 13, s ^= s >> 7, s ^= s << 17;
    size_t n = (i % 500 == 0) ? 150000 + s % 100000 : 8 + s % 2000;
    keep[i] = malloc(n);
    if (!keep[i]) return 1;
    memset(keep[i], i, n);
    total += n;
  }
  for (int i = 0; i < N; i += 2) free(keep[i]); /* free half, leak the rest */
  char *huge = malloc(5u << 20);                /* leaked as well */
  if (!huge) return 1;
  memset(huge, 1, 5u << 20);
  char *buf = NULL;
  for (size_t n = 16; n < (1u << 20); n *= 3) { /* a realloc chain, leaked at the end */
    buf = realloc(buf, n);
    if (!buf) return 1;
    memset(buf, 2, n);
  }
  printf("leaked about %zu bytes\n", total / 2 + (5u << 20));
  return 0;
}
