// allocator_test.cpp — persist::allocator<T> on a heap handle: std::vector, std::map,
// std::unordered_map and persist::string built in one open and verified (and changed, and verified
// again) after persist_close + persist_open of the same file; every block they use is in the
// heap; destroying them gives every block back. Also heap_scope nesting over two heaps, the
// fallback to operator new without any heap, over-aligned types, and std::bad_alloc.
#include <array>
#include <cstring>
#include <map>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "cpptest.h"

namespace {

template <class T>
using A = persist::allocator<T>;
using PString = persist::string;
using IntVec = std::vector<int, A<int>>;
using StrMap = std::map<PString, PString, std::less<PString>, A<std::pair<const PString, PString>>>;
using HashMap = std::unordered_map<PString, IntVec, std::hash<PString>, std::equal_to<PString>,
                                   A<std::pair<const PString, IntVec>>>;
using NumMap = std::map<long, double, std::less<long>, A<std::pair<const long, double>>>;

struct Store {
  IntVec vec;
  StrMap names;
  HashMap lists;
  NumMap numbers;
  PString text;
  std::vector<PString, A<PString>> strings;
};

constexpr int kN = 3000;

std::string key(int i) {
  return "key-" + std::to_string(i) + (i % 3 ? "" : std::string(40, 'k'));
}
std::string val(int i) {
  return "value " + std::to_string(i * 7) + std::string(i % 50, 'v');
}
PString pstr(const std::string &s) {
  return PString(s.data(), s.size());
}
std::string str(const PString &s) {
  return std::string(s.data(), s.size());
}

class AllocatorTest : public ptest::HeapTest {
 protected:
  void fill(Store &s, int from, int to) {
    persist::heap_scope scope(h_);
    for (int i = from; i < to; ++i) {
      s.vec.push_back(i);
      s.names.emplace(pstr(key(i)), pstr(val(i)));
      IntVec &l = s.lists[pstr(key(i))];
      for (int k = 0; k < i % 9; ++k) l.push_back(i * 10 + k);
      s.numbers[i] = i * 0.5;
      s.strings.push_back(pstr(val(i)));
      s.text += "<" + std::to_string(i) + ">";
    }
  }
  void verify(const Store &s, int from, int to) {
    persist::heap_scope scope(h_);  // the lookups build temporary persist::strings
    ASSERT_EQ(static_cast<size_t>(to - from), s.vec.size());
    ASSERT_EQ(s.vec.size(), s.names.size());
    ASSERT_EQ(s.vec.size(), s.lists.size());
    ASSERT_EQ(s.vec.size(), s.numbers.size());
    ASSERT_EQ(s.vec.size(), s.strings.size());
    EXPECT_TRUE(in_heap(s.vec.data()));
    std::string text;
    for (int i = from; i < to; ++i) {
      ASSERT_EQ(i, s.vec[static_cast<size_t>(i - from)]);
      auto it = s.names.find(pstr(key(i)));
      ASSERT_NE(s.names.end(), it) << key(i);
      ASSERT_EQ(val(i), str(it->second));
      ASSERT_TRUE(in_heap(&*it));
      if (it->second.size() > 15) {
        ASSERT_TRUE(in_heap(it->second.data()));  // off the SSO buffer
      }
      auto lt = s.lists.find(pstr(key(i)));
      ASSERT_NE(s.lists.end(), lt);
      ASSERT_EQ(static_cast<size_t>(i % 9), lt->second.size());
      for (int k = 0; k < i % 9; ++k) ASSERT_EQ(i * 10 + k, lt->second[static_cast<size_t>(k)]);
      if (!lt->second.empty()) {
        ASSERT_TRUE(in_heap(lt->second.data()));
      }
      ASSERT_EQ(i * 0.5, s.numbers.at(i));
      ASSERT_EQ(val(i), str(s.strings[static_cast<size_t>(i - from)]));
      text += "<" + std::to_string(i) + ">";
    }
    EXPECT_EQ(text, str(s.text));
    EXPECT_TRUE(in_heap(s.text.data()));
    // Walk the tree too: iteration order is key order.
    const PString *prev = nullptr;
    for (auto &kv : s.names) {
      if (prev) {
        ASSERT_LT(*prev, kv.first);
      }
      prev = &kv.first;
    }
  }
};

TEST_F(AllocatorTest, ContainersSurviveReopen) {
  Store *s = &persist::root<Store>(h_, "store");
  ASSERT_TRUE(in_heap(s));
  const uint64_t before = live_blocks();
  fill(*s, 0, kN);
  ASSERT_NO_FATAL_FAILURE(verify(*s, 0, kN));

  reopen();
  s = &persist::root<Store>(h_, "store");
  ASSERT_NO_FATAL_FAILURE(verify(*s, 0, kN));

  // Change everything, reopen, verify again.
  {
    persist::heap_scope scope(h_);
    s->vec.erase(s->vec.begin(), s->vec.begin() + kN / 2);
    s->strings.erase(s->strings.begin(), s->strings.begin() + kN / 2);
    for (int i = 0; i < kN / 2; ++i) {
      s->names.erase(pstr(key(i)));
      s->lists.erase(pstr(key(i)));
      s->numbers.erase(i);
    }
    s->text.clear();
    for (int i = kN / 2; i < kN; ++i) s->text += "<" + std::to_string(i) + ">";
    s->lists.rehash(0);
    s->vec.shrink_to_fit();
  }
  fill(*s, kN, kN + 1000);
  reopen();
  s = &persist::root<Store>(h_, "store");
  ASSERT_NO_FATAL_FAILURE(verify(*s, kN / 2, kN + 1000));

  // Destroying the containers gives back every block they took.
  {
    persist::heap_scope scope(h_);
    s->~Store();
    new (s) Store();
  }
  reopen();
  s = &persist::root<Store>(h_, "store");
  EXPECT_TRUE(s->vec.empty() && s->names.empty() && s->lists.empty() && s->text.empty());
  EXPECT_EQ(before, live_blocks()) << "blocks leaked";
}

// The same containers when the heap has to move: their raw pointers (nodes, arrays, strings'
// buffers, a short string's pointer to its own buffer, a hash table's pointer into itself) are
// rewritten by the relocation at open.
TEST_F(AllocatorTest, ContainersSurviveRelocation) {
  Store *s = &persist::root<Store>(h_, "store");
  fill(*s, 0, kN);
  ASSERT_HEAP_CONSISTENT(h_);
  const uintptr_t old_base = reinterpret_cast<uintptr_t>(persist_heap_base(h_));
  ASSERT_EQ(0, persist_close(h_));
  h_ = nullptr;
  for (int move = 1; move <= 2; ++move) {
    persist_options_t o{};
    o.addr = old_base + (move == 1 ? (uintptr_t{1} << 40) : 0);  // away, then back
    o.relocate = PERSIST_RELOCATE_REWRITE;
    int rc = persist_open(path_.c_str(), &o, &h_);
    ASSERT_EQ(0, rc) << ptest::err_text(rc);
    ASSERT_EQ(o.addr, reinterpret_cast<uintptr_t>(persist_heap_base(h_)));
    EXPECT_GT(persist_relocated_words(h_), static_cast<uint64_t>(kN));
    s = &persist::root<Store>(h_, "store");
    ASSERT_NO_FATAL_FAILURE(verify(*s, 0, kN));
    fill(*s, kN * move, kN * move + 10);  // and they keep working there
    ASSERT_HEAP_CONSISTENT(h_);
    {
      persist::heap_scope scope(h_);
      for (int i = kN * move; i < kN * move + 10; ++i) {
        s->vec.pop_back();
        s->strings.pop_back();
        s->names.erase(pstr(key(i)));
        s->lists.erase(pstr(key(i)));
        s->numbers.erase(i);
      }
      std::string text = str(s->text);
      s->text = pstr(text.substr(0, text.find("<" + std::to_string(kN * move) + ">")));
    }
    ASSERT_NO_FATAL_FAILURE(verify(*s, 0, kN));
    ASSERT_EQ(0, persist_close(h_));
    h_ = nullptr;
  }
  ASSERT_EQ(0, persist_open(path_.c_str(), nullptr, &h_));
}

TEST_F(AllocatorTest, StatelessAndAlwaysEqual) {
  static_assert(std::is_empty_v<A<int>>);
  static_assert(std::allocator_traits<A<int>>::is_always_equal::value);
  static_assert(sizeof(IntVec) == sizeof(std::vector<int>));
  static_assert(sizeof(StrMap) == sizeof(std::map<std::string, std::string>));
  EXPECT_TRUE(A<int>() == A<double>());
  EXPECT_FALSE(A<int>() != A<double>());
  A<long> al = A<int>();
  (void)al;
}

TEST_F(AllocatorTest, ScopesNestAndPickTheHeap) {
  ptest::TempDir other_dir;
  persist_options_t o = ptest::create_opts();
  o.addr = PERSIST_DEFAULT_ADDR + (uintptr_t{1} << 40);
  persist_heap_t *h2 = nullptr;
  int rc = persist_open(other_dir.file("heap2").c_str(), &o, &h2);
  ASSERT_EQ(0, rc) << ptest::err_text(rc);
  EXPECT_EQ(nullptr, persist_default_heap()) << "the unit tests run without the shim";
  EXPECT_EQ(nullptr, persist::current_heap());
  {
    persist::heap_scope a(h_);
    EXPECT_EQ(h_, persist::current_heap());
    IntVec v1(100, 1);
    EXPECT_TRUE(in_heap(v1.data()));
    {
      persist::heap_scope b(h2);
      EXPECT_EQ(h2, persist::current_heap());
      IntVec v2(100, 2);
      EXPECT_TRUE(persist_contains(h2, v2.data()));
      // v1 grows while h2 is current: its new storage comes from h2, its old one goes back to h_
      // (the heap of an outer live scope).
      v1.resize(10000, 1);
      EXPECT_TRUE(persist_contains(h2, v1.data()));
      v1 = IntVec(50, 3);  // the h2 block is freed in h2, the new one comes from h2
    }
    EXPECT_EQ(h_, persist::current_heap());
    // v1's storage is in h2 now and h2 is not current: it must be freed in h2 while h2 is current.
    persist::heap_scope b(h2);
    v1.clear();
    v1.shrink_to_fit();
  }
  EXPECT_EQ(nullptr, persist::current_heap());
  std::string msg(512, '\0');
  EXPECT_EQ(0, persist_heap_check(h2, &msg[0], msg.size())) << msg;
  persist_stats_t st{};
  ASSERT_EQ(0, persist_heap_stats(h2, &st));
  EXPECT_EQ(0u, st.live_blocks) << "every block of h2 was given back";
  EXPECT_EQ(0, persist_close(h2));
  // And in the other thread the scope of this one does not apply.
  persist::heap_scope a(h_);
  persist_heap_t *seen = h_;
  std::thread([&] { seen = persist::current_heap(); }).join();
  EXPECT_EQ(nullptr, seen);
}

TEST_F(AllocatorTest, WithoutAHeapItIsOperatorNew) {
  ASSERT_EQ(nullptr, persist::current_heap());
  const uint64_t before = live_blocks();
  IntVec v(1000, 5);
  PString s(200, 'x');
  StrMap m;
  m[pstr("a long key, longer than the small-string buffer")] = pstr("b");
  EXPECT_FALSE(in_heap(v.data()));
  EXPECT_FALSE(in_heap(s.data()));
  EXPECT_EQ(before, live_blocks());
  int *p = persist::make<int>(3);
  EXPECT_FALSE(in_heap(p));
  persist::destroy(p);
}

struct alignas(256) Wide {
  unsigned char bytes[300];
  long tag = 0;
};

TEST_F(AllocatorTest, OverAlignedTypes) {
  persist::heap_scope scope(h_);
  std::vector<Wide, A<Wide>> v;
  for (int i = 0; i < 50; ++i) {
    v.emplace_back();
    v.back().tag = i;
    ASSERT_EQ(0u, reinterpret_cast<uintptr_t>(v.data()) % 256);
    ASSERT_TRUE(in_heap(v.data()));
  }
  Wide *w = persist::make<Wide>();
  EXPECT_EQ(0u, reinterpret_cast<uintptr_t>(w) % 256);
  EXPECT_TRUE(in_heap(w));
  persist::destroy(w);
  struct alignas(4096) Page {
    char b[4096];
  };
  Page *pg = persist::make<Page>();
  EXPECT_EQ(0u, reinterpret_cast<uintptr_t>(pg) % 4096);
  persist::destroy(pg);
}

TEST_F(AllocatorTest, ExhaustionThrowsBadAlloc) {
  ASSERT_EQ(0, persist_close(h_));
  h_ = nullptr;
  path_ = dir_.file("small");
  persist_options_t o = ptest::create_opts(uint64_t{256} << 20);  // 256 MiB at most
  int rc = persist_open(path_.c_str(), &o, &h_);
  ASSERT_EQ(0, rc) << ptest::err_text(rc);
  persist::heap_scope scope(h_);
  IntVec v(1000, 1);
  EXPECT_THROW(v.reserve(size_t{1} << 30), std::bad_alloc);  // 4 GiB
  EXPECT_EQ(1000u, v.size()) << "the strong guarantee: v is unchanged";
  EXPECT_THROW(v.reserve(v.max_size() + 1), std::length_error);
  EXPECT_THROW(v.reserve(v.max_size()), std::bad_alloc);
  A<int> a;
  EXPECT_THROW(a.allocate(a.max_size() + 1), std::bad_array_new_length);
  using Huge = std::array<char, (size_t{1} << 30)>;
  EXPECT_THROW(persist::make<Huge>(), std::bad_alloc);
  std::vector<IntVec, A<IntVec>> fill;
  bool threw = false;
  try {
    for (;;) fill.emplace_back(size_t{1} << 20, 7);  // 4 MiB each
  } catch (const std::bad_alloc &) {
    threw = true;
  }
  EXPECT_TRUE(threw);
  EXPECT_GT(fill.size(), 10u);
  ASSERT_HEAP_CONSISTENT(h_);
  fill.clear();
  fill.shrink_to_fit();
  v.clear();
  v.shrink_to_fit();
  EXPECT_EQ(0u, live_blocks());
}

}  // namespace
