/* pointer_graph.c — a 200,000-node pointer structure built with plain malloc under the preload
 * shim: a doubly linked list whose nodes also carry a random cross link to another node and a
 * payload of random length with a checksum. The root "graph" finds it on the next run, which
 * verifies every node (count, ids, prev/next symmetry, cross links landing on live nodes of the
 * list, payload checksums), then replaces 10% of the nodes (freeing them, fixing the cross links
 * that pointed at them), re-randomises 1% of the cross links, and verifies again.
 *
 * usage: pointer_graph RUN [NODES]   (RUN = 1, 2, ...; NODES default 200000)
 * Exit: 0 ok, 2 setup problem, 3 the structure found is wrong. */
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "persist.h"

#define GRAPH_MAGIC 0x4752415048303031ull /* "GRAPH001" */

struct node {
  struct node *prev, *next;
  struct node *cross; /* any node of the list (possibly itself) */
  uint64_t id;        /* strictly increasing along the list */
  uint64_t cross_id;  /* the id cross points at */
  uint32_t len;       /* payload bytes */
  uint32_t sum;       /* checksum of id and payload */
  int doomed;
  unsigned char payload[];
};

struct graph {
  uint64_t magic;
  uint64_t runs;
  uint64_t count;
  uint64_t next_id;
  struct node *head, *tail;
};

static uint64_t rng_state;
static uint64_t rnd(void) {
  uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

static uint32_t checksum(const struct node *n) {
  uint32_t h = 2166136261u ^ (uint32_t)n->id ^ (uint32_t)(n->id >> 32);
  for (uint32_t i = 0; i < n->len; ++i) h = (h ^ n->payload[i]) * 16777619u;
  return h;
}

static struct node *new_node(struct graph *g) {
  uint32_t len = (uint32_t)(rnd() % 97);
  if (rnd() % 100 == 0) len += 2000; /* a few bigger nodes in other size classes */
  struct node *n = malloc(sizeof *n + len);
  if (!n) {
    fprintf(stderr, "pointer_graph: malloc failed\n");
    exit(2);
  }
  n->id = ++g->next_id;
  n->len = len;
  for (uint32_t i = 0; i < len; ++i) n->payload[i] = (unsigned char)(rnd() >> 17);
  n->sum = checksum(n);
  n->doomed = 0;
  n->prev = g->tail;
  n->next = NULL;
  n->cross = n;
  n->cross_id = n->id;
  if (g->tail)
    g->tail->next = n;
  else
    g->head = n;
  g->tail = n;
  g->count++;
  return n;
}

static int cmp_ptr(const void *a, const void *b) {
  uintptr_t x = (uintptr_t) * (void *const *)a, y = (uintptr_t) * (void *const *)b;
  return x < y ? -1 : x > y;
}

static int bad(const char *what, uint64_t k, const struct node *n) {
  fprintf(stderr, "pointer_graph: node #%" PRIu64 " (%p, id %" PRIu64 "): %s\n", k, (void *)n,
          n ? n->id : 0, what);
  return 3;
}

/* Walk and check everything; fills nodes[] (count entries, list order). */
static int verify(persist_heap_t *heap, const struct graph *g, struct node **nodes) {
  uint64_t k = 0, last_id = 0;
  const struct node *prev = NULL;
  for (struct node *n = g->head; n; n = n->next) {
    if (k >= g->count) return bad("list longer than its count", k, n);
    if (!persist_contains(heap, n)) return bad("node outside the heap", k, n);
    if (n->prev != prev) return bad("prev link broken", k, n);
    if (n->id <= last_id) return bad("ids not increasing", k, n);
    if (n->sum != checksum(n)) return bad("payload checksum mismatch", k, n);
    if (n->doomed) return bad("doomed flag set on a live node", k, n);
    nodes[k++] = n;
    last_id = n->id;
    prev = n;
  }
  if (k != g->count) return bad("list shorter than its count", k, NULL);
  if (g->tail != prev) return bad("tail is not the last node", k, prev);
  struct node **sorted = malloc(k * sizeof *sorted);
  if (!sorted) return 2;
  memcpy(sorted, nodes, k * sizeof *sorted);
  qsort(sorted, k, sizeof *sorted, cmp_ptr);
  for (uint64_t i = 1; i < k; ++i)
    if (sorted[i - 1] == sorted[i] ||
        (uintptr_t)sorted[i - 1] + sizeof(struct node) + sorted[i - 1]->len >
            (uintptr_t)sorted[i]) {
      struct node *x = sorted[i];
      free(sorted);
      return bad("two nodes overlap", i, x);
    }
  for (uint64_t i = 0; i < k; ++i) {
    struct node *c = nodes[i]->cross;
    if (!bsearch(&c, sorted, k, sizeof *sorted, cmp_ptr)) {
      free(sorted);
      return bad("cross link does not point at a node of the list", i, nodes[i]);
    }
    if (c->id != nodes[i]->cross_id) {
      free(sorted);
      return bad("cross link points at the wrong node", i, nodes[i]);
    }
  }
  free(sorted);
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 2) return fprintf(stderr, "usage: pointer_graph RUN [NODES]\n"), 2;
  long run = atol(argv[1]);
  uint64_t want = argc > 2 ? strtoull(argv[2], NULL, 0) : 200000;
  rng_state = 0x1234567ull * (uint64_t)run;
  persist_heap_t *heap = persist_default_heap();
  persist_stats_t hs;
  if (!heap || persist_heap_stats(heap, &hs) != 0 || !hs.persistent)
    return fprintf(stderr, "pointer_graph: no persistent default heap (shim not preloaded?)\n"), 2;
  struct graph *g = persist_root("graph", sizeof *g);
  if (!g) return fprintf(stderr, "pointer_graph: persist_root: %s\n", strerror(errno)), 2;

  struct node **nodes;
  if (g->magic == 0) {
    if (run != 1) return fprintf(stderr, "pointer_graph: root is new on run %ld\n", run), 3;
    g->magic = GRAPH_MAGIC;
    nodes = malloc(want * sizeof *nodes);
    if (!nodes) return 2;
    for (uint64_t i = 0; i < want; ++i) nodes[i] = new_node(g);
    for (uint64_t i = 0; i < want; ++i) {
      struct node *c = nodes[rnd() % want];
      nodes[i]->cross = c;
      nodes[i]->cross_id = c->id;
    }
  } else {
    if (g->magic != GRAPH_MAGIC) return fprintf(stderr, "pointer_graph: bad magic\n"), 3;
    if ((long)g->runs != run - 1)
      return fprintf(stderr, "pointer_graph: %" PRIu64 " runs recorded, this is run %ld\n", g->runs,
                     run),
             3;
    if (g->count != want)
      return fprintf(stderr, "pointer_graph: %" PRIu64 " nodes found, %" PRIu64 " expected\n",
                     g->count, want),
             3;
    nodes = malloc(g->count * sizeof *nodes);
    if (!nodes) return 2;
    int rc = verify(heap, g, nodes);
    if (rc) return rc;
    printf("run %ld: found %" PRIu64 " nodes, all consistent\n", run, g->count);

    /* Replace 10% of the nodes. Doom them, retarget cross links that point at doomed nodes,
     * unlink and free them, then append as many new nodes. */
    uint64_t n = g->count, doomed = 0;
    for (uint64_t i = 0; i < n; ++i)
      if (rnd() % 10 == 0) nodes[i]->doomed = 1, ++doomed;
    for (uint64_t i = 0; i < n; ++i) {
      struct node *x = nodes[i];
      if (!x->doomed && x->cross->doomed) {
        x->cross = x;
        x->cross_id = x->id;
      }
    }
    uint64_t kept = 0;
    for (uint64_t i = 0; i < n; ++i) {
      struct node *x = nodes[i];
      if (!x->doomed) {
        nodes[kept++] = x;
        continue;
      }
      if (x->prev)
        x->prev->next = x->next;
      else
        g->head = x->next;
      if (x->next)
        x->next->prev = x->prev;
      else
        g->tail = x->prev;
      g->count--;
      memset(x, 0xdd, sizeof *x + x->len); /* a stale read would show */
      free(x);
    }
    for (uint64_t i = 0; i < doomed; ++i) {
      struct node *y = new_node(g);
      nodes[kept++] = y;
      struct node *c = nodes[rnd() % kept];
      y->cross = c;
      y->cross_id = c->id;
    }
    for (uint64_t i = 0; i < kept / 100; ++i) {
      struct node *x = nodes[rnd() % kept], *c = nodes[rnd() % kept];
      x->cross = c;
      x->cross_id = c->id;
    }
    printf("run %ld: replaced %" PRIu64 " nodes\n", run, doomed);
  }
  int rc = verify(heap, g, nodes);
  if (rc) return rc;
  free(nodes);
  g->runs = run;
  printf("run %ld: %" PRIu64 " nodes verified before exit\n", run, g->count);
  return 0;
}
