// alloc_test — random sizes over a working set (in the manner of the alloc-test benchmark).
//
// Each of `threads` workers owns a working set of `slots` blocks and performs `ops` replacements:
// pick a random slot, free its block, allocate a new one whose size is drawn log-uniformly from
// [min,max] (so small sizes dominate but every size class is used), write its first and last
// byte. Every `phase` operations the worker also frees a random tenth of its set (lifetimes
// vary). The work per thread is fixed, so with 2 threads on 2 cores the wall time stays flat when
// the allocator scales. Stresses: size-class handling and reuse at a steady working set.
#include "bench_util.h"

int main(int argc, char **argv) {
  bench::Args a(argc, argv, "threads=1 ops=20000000 slots=65536 min=8 max=8192 phase=1000000 seed=1");
  unsigned threads = static_cast<unsigned>(a.u64("threads", 1));
  uint64_t ops = a.u64("ops", 20000000), slots = a.u64("slots", 65536);
  uint64_t min = a.u64("min", 8), max = a.u64("max", 8192), phase = a.u64("phase", 1000000);
  uint64_t seed = a.u64("seed", 1);
  a.check();
  double t0 = bench::now();
  bench::run_threads(threads, [&](unsigned id) {
    bench::Rng rng(seed * 31 + id);
    std::vector<void *> set(slots, nullptr);
    for (uint64_t n = 1; n <= ops; ++n) {
      uint64_t i = rng.below(slots);
      free(set[i]);
      size_t sz = rng.log_range(min, max);
      set[i] = malloc(sz);
      bench::touch(set[i], sz);
      if (n % phase == 0)
        for (uint64_t k = 0; k < slots / 10; ++k) {
          uint64_t j = rng.below(slots);
          free(set[j]);
          set[j] = nullptr;
        }
    }
    for (void *p : set) free(p);
  });
  printf("alloc_test: %u threads x %llu ops, %.3f s\n", threads, (unsigned long long)ops, bench::now() - t0);
  return 0;
}
