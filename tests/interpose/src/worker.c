/* worker.c — a small aware program for the lock, exec and failure tests. Its stdout never depends
 * on whether it persists; whether it did is visible in the heap file (root "runs", see `count`).
 *
 *   worker run [HOLD_MS]   allocate and compute (deterministic output), bump the root "runs",
 *                          then hold the heap for HOLD_MS milliseconds before exiting
 *   worker count           print the value of the root "runs" (0 when there is none)
 *   worker system          also run system("/bin/echo hi") (a child exec'ed with the same env)
 *   worker forkexec        fork, and exec this program (`run 0`) in the child
 *   worker execself        bump "runs", then exec this program (`count`) in place
 *   worker pid             print the pid (for PERSIST_FILE=%p)
 *   worker diskfull        on a full file system: a big malloc must fail with ENOMEM, small ones
 *                          until failure must not crash, memory must work again after free
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "persist.h"

struct node {
  struct node *next;
  uint64_t value;
  char text[40];
};

static void compute(void) {
  struct node *head = NULL;
  for (uint64_t i = 0; i < 50000; ++i) {
    struct node *n = malloc(sizeof *n);
    n->value = i * 2654435761u % 1000003;
    snprintf(n->text, sizeof n->text, "node-%llu", (unsigned long long)i);
    n->next = head;
    head = n;
  }
  uint64_t sum = 0, len = 0;
  for (struct node *n = head; n; n = n->next) sum += n->value + strlen(n->text), ++len;
  char *s = NULL;
  size_t cap = 0;
  for (int i = 0; i < 1000; ++i) {
    s = realloc(s, cap + 16);
    cap += 16;
    memset(s + cap - 16, 'a' + i % 26, 16);
  }
  sum += (unsigned char)s[cap - 1];
  free(s);
  while (head) {
    struct node *n = head->next;
    free(head);
    head = n;
  }
  printf("worker: %llu nodes, sum %llu\n", (unsigned long long)len, (unsigned long long)sum);
}

static void bump(void) {
  uint64_t *runs = persist_root("runs", sizeof *runs);
  if (!runs) {
    printf("persist_root failed: %s\n", strerror(errno));
    exit(1);
  }
  ++*runs;
}

static void hold(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {
  }
}

static int diskfull(void) {
  errno = 0;
  void *big = malloc((size_t)64 << 20);
  printf("big malloc: %s, errno %s\n", big ? "succeeded" : "NULL", errno == ENOMEM ? "ENOMEM" : errno ? strerror(errno) : "0");
  int ok = big == NULL && errno == ENOMEM;
  free(big);
  /* Small blocks until the file system is full: each must be writable, then NULL + ENOMEM. */
  enum { MAXB = 8192 };
  static void *blk[MAXB];
  int n = 0, last_errno = 0;
  while (n < MAXB) {
    errno = 0;
    void *p = malloc(4000);
    if (!p) {
      last_errno = errno;
      break;
    }
    memset(p, 0x77, 4000);
    blk[n++] = p;
  }
  printf("small mallocs: %s, errno %s\n", n < MAXB ? "stopped with NULL" : "never failed",
         last_errno == ENOMEM ? "ENOMEM" : last_errno ? strerror(last_errno) : "0");
  ok = ok && n < MAXB && last_errno == ENOMEM;
  for (int i = 0; i < n; ++i) free(blk[i]);
  void *again = malloc(4000);
  printf("malloc after free: %s\n", again ? "succeeded" : "NULL");
  if (again) memset(again, 1, 4000);
  free(again);
  ok = ok && again;
  fprintf(stderr, "diskfull: %d blocks of 4000 bytes before ENOMEM\n", n);
  return ok ? 0 : 1;
}

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  const char *mode = argc > 1 ? argv[1] : "run";
  if (!strcmp(mode, "run")) {
    compute();
    bump();
    hold(argc > 2 ? atol(argv[2]) : 0);
    printf("worker: done\n");
    return 0;
  }
  if (!strcmp(mode, "count")) {
    uint64_t *runs = persist_root_get("runs", NULL);
    printf("runs: %llu\n", runs ? (unsigned long long)*runs : 0ull);
    return 0;
  }
  if (!strcmp(mode, "system")) {
    compute();
    int st = system("/bin/echo hi");
    printf("system: status %d\n", st);
    bump();
    return st ? 1 : 0;
  }
  if (!strcmp(mode, "forkexec")) {
    compute();
    bump();
    pid_t pid = fork();
    if (pid == 0) {
      execl("/proc/self/exe", argv[0], "run", "0", (char *)NULL);
      _exit(127);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    printf("forkexec: child status %d\n", st);
    return st ? 1 : 0;
  }
  if (!strcmp(mode, "execself")) {
    compute();
    bump();
    execl("/proc/self/exe", argv[0], "count", (char *)NULL);
    printf("exec failed: %s\n", strerror(errno));
    return 1;
  }
  if (!strcmp(mode, "pid")) {
    printf("%d\n", (int)getpid());
    return 0;
  }
  if (!strcmp(mode, "diskfull")) return diskfull();
  fprintf(stderr, "worker: unknown mode %s\n", mode);
  return 64;
}
