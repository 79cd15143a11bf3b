/* fork_churn.c — fork without exec under the shim (PRELOAD.md §4, issue 3 point 4).
 *
 *   fork_churn write    the parent puts a block and a large buffer behind the root "parent", then
 *                       forks 20 children one after another. Each child checks that it sees the
 *                       parent's data as it was at the fork (not the parent's later writes), churns
 *                       the heap (malloc/free/realloc/calloc of many sizes, small to huge), then
 *                       overwrites the parent's block and buffer and exits. After every child the
 *                       parent verifies that its block and buffer are intact and keeps allocating.
 *   fork_churn read     a later process on the same heap file: the parent's data must be there,
 *                       untouched by any child.
 *   fork_churn threads  fork 20 times while two other threads of the parent allocate and free:
 *                       each child (single-threaded) must find a usable heap holding the parent's
 *                       data; the parent's threads must find their blocks intact.
 * Exit status 0 when everything holds; every problem is printed on stdout.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "persist.h"

#define CHILDREN 20
#define BUF_BYTES (24u << 20) /* the large buffer: a huge block spanning several segments */
#define NOTE_BYTES 4000

struct parent_state {
  uint64_t magic;
  uint64_t generation;       /* bumped by the parent after every fork */
  uint64_t children_done;
  unsigned char *buf;        /* BUF_BYTES, pattern seeded by `seed` */
  uint64_t seed;
  char *note;                /* a malloc'd string */
  uint64_t note_sum;
  uint64_t *history;         /* realloc'ed by the parent: one entry per child */
};

#define MAGIC 0x70617265e7a1b0c1ull

static uint64_t mix(uint64_t x) {
  x ^= x >> 33, x *= 0xff51afd7ed558ccdULL, x ^= x >> 33, x *= 0xc4ceb9fe1a85ec53ULL;
  return x ^ (x >> 33);
}

static void fill(unsigned char *p, size_t n, uint64_t seed) {
  for (size_t i = 0; i < n; i += 8) {
    uint64_t v = mix(seed + i);
    memcpy(p + i, &v, n - i < 8 ? n - i : 8);
  }
}

static long first_diff(const unsigned char *p, size_t n, uint64_t seed) {
  for (size_t i = 0; i < n; i += 8) {
    uint64_t v = mix(seed + i);
    if (memcmp(p + i, &v, n - i < 8 ? n - i : 8)) return (long)i;
  }
  return -1;
}

static uint64_t sum(const char *s) {
  uint64_t h = 1469598103934665603ULL;
  for (; *s; ++s) h = (h ^ (unsigned char)*s) * 1099511628211ULL;
  return h;
}

static int problems;
#define PROBLEM(...) (printf("PROBLEM: " __VA_ARGS__), putchar('\n'), fflush(stdout), ++problems)

static int verify(const struct parent_state *st, const char *when) {
  int before = problems;
  if (st->magic != MAGIC) PROBLEM("%s: the root block's magic is %llx", when, (unsigned long long)st->magic);
  long d = first_diff(st->buf, BUF_BYTES, st->seed);
  if (d >= 0) PROBLEM("%s: the large buffer differs at byte %ld", when, d);
  if (sum(st->note) != st->note_sum) PROBLEM("%s: the note string changed", when);
  for (uint64_t i = 0; i < st->children_done; ++i)
    if (st->history[i] != mix(i)) PROBLEM("%s: history[%llu] changed", when, (unsigned long long)i);
  return problems == before;
}

/* The child's heap churn: many sizes, realloc growth and shrink, calloc zero checks, huge blocks. */
static int churn(unsigned child) {
  enum { SLOTS = 512 };
  void *slot[SLOTS] = {0};
  size_t size[SLOTS] = {0};
  uint64_t x = mix(child + 1);
  for (int op = 0; op < 30000; ++op) {
    x = mix(x);
    unsigned i = (unsigned)(x % SLOTS);
    size_t n;
    switch ((x >> 20) % 8) {
      case 0: n = (x >> 30) % 64 + 1; break;
      case 1: case 2: n = (x >> 30) % 1024 + 1; break;
      case 3: n = (x >> 30) % 16384 + 1; break;
      case 4: n = (x >> 30) % (256 << 10) + 1; break;
      case 5: n = (op % 997 == 0) ? (x >> 30) % (12u << 20) + (4u << 20) : (x >> 30) % 4096; break;
      default: n = (x >> 30) % 300 + 1; break;
    }
    if (n == 0) n = 1; /* realloc(p, 0) frees p: not what this loop means */
    if (slot[i] && ((x >> 40) & 3) == 0) {
      void *q = realloc(slot[i], n);
      if (!q) return PROBLEM("child %u: realloc(%zu) failed", child, n), 1;
      size_t keep = size[i] < n ? size[i] : n;
      for (size_t k = 0; k < keep; k += 61)
        if (((unsigned char *)q)[k] != (unsigned char)(i + k)) return PROBLEM("child %u: realloc lost data", child), 1;
      slot[i] = q;
    } else {
      free(slot[i]);
      if (((x >> 42) & 7) == 0) {
        slot[i] = calloc(1, n);
        if (slot[i])
          for (size_t k = 0; k < n; k += 127)
            if (((unsigned char *)slot[i])[k]) return PROBLEM("child %u: calloc not zero", child), 1;
      } else {
        slot[i] = malloc(n);
      }
      if (!slot[i]) return PROBLEM("child %u: malloc(%zu) failed", child, n), 1;
    }
    size[i] = n;
    for (size_t k = 0; k < n; k += 61) ((unsigned char *)slot[i])[k] = (unsigned char)(i + k);
  }
  for (unsigned i = 0; i < SLOTS; ++i) free(slot[i]);
  return 0;
}

static int do_write(void) {
  struct parent_state *st = persist_root("parent", sizeof *st);
  if (!st) return printf("persist_root failed: %s\n", strerror(errno)), 1;
  st->seed = 0x5eed;
  st->buf = malloc(BUF_BYTES);
  if (!st->buf) return printf("malloc(BUF_BYTES) failed\n"), 1;
  fill(st->buf, BUF_BYTES, st->seed);
  st->note = malloc(NOTE_BYTES);
  for (int i = 0; i < NOTE_BYTES - 1; ++i) st->note[i] = (char)('a' + i % 26);
  st->note[NOTE_BYTES - 1] = 0;
  st->note_sum = sum(st->note);
  st->history = NULL;
  st->magic = MAGIC;

  void *keep[CHILDREN] = {0};
  for (unsigned c = 0; c < CHILDREN; ++c) {
    int go[2], back[2];
    if (pipe(go) || pipe(back)) return printf("pipe: %s\n", strerror(errno)), 1;
    uint64_t gen_at_fork = st->generation;
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) return printf("fork: %s\n", strerror(errno)), 1;
    if (pid == 0) {
      close(go[1]);
      close(back[0]);
      char ch;
      if (read(go[0], &ch, 1) != 1) _exit(90);  /* the parent has written after the fork */
      int bad = 0;
      if (st->generation != gen_at_fork) {
        PROBLEM("child %u sees generation %llu, the parent's write after the fork (expected %llu)", c,
                (unsigned long long)st->generation, (unsigned long long)gen_at_fork);
        bad = 1;
      }
      if (!verify(st, "child before churn")) bad = 1;
      if (churn(c)) bad = 1;
      /* Overwrite the parent's block, buffer, string and history (the child's private copy). */
      struct parent_state *mine = persist_root("parent", sizeof *st);
      if (mine != st) {
        PROBLEM("child %u: persist_root gives %p, expected %p", c, (void *)mine, (void *)st);
        bad = 1;
      }
      memset(st->buf, 0xAB, BUF_BYTES);
      memset(st->note, 'X', NOTE_BYTES - 1);
      if (st->history) memset(st->history, 0xCD, st->children_done * sizeof *st->history);
      st->magic = 0xdeadbeef;
      st->generation = 999999;
      persist_root_set("child-was-here", malloc(64));
      if (write(back[1], "k", 1) != 1) bad = 1;
      exit(bad ? 1 : 0);  /* exit, not _exit: the shim's exit hook runs in the child too */
    }
    close(go[0]);
    close(back[1]);
    /* Write after the fork, before the child looks: the child must not see this. */
    st->generation = gen_at_fork + 1;
    if (write(go[1], "g", 1) != 1) return printf("write: %s\n", strerror(errno)), 1;
    /* Keep allocating while the child runs. */
    keep[c] = malloc(1000 + c * 37);
    memset(keep[c], (int)c, 1000 + c * 37);
    char ch;
    if (read(back[0], &ch, 1) != 1) PROBLEM("child %u died before overwriting the parent's data", c);
    int status = 0;
    waitpid(pid, &status, 0);
    close(go[1]);
    close(back[0]);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
      PROBLEM("child %u: status %#x%s", c, status, WIFSIGNALED(status) ? " (killed by a signal)" : "");
    char when[64];
    snprintf(when, sizeof when, "parent after child %u", c);
    verify(st, when);
    if (st->generation != gen_at_fork + 1)
      PROBLEM("%s: generation is %llu", when, (unsigned long long)st->generation);
    for (unsigned k = 0; k <= c; ++k)
      for (unsigned b = 0; b < 1000 + k * 37; ++b)
        if (((unsigned char *)keep[k])[b] != (unsigned char)k) {
          PROBLEM("%s: block %u allocated by the parent changed", when, k);
          break;
        }
    uint64_t *h = realloc(st->history, (st->children_done + 1) * sizeof *h);
    if (!h) return PROBLEM("realloc history failed"), 1;
    h[st->children_done] = mix(st->children_done);
    st->history = h;
    st->children_done++;
  }
  if (persist_root_get("child-was-here", NULL)) PROBLEM("a child's root appeared in the parent's heap");
  printf("write: %llu children forked, parent data intact: %s\n", (unsigned long long)st->children_done,
         problems ? "no" : "yes");
  return problems ? 1 : 0;
}

/* ---- fork while other threads allocate ---------------------------------------------------- */
static volatile int stop_threads;

static void *allocating_thread(void *arg) {
  uintptr_t id = (uintptr_t)arg;
  enum { N = 300 };
  unsigned char *blk[N] = {0};
  size_t len[N] = {0};
  uint64_t x = mix(id + 77), bad = 0;
  while (!__atomic_load_n(&stop_threads, __ATOMIC_RELAXED)) {
    x = mix(x);
    unsigned i = (unsigned)(x % N);
    if (blk[i]) {
      for (size_t k = 0; k < len[i]; k += 53)
        if (blk[i][k] != (unsigned char)(i + k + id)) ++bad;
      free(blk[i]);
    }
    len[i] = (x >> 20) % ((x >> 50) % 16 == 0 ? (1u << 20) : 3000) + 1;
    blk[i] = malloc(len[i]);
    if (!blk[i]) {
      ++bad;
      continue;
    }
    for (size_t k = 0; k < len[i]; k += 53) blk[i][k] = (unsigned char)(i + k + id);
  }
  for (unsigned i = 0; i < N; ++i) free(blk[i]);
  return (void *)(uintptr_t)bad;
}

static int do_threads(void) {
  struct parent_state *st = persist_root("parent", sizeof *st);
  if (!st) return printf("persist_root failed: %s\n", strerror(errno)), 1;
  st->seed = 0x7777;
  st->buf = malloc(BUF_BYTES);
  fill(st->buf, BUF_BYTES, st->seed);
  st->note = strdup("the parent's note");
  st->note_sum = sum(st->note);
  st->magic = MAGIC;
  pthread_t th[2];
  for (uintptr_t t = 0; t < 2; ++t) pthread_create(&th[t], NULL, allocating_thread, (void *)t);
  for (unsigned c = 0; c < CHILDREN; ++c) {
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) return printf("fork: %s\n", strerror(errno)), 1;
    if (pid == 0) {
      /* Only this thread exists in the child: the heap must be usable (no lock left held by the
       * parent's other threads) and hold the parent's data. */
      int bad = !verify(st, "child of a multi-threaded parent");
      bad |= churn(c);
      memset(st->buf, 0xEE, BUF_BYTES);
      st->magic = 1;
      exit(bad ? 1 : 0);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
      PROBLEM("child %u of the multi-threaded parent: status %#x%s", c, status,
              WIFSIGNALED(status) ? " (killed by a signal)" : "");
    verify(st, "multi-threaded parent after a child");
  }
  __atomic_store_n(&stop_threads, 1, __ATOMIC_RELAXED);
  for (int t = 0; t < 2; ++t) {
    void *bad = NULL;
    pthread_join(th[t], &bad);
    if (bad) PROBLEM("allocating thread %d found %lu corrupted bytes", t, (unsigned long)(uintptr_t)bad);
  }
  printf("threads: %d children forked while 2 threads allocated, parent data intact: %s\n", CHILDREN,
         problems ? "no" : "yes");
  return problems ? 1 : 0;
}

static int do_read(void) {
  size_t size = 0;
  struct parent_state *st = persist_root_get("parent", &size);
  if (!st) return printf("read: no root \"parent\" in the heap (%s)\n", strerror(errno)), 1;
  verify(st, "second run");
  if (st->children_done != CHILDREN) PROBLEM("second run: children_done = %llu", (unsigned long long)st->children_done);
  if (st->generation != CHILDREN) PROBLEM("second run: generation = %llu", (unsigned long long)st->generation);
  if (persist_root_get("child-was-here", NULL)) PROBLEM("second run: a child's root is in the heap file");
  printf("read: generation %llu, %llu children, parent data intact: %s\n", (unsigned long long)st->generation,
         (unsigned long long)st->children_done, problems ? "no" : "yes");
  return problems ? 1 : 0;
}

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (argc == 2 && strcmp(argv[1], "write") == 0) return do_write();
  if (argc == 2 && strcmp(argv[1], "read") == 0) return do_read();
  if (argc == 2 && strcmp(argv[1], "threads") == 0) return do_threads();
  fprintf(stderr, "usage: fork_churn write|read|threads\n");
  return 64;
}
