/* sites_e2e.c — the program of the PERSIST_SITES end-to-end test (sites_e2e.py). Run under the
 * preload shim with PERSIST_SITES=<interval>: three functions allocate 50 %, 30 % and 20 % of
 * TOTAL bytes (default 48 MiB) in blocks of cycling sizes (small ones, which sampling promotes to
 * spans of their own, large ones, and one huge block in alloc_b), and keep them all live:
 *   alloc_a's blocks are chained from root "a", alloc_b's from root "b": reachable;
 *   alloc_c's blocks are chained from a local variable only: no root reaches them (a leak).
 * Prints one line per function, "NAME BYTES BLOCKS VARIANCE": what it allocated and the variance
 * of the sampling estimate of its bytes, sum(s^2 (1 - p) / p) with p = 1 - exp(-s / interval),
 * for the test's tolerance. Exit: 0 ok, 2 no persistent heap, 3 out of memory. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "persist.h"

static const size_t kSizes[] = {48, 200, 1000, 3000, 9000, 20000, 70000};
#define NSIZES (sizeof kSizes / sizeof kSizes[0])

struct tally {
  const char *name;
  unsigned long long bytes, blocks;
  double var;
};

static double interval;

static void count(struct tally *t, size_t s) {
  double p = -expm1(-(double)s / interval);
  t->bytes += s, t->blocks += 1;
  t->var += (double)s * (double)s * (1 - p) / p;
}

/* Each block starts with the pointer to the previous one: a chain. */
static void *fill(void *p, size_t n, void *prev, int byte) {
  if (!p) exit(3);
  memset(p, byte, n);
  memcpy(p, &prev, sizeof prev);
  return p;
}

__attribute__((noinline)) void *alloc_a(size_t n, void *prev) { return fill(malloc(n), n, prev, 0x11); }
__attribute__((noinline)) void *alloc_b(size_t n, void *prev) { return fill(malloc(n), n, prev, 0x22); }
__attribute__((noinline)) void *alloc_c(size_t n, void *prev) { return fill(malloc(n), n, prev, 0x33); }

/* Allocates about `budget` more bytes through fn (starting with a block of `first` bytes when
 * non-zero), chained onto `head`; returns the new head. */
static void *run(void *(*fn)(size_t, void *), unsigned long long budget, struct tally *t, void *head,
                 size_t first) {
  unsigned long long done = 0;
  if (first) head = fn(first, head), count(t, first), done += first;
  for (unsigned i = 0; done < budget; ++i) {
    size_t s = kSizes[i % NSIZES];
    head = fn(s, head);
    count(t, s);
    done += s;
  }
  return head;
}

int main(int argc, char **argv) {
  unsigned long long total = argc > 1 ? strtoull(argv[1], NULL, 0) : 48ull << 20;
  const char *iv = getenv("PERSIST_SITES");
  interval = iv ? strtod(iv, NULL) : 0;
  if (!(interval > 0)) {
    fprintf(stderr, "sites_e2e: PERSIST_SITES must be an interval in bytes\n");
    return 2;
  }
  persist_stats_t st;
  if (!persist_default_heap() || persist_heap_stats(persist_default_heap(), &st) != 0 || !st.persistent) {
    fprintf(stderr, "sites_e2e: no persistent default heap\n");
    return 2;
  }
  void **ra = persist_root("a", sizeof(void *)), **rb = persist_root("b", sizeof(void *));
  if (!ra || !rb) return 3;
  struct tally a = {"alloc_a", 0, 0, 0}, b = {"alloc_b", 0, 0, 0}, c = {"alloc_c", 0, 0, 0};
  /* In rounds, interleaved, so that the three see the same phases of the heap. alloc_b's first
   * round starts with a huge block of 6 MiB, part of its share. */
  const unsigned rounds = 16;
  const size_t huge = total * 3 / 10 > (12u << 20) ? 6u << 20 : 0;
  void *ha = NULL, *hb = NULL, *hc = NULL;
  for (unsigned r = 0; r < rounds; ++r) {
    ha = run(alloc_a, total * 5 / 10 / rounds, &a, ha, 0);
    hb = run(alloc_b, (total * 3 / 10 - huge) / rounds, &b, hb, r == 0 ? huge : 0);
    hc = run(alloc_c, total * 2 / 10 / rounds, &c, hc, 0);
  }
  *ra = ha, *rb = hb;
  printf("%s %llu %llu %.6e\n", a.name, a.bytes, a.blocks, a.var);
  printf("%s %llu %llu %.6e\n", b.name, b.bytes, b.blocks, b.var);
  printf("%s %llu %llu %.6e\n", c.name, c.bytes, c.blocks, c.var);
  fflush(stdout);
  /* hc's chain stays allocated until exit, but no root reaches it. */
  __asm__ volatile("" : : "r"(hc) : "memory");
  return 0;
}
