// mstress — many threads, mixed lifetimes and sizes, some large (in the manner of mimalloc's
// stress test and rptest).
//
// `rounds` rounds; each round starts `threads` fresh threads (so thread heaps are created and
// retired) that each perform `steps` random actions on a private table of `slots` blocks:
//   50% allocate a block into a random slot (freeing what was there),
//   20% free a random slot,
//   15% exchange a random slot with a random slot of a global transfer table (the block is
//       then freed or kept by whichever thread takes it: cross-thread lifetimes),
//   15% nothing but a write to a live block.
// Sizes: 90% in [1,256], 9% in (256,8K], 0.9% in (8K,256K], 0.1% in (256K,4M]; every block is
// written at both ends. At the end of its round a thread frees its private table; the transfer
// table lives across rounds. Fixed work; the runner measures the wall time.
// Stresses: span and page management under mixed sizes, returning memory, thread churn.
#include <atomic>

#include "bench_util.h"

namespace {

size_t pick_size(bench::Rng &rng) {
  uint64_t r = rng.below(1000);
  if (r < 900) return rng.range(1, 256);
  if (r < 990) return rng.range(257, 8192);
  if (r < 999) return rng.range(8193, 256 << 10);
  return rng.range((256 << 10) + 1, 4 << 20);
}

}  // namespace

int main(int argc, char **argv) {
  bench::Args a(argc, argv, "threads=2 rounds=20 steps=200000 slots=2000 transfer=1000 seed=1");
  unsigned threads = static_cast<unsigned>(a.u64("threads", 2));
  uint64_t rounds = a.u64("rounds", 20), steps = a.u64("steps", 200000);
  uint64_t slots = a.u64("slots", 2000), ntransfer = a.u64("transfer", 1000), seed = a.u64("seed", 1);
  a.check();
  std::vector<std::atomic<void *>> transfer(ntransfer);
  for (auto &t : transfer) t.store(nullptr);
  double t0 = bench::now();
  for (uint64_t r = 0; r < rounds; ++r)
    bench::run_threads(threads, [&](unsigned id) {
      bench::Rng rng(seed * 1000003 + r * 131 + id);
      std::vector<void *> mine(slots, nullptr);
      for (uint64_t s = 0; s < steps; ++s) {
        uint64_t act = rng.below(100), i = rng.below(slots);
        if (act < 50) {
          free(mine[i]);
          size_t sz = pick_size(rng);
          mine[i] = malloc(sz);
          bench::touch(mine[i], sz);
        } else if (act < 70) {
          free(mine[i]);
          mine[i] = nullptr;
        } else if (act < 85) {
          mine[i] = transfer[rng.below(ntransfer)].exchange(mine[i], std::memory_order_acq_rel);
        } else if (mine[i]) {
          *static_cast<volatile char *>(mine[i]) = 1;
        }
      }
      for (void *p : mine) free(p);
    });
  for (auto &t : transfer) free(t.load());
  printf("mstress: %u threads x %llu rounds, %.3f s\n", threads, (unsigned long long)rounds, bench::now() - t0);
  return 0;
}
