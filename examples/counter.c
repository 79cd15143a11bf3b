/* counter.c — the README demo: a program whose state survives a restart.
 *
 * Everything is allocated with plain malloc and linked with raw pointers; the only libpersist
 * call that matters is persist_root("demo", ...), which finds the program's entry point again on
 * the next run (or creates it, zeroed, on the first). Run it under the shim:
 *
 *   LD_PRELOAD=build/libpersist.so PERSIST_FILE=demo.heap build/examples/counter "first run"
 *   LD_PRELOAD=build/libpersist.so PERSIST_FILE=demo.heap build/examples/counter "second run"
 *
 * The second run prints the first run's entry: same addresses, same pointers, no serialisation.
 */
#define _POSIX_C_SOURCE 200809L /* strdup, localtime_r */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "persist.h"

struct run {
  struct run *next;  /* a raw pointer into the persistent heap */
  unsigned long number;
  long long started; /* seconds since the epoch */
  char *note;        /* a malloc'd string, also in the heap */
};

struct state {       /* the block the "demo" root names */
  struct run *first;
  struct run *last;
};

static char *join_args(int argc, char **argv) {
  size_t len = 1;
  for (int i = 1; i < argc; ++i) len += strlen(argv[i]) + 1;
  char *s = malloc(len);
  if (!s) return NULL;
  s[0] = 0;
  for (int i = 1; i < argc; ++i) {
    if (i > 1) strcat(s, " ");
    strcat(s, argv[i]);
  }
  return s;
}

int main(int argc, char **argv) {
  struct state *st = persist_root("demo", sizeof(struct state));
  if (!st) {
    perror("persist_root");
    fprintf(stderr,
            "counter: no persistent heap. Run it as\n"
            "  LD_PRELOAD=build/libpersist.so PERSIST_FILE=demo.heap %s [NOTE...]\n",
            argv[0]);
    return 1;
  }

  /* Append this run: fill the node completely, then link it in. */
  struct run *r = malloc(sizeof *r);
  char *note = argc > 1 ? join_args(argc, argv) : strdup("(no note)");
  if (!r || !note) {
    perror("malloc");
    return 1;
  }
  r->next = NULL;
  r->number = st->last ? st->last->number + 1 : 1;
  r->started = (long long)time(NULL);
  r->note = note;
  if (st->last) st->last->next = r;
  else st->first = r;
  st->last = r;

  printf("state root \"demo\" at %p, %lu run%s so far:\n", (void *)st, r->number,
         r->number == 1 ? "" : "s");
  for (struct run *p = st->first; p; p = p->next) {
    char when[32];
    time_t t = (time_t)p->started;
    struct tm tm;
    if (!localtime_r(&t, &tm) || !strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", &tm))
      snprintf(when, sizeof when, "%lld", p->started);
    printf("  run %-3lu %s  %-24s (node %p)%s\n", p->number, when, p->note, (void *)p,
           p == r ? "  <- this run" : "");
  }

  /* Against a process crash the state is already safe; this makes it safe against power loss. */
  if (persist_sync() != 0) fprintf(stderr, "counter: persist_sync failed\n");
  return 0;
}
