/* ring.c — an aware program keeping a bounded live set, for the growth test (growth_ring.sh).
 * Root "ring" holds RING_N slots; replacement number s (s = 1, 2, ...) puts a new checksummed
 * record into slot (s-1) % RING_N: the record is filled, stored into the slot with one pointer
 * store (the commit point), then ring->seq becomes s and the old record is freed. Each run also
 * leaks garbage like an unaware program (stdio, scratch blocks), which reclaiming at open removes.
 *
 *   ring run R [PAUSE_US]  verify the ring (exit 3 on any loss or damage), then make R
 *                          replacements (PAUSE_US microseconds apart, default 200), then exit
 *   ring verify            verify and print "ring seq S records N bytes B"
 *
 * The verification is exact: given seq S, slot i must hold the record of the last replacement
 * s <= S aimed at it (none: NULL), except that the slot of replacement S+1 may already hold it
 * (killed between the store and seq = S+1). So a committed record that is missing, stale, or
 * damaged is found. Exit: 0 ok, 2 no persistent heap / usage, 3 damage. */
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "persist.h"

#define RING_N 64
#define RING_MAGIC 0x31474e4952545250ull /* "PRTRING1" */

struct rec {
  uint64_t seq;
  uint64_t len;
  uint64_t sum;
  unsigned char data[];
};

struct ring {
  uint64_t magic;
  uint64_t seq; /* replacements committed */
  uint64_t runs;
  struct rec *slot[RING_N];
};

static uint64_t rec_len(uint64_t seq) { /* bounded: at most ~150 KiB */
  uint64_t h = seq * 0x9E3779B97F4A7C15ull;
  return (seq % 16 == 0) ? 100000 + (h >> 40) % 50000 : (h >> 33) % 4000;
}

static uint64_t rec_sum(const struct rec *r) {
  uint64_t h = 1469598103934665603ull ^ r->seq ^ (r->len << 20);
  for (uint64_t i = 0; i < r->len; ++i) h = (h ^ r->data[i]) * 1099511628211ull;
  return h;
}

static int bad(const char *what, uint64_t slot, uint64_t a, uint64_t b) {
  fprintf(stderr, "ring: DAMAGE: slot %" PRIu64 ": %s (%" PRIu64 ", %" PRIu64 ")\n", slot, what, a,
          b);
  return 3;
}

static int verify(persist_heap_t *h, struct ring *g, int repair, uint64_t *records,
                  uint64_t *bytes) {
  uint64_t S = g->seq, in_flight = 0;
  *records = *bytes = 0;
  for (uint64_t i = 0; i < RING_N; ++i) {
    uint64_t expect = S >= i + 1 ? i + 1 + RING_N * ((S - (i + 1)) / RING_N) : 0;
    struct rec *r = __atomic_load_n(&g->slot[i], __ATOMIC_ACQUIRE);
    if (!r) {
      if (expect) return bad("committed record missing", i, expect, S);
      continue;
    }
    if (!persist_contains(h, r))
      return bad("pointer outside the heap", i, (uint64_t)(uintptr_t)r, 0);
    if (r->seq != expect) {
      if (r->seq == S + 1 && S % RING_N == i)
        in_flight = 1;
      else
        return bad("holds the wrong record (seq, expected)", i, r->seq, expect);
    }
    if (r->len != rec_len(r->seq)) return bad("length", i, r->len, rec_len(r->seq));
    if (persist_usable_size(h, r) < sizeof *r + r->len) return bad("block too small", i, r->len, 0);
    if (r->sum != rec_sum(r)) return bad("checksum mismatch (seq)", i, r->seq, 0);
    ++*records;
    *bytes += r->len;
  }
  if (repair && in_flight) g->seq = S + 1;
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 2) return 2;
  int run = strcmp(argv[1], "run") == 0;
  uint64_t reps = run && argc > 2 ? strtoull(argv[2], NULL, 10) : 0;
  unsigned pause = run && argc > 3 ? (unsigned)atoi(argv[3]) : 200;
  persist_heap_t *h = persist_default_heap();
  persist_stats_t st;
  if (!h || persist_heap_stats(h, &st) != 0 || !st.persistent)
    return fprintf(stderr, "ring: no persistent default heap\n"), 2;
  struct ring *g = persist_root("ring", sizeof *g);
  if (!g) return fprintf(stderr, "ring: persist_root: %s\n", strerror(errno)), 2;
  if (g->magic == 0) __atomic_store_n(&g->magic, RING_MAGIC, __ATOMIC_RELEASE);
  if (g->magic != RING_MAGIC) return fprintf(stderr, "ring: bad magic\n"), 3;
  uint64_t records, bytes;
  int rc = verify(h, g, run, &records, &bytes);
  if (rc) return rc;
  if (!run) {
    printf("ring seq %" PRIu64 " records %" PRIu64 " bytes %" PRIu64 "\n", g->seq, records, bytes);
    return 0;
  }
  g->runs++;
  void *garbage[32] = {0};
  for (uint64_t k = 0; k < reps; ++k) {
    uint64_t s = g->seq + 1, i = (s - 1) % RING_N, len = rec_len(s);
    struct rec *r = malloc(sizeof *r + len);
    if (!r) return 2;
    r->seq = s;
    r->len = len;
    for (uint64_t j = 0; j < len; ++j) r->data[j] = (unsigned char)(s * 31 + j * 7);
    r->sum = rec_sum(r);
    struct rec *old = g->slot[i];
    __atomic_store_n(&g->slot[i], r, __ATOMIC_RELEASE); /* committed */
    g->seq = s;
    free(old);
    /* garbage: scratch blocks, some leaked when the run ends */
    unsigned gi = (unsigned)(s % 32);
    free(garbage[gi]);
    garbage[gi] = malloc(s % 7 == 0 ? 20000 + s % 50000 : 16 + s % 900);
    if (garbage[gi]) memset(garbage[gi], 0x5a, 16);
    if (pause) usleep(pause);
  }
  printf("ring seq %" PRIu64 " records %" PRIu64 "\n", g->seq, records);
  return 0;
}
