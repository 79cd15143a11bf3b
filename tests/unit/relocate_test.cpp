// relocate_test — the offset rewrite layer (core/relocate.h) on a raw-pointer graph: a linked
// list, a binary tree, a hash table of strings, std::map and std::unordered_map with
// persist::allocator, and objects with virtual functions, built in one open and verified after
// reopening at the same address, at a far address, with the recorded range occupied by another
// mapping, read-only (persist_translate), and refused. persist_heap_check passes after each.
#include <gtest/gtest.h>
#include <sys/mman.h>

#include <cstring>
#include <map>
#include <string>
#include <unordered_map>

#include "persist.h"
#include "persist.hpp"
#include "testutil.h"

namespace {

struct Shape {
  virtual ~Shape() = default;
  virtual long area() const = 0;
};
struct Rect : Shape {
  long w, h;
  Rect(long a, long b) : w(a), h(b) {}
  long area() const override { return w * h; }
};

struct Node {
  Node *next;
  long value;
};
struct Tree {
  Tree *left, *right;
  long key;
};
struct Entry {
  Entry *next;
  char *key;
  char *value;
};

using Map = std::map<long, persist::string, std::less<long>,
                     persist::allocator<std::pair<const long, persist::string>>>;
using UMap = std::unordered_map<persist::string, long, std::hash<persist::string>, std::equal_to<persist::string>,
                                persist::allocator<std::pair<const persist::string, long>>>;

struct Graph {
  Node *list;
  Tree *tree;
  Entry *buckets[64];
  Shape *shapes[4];
  Map *map;
  UMap *umap;
};

constexpr long kN = 2000;
constexpr uintptr_t kAddr = 0x520000000000ull;

Tree *insert(persist_heap_t *h, Tree *t, long key) {
  if (!t) {
    auto *n = static_cast<Tree *>(persist_calloc(h, 1, sizeof(Tree)));
    n->key = key;
    return n;
  }
  if (key < t->key) t->left = insert(h, t->left, key);
  else t->right = insert(h, t->right, key);
  return t;
}

long tree_sum(const Tree *t, long *count) {
  if (!t) return 0;
  ++*count;
  return t->key + tree_sum(t->left, count) + tree_sum(t->right, count);
}

char *dup(persist_heap_t *h, const std::string &s) {
  auto *p = static_cast<char *>(persist_alloc(h, s.size() + 1));
  memcpy(p, s.c_str(), s.size() + 1);
  return p;
}

void build(persist_heap_t *h) {
  persist::heap_scope scope(h);
  auto *g = static_cast<Graph *>(persist_heap_root(h, "graph", sizeof(Graph)));
  ASSERT_NE(nullptr, g);
  Node **tail = &g->list;
  for (long i = 0; i < kN; ++i) {
    auto *n = static_cast<Node *>(persist_alloc(h, sizeof(Node)));
    n->value = i, n->next = nullptr;
    *tail = n, tail = &n->next;
  }
  for (long i = 0; i < kN; ++i) g->tree = insert(h, g->tree, (i * 7919) % kN);
  for (long i = 0; i < kN; ++i) {
    std::string k = "key" + std::to_string(i);
    auto *e = static_cast<Entry *>(persist_alloc(h, sizeof(Entry)));
    e->key = dup(h, k), e->value = dup(h, "value of " + k);
    size_t b = std::hash<std::string>{}(k) % 64;
    e->next = g->buckets[b], g->buckets[b] = e;
  }
  for (long i = 0; i < 4; ++i) g->shapes[i] = new (persist_alloc(h, sizeof(Rect))) Rect(i + 1, 10);
  g->map = new (persist_alloc(h, sizeof(Map))) Map();
  g->umap = new (persist_alloc(h, sizeof(UMap))) UMap();
  for (long i = 0; i < 500; ++i) {
    (*g->map)[i] = persist::string("map value number ") + persist::string(std::to_string(i).c_str());
    (*g->umap)[persist::string("umap key number ") + persist::string(std::to_string(i).c_str())] = i;
  }
}

void verify(persist_heap_t *h, const char *when) {
  SCOPED_TRACE(when);
  persist::heap_scope scope(h);
  auto *g = static_cast<Graph *>(persist_heap_root_get(h, "graph", nullptr));
  ASSERT_NE(nullptr, g);
  long i = 0;
  for (Node *n = g->list; n; n = n->next, ++i) ASSERT_EQ(i, n->value);
  EXPECT_EQ(kN, i);
  long count = 0;
  EXPECT_EQ(kN * (kN - 1) / 2, tree_sum(g->tree, &count));
  EXPECT_EQ(kN, count);
  long found = 0;
  for (auto *b : g->buckets)
    for (Entry *e = b; e; e = e->next, ++found) ASSERT_EQ(std::string("value of ") + e->key, e->value);
  EXPECT_EQ(kN, found);
  for (long k = 0; k < 4; ++k) EXPECT_EQ((k + 1) * 10, g->shapes[k]->area());  // virtual calls
  ASSERT_EQ(500u, g->map->size());
  ASSERT_EQ(500u, g->umap->size());
  for (long k = 0; k < 500; k += 7) {
    EXPECT_EQ(persist::string("map value number ") + persist::string(std::to_string(k).c_str()), g->map->at(k));
    EXPECT_EQ(k, g->umap->at(persist::string("umap key number ") + persist::string(std::to_string(k).c_str())));
  }
  char msg[512];
  EXPECT_EQ(0, persist_heap_check(h, msg, sizeof msg)) << msg;
}

persist_heap_t *open_at(const std::string &path, uintptr_t addr, unsigned relocate, int *rc) {
  persist_heap_t *h = nullptr;
  persist_options_t o{addr, 0, 0, relocate};
  *rc = persist_open(path.c_str(), &o, &h);
  return h;
}

class RelocateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = tmp_.file("graph.heap");
    persist_heap_t *h = nullptr;
    persist_options_t o{kAddr, 0, PERSIST_OPEN_CREATE, 0};
    ASSERT_EQ(0, persist_open(path_.c_str(), &o, &h));
    build(h);
    verify(h, "as built");
    ASSERT_EQ(0, persist_close(h));
  }
  ptest::TempDir tmp_;
  std::string path_;
};

TEST_F(RelocateTest, SameAddressRewritesNothing) {
  int rc;
  persist_heap_t *h = open_at(path_, 0, PERSIST_RELOCATE_REWRITE, &rc);
  ASSERT_EQ(0, rc);
  EXPECT_EQ(kAddr, reinterpret_cast<uintptr_t>(persist_heap_base(h)));
  verify(h, "same address");
  persist_close(h);
}

TEST_F(RelocateTest, FarAddressAndBack) {
  int rc;
  persist_heap_t *h = open_at(path_, 0x5a0000000000ull, PERSIST_RELOCATE_REWRITE, &rc);
  ASSERT_EQ(0, rc);
  EXPECT_EQ(0x5a0000000000ull, reinterpret_cast<uintptr_t>(persist_heap_base(h)));
  EXPECT_GT(persist_relocated_words(h), uint64_t(5 * kN));
  verify(h, "far address");
  persist_close(h);
  h = open_at(path_, 0, PERSIST_RELOCATE_REWRITE, &rc);  // stays where it moved to
  ASSERT_EQ(0, rc);
  EXPECT_EQ(0x5a0000000000ull, reinterpret_cast<uintptr_t>(persist_heap_base(h)));
  EXPECT_EQ(0u, persist_relocated_words(h));
  verify(h, "reopened after the move");
  persist_close(h);
  h = open_at(path_, kAddr, PERSIST_RELOCATE_REWRITE, &rc);  // and back
  ASSERT_EQ(0, rc);
  verify(h, "moved back");
  persist_close(h);
}

TEST_F(RelocateTest, OccupiedRangeMovesOrRefusesOrReadsOnly) {
  void *blocker = mmap(reinterpret_cast<void *>(kAddr + (1 << 20)), 4096, PROT_READ,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
  ASSERT_EQ(reinterpret_cast<void *>(kAddr + (1 << 20)), blocker);
  int rc;
  EXPECT_EQ(nullptr, open_at(path_, 0, PERSIST_RELOCATE_REFUSE, &rc));
  EXPECT_EQ(PERSIST_E_ADDRINUSE, rc);

  persist_heap_t *h = open_at(path_, 0, PERSIST_RELOCATE_READONLY, &rc);
  ASSERT_EQ(0, rc);
  auto *g = static_cast<Graph *>(persist_heap_root_get(h, "graph", nullptr));
  ASSERT_NE(nullptr, g);
  auto *first = static_cast<Node *>(persist_translate(h, g->list));
  ASSERT_NE(nullptr, first);
  EXPECT_EQ(0, first->value);
  EXPECT_EQ(1, static_cast<Node *>(persist_translate(h, first->next))->value);
  EXPECT_EQ(nullptr, persist_alloc(h, 16));  // read-only
  EXPECT_EQ(EROFS, errno);
  persist_close(h);

  h = open_at(path_, 0, PERSIST_RELOCATE_REWRITE, &rc);
  ASSERT_EQ(0, rc);
  uintptr_t base = reinterpret_cast<uintptr_t>(persist_heap_base(h));
  EXPECT_TRUE(base >= kAddr + (64ull << 30) || base + (64ull << 30) <= kAddr) << std::hex << base;
  verify(h, "moved away from an occupied range");
  persist_close(h);
  munmap(blocker, 4096);
}

}  // namespace
