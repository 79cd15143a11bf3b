/* heap_maker.c — builds a known heap for the tool tests. Run under the preload shim
 * (LD_PRELOAD=libpersist.so PERSIST_FILE=<heap>). It creates:
 *   root "config"  a small block: "CONFIG-NAME-XYZ", then the long 42
 *   root "list"    a list head; 100 nodes (malloc) each pointing at a strdup'ed "node-text-NNN"
 *   root "big"     a large block (40000 bytes) starting "BIG-BLOCK-START!"
 *   root "sizes"   an array of pointers to blocks of 24, 100, 1000, 5000 and 20000 bytes, each
 *                  starting "SIZED-<n>-"
 *   root "huge"    with --huge: a huge block (5 MiB) starting "HUGE-BLOCK-HEAD!", holding
 *                  "HUGE-BLOCK-TAIL!" 32 bytes before its end, zeros between
 *   a leaked block "LEAKED-ORPHAN-TEXT" (no pointer to it is stored in the heap)
 *   a freed block that held "FREED-SECRET-TEXT" at byte 32 (700 bytes, a class nothing else
 *   uses)
 * and prints one manifest line per item, "NAME OFFSET SIZE", offsets from the heap base.
 * With --hold it then prints "ready" and sleeps until killed (a live owner).
 * Exit: 0 ok, 2 no persistent default heap, 3 allocation failed. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "persist.h"

struct config {
  char name[32];
  long answer;
};

struct node {
  struct node *next;
  char *text;
  long value;
};

static persist_heap_t *heap;

/* The plain offset from the base (PERSIST_OFFSET would add its tag bits). */
static unsigned long off(const void *p) {
  return (unsigned long)((uintptr_t)p - (uintptr_t)persist_heap_base(heap));
}

static void *filled(size_t size, const char *head) {
  char *p = malloc(size);
  if (!p) exit(3);
  memset(p, 'x', size);
  memcpy(p, head, strlen(head));
  return p;
}

int main(int argc, char **argv) {
  int hold = 0, huge = 0;
  for (int i = 1; i < argc; ++i) {
    if (strcmp(argv[i], "--hold") == 0) hold = 1;
    else if (strcmp(argv[i], "--huge") == 0) huge = 1;
  }
  heap = persist_default_heap();
  persist_stats_t st;
  if (!heap || persist_heap_stats(heap, &st) != 0 || !st.persistent) {
    fprintf(stderr, "heap_maker: no persistent default heap\n");
    return 2;
  }

  struct config *cfg = persist_root("config", sizeof *cfg);
  if (!cfg) return 3;
  strcpy(cfg->name, "CONFIG-NAME-XYZ");
  cfg->answer = 42;
  printf("config %lu %zu\n", off(cfg), sizeof *cfg);

  struct node **list = persist_root("list", sizeof(struct node *));
  if (!list) return 3;
  for (int i = 99; i >= 0; --i) {
    struct node *n = malloc(sizeof *n);
    char buf[32];
    if (!n) return 3;
    snprintf(buf, sizeof buf, "node-text-%03d", i);
    n->text = strdup(buf);
    n->value = i;
    n->next = *list;
    *list = n;
  }
  printf("list %lu %zu\n", off(list), sizeof(struct node *));
  printf("node0 %lu %zu\n", off(*list), sizeof **list);
  printf("node0text %lu %zu\n", off((*list)->text), strlen((*list)->text) + 1);

  char *big = filled(40000, "BIG-BLOCK-START!");
  if (persist_root_set("big", big) != 0) return 3;
  printf("big %lu %d\n", off(big), 40000);

  static const size_t kSizes[] = {24, 100, 1000, 5000, 20000};
  void **sizes = persist_root("sizes", sizeof(void *) * 5);
  if (!sizes) return 3;
  printf("sizes %lu %zu\n", off(sizes), sizeof(void *) * 5);
  for (int i = 0; i < 5; ++i) {
    char head[32];
    snprintf(head, sizeof head, "SIZED-%zu-", kSizes[i]);
    sizes[i] = filled(kSizes[i], head);
    printf("sized%zu %lu %zu\n", kSizes[i], off(sizes[i]), kSizes[i]);
  }

  if (huge) {  /* mostly zeros (fresh pages), a string at each end */
    char *h = malloc(5u << 20);
    if (!h) return 3;
    memset(h, 0, 4096);
    strcpy(h, "HUGE-BLOCK-HEAD!");
    strcpy(h + (5u << 20) - 32, "HUGE-BLOCK-TAIL!");
    if (persist_root_set("huge", h) != 0) return 3;
    printf("huge %lu %u\n", off(h), 5u << 20);
  }

  char *leak = filled(64, "LEAKED-ORPHAN-TEXT");
  leak[18] = 0;
  printf("leaked %lu %d\n", off(leak), 64);
  leak = NULL;

  /* The allocator may link a freed block through its first words: the text starts at 32. */
  char *freed = filled(700, "");
  freed[31] = 0;
  strcpy(freed + 32, "FREED-SECRET-TEXT");
  printf("freed %lu %d\n", off(freed), 700);
  printf("freedtext %lu %d\n", off(freed + 32), 18);
  free(freed);
  fflush(stdout);

  if (hold) {
    printf("ready\n");
    fflush(stdout);
    for (;;) pause();
  }
  return 0;
}
