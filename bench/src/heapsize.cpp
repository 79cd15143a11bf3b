// heapsize — the heap file's size against the bytes the program holds (BENCH.md T3, second
// half). libpersist only; uses the heap-handle API on a fresh heap in `file`.
//
// Phases, each followed by a report of live bytes requested, live bytes usable (the heap's own
// count), the file's apparent size and its allocated size (du):
//   fill     allocate blocks log-uniform in [16,4096] until `mib` MiB are live;
//   half     free a random half of them;
//   refill   allocate blocks log-uniform in [4 KiB, 64 KiB] until `mib` MiB are live again
//            (different sizes: freed small-block pages must be reused or returned);
//   drain    free everything but one block in a hundred.
// The ratio that matters is allocated size / peak live bytes (peak = `mib` MiB).
#include "bench_util.h"
#include "persist_util.h"

namespace {

struct Live {
  void *p;
  size_t n;
};

void report(persist_heap_t *h, const char *file, const char *phase, uint64_t requested) {
  persist_stats_t st;
  persist_heap_stats(h, &st);
  double allocated, apparent;
  bench::file_sizes(file, &allocated, &apparent);
  printf("heapsize %-7s requested %8.1f MiB  usable %8.1f MiB  file %8.1f MiB  du %8.1f MiB\n", phase,
         double(requested) / (1 << 20), double(st.live_bytes) / (1 << 20), apparent / (1 << 20),
         allocated / (1 << 20));
  char key[64];
  snprintf(key, sizeof key, "%s_requested", phase), bench::result(key, double(requested));
  snprintf(key, sizeof key, "%s_usable", phase), bench::result(key, double(st.live_bytes));
  snprintf(key, sizeof key, "%s_file", phase), bench::result(key, apparent);
  snprintf(key, sizeof key, "%s_du", phase), bench::result(key, allocated);
}

}  // namespace

int main(int argc, char **argv) {
  bench::Args a(argc, argv, "file=PATH mib=256 seed=1");
  const char *file = a.str("file", nullptr);
  uint64_t mib = a.u64("mib", 256), seed = a.u64("seed", 1);
  a.check();
  if (!file) {
    fprintf(stderr, "heapsize: file=PATH is required\n");
    return 2;
  }
  unlink(file);
  persist_heap_t *h = bench::open_or_die(file, PERSIST_OPEN_CREATE);
  bench::Rng rng(seed);
  std::vector<Live> live;
  uint64_t want = mib << 20, have = 0;
  auto fill = [&](uint64_t lo, uint64_t hi) {
    while (have < want) {
      size_t n = rng.log_range(lo, hi);
      void *p = persist_alloc(h, n);
      memset(p, 1, n);
      live.push_back({p, n});
      have += n;
    }
  };
  auto drop = [&](uint64_t keep_one_in) {
    std::vector<Live> kept;
    for (auto &l : live)
      if (rng.below(keep_one_in) == 0) kept.push_back(l);
      else persist_free(h, l.p), have -= l.n;
    live.swap(kept);
  };
  fill(16, 4096);
  report(h, file, "fill", have);
  drop(2);
  report(h, file, "half", have);
  fill(4096, 65536);
  report(h, file, "refill", have);
  drop(100);
  report(h, file, "drain", have);
  bench::result("peak_requested", double(want));
  persist_close(h);
  unlink(file);
  return 0;
}
