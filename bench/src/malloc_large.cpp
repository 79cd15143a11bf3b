// malloc_large — many huge blocks (5–25 MiB), in the manner of mimalloc-bench's malloc-large.
//
// Keeps `live` blocks; `iterations` times replaces a random one with a new block of a random
// size in [5,25] MiB and writes one byte in every 4 KiB page of it, so the cost of obtaining,
// faulting in and giving back large ranges shows, as well as whether freed ranges are reused.
// Fixed work; the runner measures the wall time.
#include "bench_util.h"

int main(int argc, char **argv) {
  bench::Args a(argc, argv, "iterations=400 live=8 min_mib=5 max_mib=25 seed=1");
  uint64_t iterations = a.u64("iterations", 400), live = a.u64("live", 8);
  uint64_t lo = a.u64("min_mib", 5) << 20, hi = a.u64("max_mib", 25) << 20, seed = a.u64("seed", 1);
  a.check();
  bench::Rng rng(seed);
  std::vector<char *> set(live, nullptr);
  double t0 = bench::now();
  for (uint64_t it = 0; it < iterations; ++it) {
    uint64_t i = rng.below(live);
    free(set[i]);
    size_t sz = rng.range(lo, hi);
    set[i] = static_cast<char *>(malloc(sz));
    if (!set[i]) {
      fprintf(stderr, "malloc_large: out of memory at %zu bytes\n", sz);
      return 1;
    }
    for (size_t off = 0; off < sz; off += 4096) set[i][off] = static_cast<char>(off >> 12);
  }
  for (char *p : set) free(p);
  printf("malloc_large: %llu blocks, %.3f s\n", (unsigned long long)iterations, bench::now() - t0);
  return 0;
}
