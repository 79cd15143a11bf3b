// seed_pmm — the seed PersistMemoryManager's published workload (BENCH.md T9), through malloc.
//
// Phase 1: `count` allocations of `size` bytes (kept). Phase 2: `ops` random operations on that
// table: pick a random slot; if it holds a block, free it, otherwise allocate one (so at steady
// state allocation and free alternate). Reports each phase's time in milliseconds, measured in
// the process (the phases are too short for wall time: process start-up would dominate).
#include "bench_util.h"

int main(int argc, char **argv) {
  bench::Args a(argc, argv, "count=100000 size=64 ops=1000000 seed=1");
  uint64_t count = a.u64("count", 100000), size = a.u64("size", 64), ops = a.u64("ops", 1000000);
  uint64_t seed = a.u64("seed", 1);
  a.check();
  std::vector<void *> t(count);
  bench::Rng rng(seed);
  double t0 = bench::now();
  for (uint64_t i = 0; i < count; ++i) {
    t[i] = malloc(size);
    *static_cast<volatile char *>(t[i]) = 1;
  }
  double t1 = bench::now();
  for (uint64_t n = 0; n < ops; ++n) {
    uint64_t i = rng.below(count);
    if (t[i]) {
      free(t[i]);
      t[i] = nullptr;
    } else {
      t[i] = malloc(size);
      *static_cast<volatile char *>(t[i]) = 1;
    }
  }
  double t2 = bench::now();
  for (void *p : t) free(p);
  printf("seed_pmm: %llu allocations %.3f ms, %llu random ops %.3f ms\n", (unsigned long long)count,
         (t1 - t0) * 1e3, (unsigned long long)ops, (t2 - t1) * 1e3);
  bench::result("alloc_ms", (t1 - t0) * 1e3);
  bench::result("mixed_ms", (t2 - t1) * 1e3);
  return 0;
}
