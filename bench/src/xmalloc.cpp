// xmalloc — producers allocate, consumers free (after Lever & Boreham's xmalloc-test).
//
// `threads` workers stand in a ring. Each worker repeatedly allocates a batch of `batch` blocks
// (random sizes in [min,max], written to), hands the batch to the next worker's inbox, then
// frees every batch waiting in its own inbox. With 2 or more workers every free is a remote free
// (the block was allocated by another thread); with 1 worker the same code frees its own blocks,
// the baseline for scaling. An inbox holds at most `depth` batches (a producer that finds it full
// waits), which bounds memory. Runs for `seconds`; reports blocks freed per second.
// Stresses: the remote-free path and the memory it strands.
#include <atomic>
#include <mutex>

#include "bench_util.h"

namespace {

struct Batch {
  Batch *next;
  unsigned n;
  void *blocks[1];  // n entries
};

struct alignas(64) Inbox {
  std::mutex m;
  Batch *head = nullptr;
  unsigned count = 0;
};

std::atomic<int> g_stop{0};

}  // namespace

int main(int argc, char **argv) {
  bench::Args a(argc, argv, "threads=2 seconds=2 batch=64 min=8 max=512 depth=64 seed=1");
  unsigned threads = static_cast<unsigned>(a.u64("threads", 2));
  double seconds = a.num("seconds", 2);
  unsigned batch = static_cast<unsigned>(a.u64("batch", 64)), depth = static_cast<unsigned>(a.u64("depth", 64));
  uint64_t min = a.u64("min", 8), max = a.u64("max", 512), seed = a.u64("seed", 1);
  a.check();

  std::vector<Inbox> inbox(threads);
  std::vector<uint64_t> freed(threads * 8, 0);  // one cache line apart
  double t0 = bench::now();
  bench::run_threads(threads, [&](unsigned id) {
    bench::Rng rng(seed * 7919 + id);
    Inbox &mine = inbox[id], &next = inbox[(id + 1) % threads];
    uint64_t nfreed = 0;
    unsigned round = 0;
    auto drain = [&] {
      Batch *list;
      {
        std::lock_guard<std::mutex> g(mine.m);
        list = mine.head;
        mine.head = nullptr;
        mine.count = 0;
      }
      while (list) {
        Batch *b = list;
        list = b->next;
        for (unsigned i = 0; i < b->n; ++i) free(b->blocks[i]);
        nfreed += b->n;
        free(b);
      }
    };
    while (!(++round % 64 == 0 && g_stop.load(std::memory_order_relaxed))) {
      auto *b = static_cast<Batch *>(malloc(sizeof(Batch) + (batch - 1) * sizeof(void *)));
      b->n = batch;
      for (unsigned i = 0; i < batch; ++i) {
        size_t sz = rng.range(min, max);
        b->blocks[i] = malloc(sz);
        bench::touch(b->blocks[i], sz);
      }
      for (;;) {
        {
          std::lock_guard<std::mutex> g(next.m);
          if (next.count < depth || g_stop.load(std::memory_order_relaxed)) {
            b->next = next.head;
            next.head = b;
            ++next.count;
            break;
          }
        }
        drain();  // the next worker is behind: do our own share meanwhile
        std::this_thread::yield();
      }
      drain();
      if (id == 0 && round % 64 == 0 && bench::now() - t0 >= seconds) g_stop.store(1);
    }
    freed[id * 8] = nfreed;
  });
  double el = bench::now() - t0;
  uint64_t total = 0;
  for (unsigned i = 0; i < threads; ++i) {
    Inbox &ib = inbox[i];
    for (Batch *b = ib.head; b;) {  // left after the stop: freed outside the measurement
      Batch *n = b->next;
      for (unsigned j = 0; j < b->n; ++j) free(b->blocks[j]);
      free(b);
      b = n;
    }
    total += freed[i * 8];
  }
  printf("xmalloc: %u workers, %.0f blocks freed in %.3f s\n", threads, double(total), el);
  bench::result("frees_per_sec", double(total) / el);
  return 0;
}
