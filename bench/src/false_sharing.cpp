// false_sharing — do different threads' small blocks share cache lines? (after Hoard's
// cache-thrash and cache-scratch).
//
// mode=thrash: each of `threads` workers repeatedly allocates a small block (`size` bytes),
// writes every byte of it `writes` times, and frees it. An allocator that serves two threads from
// the same cache line makes the writes ping-pong the line between cores ("active" false sharing).
// mode=scratch: the main thread first allocates one block per worker (adjacent blocks, likely on
// one line) and hands them out; each worker frees the block it was given and then runs the same
// loop. An allocator that reuses a freed block for the thread that freed it inherits the shared
// line ("passive" false sharing). Fixed work: the runner measures the wall time.
#include "bench_util.h"

int main(int argc, char **argv) {
  bench::Args a(argc, argv, "mode=thrash|scratch threads=2 size=8 iterations=1000 writes=20000");
  const char *mode = a.str("mode", "thrash");
  unsigned threads = static_cast<unsigned>(a.u64("threads", 2));
  size_t size = a.u64("size", 8);
  uint64_t iterations = a.u64("iterations", 1000), writes = a.u64("writes", 20000);
  a.check();
  bool scratch = !strcmp(mode, "scratch");
  if (!scratch && strcmp(mode, "thrash")) {
    fprintf(stderr, "false_sharing: mode is thrash or scratch\n");
    return 2;
  }
  std::vector<char *> given(threads, nullptr);
  if (scratch)
    for (auto &p : given) p = static_cast<char *>(malloc(size));
  double t0 = bench::now();
  bench::run_threads(threads, [&](unsigned id) {
    free(given[id]);
    for (uint64_t it = 0; it < iterations; ++it) {
      auto *p = static_cast<volatile char *>(malloc(size));
      for (uint64_t w = 0; w < writes; ++w)
        for (size_t j = 0; j < size; ++j) p[j] = static_cast<char>(p[j] + 1);
      free(const_cast<char *>(p));
    }
  });
  printf("false_sharing %s: %u threads, %.3f s\n", mode, threads, bench::now() - t0);
  return 0;
}
