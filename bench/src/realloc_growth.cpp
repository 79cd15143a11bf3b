// realloc_growth — buffers grown by many small appends through realloc (string builders,
// vectors without a growth policy, as in many C programs).
//
// `objects` buffers grow side by side: each step picks a random buffer, appends 1–64 bytes with
// realloc to the exact new length, and writes the appended bytes. A buffer that reaches its
// target length (log-uniform in [64 B, max]) is freed and starts again empty. Growing many
// buffers at once keeps neighbours from leaving room behind each other, so in-place growth has
// to come from size classes and span management, not luck. Fixed work; the runner measures the
// wall time.
#include "bench_util.h"

int main(int argc, char **argv) {
  bench::Args a(argc, argv, "objects=1000 steps=20000000 max=262144 seed=1");
  uint64_t objects = a.u64("objects", 1000), steps = a.u64("steps", 20000000);
  uint64_t max = a.u64("max", 262144), seed = a.u64("seed", 1);
  a.check();
  struct Buf {
    char *p;
    size_t len, target;
  };
  bench::Rng rng(seed);
  std::vector<Buf> bufs(objects);
  for (auto &b : bufs) b = {nullptr, 0, rng.log_range(64, max)};
  double t0 = bench::now();
  for (uint64_t s = 0; s < steps; ++s) {
    Buf &b = bufs[rng.below(objects)];
    size_t add = rng.range(1, 64);
    char *q = static_cast<char *>(realloc(b.p, b.len + add));
    if (!q) {
      fprintf(stderr, "realloc_growth: out of memory\n");
      return 1;
    }
    memset(q + b.len, static_cast<int>(s), add);
    b.p = q;
    b.len += add;
    if (b.len >= b.target) {
      free(b.p);
      b = {nullptr, 0, rng.log_range(64, max)};
    }
  }
  for (auto &b : bufs) free(b.p);
  printf("realloc_growth: %llu appends, %.3f s\n", (unsigned long long)steps, bench::now() - t0);
  return 0;
}
