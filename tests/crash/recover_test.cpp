// recover_test.cpp — recovery at open (core/recover.h) cannot corrupt: the moves of the heap and
// of the program images it points into, uninterrupted and interrupted at every crash point of
// the pass (the crash-test build of the core: crash_point_arm, in a forked child), then finished
// by the next open, including one that does not load the moved module. Each case below was
// reproduced on the first wave:
//   - PERSIST_RELOCATE_REFUSE still ran the image pass (an integer equal to a function's address
//     + 0x10 was rewritten);
//   - a module moved by less than its size had its pointers left alone, for ever;
//   - an image pass interrupted by a crash was dropped by the next open that did not load the
//     module (half the function pointers dangled from then on);
//   - a resumed relocation rewrote words twice when a module's range met a range the heap's
//     words moved from or to.
// Module moves are made deterministic by editing the recorded module table (and the words that
// point into the module) as if the program had been loaded elsewhere by the previous process.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "crashpoint.h"
#include "heap.h"
#include "modules.h"
#include "persist.h"
#include "superblock.h"
#include "testutil.h"

namespace {

using namespace persist;

__attribute__((noinline)) long target_fn(long x) { return 3 * x + 1; }

struct Node {
  uint64_t next;  // raw pointer to the next node (0: end)
  uint64_t fn;    // raw pointer into this executable
  uint64_t id;
  uint64_t plain;  // an integer (never in any moved range)
};
struct Head {
  uint64_t first;
  uint64_t count;
  uint64_t fake_int;  // an integer equal to &target_fn + 0x10: conservative rewriting shifts it
};

constexpr uintptr_t kCreateAt = 0x610000000000;
constexpr int kNodes = 120;

uint64_t fn_addr() { return reinterpret_cast<uint64_t>(&target_fn); }

class RecoverTest : public ::testing::Test {
 protected:
  void SetUp() override {
    crash_point_arm(0);
    persist_options_t o{};
    o.addr = kCreateAt;
    o.flags = PERSIST_OPEN_CREATE;
    persist_heap_t *h = nullptr;
    ASSERT_EQ(0, persist_open(path_.c_str(), &o, &h));
    auto *head = static_cast<Head *>(persist_heap_root(h, "head", sizeof(Head)));
    ASSERT_NE(nullptr, head);
    uint64_t prev = 0;
    for (int i = 0; i < kNodes; ++i) {
      auto *n = static_cast<Node *>(persist_alloc(h, sizeof(Node)));
      ASSERT_NE(nullptr, n);
      n->next = prev, n->fn = fn_addr(), n->id = static_cast<uint64_t>(i), n->plain = 1000 + i;
      prev = reinterpret_cast<uint64_t>(n);
      offs_.push_back(reinterpret_cast<uint8_t *>(n) - static_cast<uint8_t *>(persist_heap_base(h)));
    }
    head->first = prev, head->count = kNodes, head->fake_int = fn_addr() + 0x10;
    head_off_ = reinterpret_cast<uint8_t *>(head) - static_cast<uint8_t *>(persist_heap_base(h));
    ASSERT_EQ(0, persist_close(h));
  }

  // Edit the closed heap file through a shared mapping: f(mem, superblock, module table).
  void edit(const std::function<void(uint8_t *, Superblock &, ModuleTable *)> &f) {
    int fd = open(path_.c_str(), O_RDWR);
    ASSERT_GE(fd, 0);
    struct stat st;
    ASSERT_EQ(0, fstat(fd, &st));
    void *m = mmap(nullptr, st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    ASSERT_NE(MAP_FAILED, m);
    auto *mem = static_cast<uint8_t *>(m);
    Superblock sb;
    Msg why;
    ASSERT_EQ(0, super_read(mem, st.st_size, &sb, &why)) << why.str();
    Image img;
    img.mem = mem, img.len = st.st_size, img.sb = sb;
    auto *t = const_cast<ModuleTable *>(modules_table(img));
    Superblock before = sb;
    f(mem, sb, t);
    if (memcmp(&before, &sb, sizeof sb)) super_write(mem, sb);
    munmap(m, st.st_size);
    close(fd);
  }
  ModuleEntry *main_entry(ModuleTable *t) {
    for (uint32_t i = 0; t && i < t->count; ++i)
      if (t->entry[i].start <= fn_addr() && fn_addr() < t->entry[i].end) return &t->entry[i];
    return nullptr;
  }
  Node *node(uint8_t *mem, size_t i) { return reinterpret_cast<Node *>(mem + offs_[i]); }
  Head *head(uint8_t *mem) { return reinterpret_cast<Head *>(mem + head_off_); }

  // As if the previous process had had this executable `delta` bytes lower.
  void record_image_lower(uint64_t delta) {
    edit([&](uint8_t *mem, Superblock &, ModuleTable *t) {
      ModuleEntry *e = main_entry(t);
      ASSERT_NE(nullptr, e) << "the executable is not in the module table";
      e->bias -= delta, e->start -= delta, e->end -= delta;
      for (size_t i = 0; i < offs_.size(); ++i) node(mem, i)->fn -= delta;
      head(mem)->fake_int -= delta;
    });
  }
  // As if the heap's pointers had been written for base x.
  void record_heap_at(uint64_t x) {
    edit([&](uint8_t *mem, Superblock &sb, ModuleTable *) {
      const uint64_t old = sb.base;
      for (size_t i = 0; i < offs_.size(); ++i)
        if (node(mem, i)->next) node(mem, i)->next = node(mem, i)->next - old + x;
      head(mem)->first = head(mem)->first - old + x;
      sb.base = x;
    });
  }
  // The module's build-id changed (as if the next program did not load it).
  void forget_build_id() {
    edit([&](uint8_t *, Superblock &, ModuleTable *t) {
      for (uint32_t i = 0; t && i < t->count; ++i)
        if (t->entry[i].moving || (t->entry[i].start <= fn_addr() && fn_addr() < t->entry[i].end))
          t->entry[i].build_id[0] ^= 0xff;
    });
  }

  int open_heap(persist_heap_t **h, unsigned flags = 0, unsigned relocate = PERSIST_RELOCATE_REWRITE,
                uintptr_t addr = 0) {
    persist_options_t o{};
    o.addr = addr, o.flags = flags, o.relocate = relocate;
    return persist_open(path_.c_str(), &o, h);
  }
  // Every node reached, linked by pointers into the heap where it is now, every function
  // pointer callable: "" or what is wrong.
  std::string verify(persist_heap_t *h) {
    auto *hd = static_cast<Head *>(persist_heap_root_get(h, "head", nullptr));
    if (!hd) return "no root";
    uint64_t n = 0, p = hd->first;
    for (; p; ++n) {
      if (!persist_contains(h, reinterpret_cast<void *>(p))) return "node " + std::to_string(n) + ": next points outside the heap";
      auto *nd = reinterpret_cast<Node *>(p);
      if (nd->id != kNodes - 1 - n || nd->plain != 1000 + nd->id) return "node " + std::to_string(n) + " is damaged";
      if (nd->fn != fn_addr()) return "node " + std::to_string(n) + ": a dangling function pointer";
      if (reinterpret_cast<long (*)(long)>(nd->fn)(4) != 13) return "the function pointer does not call";
      p = nd->next;
    }
    if (n != kNodes) return "the list has " + std::to_string(n) + " nodes";
    return "";
  }
  // Open, verify, close: "" or the failure.
  std::string open_and_verify(unsigned flags = 0) {
    persist_heap_t *h = nullptr;
    int rc = open_heap(&h, flags);
    if (rc) return std::string("open: ") + persist_strerror(rc);
    std::string v = verify(h);
    persist_close(h);
    return v;
  }

  // Run f in a child that dies at crash-point passage `at` (0: never); its exit status. With
  // passages, the child reports how many passages f made.
  int in_child(int64_t at, const std::function<void()> &f, uint64_t *passages = nullptr) {
    int p[2];
    if (pipe(p)) return -1;
    pid_t pid = fork();
    if (pid == 0) {
      close(p[0]);
      crash_point_arm(at);
      f();
      uint64_t n = crash_point_arm(0);
      if (write(p[1], &n, sizeof n) != sizeof n) _exit(3);
      _exit(0);
    }
    close(p[1]);
    uint64_t n = 0;
    if (read(p[0], &n, sizeof n) == sizeof n && passages) *passages = n;
    close(p[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }
  void copy_file(const std::string &from, const std::string &to) {
    std::string data;
    ASSERT_TRUE(ptest::read_file(from, &data));
    unlink(to.c_str());
    ASSERT_TRUE(ptest::write_file(to, data.data(), data.size()));
    chmod(to.c_str(), 0600);
  }
  // Every passage of an open of the prepared file: crash there, finish with the next open
  // (after `between`, when given), verify.
  void walk_open_crashes(const std::function<void()> &between = {}) {
    const std::string pristine = dir_.file("pristine");
    copy_file(path_, pristine);
    uint64_t total = 0;
    ASSERT_EQ(0, in_child(0, [&] {
      persist_heap_t *h = nullptr;
      if (open_heap(&h) == 0) persist_close(h);
    }, &total));
    ASSERT_GT(total, uint64_t(kNodes)) << "the open made too few crash-point passages to be a pass over the words";
    for (uint64_t at = 1; at <= total; ++at) {
      SCOPED_TRACE("crash at passage " + std::to_string(at) + " of " + std::to_string(total));
      copy_file(pristine, path_);
      int rc = in_child(static_cast<int64_t>(at), [&] {
        persist_heap_t *h = nullptr;
        if (open_heap(&h) == 0) persist_close(h);
      });
      ASSERT_EQ(77, rc) << "the child did not crash";
      if (between) between();
      ASSERT_EQ("", open_and_verify());
      ASSERT_EQ("", open_and_verify()) << "a second open after the recovery";
    }
    copy_file(pristine, path_);
  }

  ptest::TempDir dir_;
  std::string path_ = dir_.file("heap");
  std::vector<uint64_t> offs_;
  uint64_t head_off_ = 0;
};

TEST_F(RecoverTest, TheProgramImageIsRecordedAtOpenAndAtClose) {
  edit([&](uint8_t *, Superblock &, ModuleTable *t) { EXPECT_NE(nullptr, main_entry(t)); });
  EXPECT_EQ("", open_and_verify());
}

// The documented opt-out rewrites nothing, not even pointers into images that moved.
TEST_F(RecoverTest, RefuseRewritesNoImagePointer) {
  const uint64_t kDelta = uint64_t{1} << 30;
  record_image_lower(kDelta);
  for (unsigned how : {0u, 1u}) {
    SCOPED_TRACE(how ? "PERSIST_OPEN_KEEP_IMAGES" : "PERSIST_RELOCATE_REFUSE");
    persist_heap_t *h = nullptr;
    ASSERT_EQ(0, how ? open_heap(&h, PERSIST_OPEN_KEEP_IMAGES) : open_heap(&h, 0, PERSIST_RELOCATE_REFUSE));
    auto *hd = static_cast<Head *>(persist_heap_root_get(h, "head", nullptr));
    ASSERT_NE(nullptr, hd);
    EXPECT_EQ(fn_addr() + 0x10 - kDelta, hd->fake_int) << "an integer was rewritten";
    EXPECT_EQ(0u, persist_relocated_words(h));
    auto *n = reinterpret_cast<Node *>(hd->first);
    EXPECT_EQ(fn_addr() - kDelta, n->fn);
    EXPECT_EQ(0, persist_close(h));
  }
}

TEST_F(RecoverTest, AModuleThatMovedIsShifted) {
  record_image_lower(uint64_t{1} << 30);
  EXPECT_EQ("", open_and_verify());
}

// Moved by less than its size: one pass would not be idempotent (its new range meets its old);
// it goes through a scratch range, in two passes.
TEST_F(RecoverTest, AModuleMovedByLessThanItsSizeIsShifted) {
  edit([&](uint8_t *, Superblock &, ModuleTable *t) {
    ModuleEntry *e = main_entry(t);
    ASSERT_NE(nullptr, e);
    ASSERT_GT(e->end - e->start, uint64_t{2 * kPageSize});
  });
  record_image_lower(kPageSize);
  EXPECT_EQ("", open_and_verify());
}

TEST_F(RecoverTest, AnInterruptedImagePassIsFinishedAtEveryCrashPoint) {
  record_image_lower(uint64_t{1} << 30);
  walk_open_crashes();
}

// The next program does not load the moved module (its build-id changed): the interrupted pass
// is finished all the same, from what was recorded.
TEST_F(RecoverTest, AnInterruptedImagePassIsFinishedWithoutTheModule) {
  record_image_lower(uint64_t{1} << 30);
  walk_open_crashes([&] { forget_build_id(); });
}

TEST_F(RecoverTest, AnInterruptedSmallModuleMoveIsFinishedAtEveryCrashPoint) {
  record_image_lower(kPageSize);
  walk_open_crashes();
}

// The heap's old range lies over where the executable is loaded now (so the heap cannot be
// mapped where it was, and the module's new range meets the range the heap's words move from),
// and the executable moved: both moves at one open, interrupted anywhere, resumed.
TEST_F(RecoverTest, TheHeapAndAModuleOverItsOldRangeMoveTogether) {
  uint64_t x = 0;
  edit([&](uint8_t *, Superblock &, ModuleTable *t) {
    ModuleEntry *e = main_entry(t);
    ASSERT_NE(nullptr, e);
    x = e->start & ~uint64_t{kSegmentSize - 1};
  });
  record_heap_at(x);
  record_image_lower(uint64_t{1} << 30);
  {
    persist_heap_t *h = nullptr;
    ASSERT_EQ(0, open_heap(&h));
    EXPECT_NE(x, reinterpret_cast<uint64_t>(persist_heap_base(h))) << "it cannot be mapped over the executable";
    EXPECT_EQ("", verify(h));
    persist_close(h);
  }
  SetUp();  // again from the start, for the walk
  edit([&](uint8_t *, Superblock &, ModuleTable *) {});
  record_heap_at(x);
  record_image_lower(uint64_t{1} << 30);
  walk_open_crashes();
}

// An explicit new base inside a range the heap's pointers point into is refused, not half used.
TEST_F(RecoverTest, ANewBaseOverARecordedImageIsRefused) {
  const uint64_t kDelta = uint64_t{1} << 32;
  uint64_t at = 0;  // inside where the executable was recorded (a free range now)
  edit([&](uint8_t *, Superblock &, ModuleTable *t) {
    ModuleEntry *e = main_entry(t);
    ASSERT_NE(nullptr, e);
    at = (e->start - kDelta + kPageSize - 1) & ~uint64_t{kPageSize - 1};
    ASSERT_LT(at, e->end - kDelta);
  });
  record_image_lower(kDelta);
  std::string before;
  ASSERT_TRUE(ptest::read_file(path_, &before));
  persist_heap_t *h = nullptr;
  EXPECT_NE(0, open_heap(&h, 0, PERSIST_RELOCATE_REWRITE, at));
  std::string after;
  ASSERT_TRUE(ptest::read_file(path_, &after));
  EXPECT_TRUE(before == after) << "a refused move changed the file";
  EXPECT_EQ("", open_and_verify());
}

// An interrupted move and an open that may not rewrite: refused (a half-moved heap is not used).
TEST_F(RecoverTest, RefuseDoesNotOpenAHalfMovedHeap) {
  record_image_lower(uint64_t{1} << 30);
  ASSERT_EQ(77, in_child(kNodes / 2, [&] {
    persist_heap_t *h = nullptr;
    if (open_heap(&h) == 0) persist_close(h);
  }));
  persist_heap_t *h = nullptr;
  EXPECT_EQ(PERSIST_E_MOVED, open_heap(&h, 0, PERSIST_RELOCATE_REFUSE));
  EXPECT_EQ("", open_and_verify());
}

}  // namespace
