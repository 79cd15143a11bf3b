// stress_test.cpp — several threads on one heap handle: blocks handed between threads and freed
// by threads that did not allocate them, threads that exit while others still free their blocks,
// and the heap's state after all of it (contents, live counts, close/reopen, persist_heap_check).
//
// PERSIST_STRESS_OPS: operations per thread in the handoff test (default 250000).
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "heaputil.h"
#include "persist.h"
#include "testutil.h"

namespace {

struct Item {
  void *p;
  size_t size;
  uint64_t seed;
};

// A mutex-protected queue through which threads hand blocks to each other.
class Handoff {
 public:
  void push(const Item &it) {
    std::lock_guard<std::mutex> g(m_);
    q_.push_back(it);
    cv_.notify_one();
  }
  bool try_pop(Item *out) {
    std::lock_guard<std::mutex> g(m_);
    if (q_.empty()) return false;
    *out = q_.front();
    q_.pop_front();
    return true;
  }
  // Blocks until an item arrives or `closed` is set and the queue is empty.
  bool pop_wait(Item *out, const std::atomic<bool> &closed) {
    std::unique_lock<std::mutex> g(m_);
    for (;;) {
      if (!q_.empty()) {
        *out = q_.front();
        q_.pop_front();
        return true;
      }
      if (closed.load()) return false;
      cv_.wait_for(g, std::chrono::milliseconds(2));
    }
  }
  size_t size() {
    std::lock_guard<std::mutex> g(m_);
    return q_.size();
  }
  std::deque<Item> drain() {
    std::lock_guard<std::mutex> g(m_);
    return std::move(q_);
  }

 private:
  std::mutex m_;
  std::condition_variable cv_;
  std::deque<Item> q_;
};

// First problem found by any thread (threads must not use gtest assertions that return).
class Problems {
 public:
  void report(const std::string &what) {
    std::lock_guard<std::mutex> g(m_);
    if (first_.empty()) first_ = what;
    ++count_;
  }
  bool any() {
    std::lock_guard<std::mutex> g(m_);
    return count_ != 0;
  }
  std::string first() {
    std::lock_guard<std::mutex> g(m_);
    return first_.empty() ? "" : first_ + " (" + std::to_string(count_) + " problems)";
  }

 private:
  std::mutex m_;
  std::string first_;
  uint64_t count_ = 0;
};

size_t pick_size(ptest::Rng &rng) {
  uint64_t r = rng.below(10000);
  if (r < 6500) return rng.range(1, 256);
  if (r < 9300) return rng.log_range(257, 4096);
  if (r < 9950) return rng.log_range(4097, 32768);
  if (r < 9998) return rng.log_range(32769, 1 << 20);
  return rng.log_range(4 << 20, 6 << 20);
}

bool verify(persist_heap_t *h, const Item &it, Problems *pr, const char *when) {
  size_t bad = ptest::check_pattern(it.p, it.seed, 0, it.size);
  if (bad != SIZE_MAX) {
    pr->report(std::string(when) + ": block " + ptest::hexstr(reinterpret_cast<uintptr_t>(it.p)) +
               " of " + std::to_string(it.size) + " bytes corrupted at byte " +
               std::to_string(bad));
    return false;
  }
  if (persist_usable_size(h, it.p) < it.size) {
    pr->report(std::string(when) + ": usable size below the request");
    return false;
  }
  return true;
}

bool make(persist_heap_t *h, ptest::Rng &rng, Item *out, Problems *pr) {
  size_t s = pick_size(rng);
  void *p = persist_alloc(h, s);
  if (!p) {
    pr->report("persist_alloc(" + std::to_string(s) + ") failed, errno " + std::to_string(errno));
    return false;
  }
  if (reinterpret_cast<uintptr_t>(p) % 16) pr->report("block not 16-byte aligned");
  *out = Item{p, s, rng.next()};
  ptest::fill_pattern(p, out->seed, 0, s);
  return true;
}

using StressTest = ptest::HeapTest;

TEST_F(StressTest, CrossThreadHandoffWithMixedSizesThenReopen) {
  const int kThreads = 4;
  const uint64_t kOps = ptest::env_u64("PERSIST_STRESS_OPS", 250000);
  const uint64_t baseline = ptest::stats_of(h_).live_blocks;
  // The index that will name the blocks kept across the reopen, made while nothing else runs.
  const size_t kIndexSlots = 131072;
  auto *index = static_cast<void **>(persist_heap_root(h_, "kept", kIndexSlots * sizeof(void *)));
  ASSERT_NE(nullptr, index);
  const uint64_t root_blocks = ptest::stats_of(h_).live_blocks - baseline;
  Handoff queue;
  Problems problems;
  std::vector<std::vector<Item>> leftovers(kThreads);
  std::atomic<uint64_t> cross_frees{0};

  auto worker = [&](int id) {
    ptest::Rng rng(1000 + id);
    std::vector<Item> local;
    for (uint64_t k = 0; k < kOps && !problems.any(); ++k) {
      uint64_t r = rng.below(100);
      if (r < 35 || local.empty()) {
        Item it;
        if (!make(h_, rng, &it, &problems)) break;
        if (rng.chance(50) && queue.size() < 20000)
          queue.push(it);
        else
          local.push_back(it);
      } else if (r < 60) {
        Item it;
        if (queue.try_pop(&it)) {
          if (!verify(h_, it, &problems, "handed-over block")) break;
          persist_free(h_, it.p);
          cross_frees.fetch_add(1, std::memory_order_relaxed);
        }
      } else if (r < 80 || local.size() > 3000) {
        size_t i = rng.below(local.size());
        if (!verify(h_, local[i], &problems, "own block before free")) break;
        persist_free(h_, local[i].p);
        local[i] = local.back();
        local.pop_back();
      } else if (r < 90) {
        size_t i = rng.below(local.size());
        Item &it = local[i];
        if (!verify(h_, it, &problems, "before realloc")) break;
        size_t ns =
            rng.chance(50) ? it.size + rng.log_range(1, it.size + 16) : rng.range(1, it.size);
        ns = std::min<size_t>(ns, 8 << 20);
        void *q = persist_realloc(h_, it.p, ns);
        if (!q) {
          problems.report("persist_realloc failed, errno " + std::to_string(errno));
          break;
        }
        size_t keep = std::min(it.size, ns);
        if (ptest::check_pattern(q, it.seed, 0, keep) != SIZE_MAX) {
          problems.report("realloc lost the prefix");
          break;
        }
        ptest::fill_pattern(q, it.seed, keep, ns);
        it.p = q, it.size = ns;
      } else {
        if (!verify(h_, local[rng.below(local.size())], &problems, "spot check")) break;
      }
    }
    leftovers[id] = std::move(local);
  };
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) threads.emplace_back(worker, i);
  for (auto &t : threads) t.join();
  ASSERT_FALSE(problems.any()) << problems.first();
  EXPECT_GT(cross_frees.load(), kOps / 10) << "too few blocks crossed threads to mean anything";

  // Everything still out there: in the queue and in the threads' hands.
  std::vector<Item> all;
  for (auto &v : leftovers) all.insert(all.end(), v.begin(), v.end());
  for (auto &it : queue.drain()) all.push_back(it);
  for (auto &it : all) ASSERT_TRUE(verify(h_, it, &problems, "after join")) << problems.first();
  // Nothing lost (a free by another thread may still be pending: >=, exact after reopen).
  EXPECT_GE(ptest::stats_of(h_).live_blocks, baseline + root_blocks + all.size())
      << "live blocks after the threads ended";
  ASSERT_HEAP_CONSISTENT(h_);

  // Keep every other block (named by a root so it is reachable), free the rest from this thread.
  std::vector<Item> kept;
  for (size_t i = 0; i < all.size(); ++i) {
    if (i % 2)
      kept.push_back(all[i]);
    else
      persist_free(h_, all[i].p);
  }
  ASSERT_LE(kept.size(), kIndexSlots);
  for (size_t i = 0; i < kept.size(); ++i) index[i] = kept[i].p;
  std::vector<uint64_t> offsets;
  for (auto &it : kept) offsets.push_back(PERSIST_OFFSET(h_, it.p));

  reopen();
  auto *index2 = static_cast<void **>(persist_heap_root_get(h_, "kept", nullptr));
  ASSERT_NE(nullptr, index2);
  for (size_t i = 0; i < kept.size(); ++i) {
    Item it = kept[i];
    it.p = PERSIST_PTR(h_, offsets[i]);
    ASSERT_EQ(it.p, index2[i]);
    ASSERT_TRUE(verify(h_, it, &problems, "after reopen")) << problems.first();
  }
  EXPECT_EQ(baseline + kept.size() + root_blocks, ptest::stats_of(h_).live_blocks)
      << "live blocks after reopen (an orderly close must have applied every cross-thread free)";
  ASSERT_HEAP_CONSISTENT(h_);
  for (size_t i = 0; i < kept.size(); ++i) persist_free(h_, PERSIST_PTR(h_, offsets[i]));
  ASSERT_EQ(0, persist_heap_root_remove(h_, "kept"));
  persist_free(h_, index2);
  ASSERT_HEAP_CONSISTENT(h_);
}

TEST_F(StressTest, ThreadsExitWhileOthersStillFreeTheirBlocks) {
  const int kRounds = 30, kProducers = 2, kConsumers = 2, kPerProducer = 5000;
  const uint64_t baseline = ptest::stats_of(h_).live_blocks;
  Handoff queue;
  Problems problems;
  std::atomic<bool> closed{false};
  std::atomic<uint64_t> freed{0};

  auto consumer = [&]() {
    Item it;
    while (queue.pop_wait(&it, closed)) {
      verify(h_, it, &problems, "block of an exited thread");
      persist_free(h_, it.p);
      freed.fetch_add(1, std::memory_order_relaxed);
    }
  };
  auto producer = [&](uint64_t seed) {
    ptest::Rng rng(seed);
    std::vector<Item> mine;
    for (int i = 0; i < kPerProducer; ++i) {
      Item it;
      if (!make(h_, rng, &it, &problems)) return;
      if (i % 4 == 3) {
        mine.push_back(it);  // freed by this thread before it exits
      } else {
        queue.push(it);  // freed by a consumer, possibly after this thread is gone
      }
    }
    for (auto &it : mine) {
      verify(h_, it, &problems, "own block");
      persist_free(h_, it.p);
    }
    // Exit right away, with most of this thread's blocks still out in the queue.
  };

  std::vector<std::thread> consumers;
  for (int i = 0; i < kConsumers; ++i) consumers.emplace_back(consumer);
  uint64_t mapped_after_warmup = 0;
  uint64_t produced = 0;
  for (int round = 0; round < kRounds; ++round) {
    std::vector<std::thread> producers;
    for (int i = 0; i < kProducers; ++i) producers.emplace_back(producer, 7000 + round * 10 + i);
    for (auto &t : producers) t.join();
    produced += uint64_t{kProducers} * (kPerProducer - kPerProducer / 4);
    if (round == 4) {
      // Let the consumers catch up once, then note how big the heap has become.
      while (queue.size()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
      mapped_after_warmup = ptest::stats_of(h_).mapped_bytes;
    }
  }
  closed.store(true);
  for (auto &t : consumers) t.join();
  ASSERT_FALSE(problems.any()) << problems.first();
  EXPECT_EQ(produced, freed.load());
  // Memory freed for threads that have exited is reused: thread churn does not grow the heap
  // without bound (25 more rounds of the same work after the warm-up).
  uint64_t mapped_end = ptest::stats_of(h_).mapped_bytes;
  EXPECT_LE(mapped_end, 2 * mapped_after_warmup + (uint64_t{16} << 20))
      << "heap grew from " << mapped_after_warmup << " to " << mapped_end << " bytes";

  // A new thread can allocate and free as usual afterwards.
  std::thread([&] {
    ptest::Rng rng(99);
    std::vector<Item> v;
    for (int i = 0; i < 20000; ++i) {
      Item it;
      if (!make(h_, rng, &it, &problems)) return;
      v.push_back(it);
    }
    for (auto &it : v) {
      verify(h_, it, &problems, "fresh thread");
      persist_free(h_, it.p);
    }
  }).join();
  ASSERT_FALSE(problems.any()) << problems.first();
  ASSERT_HEAP_CONSISTENT(h_);
  reopen();
  EXPECT_EQ(baseline, ptest::stats_of(h_).live_blocks)
      << "blocks freed by other threads (after their owners exited) are still allocated";
  ASSERT_HEAP_CONSISTENT(h_);
}

TEST_F(StressTest, ConcurrentSameSizeAllocationsNeverOverlap) {
  // Many threads in the same size classes at once: every block they get must be distinct.
  const int kThreads = 4, kEach = 20000;
  std::vector<std::vector<Item>> got(kThreads);
  Problems problems;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        size_t s = 16 + 16 * (i % 8);
        void *p = persist_alloc(h_, s);
        if (!p) return problems.report("persist_alloc failed");
        Item it{p, s, uint64_t(t) << 32 | uint64_t(i)};
        ptest::fill_pattern(p, it.seed, 0, s);
        got[t].push_back(it);
      }
    });
  for (auto &t : threads) t.join();
  ASSERT_FALSE(problems.any()) << problems.first();
  std::vector<std::pair<uintptr_t, size_t>> spans;
  for (auto &v : got)
    for (auto &it : v) {
      ASSERT_TRUE(verify(h_, it, &problems, "after concurrent allocation")) << problems.first();
      spans.push_back({reinterpret_cast<uintptr_t>(it.p), it.size});
    }
  std::sort(spans.begin(), spans.end());
  for (size_t i = 1; i < spans.size(); ++i)
    ASSERT_LE(spans[i - 1].first + spans[i - 1].second, spans[i].first) << "blocks overlap";
  // Free them from other threads than the ones that allocated them.
  threads.clear();
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] {
      for (auto &it : got[(t + 1) % kThreads]) persist_free(h_, it.p);
    });
  for (auto &t : threads) t.join();
  ASSERT_HEAP_CONSISTENT(h_);
}

}  // namespace
