// roots_test.cpp — the root table through the heap-handle API (persist.h, DESIGN.md "The root
// API"): find-or-create, get, set, remove, enumeration, tag limits, several chained tables, and
// persistence of all of it across close/reopen.
#include <gtest/gtest.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "heaputil.h"
#include "persist.h"
#include "testutil.h"

namespace {

class RootsTest : public ptest::HeapTest {
 protected:
  // Collect every root through persist_heap_root_each.
  std::map<std::string, std::pair<void *, size_t>> all_roots() {
    std::map<std::string, std::pair<void *, size_t>> out;
    int rc = persist_heap_root_each(
        h_,
        [](const char *tag, void *ptr, size_t size, void *arg) {
          auto *m = static_cast<std::map<std::string, std::pair<void *, size_t>> *>(arg);
          EXPECT_TRUE(m->emplace(tag, std::make_pair(ptr, size)).second)
              << "root " << tag << " enumerated twice";
          return 0;
        },
        &out);
    EXPECT_EQ(0, rc) << ptest::err_text(rc);
    return out;
  }

};

TEST_F(RootsTest, FindOrCreateReturnsZeroedMemoryAndTheSamePointerAgain) {
  void *r = persist_heap_root(h_, "alpha", 100);
  ASSERT_NE(nullptr, r) << "errno " << errno;
  EXPECT_TRUE(persist_contains(h_, r));
  EXPECT_EQ(SIZE_MAX, ptest::first_nonzero(r, 100));
  EXPECT_GE(persist_usable_size(h_, r), 100u);
  memset(r, 0x5a, 100);

  EXPECT_EQ(r, persist_heap_root(h_, "alpha", 100)) << "second find-or-create";
  EXPECT_EQ(r, persist_heap_root(h_, "alpha", 10)) << "a smaller size finds the root";
  EXPECT_EQ(0x5a, static_cast<uint8_t *>(r)[99]) << "find must not re-zero the block";
  size_t sz = 0;
  EXPECT_EQ(r, persist_heap_root_get(h_, "alpha", &sz));
  EXPECT_EQ(100u, sz) << "size recorded at creation";
  EXPECT_EQ(r, persist_heap_root_get(h_, "alpha", nullptr));
  EXPECT_NE(r, persist_heap_root(h_, "alphA", 100)) << "tags are case-sensitive";
  EXPECT_NE(r, persist_heap_root(h_, "alph", 100)) << "a prefix is another tag";
  ASSERT_HEAP_CONSISTENT(h_);
}

TEST_F(RootsTest, RootsOfEveryBlockKindAreZeroedEvenOverRecycledMemory) {
  // Dirty the memory first, so a root that reuses it must really be zeroed.
  const size_t sizes[] = {24, 3000, 100000, size_t{5} << 20};
  for (size_t s : sizes) {
    std::vector<void *> junk;
    for (int i = 0; i < 64 && (s < 65536 || i < 4); ++i) {
      void *p = persist_alloc(h_, s);
      ASSERT_NE(nullptr, p);
      memset(p, 0xab, s);
      junk.push_back(p);
    }
    for (void *p : junk) persist_free(h_, p);
    std::string tag = "zeroed-" + std::to_string(s);
    void *r = persist_heap_root(h_, tag.c_str(), s);
    ASSERT_NE(nullptr, r) << "size " << s << " errno " << errno;
    EXPECT_EQ(SIZE_MAX, ptest::first_nonzero(r, s)) << "root of " << s << " bytes not zeroed";
  }
  ASSERT_HEAP_CONSISTENT(h_);
}

TEST_F(RootsTest, GetOfAMissingRootIsENOENT) {
  errno = 0;
  EXPECT_EQ(nullptr, persist_heap_root_get(h_, "nothing-here", nullptr));
  EXPECT_EQ(ENOENT, errno);
}

TEST_F(RootsTest, ReRequestWithALargerSizeFailsWithEEXIST) {
  void *r = persist_heap_root(h_, "sized", 100);
  ASSERT_NE(nullptr, r);
  errno = 0;
  EXPECT_EQ(nullptr, persist_heap_root(h_, "sized", 4096));
  EXPECT_EQ(EEXIST, errno);
  // The root is untouched by the failed request.
  size_t sz = 0;
  EXPECT_EQ(r, persist_heap_root_get(h_, "sized", &sz));
  EXPECT_EQ(100u, sz);
}

// The size compared is the one recorded at creation (persist_root_get reports it), not the usable
// size the allocator rounded it up to.
TEST_F(RootsTest, ReRequestOneByteLargerThanCreatedFailsWithEEXIST) {
  void *r = persist_heap_root(h_, "sized", 100);
  ASSERT_NE(nullptr, r);
  ASSERT_GT(persist_usable_size(h_, r), 100u) << "(premise: 100 bytes round up)";
  errno = 0;
  EXPECT_EQ(nullptr, persist_heap_root(h_, "sized", 101));
  EXPECT_EQ(EEXIST, errno);
}

TEST_F(RootsTest, RootsSurviveCloseAndReopen) {
  std::vector<std::pair<std::string, size_t>> specs = {
      {"config", 64}, {"index", 5000}, {"big", 300000}, {"huge", size_t{6} << 20}, {"tiny", 1}};
  std::map<std::string, uint64_t> offsets;
  for (size_t i = 0; i < specs.size(); ++i) {
    void *r = persist_heap_root(h_, specs[i].first.c_str(), specs[i].second);
    ASSERT_NE(nullptr, r) << specs[i].first;
    ptest::fill_pattern(r, i + 1, 0, specs[i].second);
    offsets[specs[i].first] = PERSIST_OFFSET(h_, r);
  }
  void *base_before = persist_heap_base(h_);
  EXPECT_EQ(0, persist_heap_sync(h_));
  reopen();
  EXPECT_EQ(base_before, persist_heap_base(h_));
  for (size_t i = 0; i < specs.size(); ++i) {
    size_t sz = 0;
    void *r = persist_heap_root_get(h_, specs[i].first.c_str(), &sz);
    ASSERT_NE(nullptr, r) << specs[i].first << " lost (errno " << errno << ")";
    EXPECT_EQ(offsets[specs[i].first], PERSIST_OFFSET(h_, r)) << specs[i].first;
    EXPECT_EQ(specs[i].second, sz) << specs[i].first;
    EXPECT_EQ(SIZE_MAX, ptest::check_pattern(r, i + 1, 0, specs[i].second)) << specs[i].first;
    EXPECT_EQ(r, persist_heap_root(h_, specs[i].first.c_str(), specs[i].second));
  }
  persist_stats_t st = ptest::stats_of(h_);
  EXPECT_EQ(specs.size(), st.roots);
  ASSERT_HEAP_CONSISTENT(h_);
}

TEST_F(RootsTest, TagsUpToTheMaximumLengthWork) {
  static_assert(PERSIST_TAG_MAX == 87, "the header's promise");
  std::string longest(PERSIST_TAG_MAX, 'x');
  longest[0] = 'L', longest[PERSIST_TAG_MAX - 1] = 'Z';
  std::string shorter = longest.substr(0, PERSIST_TAG_MAX - 1);
  void *a = persist_heap_root(h_, longest.c_str(), 32);
  ASSERT_NE(nullptr, a) << "87-byte tag, errno " << errno;
  void *b = persist_heap_root(h_, shorter.c_str(), 32);
  ASSERT_NE(nullptr, b) << "86-byte tag, errno " << errno;
  EXPECT_NE(a, b);
  std::string odd = "a tag/with spaces:and\xc3\xa9\x01bytes";
  void *c = persist_heap_root(h_, odd.c_str(), 8);
  ASSERT_NE(nullptr, c);
  reopen();
  EXPECT_NE(nullptr, persist_heap_root_get(h_, longest.c_str(), nullptr));
  EXPECT_NE(nullptr, persist_heap_root_get(h_, shorter.c_str(), nullptr));
  EXPECT_NE(nullptr, persist_heap_root_get(h_, odd.c_str(), nullptr));
  auto roots = all_roots();
  EXPECT_EQ(1u, roots.count(longest)) << "enumeration truncated or lost the longest tag";
  EXPECT_EQ(1u, roots.count(odd));
  ASSERT_HEAP_CONSISTENT(h_);
}

TEST_F(RootsTest, TagsLongerThanTheMaximumOrEmptyAreRejected) {
  std::string too_long(PERSIST_TAG_MAX + 1, 'y');
  errno = 0;
  EXPECT_EQ(nullptr, persist_heap_root(h_, too_long.c_str(), 16));
  EXPECT_EQ(EINVAL, errno);
  std::string much_too_long(1000, 'z');
  errno = 0;
  EXPECT_EQ(nullptr, persist_heap_root(h_, much_too_long.c_str(), 16));
  EXPECT_EQ(EINVAL, errno);
  errno = 0;
  EXPECT_EQ(nullptr, persist_heap_root(h_, "", 16));
  EXPECT_EQ(EINVAL, errno);
  void *p = persist_alloc(h_, 16);
  ASSERT_NE(nullptr, p);
  EXPECT_EQ(PERSIST_E_TAG, persist_heap_root_set(h_, too_long.c_str(), p));
  EXPECT_EQ(PERSIST_E_TAG, persist_heap_root_set(h_, "", p));
  // Nothing was created under a truncated name.
  EXPECT_EQ(nullptr,
            persist_heap_root_get(h_, too_long.substr(0, PERSIST_TAG_MAX).c_str(), nullptr));
  EXPECT_EQ(0u, ptest::stats_of(h_).roots);
  persist_free(h_, p);
}

TEST_F(RootsTest, SetPointsARootAtAnotherBlockOrRemovesIt) {
  void *r = persist_heap_root(h_, "slot", 40);
  ASSERT_NE(nullptr, r);
  void *b = persist_alloc(h_, 300);
  ASSERT_NE(nullptr, b);
  ptest::fill_pattern(b, 77, 0, 300);
  ASSERT_EQ(0, persist_heap_root_set(h_, "slot", b));
  size_t sz = 0;
  EXPECT_EQ(b, persist_heap_root_get(h_, "slot", &sz));
  EXPECT_EQ(persist_usable_size(h_, b), sz) << "size of a block set later: its usable size";
  EXPECT_EQ(b, persist_heap_root(h_, "slot", 300)) << "find-or-create finds the new block";

  // set creates a root that did not exist.
  void *c = persist_alloc(h_, 5000);
  ASSERT_NE(nullptr, c);
  ASSERT_EQ(0, persist_heap_root_set(h_, "made-by-set", c));
  EXPECT_EQ(c, persist_heap_root_get(h_, "made-by-set", nullptr));
  reopen();
  void *b2 = persist_heap_root_get(h_, "slot", &sz);
  ASSERT_NE(nullptr, b2);
  EXPECT_EQ(SIZE_MAX, ptest::check_pattern(b2, 77, 0, 300));
  EXPECT_NE(nullptr, persist_heap_root_get(h_, "made-by-set", nullptr));
  ASSERT_HEAP_CONSISTENT(h_);

  // NULL removes the root; the block stays allocated.
  uint64_t live = ptest::stats_of(h_).live_blocks;
  ASSERT_EQ(0, persist_heap_root_set(h_, "slot", nullptr));
  errno = 0;
  EXPECT_EQ(nullptr, persist_heap_root_get(h_, "slot", nullptr));
  EXPECT_EQ(ENOENT, errno);
  EXPECT_EQ(live, ptest::stats_of(h_).live_blocks);
  EXPECT_EQ(SIZE_MAX, ptest::check_pattern(b2, 77, 0, 300));
  reopen();
  EXPECT_EQ(nullptr, persist_heap_root_get(h_, "slot", nullptr)) << "removal did not persist";
  ASSERT_HEAP_CONSISTENT(h_);
}

TEST_F(RootsTest, SetRejectsPointersThatAreNotLiveBlocks) {
  char *b = static_cast<char *>(persist_alloc(h_, 256));
  ASSERT_NE(nullptr, b);
  int on_stack = 0;
  EXPECT_EQ(PERSIST_E_NOTBLOCK, persist_heap_root_set(h_, "bad", b + 16)) << "interior pointer";
  EXPECT_EQ(PERSIST_E_NOTBLOCK, persist_heap_root_set(h_, "bad", &on_stack)) << "not in heap";
  void *freed = persist_alloc(h_, 256);
  ASSERT_NE(nullptr, freed);
  persist_free(h_, freed);
  EXPECT_EQ(PERSIST_E_NOTBLOCK, persist_heap_root_set(h_, "bad", freed)) << "freed block";
  EXPECT_EQ(nullptr, persist_heap_root_get(h_, "bad", nullptr));
  persist_free(h_, b);
  ASSERT_HEAP_CONSISTENT(h_);
}

TEST_F(RootsTest, RemoveDropsTheRootButNotTheBlock) {
  void *r = persist_heap_root(h_, "doomed", 128);
  ASSERT_NE(nullptr, r);
  ptest::fill_pattern(r, 5, 0, 128);
  persist_stats_t before = ptest::stats_of(h_);
  ASSERT_EQ(0, persist_heap_root_remove(h_, "doomed"));
  persist_stats_t after = ptest::stats_of(h_);
  EXPECT_EQ(before.roots - 1, after.roots);
  EXPECT_EQ(before.live_blocks, after.live_blocks) << "remove freed the block";
  EXPECT_EQ(SIZE_MAX, ptest::check_pattern(r, 5, 0, 128));
  errno = 0;
  EXPECT_EQ(nullptr, persist_heap_root_get(h_, "doomed", nullptr));
  EXPECT_EQ(ENOENT, errno);
  EXPECT_GT(0, persist_heap_root_remove(h_, "doomed")) << "removing a missing root succeeded";
  // A new root of that name is a new, zeroed block.
  void *n = persist_heap_root(h_, "doomed", 128);
  ASSERT_NE(nullptr, n);
  EXPECT_NE(r, n);
  EXPECT_EQ(SIZE_MAX, ptest::first_nonzero(n, 128));
  persist_free(h_, r);
  ASSERT_HEAP_CONSISTENT(h_);
}

TEST_F(RootsTest, EachEnumeratesEveryRootOnceAndStopsEarly) {
  std::map<std::string, void *> made;
  for (int i = 0; i < 10; ++i) {
    std::string tag = "each-" + std::to_string(i);
    void *r = persist_heap_root(h_, tag.c_str(), 16 + i * 100);
    ASSERT_NE(nullptr, r);
    made[tag] = r;
  }
  auto roots = all_roots();
  ASSERT_EQ(made.size(), roots.size());
  for (auto &[tag, p] : made) {
    ASSERT_EQ(1u, roots.count(tag)) << tag;
    EXPECT_EQ(p, roots[tag].first) << tag;
    EXPECT_EQ(16u + 100u * std::stoul(tag.substr(5)), roots[tag].second) << tag;
  }
  int calls = 0;
  persist_heap_root_each(
      h_,
      [](const char *, void *, size_t, void *arg) {
        int *c = static_cast<int *>(arg);
        return ++*c == 3 ? 1 : 0;
      },
      &calls);
  EXPECT_EQ(3, calls) << "enumeration did not stop when the callback returned non-zero";
}

TEST_F(RootsTest, HundredsOfRootsSpanSeveralTables) {
  // A table holds 127 entries: 400 roots need four.
  const int kRoots = 400;
  auto tag_of = [](int i) { return "root-" + std::to_string(i); };
  auto size_of = [](int i) { return size_t(8 + (i * 37) % 2000); };
  for (int i = 0; i < kRoots; ++i) {
    void *r = persist_heap_root(h_, tag_of(i).c_str(), size_of(i));
    ASSERT_NE(nullptr, r) << tag_of(i) << " errno " << errno;
    ptest::fill_pattern(r, 1000 + i, 0, size_of(i));
  }
  EXPECT_EQ(uint64_t(kRoots), ptest::stats_of(h_).roots);
  EXPECT_EQ(size_t(kRoots), all_roots().size());
  ASSERT_HEAP_CONSISTENT(h_);
  reopen();
  for (int i = 0; i < kRoots; ++i) {
    size_t sz = 0;
    void *r = persist_heap_root_get(h_, tag_of(i).c_str(), &sz);
    ASSERT_NE(nullptr, r) << tag_of(i) << " lost after reopen";
    EXPECT_EQ(size_of(i), sz);
    ASSERT_EQ(SIZE_MAX, ptest::check_pattern(r, 1000 + i, 0, size_of(i))) << tag_of(i);
  }
  // Remove every other one, then add more: freed entries are reused or new tables chained.
  for (int i = 0; i < kRoots; i += 2) ASSERT_EQ(0, persist_heap_root_remove(h_, tag_of(i).c_str()));
  for (int i = kRoots; i < kRoots + 150; ++i) {
    void *r = persist_heap_root(h_, tag_of(i).c_str(), size_of(i));
    ASSERT_NE(nullptr, r) << tag_of(i);
    ptest::fill_pattern(r, 1000 + i, 0, size_of(i));
  }
  ASSERT_HEAP_CONSISTENT(h_);
  reopen();
  std::set<std::string> expect;
  for (int i = 1; i < kRoots; i += 2) expect.insert(tag_of(i));
  for (int i = kRoots; i < kRoots + 150; ++i) expect.insert(tag_of(i));
  auto roots = all_roots();
  EXPECT_EQ(expect.size(), roots.size());
  EXPECT_EQ(uint64_t(expect.size()), ptest::stats_of(h_).roots);
  for (int i = 0; i < kRoots + 150; ++i) {
    void *r = persist_heap_root_get(h_, tag_of(i).c_str(), nullptr);
    if (expect.count(tag_of(i))) {
      ASSERT_NE(nullptr, r) << tag_of(i);
      EXPECT_EQ(r, roots[tag_of(i)].first);
      ASSERT_EQ(SIZE_MAX, ptest::check_pattern(r, 1000 + i, 0, size_of(i))) << tag_of(i);
    } else {
      EXPECT_EQ(nullptr, r) << tag_of(i) << " was removed but is back";
    }
  }
  ASSERT_HEAP_CONSISTENT(h_);
}

}  // namespace
