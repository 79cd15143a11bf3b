// ptr_test.cpp — persist::ptr<T>: the PERSIST_SELF_TAG encoding, copy semantics (a copy at
// another address designates the same target), arithmetic and comparisons, conversions and casts,
// the traits a fancy pointer needs, and ptrs stored in a heap file across reopens.
#include <algorithm>
#include <cstring>
#include <iterator>
#include <memory>
#include <numeric>
#include <type_traits>
#include <vector>

#include "cpptest.h"

namespace {

using persist::ptr;

int64_t delta_of(uint64_t word) {
  return static_cast<int64_t>(word << 16) >> 16;
}

TEST(Ptr, OneWordWithTheSelfTag) {
  static_assert(sizeof(ptr<int>) == 8 && sizeof(ptr<void>) == 8 && sizeof(ptr<const char>) == 8);
  static_assert(!std::is_trivially_copyable_v<ptr<int>>, "a bitwise copy would be wrong");
  int x = 7;
  ptr<int> p = &x;
  EXPECT_EQ(PERSIST_SELF_TAG, p.raw_word() & ~PERSIST_OFFSET_MASK);
  EXPECT_EQ(reinterpret_cast<intptr_t>(&x) - reinterpret_cast<intptr_t>(&p),
            delta_of(p.raw_word()));
  EXPECT_EQ(&x, p.get());
  EXPECT_EQ(7, *p);
}

TEST(Ptr, NullIsTheZeroWord) {
  ptr<int> a, b = nullptr, c(static_cast<int *>(nullptr));
  EXPECT_EQ(0u, a.raw_word());
  EXPECT_EQ(0u, b.raw_word());
  EXPECT_EQ(0u, c.raw_word());
  EXPECT_TRUE(a == nullptr && nullptr == a && !a && a.get() == nullptr);
  int x = 0;
  a = &x;
  EXPECT_TRUE(a != nullptr && nullptr != a && a);
  a = nullptr;
  EXPECT_EQ(0u, a.raw_word());
}

TEST(Ptr, PointingAtItselfIsNotNull) {
  struct Self {
    ptr<Self> me;
  } s;
  s.me = &s;  // distance 0
  EXPECT_EQ(PERSIST_SELF_TAG, s.me.raw_word());
  EXPECT_EQ(&s, s.me.get());
}

TEST(Ptr, CopyReencodesForTheNewAddress) {
  int target = 42;
  ptr<int> a = &target;
  ptr<int> b = a;  // copy construction
  ptr<int> c;
  c = a;  // copy assignment
  ptr<int> d = std::move(b);
  EXPECT_EQ(&target, b.get());
  EXPECT_EQ(&target, c.get());
  EXPECT_EQ(&target, d.get());
  EXPECT_NE(a.raw_word(), c.raw_word()) << "the stored distance depends on the ptr's address";
  // A copy far away (another stack frame, the free store) still designates the target.
  auto far = std::make_unique<ptr<int>>(a);
  EXPECT_EQ(&target, far->get());
  std::vector<ptr<int>> many(1000, a);  // copies, and copies again when the vector grows
  for (int i = 0; i < 5000; ++i) many.push_back(many.back());
  for (auto &q : many) ASSERT_EQ(&target, q.get());
  // What a bitwise copy does instead: it keeps the distance, so it designates something else.
  alignas(8) unsigned char raw[16];
  uint64_t w = a.raw_word();
  std::memcpy(raw + 8, &w, 8);
  void *misread = persist::detail::self_decode(raw + 8, w);
  EXPECT_NE(static_cast<void *>(&target), misread);
}

TEST(Ptr, SwapExchangesTargets) {
  int x = 1, y = 2;
  ptr<int> a = &x, b = &y;
  using std::swap;
  swap(a, b);
  EXPECT_EQ(&y, a.get());
  EXPECT_EQ(&x, b.get());
  std::swap(a, b);  // the generic one: through copies
  EXPECT_EQ(&x, a.get());
  EXPECT_EQ(&y, b.get());
}

TEST(Ptr, ArithmeticAndComparisons) {
  int arr[10];
  std::iota(arr, arr + 10, 0);
  ptr<int> p = arr, q = arr + 10;
  EXPECT_EQ(10, q - p);
  EXPECT_EQ(-10, p - q);
  EXPECT_EQ(3, *(p + 3));
  EXPECT_EQ(3, *(3 + p));
  EXPECT_EQ(9, *(q - 1));
  EXPECT_EQ(5, p[5]);
  p[5] = 50;
  EXPECT_EQ(50, arr[5]);
  ptr<int> r = p;
  EXPECT_EQ(arr, (r++).get());
  EXPECT_EQ(arr + 1, r.get());
  EXPECT_EQ(arr + 2, (++r).get());
  EXPECT_EQ(arr + 2, (r--).get());
  EXPECT_EQ(arr, (--r).get());
  r += 7;
  EXPECT_EQ(arr + 7, r.get());
  r -= 2;
  EXPECT_EQ(arr + 5, r.get());
  r += static_cast<size_t>(1);  // an unsigned step, as containers use
  EXPECT_EQ(arr + 6, r.get());
  EXPECT_TRUE(p < q && p <= q && q > p && q >= p && p != q && !(p == q));
  EXPECT_TRUE(p <= p && p >= p && p == p);
  // With raw pointers on either side, and other ptr types.
  EXPECT_TRUE(p == arr && arr == p && p != arr + 1 && arr + 1 != p);
  EXPECT_TRUE(p < arr + 1 && arr + 1 > p);
  ptr<const int> cp = p;
  EXPECT_TRUE(cp == p && p == cp);
  ptr<void> vp = p;
  EXPECT_TRUE(vp == p);
  // Implicit conversion to the raw pointer (libstdc++'s list needs it).
  int *raw = p;
  EXPECT_EQ(arr, raw);
}

TEST(Ptr, ConversionsAndCasts) {
  struct Base {
    int b = 1;
  };
  struct Derived : Base {
    int d = 2;
  };
  Derived obj;
  ptr<Derived> pd = &obj;
  ptr<Base> pb = pd;  // implicit upcast
  EXPECT_EQ(static_cast<Base *>(&obj), pb.get());
  ptr<Derived> back = persist::static_pointer_cast<Derived>(pb);
  EXPECT_EQ(&obj, back.get());
  ptr<Derived> back2 = static_cast<ptr<Derived>>(pb);  // explicit constructor
  EXPECT_EQ(&obj, back2.get());
  ptr<void> v = pd;
  ptr<const void> cv = v;
  ptr<Derived> fromv = static_cast<ptr<Derived>>(v);  // what an allocator's void_pointer needs
  EXPECT_EQ(&obj, fromv.get());
  ptr<const Derived> fromcv = static_cast<ptr<const Derived>>(cv);
  EXPECT_EQ(&obj, fromcv.get());
  ptr<Derived> mut = persist::const_pointer_cast<Derived>(fromcv);
  EXPECT_EQ(&obj, mut.get());
  ptr<char> bytes = persist::reinterpret_pointer_cast<char>(pd);
  EXPECT_EQ(reinterpret_cast<char *>(&obj), bytes.get());
  static_assert(std::is_convertible_v<ptr<Derived>, ptr<Base>>);
  static_assert(std::is_convertible_v<ptr<int>, ptr<const int>>);
  static_assert(std::is_convertible_v<ptr<int>, ptr<void>>);
  static_assert(std::is_convertible_v<ptr<int>, ptr<const void>>);
  static_assert(!std::is_convertible_v<ptr<Base>, ptr<Derived>>);
  static_assert(!std::is_convertible_v<ptr<void>, ptr<int>>);
  static_assert(std::is_constructible_v<ptr<int>, ptr<void>>);
  static_assert(!std::is_constructible_v<ptr<int>, ptr<const int>>);
  static_assert(!std::is_constructible_v<ptr<int>, ptr<const void>>);
  static_assert(!std::is_constructible_v<ptr<int>, ptr<double>>);
}

TEST(Ptr, FancyPointerTraits) {
  using PT = std::pointer_traits<ptr<int>>;
  static_assert(std::is_same_v<PT::element_type, int>);
  static_assert(std::is_same_v<PT::difference_type, std::ptrdiff_t>);
  static_assert(std::is_same_v<PT::rebind<double>, ptr<double>>);
  static_assert(std::is_same_v<std::pointer_traits<ptr<void>>::rebind<int>, ptr<int>>);
  using IT = std::iterator_traits<ptr<int>>;
  static_assert(std::is_same_v<IT::iterator_category, std::random_access_iterator_tag>);
  static_assert(std::is_same_v<IT::value_type, int>);
  static_assert(std::is_same_v<IT::reference, int &>);
  static_assert(std::is_same_v<std::iterator_traits<ptr<const int>>::value_type, int>);
  using AT = std::allocator_traits<persist::offset_allocator<int>>;
  static_assert(std::is_same_v<AT::pointer, ptr<int>>);
  static_assert(std::is_same_v<AT::const_pointer, ptr<const int>>);
  static_assert(std::is_same_v<AT::void_pointer, ptr<void>>);
  static_assert(std::is_same_v<AT::const_void_pointer, ptr<const void>>);
  static_assert(std::is_same_v<AT::rebind_traits<long>::pointer, ptr<long>>);
  int x = 3;
  ptr<int> p = PT::pointer_to(x);
  EXPECT_EQ(&x, p.get());
  EXPECT_EQ(&x, PT::to_address(p));
  EXPECT_EQ(&x, p.operator->());
  std::hash<ptr<int>> hp;
  EXPECT_EQ(std::hash<int *>()(&x), hp(p));
}

TEST(Ptr, IteratesLikeARawPointer) {
  std::vector<int> v(1000);
  std::iota(v.rbegin(), v.rend(), 0);
  ptr<int> first = v.data(), last = v.data() + v.size();
  std::sort(first, last);
  EXPECT_TRUE(std::is_sorted(v.begin(), v.end()));
  EXPECT_EQ(1000, std::distance(first, last));
  ptr<int> it = first;
  std::advance(it, 10);
  EXPECT_EQ(10, *it);
  EXPECT_EQ(last, std::find(first, last, 12345));
  EXPECT_EQ(first + 500, std::lower_bound(first, last, 500));
  std::reverse(first, last);
  EXPECT_EQ(999, v.front());
  long sum = std::accumulate(first, last, 0L);
  EXPECT_EQ(999L * 1000 / 2, sum);
}

TEST(Ptr, FarDistancesBothWays) {
  // Free store to stack, free store to a global, stack to the lowest and highest user addresses:
  // every user-space distance fits the 48 signed bits.
  static int global = 1;
  int local = 2;
  auto boxed = std::make_unique<ptr<int>>(&local);
  EXPECT_EQ(&local, boxed->get());
  *boxed = &global;
  EXPECT_EQ(&global, boxed->get());
  ptr<int> on_stack = &global;
  EXPECT_EQ(&global, on_stack.get());
  const auto lowest = reinterpret_cast<int *>(uintptr_t{0x10000});
  const auto highest = reinterpret_cast<int *>(uintptr_t{0x7ffffffff000});
  ptr<int> lo = lowest, hi = highest;
  EXPECT_EQ(lowest, lo.get());
  EXPECT_EQ(highest, hi.get());
}

class PtrInHeap : public ptest::HeapTest {};

// A ptr-linked list in the heap file, found again after reopening; zeroed memory is null ptrs.
TEST_F(PtrInHeap, LinkedListSurvivesReopen) {
  struct Node {
    int value;
    ptr<Node> next;
    ptr<Node> self;
  };
  struct Head {
    ptr<Node> first;
    ptr<ptr<Node>> last_link;  // a ptr to a ptr inside the heap
    long count;
  };
  auto *head = static_cast<Head *>(persist_heap_root(h_, "list", sizeof(Head)));
  ASSERT_NE(nullptr, head);
  EXPECT_EQ(nullptr, head->first) << "a zeroed root holds null ptrs";
  EXPECT_EQ(0u, head->first.raw_word());
  {
    persist::heap_scope scope(h_);
    ptr<Node> *link = &head->first;
    for (int i = 0; i < 1000; ++i) {
      Node *n = persist::make<Node>();
      n->value = i;
      n->self = n;
      *link = n;
      link = &n->next;
    }
    head->last_link = link;
    head->count = 1000;
  }
  reopen();
  head = static_cast<Head *>(persist_heap_root_get(h_, "list", nullptr));
  ASSERT_NE(nullptr, head);
  int i = 0;
  ptr<Node> *link = &head->first;
  for (Node *n = head->first; n; n = n->next, ++i) {
    ASSERT_TRUE(in_heap(n));
    ASSERT_EQ(i, n->value);
    ASSERT_EQ(n, n->self.get());
    link = &n->next;
  }
  EXPECT_EQ(1000, i);
  EXPECT_EQ(link, head->last_link.get());
  EXPECT_EQ(nullptr, *head->last_link);
}

// When the heap has to move, raw pointers are rewritten but ptr words are not: they stay valid.
TEST_F(PtrInHeap, SurvivesRelocationUntouched) {
  struct Node {
    ptr<Node> next;
    Node *raw_next;
    long value;
  };
  auto *first = static_cast<ptr<Node> *>(persist_heap_root(h_, "nodes", sizeof(ptr<Node>)));
  ASSERT_NE(nullptr, first);
  std::vector<uint64_t> words;
  {
    persist::heap_scope scope(h_);
    ptr<Node> *link = first;
    Node *prev = nullptr;
    for (long i = 0; i < 500; ++i) {
      Node *n = persist::make<Node>(Node{nullptr, nullptr, i});
      *link = n;
      if (prev) prev->raw_next = n;
      words.push_back(link->raw_word());
      link = &n->next;
      prev = n;
    }
  }
  const uintptr_t old_base = reinterpret_cast<uintptr_t>(persist_heap_base(h_));
  ASSERT_EQ(0, persist_close(h_));
  h_ = nullptr;
  persist_options_t o{};
  o.addr = old_base + (uintptr_t{1} << 40);  // far away, disjoint from the old range
  o.relocate = PERSIST_RELOCATE_REWRITE;
  int rc = persist_open(path_.c_str(), &o, &h_);
  ASSERT_EQ(0, rc) << ptest::err_text(rc);
  ASSERT_EQ(o.addr, reinterpret_cast<uintptr_t>(persist_heap_base(h_)));
  EXPECT_GE(persist_relocated_words(h_), 499u) << "the raw links were rewritten";
  first = static_cast<ptr<Node> *>(persist_heap_root_get(h_, "nodes", nullptr));
  ASSERT_NE(nullptr, first);
  long i = 0;
  ptr<Node> *link = first;
  for (Node *n = *first; n; n = n->next, ++i) {
    ASSERT_TRUE(in_heap(n)) << "node " << i;
    ASSERT_EQ(i, n->value);
    ASSERT_EQ(words[static_cast<size_t>(i)], link->raw_word()) << "a ptr word was rewritten";
    if (n->next) {
      ASSERT_EQ(n->next.get(), n->raw_next) << "raw and offset links disagree";
    }
    link = &n->next;
  }
  EXPECT_EQ(500, i);
}

}  // namespace
