// atomic_ptr_test.cpp — persist::atomic_ptr<T>: the encoding (the same word as ptr<T>), the
// operations with their failure paths, and lock-free use from several threads on a heap file: a
// CAS-advanced cursor and a Treiber stack whose head and links are atomic_ptrs in the heap.
#include <atomic>
#include <cstring>
#include <thread>
#include <vector>

#include "cpptest.h"

namespace {

using persist::atomic_ptr;

constexpr int kThreads = 4;

TEST(AtomicPtr, OneLockFreeWord) {
  static_assert(sizeof(atomic_ptr<int>) == 8);
  static_assert(atomic_ptr<int>::is_always_lock_free);
  atomic_ptr<int> a;
  EXPECT_TRUE(a.is_lock_free());
  EXPECT_EQ(nullptr, a.load());
  uint64_t word;
  std::memcpy(&word, static_cast<void *>(&a), 8);
  EXPECT_EQ(0u, word);
  int x = 5;
  a.store(&x, std::memory_order_release);
  std::memcpy(&word, static_cast<void *>(&a), 8);
  EXPECT_EQ(PERSIST_SELF_TAG, word & ~PERSIST_OFFSET_MASK);
  EXPECT_EQ(&x, persist::detail::self_decode(&a, word));
  EXPECT_EQ(&x, a.load(std::memory_order_acquire));
  atomic_ptr<int> b(&x);
  EXPECT_EQ(&x, static_cast<int *>(b));
}

TEST(AtomicPtr, ExchangeAndCompareExchange) {
  int x = 1, y = 2, z = 3;
  atomic_ptr<int> a(&x);
  EXPECT_EQ(&x, a.exchange(&y));
  EXPECT_EQ(&y, a.load());
  int *expected = &x;  // wrong: fails and reports the current value
  EXPECT_FALSE(a.compare_exchange_strong(expected, &z));
  EXPECT_EQ(&y, expected);
  EXPECT_EQ(&y, a.load());
  EXPECT_TRUE(a.compare_exchange_strong(expected, &z, std::memory_order_acq_rel));
  EXPECT_EQ(&z, a.load());
  expected = &z;
  while (!a.compare_exchange_weak(expected, nullptr, std::memory_order_release,
                                  std::memory_order_relaxed)) {
    ASSERT_EQ(&z, expected);  // spurious failure only
  }
  EXPECT_EQ(nullptr, a.load());
  expected = nullptr;
  EXPECT_TRUE(a.compare_exchange_strong(expected, &x));
  a = &y;
  EXPECT_EQ(&y, a.load());
}

class AtomicPtrInHeap : public ptest::HeapTest {};

// Threads advance a shared cursor through an array in the heap by CAS; every step is taken once.
TEST_F(AtomicPtrInHeap, CasCursorFromManyThreads) {
  constexpr int kSteps = 200000;
  struct Shared {
    atomic_ptr<long> cursor;
    long slots[kThreads * kSteps + 1];
  };
  auto *sh = static_cast<Shared *>(persist_heap_root(h_, "cursor", sizeof(Shared)));
  ASSERT_NE(nullptr, sh);
  sh->cursor.store(sh->slots);
  std::atomic<bool> go{false};
  std::vector<std::thread> ts;
  std::atomic<long> failures{0};
  for (int t = 0; t < kThreads; ++t)
    ts.emplace_back([&, t] {
      while (!go.load()) std::this_thread::yield();
      long fails = 0;
      for (int i = 0; i < kSteps; ++i) {
        long *cur = sh->cursor.load(std::memory_order_relaxed);
        while (!sh->cursor.compare_exchange_weak(cur, cur + 1, std::memory_order_acq_rel,
                                                 std::memory_order_relaxed))
          ++fails;
        *cur = t + 1;  // the slot this thread claimed
      }
      failures += fails;
    });
  go = true;
  for (auto &t : ts) t.join();
  EXPECT_EQ(sh->slots + kThreads * kSteps, sh->cursor.load());
  long per[kThreads + 1] = {0};
  for (long i = 0; i < kThreads * kSteps; ++i) {
    ASSERT_GE(sh->slots[i], 1) << "slot " << i << " was never claimed";
    ++per[sh->slots[i]];
  }
  for (int t = 1; t <= kThreads; ++t) EXPECT_EQ(kSteps, per[t]);
  ::testing::Test::RecordProperty("cas_failures", std::to_string(failures.load()));
  reopen();
  sh = static_cast<Shared *>(persist_heap_root_get(h_, "cursor", nullptr));
  ASSERT_NE(nullptr, sh);
  EXPECT_EQ(sh->slots + kThreads * kSteps, sh->cursor.load());
}

// A Treiber stack: nodes from persist::make, pushed concurrently, then popped concurrently (never
// freed while popping, so no ABA), then found again after reopening.
TEST_F(AtomicPtrInHeap, TreiberStackFromManyThreads) {
  constexpr int kPerThread = 20000;
  struct Node {
    atomic_ptr<Node> next;
    int thread, seq;
  };
  struct Stack {
    atomic_ptr<Node> head;
  };
  auto *st = static_cast<Stack *>(persist_heap_root(h_, "stack", sizeof(Stack)));
  ASSERT_NE(nullptr, st);
  std::atomic<bool> go{false};
  std::vector<std::thread> ts;
  for (int t = 0; t < kThreads; ++t)
    ts.emplace_back([&, t] {
      persist::heap_scope scope(h_);  // the current heap is per thread
      while (!go.load()) std::this_thread::yield();
      for (int i = 0; i < kPerThread; ++i) {
        Node *n = persist::make<Node>();
        n->thread = t, n->seq = i;
        Node *old = st->head.load(std::memory_order_relaxed);
        do n->next.store(old, std::memory_order_relaxed);
        while (!st->head.compare_exchange_weak(old, n, std::memory_order_release,
                                               std::memory_order_relaxed));
      }
    });
  go = true;
  for (auto &t : ts) t.join();
  ASSERT_HEAP_CONSISTENT(h_);

  reopen();
  st = static_cast<Stack *>(persist_heap_root_get(h_, "stack", nullptr));
  ASSERT_NE(nullptr, st);
  // Per thread, its nodes appear in the stack in decreasing seq order.
  std::vector<int> next_seq(kThreads, kPerThread - 1);
  long count = 0;
  for (Node *n = st->head.load(); n; n = n->next.load(), ++count) {
    ASSERT_TRUE(in_heap(n));
    ASSERT_EQ(next_seq[n->thread]--, n->seq);
  }
  EXPECT_EQ(long{kThreads} * kPerThread, count);

  go = false;
  ts.clear();
  std::vector<std::vector<Node *>> popped(kThreads);
  for (int t = 0; t < kThreads; ++t)
    ts.emplace_back([&, t] {
      while (!go.load()) std::this_thread::yield();
      for (;;) {
        Node *n = st->head.load(std::memory_order_acquire);
        while (n && !st->head.compare_exchange_weak(n, n->next.load(std::memory_order_relaxed),
                                                    std::memory_order_acq_rel,
                                                    std::memory_order_acquire)) {
        }
        if (!n) break;
        popped[t].push_back(n);
      }
    });
  go = true;
  for (auto &t : ts) t.join();
  EXPECT_EQ(nullptr, st->head.load());
  std::vector<std::vector<bool>> seen(kThreads, std::vector<bool>(kPerThread));
  long total = 0;
  for (auto &v : popped)
    for (Node *n : v) {
      ASSERT_FALSE(seen[n->thread][n->seq]) << "popped twice";
      seen[n->thread][n->seq] = true;
      ++total;
    }
  EXPECT_EQ(long{kThreads} * kPerThread, total);
  persist::heap_scope scope(h_);
  for (auto &v : popped)
    for (Node *n : v) persist::destroy(n);
}

}  // namespace
