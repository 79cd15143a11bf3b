// reopen — what opening an existing heap costs, after a clean close and after kill -9, against
// the heap's size (BENCH.md T4, T5). libpersist only; uses the heap-handle API.
//
// mode=prepare: create a fresh heap in `file` and fill it with `mib` MiB of live blocks (sizes
//   log-uniform in [16,4096], one in a hundred in [16 KiB, 1 MiB], every byte written); keep a
//   uniform sample of 4096 blocks (reservoir sampling) in a root "index". Then close it cleanly
//   (close=clean) or die by
//   SIGKILL with the heap open (close=kill), leaving it dirty.
// mode=open: open the heap and time, separately:
//   open_ms      persist_open itself;
//   first_use_ms the first work after it: free 64 sampled blocks and allocate 64 blocks of mixed
//                sizes (with a lazily rebuilt heap this is where the segments touched are read);
//   discover_ms  persist_usable_size of every sampled block: the sample covers (nearly) every
//                segment, so this is the rest of the lazy rebuild, the whole O(metadata) cost;
//   walk_ms      persist_heap_stats: the checker's walk of all the metadata;
//   close_ms     persist_close.
//   With close=kill the process then kills itself again, so the next open is again after a kill.
// mode=relocate: open the heap at address `to` (another base than the one it was created at), so
//   the rewrite layer shifts every pointer into the old range (each prepared block's first word
//   points at the previous block: one pointer per block); reports relocate_ms (the open),
//   the words rewritten and the live bytes scanned; closes cleanly.
// The runner also runs mode=open under `setarch -R`: with ASLR on, a PIE program's image moves
// at every run, and a heap closed cleanly records the modules it held pointers into, so the next
// open may rewrite image pointers too; with ASLR off the image stays put.
#include <signal.h>

#include "bench_util.h"
#include "persist_util.h"

namespace {

struct Index {
  uint64_t count;
  void *blocks[4096];
};

void prepare(const char *file, uint64_t mib, bool kill_it, uint64_t seed) {
  unlink(file);
  double t0 = bench::now();
  persist_heap_t *h = bench::open_or_die(file, PERSIST_OPEN_CREATE);
  auto *ix = static_cast<Index *>(persist_heap_root(h, "index", sizeof(Index)));
  bench::Rng rng(seed);
  uint64_t want = mib << 20, have = 0, n = 0;
  void *prev = nullptr;
  while (have < want) {
    size_t sz = rng.below(100) == 0 ? rng.range(16 << 10, 1 << 20) : rng.log_range(16, 4096);
    void *p = persist_alloc(h, sz);
    if (!p) {
      fprintf(stderr, "reopen: out of memory after %llu bytes\n", (unsigned long long)have);
      exit(1);
    }
    memset(p, static_cast<int>(n), sz);
    if (sz >= sizeof(void *)) memcpy(p, &prev, sizeof prev);  // a pointer for relocation to shift
    prev = p;
    have += sz;
    if (ix->count < 4096) ix->blocks[ix->count++] = p;  // reservoir sampling
    else if (uint64_t j = rng.below(n + 1); j < 4096) ix->blocks[j] = p;
    ++n;
  }
  double t1 = bench::now();
  printf("reopen: prepared %llu blocks, %.1f MiB live in %.2f s\n", (unsigned long long)n, double(have) / (1 << 20), t1 - t0);
  bench::result("live_bytes", double(have));
  bench::result("fill_s", t1 - t0);
  fflush(stdout);
  if (kill_it) raise(SIGKILL);
  persist_close(h);
}

void open_heap(const char *file, bool kill_it, uint64_t seed) {
  double t0 = bench::now();
  persist_heap_t *h = bench::open_or_die(file, 0);
  double t1 = bench::now();
  size_t sz = 0;
  auto *ix = static_cast<Index *>(persist_heap_root_get(h, "index", &sz));
  if (!ix) {
    fprintf(stderr, "reopen: no index root in %s\n", file);
    exit(1);
  }
  bench::Rng rng(seed);
  for (int i = 0; i < 64 && ix->count; ++i) {
    uint64_t j = rng.below(ix->count);
    persist_free(h, ix->blocks[j]);
    ix->blocks[j] = persist_alloc(h, rng.log_range(16, 4096));
  }
  double t2 = bench::now();
  size_t usable = 0;
  for (uint64_t i = 0; i < ix->count; ++i) usable += persist_usable_size(h, ix->blocks[i]);
  double t3 = bench::now();
  persist_stats_t st;
  persist_heap_stats(h, &st);
  double t4 = bench::now();
  printf("reopen: %s heap, %.1f MiB live in %llu segments: open %.3f ms, first use %.3f ms, "
         "discover %.3f ms, walk %.3f ms (sample %zu bytes)\n",
         st.clean_at_open ? "clean" : "dirty", double(st.live_bytes) / (1 << 20), (unsigned long long)st.segments,
         (t1 - t0) * 1e3, (t2 - t1) * 1e3, (t3 - t2) * 1e3, (t4 - t3) * 1e3, usable);
  bench::result("clean_at_open", st.clean_at_open);
  bench::result("open_ms", (t1 - t0) * 1e3);
  bench::result("first_use_ms", (t2 - t1) * 1e3);
  bench::result("discover_ms", (t3 - t2) * 1e3);
  bench::result("walk_ms", (t4 - t3) * 1e3);
  bench::result("segments", double(st.segments));
  bench::result("mapped_bytes", double(st.mapped_bytes));
  fflush(stdout);
  if (kill_it) raise(SIGKILL);
  double t5 = bench::now();
  persist_close(h);
  bench::result("close_ms", (bench::now() - t5) * 1e3);
}

void relocate(const char *file, uintptr_t to) {
  double t0 = bench::now();
  persist_heap_t *h = bench::open_or_die(file, 0, to);
  double t1 = bench::now();
  persist_stats_t st;
  persist_heap_stats(h, &st);
  printf("reopen: relocated to %#lx: %llu words rewritten over %.1f MiB live in %.3f ms\n",
         static_cast<unsigned long>(st.base), (unsigned long long)persist_relocated_words(h),
         double(st.live_bytes) / (1 << 20), (t1 - t0) * 1e3);
  bench::result("relocate_ms", (t1 - t0) * 1e3);
  bench::result("relocated_words", double(persist_relocated_words(h)));
  bench::result("live_bytes", double(st.live_bytes));
  bench::result("moved", st.base == to);
  persist_close(h);
}

}  // namespace

int main(int argc, char **argv) {
  bench::Args a(argc, argv, "mode=prepare|open|relocate file=PATH mib=64 close=clean|kill to=ADDR seed=1");
  const char *mode = a.str("mode", "open"), *file = a.str("file", nullptr), *close = a.str("close", "clean");
  uint64_t mib = a.u64("mib", 64), seed = a.u64("seed", 1);
  uintptr_t to = strtoull(a.str("to", "0x300000000000"), nullptr, 0);
  a.check();
  if (!file) {
    fprintf(stderr, "reopen: file=PATH is required\n");
    return 2;
  }
  bool kill_it = !strcmp(close, "kill");
  if (!strcmp(mode, "prepare")) prepare(file, mib, kill_it, seed);
  else if (!strcmp(mode, "relocate")) relocate(file, to);
  else open_heap(file, kill_it, seed + 1);
  return 0;
}
