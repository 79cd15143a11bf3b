// micro — Google Benchmark micro-benchmarks of the allocation fast paths.
//
// Every benchmark runs twice, through two interfaces:
//   <Sys>     malloc/free/realloc/aligned_alloc: whatever allocator is loaded (glibc, or the one
//             LD_PRELOAD puts in front; libpersist's shim when it is preloaded);
//   <Persist> persist_alloc/persist_free/... on a heap handle opened here with persist_open
//             (the core linked statically, no shim involved).
// The heap handle lives at BENCH_PERSIST_ADDR (default 0x300000000000, away from the shim's
// default heap so both can coexist when libpersist is also preloaded) in the file
// BENCH_PERSIST_FILE (default /dev/shm/persist-micro-<pid>.heap, removed at exit).
// Every benchmark reports items_per_second; ns per operation is 1e9 / items_per_second.
#include <benchmark/benchmark.h>
#include <persist.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <functional>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace {

persist_heap_t *g_heap;

struct Sys {
  static void *alloc(size_t n) { return malloc(n); }
  static void release(void *p) { free(p); }
  static void *resize(void *p, size_t n) { return realloc(p, n); }
  static void *aligned(size_t a, size_t n) { return aligned_alloc(a, (n + a - 1) & ~(a - 1)); }
};

struct Persist {
  static void *alloc(size_t n) { return persist_alloc(g_heap, n); }
  static void release(void *p) { persist_free(g_heap, p); }
  static void *resize(void *p, size_t n) { return persist_realloc(g_heap, p, n); }
  static void *aligned(size_t a, size_t n) { return persist_alloc_aligned(g_heap, a, n); }
};

// malloc then free of one size, over and over: the purest fast path (same block every time).
template <class A>
void BM_pair(benchmark::State &st) {
  size_t n = static_cast<size_t>(st.range(0));
  for (auto _ : st) {
    void *p = A::alloc(n);
    benchmark::DoNotOptimize(p);
    A::release(p);
  }
  st.SetItemsProcessed(st.iterations());
}

// 256 mallocs then 256 frees: 256 different blocks taken and given back, not one reused.
template <class A>
void BM_batch(benchmark::State &st) {
  size_t n = static_cast<size_t>(st.range(0));
  void *b[256];
  for (auto _ : st) {
    for (auto &p : b) benchmark::DoNotOptimize(p = A::alloc(n));
    for (auto &p : b) A::release(p);
  }
  st.SetItemsProcessed(st.iterations() * 512);
}

// A helper thread that allocates batches of blocks on request and stays alive, so frees of its
// blocks are frees into a live other thread's memory (the remote-free path).
class Helper {
 public:
  template <class A>
  void fill(std::vector<void *> &v, size_t size) {
    std::unique_lock<std::mutex> l(m_);
    job_ = [&v, size] {
      for (auto &p : v) p = A::alloc(size);
    };
    if (!t_.joinable()) t_ = std::thread([this] { loop(); });
    cv_.notify_all();
    cv_.wait(l, [this] { return !job_; });
  }
  ~Helper() {
    {
      std::lock_guard<std::mutex> l(m_);
      quit_ = true;
    }
    cv_.notify_all();
    if (t_.joinable()) t_.join();
  }

 private:
  void loop() {
    std::unique_lock<std::mutex> l(m_);
    for (;;) {
      cv_.wait(l, [this] { return quit_ || job_; });
      if (quit_) return;
      job_();
      job_ = nullptr;
      cv_.notify_all();
    }
  }
  std::mutex m_;
  std::condition_variable cv_;
  std::function<void()> job_;
  std::thread t_;
  bool quit_ = false;
};

template <class A>
void BM_remote_free(benchmark::State &st) {
  static Helper helper;
  size_t n = static_cast<size_t>(st.range(0));
  std::vector<void *> v(1 << 14);
  for (auto _ : st) {
    st.PauseTiming();
    helper.fill<A>(v, n);
    st.ResumeTiming();
    for (void *p : v) A::release(p);
  }
  st.SetItemsProcessed(st.iterations() * static_cast<int64_t>(v.size()));
}

// realloc that stays inside the block's usable size: should return the same pointer.
template <class A>
void BM_realloc_inplace(benchmark::State &st) {
  void *p = A::alloc(100);
  size_t i = 0;
  for (auto _ : st) {
    p = A::resize(p, 97 + (i++ & 7));
    benchmark::DoNotOptimize(p);
  }
  A::release(p);
  st.SetItemsProcessed(st.iterations());
}

// A large block grown by 4 KiB steps from 64 KiB to 1 MiB, then freed: in-place growth of
// page spans (or a copy when the allocator cannot grow in place).
template <class A>
void BM_realloc_grow(benchmark::State &st) {
  void *p = nullptr;
  size_t n = 0;
  for (auto _ : st) {
    if (n >= (1 << 20)) {
      A::release(p);
      p = nullptr;
      n = 0;
    }
    n = n ? n + 4096 : 64 << 10;
    p = A::resize(p, n);
    benchmark::DoNotOptimize(p);
  }
  A::release(p);
  st.SetItemsProcessed(st.iterations());
}

template <class A>
void BM_aligned(benchmark::State &st) {
  size_t a = static_cast<size_t>(st.range(0));
  for (auto _ : st) {
    void *p = A::aligned(a, 64);
    benchmark::DoNotOptimize(p);
    A::release(p);
  }
  st.SetItemsProcessed(st.iterations());
}

#define SIZES Arg(16)->Arg(64)->Arg(256)->Arg(1024)->Arg(4096)->Arg(16384)
BENCHMARK_TEMPLATE(BM_pair, Sys)->SIZES;
BENCHMARK_TEMPLATE(BM_pair, Persist)->SIZES;
BENCHMARK_TEMPLATE(BM_batch, Sys)->Arg(16)->Arg(256)->Arg(4096);
BENCHMARK_TEMPLATE(BM_batch, Persist)->Arg(16)->Arg(256)->Arg(4096);
BENCHMARK_TEMPLATE(BM_remote_free, Sys)->Arg(64);
BENCHMARK_TEMPLATE(BM_remote_free, Persist)->Arg(64);
BENCHMARK_TEMPLATE(BM_realloc_inplace, Sys);
BENCHMARK_TEMPLATE(BM_realloc_inplace, Persist);
BENCHMARK_TEMPLATE(BM_realloc_grow, Sys);
BENCHMARK_TEMPLATE(BM_realloc_grow, Persist);
BENCHMARK_TEMPLATE(BM_aligned, Sys)->Arg(64)->Arg(256)->Arg(4096);
BENCHMARK_TEMPLATE(BM_aligned, Persist)->Arg(64)->Arg(256)->Arg(4096);

}  // namespace

int main(int argc, char **argv) {
  const char *file = getenv("BENCH_PERSIST_FILE");
  std::string path = file ? file : "/dev/shm/persist-micro-" + std::to_string(getpid()) + ".heap";
  const char *addr = getenv("BENCH_PERSIST_ADDR");
  persist_options_t o{};
  o.addr = addr ? strtoull(addr, nullptr, 0) : 0x300000000000ull;
  o.flags = PERSIST_OPEN_CREATE;
  unlink(path.c_str());
  int rc = persist_open(path.c_str(), &o, &g_heap);
  if (rc) {
    fprintf(stderr, "micro: persist_open %s: %s\n", path.c_str(), persist_strerror(rc));
    return 1;
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 2;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  persist_close(g_heap);
  if (!file) unlink(path.c_str());
  return 0;
}
