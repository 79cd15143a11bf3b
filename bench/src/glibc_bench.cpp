// glibc_bench — tight malloc/free loops of small sizes (in the manner of glibc's
// bench-malloc-simple and bench-malloc-thread).
//
// mode=simple (one thread, fixed work): for each size in {16, 32, 64, 128, 256, 512}, repeat
// `rounds` times: allocate `count` blocks of that size, then free them in allocation order. The
// allocator's fast paths and nothing else; the runner measures the wall time.
// mode=thread (fixed duration): each of `threads` workers keeps 2048 slots and replaces a random
// one with a block of a random size in [8,512] as fast as it can for `seconds`; reports
// iterations (one free + one malloc) per second over all workers.
#include <atomic>

#include "bench_util.h"

namespace {

void simple(uint64_t rounds, unsigned count) {
  static const size_t kSizes[] = {16, 32, 64, 128, 256, 512};
  std::vector<void *> blocks(count);
  for (size_t sz : kSizes)
    for (uint64_t r = 0; r < rounds; ++r) {
      for (unsigned i = 0; i < count; ++i) {
        blocks[i] = malloc(sz);
        *static_cast<volatile char *>(blocks[i]) = 1;
      }
      for (unsigned i = 0; i < count; ++i) free(blocks[i]);
    }
}

std::atomic<int> g_stop{0};

}  // namespace

int main(int argc, char **argv) {
  bench::Args a(argc, argv, "mode=simple|thread rounds=200000 count=100 threads=2 seconds=2 seed=1");
  const char *mode = a.str("mode", "simple");
  uint64_t rounds = a.u64("rounds", 200000);
  unsigned count = static_cast<unsigned>(a.u64("count", 100));
  unsigned threads = static_cast<unsigned>(a.u64("threads", 2));
  double seconds = a.num("seconds", 2);
  uint64_t seed = a.u64("seed", 1);
  a.check();
  double t0 = bench::now();
  if (!strcmp(mode, "simple")) {
    simple(rounds, count);
    printf("glibc simple: %.3f s\n", bench::now() - t0);
    return 0;
  }
  if (strcmp(mode, "thread")) {
    fprintf(stderr, "glibc_bench: mode is simple or thread\n");
    return 2;
  }
  std::vector<uint64_t> iters(threads * 8, 0);
  std::thread timer([&] {
    while (bench::now() - t0 < seconds) usleep(5000);
    g_stop.store(1);
  });
  bench::run_threads(threads, [&](unsigned id) {
    bench::Rng rng(seed * 101 + id);
    std::vector<void *> slot(2048, nullptr);
    uint64_t n = 0;
    while (!g_stop.load(std::memory_order_relaxed)) {
      for (int k = 0; k < 256; ++k) {
        uint64_t i = rng.below(2048);
        free(slot[i]);
        slot[i] = malloc(rng.range(8, 512));
        *static_cast<volatile char *>(slot[i]) = 1;
      }
      n += 256;
    }
    for (void *p : slot) free(p);
    iters[id * 8] = n;
  });
  timer.join();
  double el = bench::now() - t0;
  uint64_t total = 0;
  for (unsigned i = 0; i < threads; ++i) total += iters[i * 8];
  printf("glibc thread: %u threads, %.0f iterations in %.3f s\n", threads, double(total), el);
  bench::result("iterations_per_sec", double(total) / el);
  return 0;
}
