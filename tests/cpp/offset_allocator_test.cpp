// offset_allocator_test.cpp — persist::offset_allocator<T> (pointer = persist::ptr<T>) with the
// containers of libstdc++ 12: std::vector and std::list (and deque, forward_list, basic_string,
// map, unordered_map) built in one open and verified after reopening; and a census of which
// containers really store the fancy pointer (self-relative words) and which keep raw pointers.
#include <deque>
#include <forward_list>
#include <list>
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

#include "cpptest.h"

namespace {

template <class T>
using OA = persist::offset_allocator<T>;
using OString = std::basic_string<char, std::char_traits<char>, OA<char>>;

struct Item {
  long id;
  double weight;
  persist::ptr<Item> buddy;  // a ptr inside an element: re-encoded whenever the element moves
};

struct Store {
  std::vector<Item, OA<Item>> vec;
  std::list<long, OA<long>> list;
  std::deque<int, OA<int>> deque;
  std::forward_list<int, OA<int>> flist;
  OString text;
  std::map<long, long, std::less<long>, OA<std::pair<const long, long>>> map;
  std::unordered_map<long, long, std::hash<long>, std::equal_to<long>,
                     OA<std::pair<const long, long>>>
      hash;
};

constexpr long kN = 5000;

class OffsetAllocatorTest : public ptest::HeapTest {
 protected:
  void fill(Store &s) {
    persist::heap_scope scope(h_);
    for (long i = 0; i < kN; ++i) {
      s.vec.push_back(Item{i, i * 1.5, nullptr});  // grows by reallocation: elements move
      s.list.push_back(i);
      s.list.push_front(-i);
      if (i % 2)
        s.deque.push_back(static_cast<int>(i));
      else
        s.deque.push_front(static_cast<int>(i));
      s.flist.push_front(static_cast<int>(i));
      s.text += static_cast<char>('a' + i % 26);
      s.map[i] = i * i;
      s.hash[i] = -i;
    }
    for (long i = 0; i < kN; ++i)
      s.vec[static_cast<size_t>(i)].buddy = &s.vec[static_cast<size_t>(kN - 1 - i)];
    s.vec.insert(s.vec.begin(), Item{-1, 0, nullptr});  // shifts every element by one
    s.vec.erase(s.vec.begin());                         // and back
    s.list.sort();
    s.list.unique();
  }
  void verify(const Store &s) {
    ASSERT_EQ(static_cast<size_t>(kN), s.vec.size());
    EXPECT_TRUE(in_heap(&s.vec[0]));
    for (long i = 0; i < kN; ++i) {
      const Item &it = s.vec[static_cast<size_t>(i)];
      ASSERT_EQ(i, it.id);
      ASSERT_EQ(i * 1.5, it.weight);
      ASSERT_EQ(&s.vec[static_cast<size_t>(kN - 1 - i)], it.buddy.get()) << i;
    }
    ASSERT_EQ(static_cast<size_t>(2 * kN - 1), s.list.size());  // 0 is there once
    long expect = -(kN - 1);
    for (long v : s.list) ASSERT_EQ(expect++, v);
    for (auto it = s.list.begin(); it != s.list.end(); ++it) ASSERT_TRUE(in_heap(&*it));
    ASSERT_EQ(static_cast<size_t>(kN), s.deque.size());
    // push_front of the evens (descending), push_back of the odds (ascending).
    size_t k = 0;
    for (long i = (kN - 1) / 2 * 2; i >= 0; i -= 2) ASSERT_EQ(i, s.deque[k++]);
    for (long i = 1; i < kN; i += 2) ASSERT_EQ(i, s.deque[k++]);
    for (const int &x : s.deque) ASSERT_TRUE(in_heap(&x));
    long n = kN - 1;
    for (int x : s.flist) ASSERT_EQ(n--, x);
    ASSERT_EQ(-1, n);
    ASSERT_EQ(static_cast<size_t>(kN), s.text.size());
    EXPECT_TRUE(in_heap(s.text.data()));
    for (long i = 0; i < kN; ++i) ASSERT_EQ('a' + i % 26, s.text[static_cast<size_t>(i)]);
    ASSERT_EQ(static_cast<size_t>(kN), s.map.size());
    ASSERT_EQ(static_cast<size_t>(kN), s.hash.size());
    for (long i = 0; i < kN; ++i) {
      ASSERT_EQ(i * i, s.map.at(i));
      ASSERT_EQ(-i, s.hash.at(i));
    }
  }
};

TEST_F(OffsetAllocatorTest, ContainersSurviveReopen) {
  Store *s = &persist::root<Store>(h_, "store");
  const uint64_t before = live_blocks();  // the Store (and an empty deque's map and node)
  fill(*s);
  ASSERT_NO_FATAL_FAILURE(verify(*s));
  reopen();
  s = &persist::root<Store>(h_, "store");
  ASSERT_NO_FATAL_FAILURE(verify(*s));
  {
    persist::heap_scope scope(h_);
    s->~Store();
    new (s) Store();
  }
  reopen();
  EXPECT_EQ(before, live_blocks()) << "every block the containers took came back";
}

TEST_F(OffsetAllocatorTest, VectorAndListBasics) {
  persist::heap_scope scope(h_);
  using V = std::vector<int, OA<int>>;
  V v{1, 2, 3};
  static_assert(std::is_same_v<V::pointer, persist::ptr<int>>);
  static_assert(std::is_same_v<V::const_pointer, persist::ptr<const int>>);
  V w = v;  // copy
  V m = std::move(v);
  EXPECT_TRUE(v.empty());
  EXPECT_EQ(w, m);
  std::swap(w, m);
  w.assign(100, 7);
  EXPECT_EQ(100u, w.size());
  EXPECT_EQ(7, w.at(99));
  EXPECT_EQ(3, m.back());
  int *data = w.data();
  EXPECT_TRUE(in_heap(data));
  V::const_iterator cb = w.cbegin();  // iterator and const_iterator mix
  EXPECT_TRUE(w.begin() == cb && cb == w.begin());
  EXPECT_EQ(100, w.cend() - w.begin());
  EXPECT_EQ(100, w.end() - cb);
  EXPECT_TRUE(cb < w.end());
  w.insert(cb + 1, 5);
  EXPECT_EQ(5, w[1]);
  std::list<int, OA<int>> l(m.begin(), m.end());
  l.splice(l.begin(), std::list<int, OA<int>>{9, 8});
  l.reverse();
  EXPECT_EQ((std::vector<int>{3, 2, 1, 8, 9}), std::vector<int>(l.begin(), l.end()));
  std::list<int, OA<int>> l2;
  l2.swap(l);
  l2.merge(std::list<int, OA<int>>{0, 10});
  EXPECT_EQ(7u, l2.size());
}

#if defined(__GLIBCXX__)  // the census reads libstdc++'s layouts
// Which containers keep the fancy pointer: count, in the container object (and in a deque's map),
// the words that are self-relative links and those that are raw pointers into the heap.
struct Census {
  int self = 0, raw = 0;
};

template <class T>
Census census_of(persist_heap_t *h, const T *obj, size_t bytes = sizeof(T)) {
  Census c;
  const auto *w = reinterpret_cast<const uint64_t *>(obj);
  for (size_t i = 0; i < bytes / 8; ++i) {
    if ((w[i] & ~uint64_t{PERSIST_OFFSET_MASK}) == PERSIST_SELF_TAG)
      ++c.self;
    else if (persist_contains(h, reinterpret_cast<const void *>(w[i])))
      ++c.raw;
  }
  return c;
}

TEST_F(OffsetAllocatorTest, WhichContainersStoreTheFancyPointer) {
  Store &s = persist::root<Store>(h_, "census");
  fill(s);
  Census vec = census_of(h_, &s.vec), list = census_of(h_, &s.list),
         deque = census_of(h_, &s.deque), flist = census_of(h_, &s.flist),
         text = census_of(h_, &s.text), map = census_of(h_, &s.map), hash = census_of(h_, &s.hash);
  // The deque's map: an array of ptr<int> (its iterators' node is a ptr<ptr<int>>).
  static_assert(std::is_same_v<decltype(s.deque.begin()._M_node), persist::ptr<persist::ptr<int>>>);
  const persist::ptr<int> *from = s.deque.begin()._M_node, *to = s.deque.end()._M_node;
  Census dmap = census_of(h_, from, static_cast<size_t>(to - from + 1) * 8);
  EXPECT_EQ(to - from + 1, dmap.self);
  EXPECT_EQ(0, dmap.raw);
  EXPECT_EQ(3, vec.self) << "vector: start, finish, end of storage";
  EXPECT_EQ(0, vec.raw);
  EXPECT_EQ(9, deque.self) << "deque: the map and two iterators of four pointers";
  EXPECT_EQ(0, deque.raw);
  EXPECT_EQ(1, text.self) << "basic_string: its data pointer";
  EXPECT_EQ(0, text.raw);
  EXPECT_EQ(0, list.self) << "libstdc++ 12's list links nodes with raw pointers";
  EXPECT_EQ(2, list.raw);
  EXPECT_EQ(0, flist.self);
  EXPECT_EQ(1, flist.raw);
  EXPECT_EQ(0, map.self);
  EXPECT_GE(map.raw, 3) << "root, leftmost, rightmost";
  EXPECT_EQ(0, hash.self);
  EXPECT_GE(hash.raw, 2) << "buckets and the first node";
  // A list node: its base (raw next, raw prev) comes first, then the value.
  const auto *node = reinterpret_cast<const uint64_t *>(s.list.begin()._M_node);
  EXPECT_TRUE(persist_contains(h_, reinterpret_cast<const void *>(node[0])));
}
#endif

}  // namespace
