/* roots_list.c — an aware C program run under the preload shim (LD_PRELOAD=libpersist.so,
 * PERSIST_FILE=<heap>). Its list lives in the persistent heap, built with plain malloc/strdup; the
 * root "list" finds it again on the next run. Each run appends N nodes (argv[1], default 3) and
 * prints the whole list, one "VALUE TEXT" line per node, so a driver can check that it grows.
 * Exit: 0 ok, 2 no persistent default heap, 3 the list found is inconsistent. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "persist.h"

#define LIST_MAGIC 0x4c495354L /* "LIST" */

struct node {
  struct node *next;
  char *text; /* strdup'ed: a second heap block per node */
  long value;
};

struct list {
  long magic;
  long count;
  struct node *head;
  struct node *tail;
};

int main(int argc, char **argv) {
  int add = argc > 1 ? atoi(argv[1]) : 3;
  persist_heap_t *heap = persist_default_heap();
  if (!heap) {
    fprintf(stderr,
            "roots_list: no default heap (libpersist not preloaded, or PERSIST_FILE unset)\n");
    return 2;
  }
  persist_stats_t st;
  if (persist_heap_stats(heap, &st) != 0 || !st.persistent) {
    fprintf(stderr, "roots_list: the default heap is not persistent\n");
    return 2;
  }
  struct list *l = persist_root("list", sizeof *l);
  if (!l) {
    fprintf(stderr, "roots_list: persist_root: %s\n", strerror(errno));
    return 2;
  }
  if (l->magic == 0) {
    if (l->count || l->head || l->tail) {
      fprintf(stderr, "roots_list: new root is not zeroed\n");
      return 3;
    }
    l->magic = LIST_MAGIC;
  } else if (l->magic != LIST_MAGIC) {
    fprintf(stderr, "roots_list: root 'list' holds magic %lx\n", (unsigned long)l->magic);
    return 3;
  }
  for (int i = 0; i < add; ++i) {
    struct node *n = malloc(sizeof *n);
    char buf[64];
    if (!n) return 2;
    n->value = l->count + 1;
    snprintf(buf, sizeof buf, "item-%ld", n->value);
    n->text = strdup(buf);
    n->next = NULL;
    if (!n->text || !persist_contains(heap, n) || !persist_contains(heap, n->text)) {
      fprintf(stderr, "roots_list: malloc did not come from the persistent heap\n");
      return 2;
    }
    if (l->tail)
      l->tail->next = n;
    else
      l->head = n;
    l->tail = n;
    l->count++;
  }
  long k = 0;
  struct node *last = NULL;
  for (struct node *n = l->head; n; n = n->next) {
    char buf[64];
    ++k;
    snprintf(buf, sizeof buf, "item-%ld", k);
    if (n->value != k || strcmp(n->text, buf) != 0) {
      fprintf(stderr, "roots_list: node %ld holds %ld '%s'\n", k, n->value, n->text);
      return 3;
    }
    printf("%ld %s\n", n->value, n->text);
    last = n;
    if (k > l->count) break;
  }
  if (k != l->count || last != l->tail) {
    fprintf(stderr, "roots_list: walked %ld nodes, the root says %ld\n", k, l->count);
    return 3;
  }
  return 0;
}
