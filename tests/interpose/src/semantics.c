/* semantics.c — glibc's malloc semantics (PRELOAD.md §8) and malloc_usable_size, checked through
 * whatever malloc the process has: the test runs it without the shim (glibc: the reference) and
 * under it. When libpersist is loaded (found with dlsym, so the program does not link it) it also
 * checks that the blocks come from the persistent heap. Prints one line per failed check and a
 * summary; exit status 0 when every check holds.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int checks, failures;
#define CHECK(cond, ...)                                   \
  do {                                                     \
    ++checks;                                              \
    if (!(cond)) {                                         \
      ++failures;                                          \
      printf("FAILED %s:%d: %s: ", __FILE__, __LINE__, #cond); \
      printf(__VA_ARGS__);                                 \
      putchar('\n');                                       \
    }                                                      \
  } while (0)

static void *(*p_default_heap)(void);
static int (*p_contains)(const void *heap, const void *ptr);

static int ours(const void *p) {
  if (!p_default_heap || !p_contains) return 1;
  void *h = p_default_heap();
  return h && p_contains(h, p);
}

/* Keep the compiler from folding the calls (it knows malloc's contract). */
static size_t volatile_size(size_t n) {
  volatile size_t v = n;
  return v;
}

int main(void) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  p_default_heap = (void *(*)(void))dlsym(RTLD_DEFAULT, "persist_default_heap");
  p_contains = (int (*)(const void *, const void *))dlsym(RTLD_DEFAULT, "persist_contains");
  int shim = p_default_heap != NULL;

  /* malloc(0): a unique, freeable, non-NULL pointer. */
  void *z = malloc(volatile_size(0));
  CHECK(z != NULL, "malloc(0) returned NULL");
  CHECK(ours(z), "malloc(0) = %p is not from the persistent heap", z);
  CHECK(((uintptr_t)z & 15) == 0, "malloc(0) = %p is not 16-byte aligned", z);
  free(z);

  /* 16-byte alignment of every size; usable size >= request, all of it writable. */
  for (size_t n = 1; n <= 70000; n += (n < 600 ? 1 : n < 5000 ? 13 : 997)) {
    unsigned char *p = malloc(n);
    CHECK(p != NULL, "malloc(%zu) failed", n);
    if (!p) continue;
    CHECK(((uintptr_t)p & 15) == 0, "malloc(%zu) = %p is not 16-byte aligned", n, (void *)p);
    size_t u = malloc_usable_size(p);
    CHECK(u >= n, "malloc_usable_size(malloc(%zu)) = %zu", n, u);
    CHECK(malloc_usable_size(p) == u, "malloc_usable_size(malloc(%zu)) is not stable", n);
    if (shim) CHECK(ours(p), "malloc(%zu) = %p is not from the persistent heap", n, (void *)p);
    memset(p, 0xA5, u);  /* the whole usable size is ours to write */
    free(p);
  }
  for (size_t n = (1u << 20); n <= (64u << 20); n *= 2) {  /* large and huge blocks */
    unsigned char *p = malloc(n + 1);
    CHECK(p != NULL && ((uintptr_t)p & 15) == 0, "malloc(%zu) = %p", n + 1, (void *)p);
    if (!p) continue;
    size_t u = malloc_usable_size(p);
    CHECK(u >= n + 1, "malloc_usable_size(malloc(%zu)) = %zu", n + 1, u);
    p[0] = 1, p[u - 1] = 2;
    free(p);
  }
  CHECK(malloc_usable_size(NULL) == 0, "malloc_usable_size(NULL) = %zu", malloc_usable_size(NULL));

  /* realloc(p, 0) frees p and returns NULL (glibc: REALLOC_ZERO_BYTES_FREES). */
  void *r = malloc(100);
  void *r0 = realloc(r, volatile_size(0));
  CHECK(r0 == NULL, "realloc(p, 0) returned %p instead of NULL", r0);
  free(r0);
  /* realloc(NULL, n) is malloc(n); realloc keeps the contents. */
  char *g = realloc(NULL, 10);
  CHECK(g != NULL, "realloc(NULL, 10) failed");
  memcpy(g, "012345678", 10);
  for (size_t n = 20; n < 3000000; n = n * 3 + 7) {
    g = realloc(g, n);
    CHECK(g && memcmp(g, "012345678", 10) == 0, "realloc to %zu lost the contents", n);
    if (!g) break;
  }
  g = realloc(g, 10);
  CHECK(g && memcmp(g, "012345678", 10) == 0, "shrinking realloc lost the contents");
  free(g);

  /* Huge requests: NULL and ENOMEM, never a signal. */
  size_t huge[] = {(size_t)PTRDIFF_MAX + 1, SIZE_MAX, SIZE_MAX - 4096, (size_t)1 << 62, (size_t)1 << 47};
  for (unsigned i = 0; i < sizeof huge / sizeof *huge; ++i) {
    errno = 0;
    void *p = malloc(volatile_size(huge[i]));
    CHECK(p == NULL && errno == ENOMEM, "malloc(%#zx) = %p, errno %d", huge[i], p, errno);
    free(p);
    errno = 0;
    void *q = malloc(16);
    void *q2 = realloc(q, volatile_size(huge[i]));
    CHECK(q2 == NULL && errno == ENOMEM, "realloc(p, %#zx) = %p, errno %d", huge[i], q2, errno);
    free(q2 ? q2 : q);
    errno = 0;
    void *a = NULL;
    int rc = posix_memalign(&a, 64, volatile_size(huge[i]));
    CHECK(rc == ENOMEM, "posix_memalign(64, %#zx) = %d", huge[i], rc);
    errno = 0;
    void *al = aligned_alloc(64, volatile_size(huge[i]));
    CHECK(al == NULL && errno == ENOMEM, "aligned_alloc(64, %#zx) = %p, errno %d", huge[i], al, errno);
    errno = 0;
    void *pv = valloc(volatile_size(huge[i]));
    CHECK(pv == NULL && errno == ENOMEM, "valloc(%#zx) = %p, errno %d", huge[i], pv, errno);
  }

  /* calloc: zeroed memory, overflow is ENOMEM. */
  errno = 0;
  void *c = calloc(volatile_size((size_t)1 << 33), volatile_size((size_t)1 << 33));
  CHECK(c == NULL && errno == ENOMEM, "calloc(2^33, 2^33) = %p, errno %d", c, errno);
  errno = 0;
  c = calloc(volatile_size(SIZE_MAX / 2 + 2), 2);
  CHECK(c == NULL && errno == ENOMEM, "calloc(SIZE_MAX/2+2, 2) = %p, errno %d", c, errno);
  for (size_t n = 1; n < 5000000; n = n * 5 + 3) {
    unsigned char *p = malloc(n);  /* dirty a block of that size first, so reuse is tested */
    if (p) memset(p, 0xEE, n);
    free(p);
    unsigned char *q = calloc(n, 1);
    CHECK(q != NULL, "calloc(%zu, 1) failed", n);
    if (!q) continue;
    size_t nonzero = 0;
    for (size_t k = 0; k < n; ++k) nonzero += q[k] != 0;
    CHECK(nonzero == 0, "calloc(%zu, 1): %zu non-zero bytes", n, nonzero);
    free(q);
  }
  errno = 0;
  void *ra = reallocarray(NULL, volatile_size(SIZE_MAX / 4), 8);
  CHECK(ra == NULL && errno == ENOMEM, "reallocarray overflow = %p, errno %d", ra, errno);

  /* free preserves errno. */
  void *f = malloc(50000);
  errno = 4242;
  free(f);
  CHECK(errno == 4242, "free changed errno to %d", errno);
  errno = 4243;
  free(NULL);
  CHECK(errno == 4243, "free(NULL) changed errno to %d", errno);
  void *fl = malloc(20u << 20);
  errno = 4244;
  free(fl);
  CHECK(errno == 4244, "free of a huge block changed errno to %d", errno);

  /* posix_memalign: EINVAL for 0, non-powers of two, and powers of two below sizeof(void *);
   * *memptr untouched on failure. */
  size_t bad_align[] = {0, 1, 2, 4, 12, 24, 48, 96, 100, 4097, (size_t)1 << 63 | 8};
  for (unsigned i = 0; i < sizeof bad_align / sizeof *bad_align; ++i) {
    void *sentinel = (void *)0x1234;
    void *out = sentinel;
    int rc = posix_memalign(&out, bad_align[i], 64);
    CHECK(rc == EINVAL, "posix_memalign(align %zu) = %d", bad_align[i], rc);
    CHECK(out == sentinel, "posix_memalign(align %zu) changed *memptr to %p", bad_align[i], out);
  }
  for (size_t a = sizeof(void *); a <= ((size_t)1 << 22); a *= 2) {
    void *out = NULL;
    int rc = posix_memalign(&out, a, 100);
    CHECK(rc == 0 && out && ((uintptr_t)out % a) == 0, "posix_memalign(%zu, 100) = %d, %p", a, rc, out);
    if (shim && out) CHECK(ours(out), "posix_memalign(%zu) block not in the heap", a);
    if (out) memset(out, 1, 100);
    free(out);
  }
  {
    void *sentinel = (void *)0x5678, *out = sentinel;
    int rc = posix_memalign(&out, 64, volatile_size(SIZE_MAX - 100));
    CHECK(rc == ENOMEM && out == sentinel, "posix_memalign(64, huge) = %d, *memptr %p", rc, out);
  }

  /* memalign rounds a bad alignment up to a power of two; aligned_alloc; valloc/pvalloc. */
  size_t odd[] = {3, 5, 24, 48, 100, 1000, 3000, 5000};
  for (unsigned i = 0; i < sizeof odd / sizeof *odd; ++i) {
    size_t pow2 = 1;
    while (pow2 < odd[i]) pow2 *= 2;
    void *m = memalign(odd[i], 200);
    CHECK(m && ((uintptr_t)m % pow2) == 0, "memalign(%zu, 200) = %p (expected %zu-aligned)", odd[i], m, pow2);
    free(m);
  }
  for (size_t a = 16; a <= 65536; a *= 4) {
    void *m = aligned_alloc(a, a * 3);
    CHECK(m && ((uintptr_t)m % a) == 0, "aligned_alloc(%zu, %zu) = %p", a, a * 3, m);
    free(m);
    m = memalign(a, 1);
    CHECK(m && ((uintptr_t)m % a) == 0, "memalign(%zu, 1) = %p", a, m);
    free(m);
  }
  long page = sysconf(_SC_PAGESIZE);
  for (size_t n = 1; n < 100000; n = n * 7 + 1) {
    void *v = valloc(n);
    CHECK(v && ((uintptr_t)v % (size_t)page) == 0 && malloc_usable_size(v) >= n, "valloc(%zu) = %p", n, v);
    free(v);
    void *pv = pvalloc(n);
    size_t rounded = (n + (size_t)page - 1) / (size_t)page * (size_t)page;
    CHECK(pv && ((uintptr_t)pv % (size_t)page) == 0, "pvalloc(%zu) = %p", n, pv);
    if (pv) CHECK(malloc_usable_size(pv) >= rounded, "pvalloc(%zu): usable %zu < %zu", n, malloc_usable_size(pv), rounded);
    if (pv) memset(pv, 3, rounded);
    free(pv);
  }
  void *pv0 = pvalloc(0);
  CHECK(pv0 && ((uintptr_t)pv0 % (size_t)page) == 0, "pvalloc(0) = %p", pv0);
  free(pv0);

  /* The harmless ones exist and answer. */
  CHECK(mallopt(M_ARENA_MAX, 2) == 1, "mallopt(M_ARENA_MAX) did not return 1");
  (void)malloc_trim(0);
  void *held = malloc(200000);
  memset(held, 1, 200000);
  struct mallinfo2 mi = mallinfo2();
  CHECK(mi.uordblks >= 200000, "mallinfo2().uordblks = %zu with a 200000-byte block live", mi.uordblks);
  free(held);

  printf("%d checks, %d failed (%s)\n", checks, failures, shim ? "libpersist" : "glibc");
  return failures ? 1 : 0;
}
