/* crash_list.c — a program under the preload shim that is killed with SIGKILL while it allocates
 * (driver: crash.sh). The root "crash-list" names a singly linked list built with malloc; nodes are
 * appended by the commit protocol of an aware program: fill the node, link it with one pointer
 * store, then advance tail and count. Meanwhile the program churns the heap (temporary blocks of
 * many sizes, realloc of a growing buffer, removal of old nodes from the head), so a kill lands
 * inside the allocator as often as outside it.
 *
 *   crash_list grow     check (and repair the tail/count lag a kill may leave), then append
 *                       forever, printing nothing; meant to be killed
 *   crash_list verify   check the list and print "count N ids FIRST..LAST"; exit 0 when it is
 *                       consistent
 * Exit: 0 ok, 2 no persistent default heap, 3 the list is inconsistent. */
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "persist.h"

#define LIST_MAGIC 0x43524153484c5354ull /* "CRASHLST" */

struct node {
  struct node *next;
  uint64_t id; /* consecutive from the head's id */
  uint32_t len;
  uint32_t sum;
  unsigned char payload[];
};

struct list {
  uint64_t magic;
  uint64_t count; /* nodes in the list (may lag the links by one after a kill) */
  uint64_t next_id;
  struct node *head;
  struct node *tail;
};

static uint32_t checksum(const struct node *n) {
  uint32_t h = 2166136261u ^ (uint32_t)n->id;
  for (uint32_t i = 0; i < n->len; ++i) h = (h ^ n->payload[i]) * 16777619u;
  return h;
}

/* Walk the list; repair the lag of one step a kill may leave when repair is set. */
static int check(persist_heap_t *heap, struct list *l, int repair) {
  uint64_t n = 0, id = 0;
  struct node *last = NULL;
  for (struct node *x = l->head; x; x = x->next) {
    if (!persist_contains(heap, x))
      return fprintf(stderr, "node %" PRIu64 " outside the heap\n", n), 3;
    if (n && x->id != id + 1)
      return fprintf(stderr, "node %" PRIu64 ": id %" PRIu64 " after %" PRIu64 "\n", n, x->id, id),
             3;
    if (x->sum != checksum(x))
      return fprintf(stderr, "node %" PRIu64 " (id %" PRIu64 "): checksum mismatch\n", n, x->id), 3;
    id = x->id;
    last = x;
    if (++n > l->count + 1)
      return fprintf(stderr, "list longer than count %" PRIu64 " + 1\n", l->count), 3;
  }
  /* A kill between "link" and "count++" leaves one more node than counted; between "unlink the
   * head" and "count--" one fewer. Anything else is a lost or invented node. */
  if (n + 1 < l->count || n > l->count + 1)
    return fprintf(stderr, "walked %" PRIu64 " nodes, count says %" PRIu64 "\n", n, l->count), 3;
  if (n && last->id > l->next_id + 1)
    return fprintf(stderr, "last id %" PRIu64 " but next_id %" PRIu64 "\n", last->id, l->next_id),
           3;
  if (repair) {
    l->count = n;
    l->tail = last;
    if (last) l->next_id = last->id;
  }
  return 0;
}

int main(int argc, char **argv) {
  int grow = argc > 1 && strcmp(argv[1], "grow") == 0;
  persist_heap_t *heap = persist_default_heap();
  persist_stats_t st;
  if (!heap || persist_heap_stats(heap, &st) != 0 || !st.persistent)
    return fprintf(stderr, "crash_list: no persistent default heap\n"), 2;
  struct list *l = persist_root("crash-list", sizeof *l);
  if (!l) return fprintf(stderr, "crash_list: persist_root: %s\n", strerror(errno)), 2;
  if (l->magic == 0) l->magic = LIST_MAGIC;
  if (l->magic != LIST_MAGIC) return fprintf(stderr, "crash_list: bad magic\n"), 3;
  int rc = check(heap, l, grow);
  if (rc || !grow) {
    if (!rc)
      printf("count %" PRIu64 " ids %" PRIu64 "..%" PRIu64 "\n", l->count,
             l->head ? l->head->id : 0, l->next_id);
    return rc;
  }
  uint64_t seed = (uint64_t)getpid() * 0x9E3779B97F4A7C15ull;
  char *buf = NULL;
  size_t buflen = 0;
  void *tmp[64] = {0};
  for (uint64_t k = 0;; ++k) {
    seed = seed * 6364136223846793005ull + 1442695040888963407ull;
    uint32_t r = (uint32_t)(seed >> 33);
    /* append a node */
    uint32_t len = r % 200 + (r % 50 == 0 ? 3000 : 0);
    struct node *x = malloc(sizeof *x + len);
    if (!x) return 2;
    x->next = NULL;
    x->id = l->next_id + 1;
    x->len = len;
    for (uint32_t i = 0; i < len; ++i) x->payload[i] = (unsigned char)(r + i * 7);
    x->sum = checksum(x);
    __atomic_thread_fence(__ATOMIC_RELEASE);
    if (l->tail)
      __atomic_store_n(&l->tail->next, x, __ATOMIC_RELEASE); /* linked: committed */
    else
      __atomic_store_n(&l->head, x, __ATOMIC_RELEASE);
    l->tail = x;
    l->next_id = x->id;
    l->count++;
    /* drop old nodes from the head now and then, keeping the list bounded */
    if (l->count > 20000 && l->head != l->tail) {
      struct node *old = l->head;
      __atomic_store_n(&l->head, old->next, __ATOMIC_RELEASE);
      l->count--;
      free(old);
    }
    /* churn: temporary blocks of many sizes, and a buffer that grows by realloc */
    unsigned slot = r % 64;
    free(tmp[slot]);
    tmp[slot] = malloc(r % 7 == 0 ? (r % 300000) : (r % 512));
    if (r % 97 == 0) {
      buflen = buflen > (1u << 22) ? 16 : buflen * 2 + 16;
      char *nb = realloc(buf, buflen);
      if (!nb) return 2;
      buf = nb;
      memset(buf, (int)k, buflen);
    }
  }
}
