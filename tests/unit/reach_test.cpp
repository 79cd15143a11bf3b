// reach_test.cpp — the conservative mark (core/reach.h) is complete or it fails: whatever its
// stack can hold, every block reachable from a root is marked, and a collection never frees
// one. Reproduced on the first wave: with the address-space limit just above the process's use,
// the mark stack could not grow, the blocks left on the floor were never scanned, and
// persist_heap_gc returned 0 having freed reachable grandchildren, which were handed out again.
#include "reach.h"

#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <vector>

#include "heap.h"
#include "heaputil.h"
#include "persist.h"

namespace {

constexpr long kMagic = 0x4752414e44434844;  // every grandchild's first word

struct Child {
  void *grandchild;  // a raw pointer
  uint64_t tagged;   // a tagged offset to the same grandchild's second word (interior)
  long id;
};

struct Grandchild {
  long magic;
  long id;
  char fill[48];
};

class ReachTest : public ptest::HeapTest {
 protected:
  // A root holding `n` children; each child holds a grandchild (by raw pointer and by a tagged
  // interior offset). Pushing the root's words alone needs n stack entries.
  void build(long n) {
    void **kids = static_cast<void **>(persist_alloc(h_, n * sizeof(void *)));
    ASSERT_NE(nullptr, kids);
    for (long i = 0; i < n; ++i) {
      auto *c = static_cast<Child *>(persist_alloc(h_, sizeof(Child)));
      auto *g = static_cast<Grandchild *>(persist_alloc(h_, sizeof(Grandchild)));
      ASSERT_TRUE(c && g);
      g->magic = kMagic, g->id = i;
      memset(g->fill, static_cast<int>(i), sizeof g->fill);
      c->grandchild = g;
      c->tagged = PERSIST_OFFSET_TAG | (static_cast<uint64_t>(reinterpret_cast<char *>(&g->id) -
                                                             static_cast<char *>(persist_heap_base(h_))));
      c->id = i;
      kids[i] = c;
    }
    ASSERT_EQ(0, persist_heap_root_set(h_, "kids", kids));
    root_n_ = n;
    // Garbage beside it: unreachable blocks the collection must free.
    for (int i = 0; i < 1000; ++i) ASSERT_NE(nullptr, persist_alloc(h_, 64));
  }
  // Every child and grandchild intact (0) or the index of the first one that is not.
  long verify() {
    size_t size = 0;
    auto **kids = static_cast<Child **>(persist_heap_root_get(h_, "kids", &size));
    if (!kids) return -2;
    for (long i = 0; i < root_n_; ++i) {
      const Child *c = kids[i];
      const auto *g = static_cast<const Grandchild *>(c->grandchild);
      if (c->id != i || g->magic != kMagic || g->id != i) return i;
      for (char ch : g->fill)
        if (ch != static_cast<char>(i)) return i;
    }
    return 0;
  }
  persist::Image image() { return static_cast<persist::Heap *>(h_)->image(); }
  long root_n_ = 0;
};

// The mark with a stack of 2 entries (every other push overflows) marks exactly what the mark
// with the default stack marks.
TEST_F(ReachTest, ABoundedStackMarksEverythingReachable) {
  build(20000);
  persist::Reach full, tiny(2);
  persist::Msg why;
  persist::Image img = image();
  ASSERT_EQ(0, full.run(img, &why)) << why.str();
  ASSERT_EQ(0, tiny.run(img, &why)) << why.str();
  EXPECT_EQ(0u, full.rescans);
  EXPECT_GT(tiny.rescans, 0u) << "the small stack never overflowed: the test tests nothing";
  EXPECT_EQ(full.blocks, tiny.blocks);
  EXPECT_EQ(full.bytes, tiny.bytes);
  EXPECT_GE(full.blocks, uint64_t(2 * 20000 + 1));
}

// The first wave's case: in a child whose address space is limited to just above what it uses,
// the collection either refuses (nothing freed) or frees exactly the garbage; either way every
// reachable block survives it and is not handed out again.
TEST_F(ReachTest, CollectionUnderAnAddressSpaceLimitFreesNothingReachable) {
  build(200000);  // 200,000 pushes from one block: more than the mark stack starts with
  reopen();
  const long kMiB = 1 << 20;
  for (long margin : {kMiB, 3 * kMiB / 2, 2 * kMiB, 3 * kMiB, 6 * kMiB}) {
    SCOPED_TRACE("margin " + std::to_string(margin));
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      long pages = 0, resident = 0;
      FILE *f = fopen("/proc/self/statm", "r");
      if (!f || fscanf(f, "%ld %ld", &pages, &resident) != 2) _exit(10);
      fclose(f);
      struct rlimit rl;
      rl.rlim_cur = rl.rlim_max = static_cast<rlim_t>(pages * 4096 + margin);
      if (setrlimit(RLIMIT_AS, &rl) != 0) _exit(11);
      uint64_t freed = 0;
      int rc = persist_heap_gc(h_, 0, &freed);
      // Blocks handed out after the collection must not be reachable ones: fill them.
      for (int i = 0; i < 3000; ++i) {
        void *p = persist_alloc(h_, sizeof(Grandchild));
        if (p) memset(p, 0xee, sizeof(Grandchild));
      }
      long bad = verify();
      if (bad) _exit(bad < 0 ? 12 : 13);
      if (rc == 0 && freed == 0) _exit(14);  // a successful collection found the garbage
      _exit(rc == 0 ? 0 : 1);
    }
    int status = 0;
    ASSERT_EQ(pid, waitpid(pid, &status, 0));
    ASSERT_TRUE(WIFEXITED(status)) << "status " << status;
    EXPECT_LE(WEXITSTATUS(status), 1) << "13: a reachable grandchild was freed and reused";
  }
  EXPECT_EQ(0, verify());
}

}  // namespace
