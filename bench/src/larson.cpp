// larson — a server simulation in the manner of Larson & Krishnan's benchmark.
//
// Each of `threads` chains owns a table of `slots` blocks, allocated up front by the main thread.
// A generation of a chain is one thread: it replaces random blocks of the table (free the old one,
// malloc a new one of a random size in [min,max], write to it) `ops` times, then starts the next
// generation's thread with the same table and exits. So every generation frees blocks that earlier
// threads allocated (cross-thread frees), and threads are created and retired all the time, like
// worker threads of a server. Runs for `seconds`; reports operations (one free + one malloc) per
// second over all chains. Stresses: throughput of small sizes, cross-thread frees, thread churn.
#include <atomic>

#include "bench_util.h"

namespace {

struct Chain {
  void **table;
  uint64_t slots, ops, min, max, seed;
  uint64_t done_ops = 0;          // written by each generation before it hands over
  std::atomic<int> finished{0};   // set by the last generation
};

std::atomic<int> g_stop{0};

void *generation(void *arg) {
  auto *c = static_cast<Chain *>(arg);
  bench::Rng rng(c->seed++);
  void **t = c->table;
  uint64_t n = 0;
  for (; n < c->ops; ++n) {
    uint64_t i = rng.below(c->slots);
    free(t[i]);
    size_t sz = rng.range(c->min, c->max);
    t[i] = malloc(sz);
    bench::touch(t[i], sz);
  }
  c->done_ops += n;
  if (g_stop.load(std::memory_order_relaxed)) {
    c->finished.store(1, std::memory_order_release);
    return nullptr;
  }
  pthread_t next;
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  if (pthread_create(&next, &attr, generation, c) != 0) {
    fprintf(stderr, "larson: pthread_create failed\n");
    exit(1);
  }
  pthread_attr_destroy(&attr);
  return nullptr;
}

}  // namespace

int main(int argc, char **argv) {
  bench::Args a(argc, argv, "threads=2 seconds=2 min=10 max=1000 slots=1000 ops=20000 seed=1");
  unsigned threads = static_cast<unsigned>(a.u64("threads", 2));
  double seconds = a.num("seconds", 2);
  uint64_t min = a.u64("min", 10), max = a.u64("max", 1000), slots = a.u64("slots", 1000);
  uint64_t ops = a.u64("ops", 20000), seed = a.u64("seed", 1);
  a.check();

  bench::Rng rng(seed);
  std::vector<Chain *> chains;
  for (unsigned i = 0; i < threads; ++i) {
    auto *c = new Chain;
    c->table = static_cast<void **>(calloc(slots, sizeof(void *)));
    for (uint64_t j = 0; j < slots; ++j) {
      size_t sz = rng.range(min, max);
      c->table[j] = malloc(sz);
      bench::touch(c->table[j], sz);
    }
    c->slots = slots, c->ops = ops, c->min = min, c->max = max, c->seed = seed * 1000 + i;
    chains.push_back(c);
  }
  double t0 = bench::now();
  for (Chain *c : chains) {
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_create(&t, &attr, generation, c);
    pthread_attr_destroy(&attr);
  }
  while (bench::now() - t0 < seconds) usleep(10000);
  g_stop.store(1);
  uint64_t total = 0;
  for (Chain *c : chains) {
    while (!c->finished.load(std::memory_order_acquire)) usleep(200);
    total += c->done_ops;
  }
  double el = bench::now() - t0;
  for (Chain *c : chains) {
    for (uint64_t j = 0; j < slots; ++j) free(c->table[j]);
    free(c->table);
    delete c;
  }
  printf("larson: %u chains, %.0f ops in %.3f s\n", threads, double(total), el);
  bench::result("ops_per_sec", double(total) / el);
  return 0;
}
