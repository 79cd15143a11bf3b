// sampling_test.cpp — the allocation-site recorder (core/sites.h): it allocates nothing (this
// executable interposes the libc malloc family and counts calls made while the heap samples,
// from a thread's first sample on),
// works from many threads at once, ties each sampled block to its call stack as (module, offset)
// frames, and sampled blocks behave like any other block: usable size, realloc, calloc, alignment,
// free, reopen, the collector and persist_heap_check.
#include <gtest/gtest.h>
#include <dlfcn.h>
#include <link.h>

#include <algorithm>

#include <atomic>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "heap.h"
#include "heaputil.h"
#include "persist.h"
#include "sites.h"
#include "sitesread.h"
#include "testutil.h"

// ---- the libc malloc family, counted ----------------------------------------------------------
// Counting is per thread: each sampling thread counts what it itself calls while it allocates from
// the persistent heap (libunwind, ld.so's TLS setup, anything the recorder might reach).
extern "C" {
void *__libc_malloc(size_t);
void *__libc_calloc(size_t, size_t);
void *__libc_realloc(void *, size_t);
void *__libc_memalign(size_t, size_t);
void __libc_free(void *);
}
namespace {
thread_local bool tl_counting = false;
std::atomic<long> g_libc_calls{0};
void *g_callers[16];  // where the first counted calls came from (reported on failure)
__attribute__((always_inline)) inline void counted_from(void *caller) {
  if (!tl_counting) return;
  long n = g_libc_calls.fetch_add(1, std::memory_order_relaxed);
  if (n < 16) g_callers[n] = caller;
}
#define counted() counted_from(__builtin_return_address(0))
std::string callers() {
  std::string out;
  for (long i = 0; i < std::min<long>(16, g_libc_calls.load()); ++i) {
    Dl_info info{};
    char line[512];
    if (dladdr(g_callers[i], &info) && info.dli_fname)
      snprintf(line, sizeof line, "  %s %s+%#lx\n", info.dli_fname, info.dli_sname ? info.dli_sname : "?",
               static_cast<unsigned long>(static_cast<char *>(g_callers[i]) -
                                          static_cast<char *>(info.dli_saddr ? info.dli_saddr : info.dli_fbase)));
    else
      snprintf(line, sizeof line, "  %p\n", g_callers[i]);
    out += line;
  }
  return out;
}
}  // namespace
extern "C" {
void *malloc(size_t n) {
  counted();
  return __libc_malloc(n);
}
void *calloc(size_t a, size_t b) {
  counted();
  return __libc_calloc(a, b);
}
void *realloc(void *p, size_t n) {
  counted();
  return __libc_realloc(p, n);
}
void *memalign(size_t a, size_t n) {
  counted();
  return __libc_memalign(a, n);
}
void *aligned_alloc(size_t a, size_t n) {
  counted();
  return __libc_memalign(a, n);
}
int posix_memalign(void **out, size_t a, size_t n) {
  counted();
  void *p = __libc_memalign(a, n);
  if (!p) return ENOMEM;
  *out = p;
  return 0;
}
void free(void *p) { __libc_free(p); }
}

namespace {

using persist::Heap;

Heap *as_heap(persist_heap_t *h) { return static_cast<Heap *>(h); }

// Three call sites, each in a function of its own (not inlined: they must show up as frames).
__attribute__((noinline)) void *site_a(persist_heap_t *h, size_t n) {
  void *p = persist_alloc(h, n);
  asm volatile("" ::: "memory");
  return p;
}
__attribute__((noinline)) void *site_b(persist_heap_t *h, size_t n) {
  void *p = persist_calloc(h, 1, n);
  asm volatile("" ::: "memory");
  return p;
}
__attribute__((noinline)) void *site_c(persist_heap_t *h, size_t n) {
  void *p = persist_alloc_aligned(h, 64, n);
  asm volatile("" ::: "memory");
  return p;
}

// The load bias of this executable (frames are recorded as offsets from it).
uintptr_t own_bias() {
  struct F {
    uintptr_t pc, bias;
  } f{reinterpret_cast<uintptr_t>(&own_bias), 0};
  dl_iterate_phdr(
      [](dl_phdr_info *info, size_t, void *arg) -> int {
        auto *f = static_cast<F *>(arg);
        for (int i = 0; i < info->dlpi_phnum; ++i) {
          const auto &ph = info->dlpi_phdr[i];
          uintptr_t lo = info->dlpi_addr + ph.p_vaddr;
          if (ph.p_type == PT_LOAD && f->pc >= lo && f->pc < lo + ph.p_memsz) {
            f->bias = info->dlpi_addr;
            return 1;
          }
        }
        return 0;
      },
      &f);
  return f.bias;
}

// Does site `s` have a frame (a return address) inside fn? A function ends where the next of the
// three begins (they are consecutive in this file), or 256 bytes on.
bool frame_in(const persist::SiteTable *t, uint32_t s, void *fn, uintptr_t bias) {
  const uintptr_t fns[3] = {reinterpret_cast<uintptr_t>(&site_a), reinterpret_cast<uintptr_t>(&site_b),
                            reinterpret_cast<uintptr_t>(&site_c)};
  uintptr_t lo = reinterpret_cast<uintptr_t>(fn), hi = lo + 256;
  for (uintptr_t f : fns)
    if (f > lo && f < hi) hi = f;
  const persist::SiteEntry &e = t->site[s];
  for (unsigned i = 0; i < e.depth && i < persist::kSiteFrames; ++i)
    if (e.module[i] && e.offset[i] > lo - bias && e.offset[i] <= hi - bias) return true;
  return false;
}

// The recorded offset of the frame inside fn (0 if none), to compare two sites' frames there.
uint32_t frame_offset_in(const persist::SiteTable *t, uint32_t s, void *fn, uintptr_t bias) {
  uintptr_t lo = reinterpret_cast<uintptr_t>(fn) - bias;
  const persist::SiteEntry &e = t->site[s];
  for (unsigned i = 0; i < e.depth && i < persist::kSiteFrames; ++i)
    if (e.module[i] && e.offset[i] > lo && e.offset[i] <= lo + 256) return e.offset[i];
  return 0;
}

// The sample record of a live sampled block p (nullptr if p is not sampled).
const persist::SampleRecord *sample_of(Heap *h, void *p) {
  persist::Span *s = persist::span_lookup(h, p);  // discovers p's segment after a reopen
  if (!s) return nullptr;
  if (s->kind == persist::kSpanLarge && s->sampled)
    return reinterpret_cast<const persist::SampleRecord *>(s->start + uint64_t{s->pages} * persist::kPageSize -
                                                           sizeof(persist::SampleRecord));
  if (s->kind == persist::kSpanHuge) {
    const persist::SampleRecord &r = h->seg_header(s->page / persist::kSegmentPages)->sample;
    return r.magic == persist::kSampleMagic ? &r : nullptr;
  }
  return nullptr;
}

class SitesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = dir_.path() + "/sites.heap";
    persist_options_t o = ptest::create_opts();
    ASSERT_EQ(0, persist_open(path_.c_str(), &o, &h_));
  }
  void TearDown() override {
    if (h_) persist_close(h_);
  }
  ptest::TempDir dir_;
  std::string path_;
  persist_heap_t *h_ = nullptr;
};

TEST_F(SitesTest, OffByDefaultAndNothingSampled) {
  std::vector<void *> v;
  for (int i = 0; i < 10000; ++i) v.push_back(persist_alloc(h_, 100));
  EXPECT_EQ(0u, as_heap(h_)->samples.load());
  EXPECT_EQ(0u, as_heap(h_)->sb.sites);  // no site table until recording is asked for
  for (void *p : v) persist_free(h_, p);
}

// Every allocation sampled (interval 1), from three call sites: no libc allocation while the heap
// samples; each sampled block names its site; the blocks work like any others.
TEST_F(SitesTest, RecorderDoesNotAllocateAndTiesBlocksToSites) {
  ASSERT_EQ(0, persist_heap_sample_sites(h_, 1));
  Heap *h = as_heap(h_);
  const auto *table = reinterpret_cast<const persist::SiteTable *>(h->at(h->sb.sites));
  ASSERT_NE(0u, h->sb.sites);
  struct Made {
    void *p;
    size_t n;
    int site;
  };
  std::vector<Made> made;
  made.reserve(3000);
  g_libc_calls = 0;
  tl_counting = true;
  for (int i = 0; i < 1000; ++i) {
    size_t n = 64 + static_cast<size_t>(i) * 37 % 20000;  // p = 1 - exp(-n): always sampled
    void *a = site_a(h_, n), *b = site_b(h_, n), *c = site_c(h_, n);
    made.push_back({a, n, 0});
    made.push_back({b, n, 1});
    made.push_back({c, n, 2});
  }
  tl_counting = false;
  EXPECT_EQ(0, g_libc_calls.load()) << "the recorder called the libc malloc family from\n" << callers();
  EXPECT_EQ(3000u, h->samples.load());
  EXPECT_EQ(0u, h->samples_lost.load());

  const uintptr_t bias = own_bias();
  void *fns[3] = {reinterpret_cast<void *>(&site_a), reinterpret_cast<void *>(&site_b),
                  reinterpret_cast<void *>(&site_c)};
  for (const Made &m : made) {
    ASSERT_NE(nullptr, m.p);
    const persist::SampleRecord *r = sample_of(h, m.p);
    ASSERT_NE(nullptr, r) << "not sampled at interval 1";
    EXPECT_EQ(m.n, r->size);
    EXPECT_EQ(1u, r->interval);
    ASSERT_LT(r->site, persist::kSiteCapacity);
    EXPECT_TRUE(frame_in(table, r->site, fns[m.site], bias)) << "size " << m.n << " site " << m.site;
    for (int other = 0; other < 3; ++other)
      if (other != m.site) {
        EXPECT_FALSE(frame_in(table, r->site, fns[other], bias));
      }
    EXPECT_GE(persist_usable_size(h_, m.p), m.n);
    EXPECT_EQ(0u, reinterpret_cast<uintptr_t>(m.p) % 64);
    if (m.site == 1) {  // calloc: zero-filled
      const auto *b = static_cast<const unsigned char *>(m.p);
      for (size_t k = 0; k < m.n; ++k) ASSERT_EQ(0, b[k]);
    }
    memset(m.p, 0xa5, persist_usable_size(h_, m.p));  // the record lies beyond the usable size
    EXPECT_EQ(persist::kSampleMagic, sample_of(h, m.p)->magic);
  }
  ASSERT_HEAP_CONSISTENT(h_);
  // Realloc keeps the contents; the new block is sampled again (interval 1).
  for (size_t i = 0; i < made.size(); i += 7) {
    size_t n = made[i].n;
    unsigned char *q = static_cast<unsigned char *>(persist_realloc(h_, made[i].p, n * 3 + 100));
    ASSERT_NE(nullptr, q);
    for (size_t k = 0; k < n; ++k) ASSERT_EQ(0xa5, q[k]);
    EXPECT_NE(nullptr, sample_of(h, q));
    made[i].p = q;
  }
  for (const Made &m : made) persist_free(h_, m.p);
  ASSERT_HEAP_CONSISTENT(h_);
}

// Many threads sampling at once, each from its own call site: every stack is recorded once (the
// table is shared and interned), no libc allocation in any thread, the heap stays consistent.
TEST_F(SitesTest, ManyThreads) {
  ASSERT_EQ(0, persist_heap_sample_sites(h_, 256));
  Heap *h = as_heap(h_);
  g_libc_calls = 0;
  constexpr int kThreads = 8;
  std::vector<std::thread> ts;
  std::vector<std::vector<void *>> kept(kThreads);
  for (int t = 0; t < kThreads; ++t)
    ts.emplace_back([&, t] {
      persist_free(h_, persist_alloc(h_, 16));  // the thread's heap (pthread keys may calloc)
      kept[t].reserve(40000);
      tl_counting = true;
      ptest::Rng rng(static_cast<uint64_t>(t) + 1);
      for (int i = 0; i < 40000; ++i) {
        size_t n = 8 + rng.next() % 3000;
        void *p = (i % 3 == 0) ? site_a(h_, n) : (i % 3 == 1) ? site_b(h_, n) : site_c(h_, n);
        ASSERT_NE(nullptr, p);
        if (rng.next() % 4 == 0) kept[t].push_back(p);
        else persist_free(h_, p);
      }
      tl_counting = false;
    });
  for (auto &t : ts) t.join();
  EXPECT_EQ(0, g_libc_calls.load()) << "the libc malloc family was called from\n" << callers();
  EXPECT_GT(h->samples.load(), 1000u);
  EXPECT_EQ(0u, h->samples_lost.load());
  // The three functions' stacks are interned: a few sites (thread entry frames differ in depth
  // only through the lambda), not one per sample.
  const auto *table = reinterpret_cast<const persist::SiteTable *>(h->at(h->sb.sites));
  unsigned live = 0;
  for (uint32_t i = 0; i < persist::kSiteCapacity; ++i) live += table->site[i].state == persist::kSiteLive;
  EXPECT_GT(live, 2u);
  EXPECT_LT(live, 200u);
  ASSERT_HEAP_CONSISTENT(h_);
  for (auto &v : kept)
    for (void *p : v) persist_free(h_, p);
  ASSERT_HEAP_CONSISTENT(h_);
}

// A sample is kept with its block across close and reopen: the reopened heap knows the block is
// sampled (usable size without the record, realloc moves it), and the collector keeps the site
// table while freeing unreachable sampled blocks.
TEST_F(SitesTest, SamplesSurviveReopenAndCollection) {
  ASSERT_EQ(0, persist_heap_sample_sites(h_, 1));
  void *kept = persist_heap_root(h_, "kept", 64);
  ASSERT_NE(nullptr, kept);
  void *big = site_a(h_, 5000);
  void *huge = site_a(h_, 6u << 20);
  void *lost = site_b(h_, 3000);
  ASSERT_NE(nullptr, big);
  ASSERT_NE(nullptr, huge);
  ASSERT_NE(nullptr, lost);
  const size_t big_usable = persist_usable_size(h_, big);
  static_cast<void **>(kept)[0] = big;
  static_cast<void **>(kept)[1] = huge;
  const uint64_t sites = as_heap(h_)->sb.sites;
  ASSERT_EQ(0, persist_close(h_));
  h_ = nullptr;

  persist_options_t o = ptest::create_opts();
  ASSERT_EQ(0, persist_open(path_.c_str(), &o, &h_));
  Heap *h = as_heap(h_);
  EXPECT_EQ(sites, h->sb.sites);
  ASSERT_EQ(0, persist_heap_gc(h_, 0, nullptr));  // before anything else uses the heap
  EXPECT_EQ(big_usable, persist_usable_size(h_, big));
  ASSERT_NE(nullptr, sample_of(h, big));
  ASSERT_NE(nullptr, sample_of(h, huge));
  EXPECT_EQ(5000u, sample_of(h, big)->size);
  EXPECT_EQ(size_t{6} << 20, sample_of(h, huge)->size);
  EXPECT_EQ(sites, h->sb.sites);
  EXPECT_NE(0u, persist::sites_table(h->image()));  // kept whole by the collector
  EXPECT_EQ(0u, persist_usable_size(h_, lost));       // freed: nothing reached it
  ASSERT_HEAP_CONSISTENT(h_);
  // Recording again in this run reuses the table and the sites already in it.
  ASSERT_EQ(0, persist_heap_sample_sites(h_, 1));
  EXPECT_EQ(sites, h->sb.sites);
  void *again = site_a(h_, 5000);
  ASSERT_NE(nullptr, sample_of(h, again));
  // Called from another line of this test: another site, whose innermost frame (in site_a, from
  // the same module entry of the table) is the same.
  const auto *table = reinterpret_cast<const persist::SiteTable *>(h->at(h->sb.sites));
  const uint32_t s1 = sample_of(h, big)->site, s2 = sample_of(h, again)->site;
  EXPECT_NE(s1, s2);
  EXPECT_TRUE(frame_in(table, s2, reinterpret_cast<void *>(&site_a), own_bias()));
  EXPECT_EQ(frame_offset_in(table, s1, reinterpret_cast<void *>(&site_a), own_bias()),
            frame_offset_in(table, s2, reinterpret_cast<void *>(&site_a), own_bias()));
  persist_free(h_, again);
  ASSERT_HEAP_CONSISTENT(h_);
}

// A fresh thread allocates nothing through the libc malloc family from its very first sample
// (no per-thread set-up: libunwind's thread-local storage is never touched, unwind.h).
TEST_F(SitesTest, FreshThreadAllocatesNothingFromItsFirstSample) {
  ASSERT_EQ(0, persist_heap_sample_sites(h_, 1));
  long first = -1, later = -1;
  std::thread t([&] {
    persist_free(h_, persist_alloc(h_, 16));  // the thread's heap (pthread keys may calloc)
    const uint64_t before = as_heap(h_)->samples.load();
    g_libc_calls = 0;
    tl_counting = true;
    persist_free(h_, site_a(h_, 4096));
    first = g_libc_calls.exchange(0);
    for (int i = 0; i < 1000; ++i) persist_free(h_, site_a(h_, 4096));
    later = g_libc_calls.exchange(0);
    tl_counting = false;
    EXPECT_EQ(before + 1001, as_heap(h_)->samples.load());
  });
  t.join();
  EXPECT_EQ(0, first) << callers();
  EXPECT_EQ(0, later) << callers();
  EXPECT_EQ(0u, as_heap(h_)->samples_lost.load());
  ASSERT_HEAP_CONSISTENT(h_);
}

TEST_F(SitesTest, TurnedOffAgain) {
  ASSERT_EQ(0, persist_heap_sample_sites(h_, 1));
  void *a = site_a(h_, 100);
  EXPECT_NE(nullptr, sample_of(as_heap(h_), a));
  ASSERT_EQ(0, persist_heap_sample_sites(h_, 0));
  const uint64_t before = as_heap(h_)->samples.load();
  std::vector<void *> v;
  for (int i = 0; i < 1000; ++i) v.push_back(site_a(h_, 100 + i));
  EXPECT_EQ(before, as_heap(h_)->samples.load());
  for (void *p : v) EXPECT_EQ(nullptr, sample_of(as_heap(h_), p));
  for (void *p : v) persist_free(h_, p);
  persist_free(h_, a);
  ASSERT_HEAP_CONSISTENT(h_);
}

}  // namespace
