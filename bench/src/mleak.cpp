// mleak — a slowly growing leak inside ordinary churn.
//
// Replaces random blocks of a working set of `slots` blocks (sizes log-uniform in [16,4096])
// `ops` times, and every `leak_every`-th allocation is leaked instead of being stored (it is
// never freed). So the live heap grows slowly and steadily, interleaved with short-lived blocks:
// does the allocator keep the leaked blocks packed, or does the growth drag fragmented pages
// along? Fixed work; the runner reports wall time and peak RSS.
#include "bench_util.h"

int main(int argc, char **argv) {
  bench::Args a(argc, argv, "ops=20000000 slots=10000 leak_every=100 seed=1");
  uint64_t ops = a.u64("ops", 20000000), slots = a.u64("slots", 10000);
  uint64_t leak_every = a.u64("leak_every", 100), seed = a.u64("seed", 1);
  a.check();
  bench::Rng rng(seed);
  std::vector<void *> set(slots, nullptr);
  uint64_t leaked = 0, leaked_bytes = 0;
  double t0 = bench::now();
  for (uint64_t n = 1; n <= ops; ++n) {
    size_t sz = rng.log_range(16, 4096);
    void *p = malloc(sz);
    bench::touch(p, sz);
    if (n % leak_every == 0) {
      ++leaked, leaked_bytes += sz;  // dropped on purpose
      continue;
    }
    uint64_t i = rng.below(slots);
    free(set[i]);
    set[i] = p;
  }
  for (void *p : set) free(p);
  printf("mleak: %llu blocks (%.1f MiB) leaked, %.3f s\n", (unsigned long long)leaked,
         double(leaked_bytes) / (1 << 20), bench::now() - t0);
  bench::result("leaked_bytes", double(leaked_bytes));
  return 0;
}
