// root_test.cpp — persist::root<T>: find-or-construct (the constructor runs once, across
// reopens), the stored type identity (another type, an untyped root, a bad tag are errors, never
// a reinterpretation), a constructor that throws (nothing published, nothing leaked), threads
// racing to create the same root, and make/destroy.
#include <atomic>
#include <cstring>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "cpptest.h"

namespace {

std::atomic<int> g_constructed{0}, g_destroyed{0};

struct Counter {
  explicit Counter(long start, std::string_view note) : value(start) {
    ++g_constructed;
    text.assign(note.data(), note.size());
    for (int i = 0; i < 100; ++i) history.push_back(start + i);
  }
  ~Counter() { ++g_destroyed; }
  long value;
  persist::string text;
  std::vector<long, persist::allocator<long>> history;
};

struct Other {
  long value = 0;
  persist::string text;
  std::vector<long, persist::allocator<long>> history;
};

struct Plain {  // an aggregate: built with braces
  int a, b;
  double c;
};

class RootTest : public ptest::HeapTest {
 protected:
  void SetUp() override {
    g_constructed = 0, g_destroyed = 0;
    HeapTest::SetUp();
  }
};

TEST_F(RootTest, ConstructsOnceAcrossReopens) {
  Counter &c = persist::root<Counter>(h_, "counter", 40, "forty and more, off the SSO buffer");
  EXPECT_EQ(1, g_constructed);
  EXPECT_TRUE(in_heap(&c));
  EXPECT_TRUE(in_heap(c.text.data())) << "the constructor ran with the root's heap current";
  EXPECT_TRUE(in_heap(c.history.data()));
  EXPECT_EQ(0u, reinterpret_cast<uintptr_t>(&c) % alignof(Counter));
  c.value += 2;
  Counter &again = persist::root<Counter>(h_, "counter", 0, "ignored");
  EXPECT_EQ(&c, &again);
  EXPECT_EQ(1, g_constructed);
  for (int run = 0; run < 3; ++run) {
    reopen();
    Counter &r = persist::root<Counter>(h_, "counter", 0, "ignored");
    EXPECT_EQ(1, g_constructed) << "found, never constructed again";
    EXPECT_EQ(42 + run, r.value);
    EXPECT_EQ("forty and more, off the SSO buffer", std::string(r.text.data(), r.text.size()));
    ASSERT_EQ(100u, r.history.size());
    EXPECT_EQ(40 + 99, r.history.back());
    ++r.value;
  }
  EXPECT_EQ(0, g_destroyed);
  // The C view of the same root: its size and its block.
  size_t size = 0;
  void *p = persist_heap_root_get(h_, "counter", &size);
  EXPECT_EQ(sizeof(Counter), size);
  EXPECT_EQ(static_cast<void *>(&persist::root<Counter>(h_, "counter", 0, "")), p);
}

TEST_F(RootTest, AnotherTypeIsAnError) {
  persist::root<Counter>(h_, "typed", 1, "one");
  auto expect_type_error = [&](auto get) {
    try {
      get();
      ADD_FAILURE() << "no exception";
    } catch (const persist::type_error &e) {
      EXPECT_EQ(PERSIST_E_TYPE, e.code());
      EXPECT_NE(nullptr, strstr(e.what(), "typed")) << e.what();
    } catch (const std::exception &e) {
      ADD_FAILURE() << "another exception: " << e.what();
    }
  };
  // Same size and layout, another name; and plainly another type.
  static_assert(sizeof(Other) == sizeof(Counter));
  expect_type_error([&] { persist::root<Other>(h_, "typed"); });
  expect_type_error([&] { persist::root<long>(h_, "typed", 5); });
  expect_type_error([&] { persist::root<Plain>(h_, "typed"); });
  static_assert(std::is_base_of_v<std::runtime_error, persist::type_error>);
  EXPECT_THROW(persist::root<Other>(h_, "typed"), std::runtime_error);
  EXPECT_EQ(0, g_destroyed) << "nothing was constructed for the failed opens";
  reopen();
  expect_type_error([&] { persist::root<Other>(h_, "typed"); });
  EXPECT_EQ(1, persist::root<Counter>(h_, "typed", 0, "").value) << "the root is unharmed";
  EXPECT_EQ(1, persist::root<const Counter>(h_, "typed", 0, "").value) << "cv does not matter";

  // An untyped root (the C API) is not any type.
  ASSERT_NE(nullptr, persist_heap_root(h_, "untyped", 64));
  expect_type_error([&] { persist::root<long>(h_, "untyped"); });
}

TEST_F(RootTest, TypeIdentity) {
  using persist::type_id;
  static_assert(type_id<int>() != 0 && type_id<Counter>() != 0);
  static_assert(type_id<int>() != type_id<unsigned>());
  static_assert(type_id<int>() != type_id<long>());
  static_assert(type_id<Counter>() != type_id<Other>());
  static_assert(type_id<const Counter>() == type_id<Counter>());
  static_assert(type_id<std::vector<int>>() != type_id<std::vector<long>>());
  constexpr uint64_t id = type_id<Plain>();  // a compile-time constant
  EXPECT_EQ(id, type_id<Plain>());
  EXPECT_EQ("int", persist::type_name<int>::value);
  std::string_view plain = persist::type_name<Plain>::value;  // "{anonymous}::Plain" with GCC
  EXPECT_EQ("::Plain", plain.substr(plain.size() - 7)) << plain;
  EXPECT_EQ("std::vector<int>", persist::type_name<std::vector<int>>::value);
}

struct Renamed {
  long v;
};

}  // namespace

// A pinned name: the identity no longer depends on how the compiler spells the type.
template <>
struct persist::type_name<Renamed> {
  static constexpr std::string_view value = "app::Config/v1";
};

namespace {

TEST_F(RootTest, PinnedTypeName) {
  EXPECT_EQ("app::Config/v1", persist::type_name<Renamed>::value);
  EXPECT_NE(persist::type_id<Renamed>(), persist::type_id<Plain>());
  EXPECT_EQ(7, persist::root<Renamed>(h_, "pinned", Renamed{7}).v);
  reopen();
  EXPECT_EQ(7, persist::root<Renamed>(h_, "pinned").v);
}

TEST_F(RootTest, AggregatesAndDefaults) {
  Plain &p = persist::root<Plain>(h_, "plain", 1, 2, 3.5);
  EXPECT_EQ(1, p.a);
  EXPECT_EQ(2, p.b);
  EXPECT_EQ(3.5, p.c);
  long &n = persist::root<long>(h_, "number");
  EXPECT_EQ(0, n) << "value-initialised";
  n = 99;
  reopen();
  EXPECT_EQ(99, persist::root<long>(h_, "number"));
  EXPECT_EQ(3.5, persist::root<Plain>(h_, "plain").c);
}

struct alignas(128) Aligned {
  char c[10];
};

TEST_F(RootTest, AlignedForTheType) {
  Aligned &a = persist::root<Aligned>(h_, "aligned");
  EXPECT_EQ(0u, reinterpret_cast<uintptr_t>(&a) % 128);
}

struct Throws {
  explicit Throws(int n) : v(n, 1) {
    if (n > 0) throw std::runtime_error("constructor failed");
  }
  std::vector<int, persist::allocator<int>> v;
};

TEST_F(RootTest, ConstructorThrowsNothingPublishedNothingLeaked) {
  const uint64_t before = live_blocks();
  EXPECT_THROW(persist::root<Throws>(h_, "throws", 1000), std::runtime_error);
  EXPECT_EQ(before, live_blocks()) << "the block (and the vector's) were freed";
  errno = 0;
  EXPECT_EQ(nullptr, persist_heap_root_get(h_, "throws", nullptr));
  EXPECT_EQ(ENOENT, errno) << "nothing was published";
  EXPECT_EQ(0u, persist::root<Throws>(h_, "throws", 0).v.size()) << "a later attempt succeeds";
}

TEST_F(RootTest, ErrorsOtherThanType) {
  try {
    persist::root<long>(h_, "");
    ADD_FAILURE() << "an empty tag was accepted";
  } catch (const persist::type_error &) {
    ADD_FAILURE() << "not a type error";
  } catch (const persist::error &e) {
    EXPECT_EQ(PERSIST_E_TAG, e.code()) << e.what();
  }
  std::string long_tag(PERSIST_TAG_MAX + 1, 't');
  EXPECT_THROW(persist::root<long>(h_, long_tag.c_str()), persist::error);
  std::string longest(PERSIST_TAG_MAX, 't');
  EXPECT_EQ(0, persist::root<long>(h_, longest.c_str()));
  // No heap at all: no default heap in the unit tests and no scope.
  ASSERT_EQ(nullptr, persist::current_heap());
  try {
    persist::root<long>("anywhere");
    ADD_FAILURE() << "no exception without a heap";
  } catch (const persist::error &e) {
    EXPECT_EQ(PERSIST_E_NOHEAP, e.code()) << e.what();
  }
  // root<T>(tag) uses the current heap.
  persist::heap_scope scope(h_);
  long &x = persist::root<long>("scoped", 17L);
  EXPECT_EQ(&x, &persist::root<long>(h_, "scoped"));
  EXPECT_EQ(17, x);
}

TEST_F(RootTest, RacingThreadsAgreeOnOneObject) {
  constexpr int kThreads = 8, kRounds = 50;
  persist::root<long>(h_, "first");  // the root table exists before the first count
  for (int round = 0; round < kRounds; ++round) {
    std::string tag = "race-" + std::to_string(round);
    g_constructed = 0, g_destroyed = 0;
    const uint64_t before = live_blocks();
    std::atomic<int> ready{0};
    std::vector<Counter *> got(kThreads);
    std::vector<std::thread> ts;
    for (int t = 0; t < kThreads; ++t)
      ts.emplace_back([&, t] {
        ++ready;
        while (ready.load() < kThreads) std::this_thread::yield();
        got[t] = &persist::root<Counter>(h_, tag.c_str(), t, "a racer, off the SSO buffer");
      });
    for (auto &t : ts) t.join();
    for (int t = 1; t < kThreads; ++t) ASSERT_EQ(got[0], got[t]);
    EXPECT_GE(g_constructed.load(), 1);
    EXPECT_EQ(g_constructed - 1, g_destroyed.load()) << "the losers destroyed theirs";
    // The winner's object and its two blocks (string, vector) remain; the losers' are freed.
    ASSERT_EQ(before + 3, live_blocks());
    ASSERT_EQ(100u, got[0]->history.size());
  }
  ASSERT_HEAP_CONSISTENT(h_);
}

TEST_F(RootTest, MakeAndDestroy) {
  const uint64_t before = live_blocks();
  persist::heap_scope scope(h_);
  Counter *c = persist::make<Counter>(5, "made in the heap, long enough to leave SSO");
  EXPECT_TRUE(in_heap(c));
  EXPECT_TRUE(in_heap(c->history.data()));
  EXPECT_EQ(1, g_constructed);
  Plain *p = persist::make<Plain>(1, 2, 3.0);
  EXPECT_EQ(2, p->b);
  const Plain *cp = p;
  persist::destroy(cp);
  persist::destroy(c);
  persist::destroy(static_cast<Counter *>(nullptr));
  EXPECT_EQ(1, g_destroyed);
  EXPECT_EQ(before, live_blocks());
  EXPECT_THROW(persist::make<Throws>(10), std::runtime_error);
  EXPECT_EQ(before, live_blocks());
}

}  // namespace
