// gc_test.cpp — the collector (persist_heap_gc) and the C++ API: everything reachable from a
// root<T> survives a collection, whether it is linked by persist::ptr (in the root, in elements,
// inside container nodes), by atomic_ptr, by containers with persist::allocator (raw pointers) or
// with persist::offset_allocator (self-relative pointers); what is unreachable — including a
// ptr-linked cycle — is freed, exactly that.
#include <list>
#include <map>
#include <unordered_map>
#include <vector>

#include "cpptest.h"

namespace {

using persist::ptr;
template <class T>
using A = persist::allocator<T>;
template <class T>
using OA = persist::offset_allocator<T>;

struct Payload {
  long id;
  char fill[200];  // 208 bytes: a size no container block of this test has
  ptr<Payload> next;
};

struct Node {
  long id;
  ptr<Node> next;
  ptr<Payload> payload;  // each node owns a payload, reachable only through this ptr
};

struct ANode {
  long id;
  persist::atomic_ptr<ANode> next;
};

using PayloadMap =
    std::map<long, ptr<Payload>, std::less<long>, A<std::pair<const long, ptr<Payload>>>>;
using NameMap = std::unordered_map<persist::string, persist::string, std::hash<persist::string>,
                                   std::equal_to<persist::string>,
                                   A<std::pair<const persist::string, persist::string>>>;

struct Graph {
  ptr<Node> list;                                 // a ptr-linked list in the root
  persist::atomic_ptr<ANode> stack;               // an atomic_ptr-linked list
  std::vector<ptr<Payload>, A<ptr<Payload>>> vp;  // ptrs in a raw-pointer container's array
  PayloadMap by_id;                               // ptrs inside map nodes
  std::vector<long, OA<long>> ovec;               // a container holding self-relative pointers
  std::list<ptr<Payload>, OA<ptr<Payload>>> olist;
  NameMap names;
  persist::string text;
};

constexpr long kN = 400;

persist::string pstr(const std::string &s) {
  return persist::string(s.data(), s.size());
}
std::string name(long i) {
  return "name-" + std::to_string(i) + std::string(30, 'n');
}

Payload *payload(long id) {
  Payload *p = persist::make<Payload>();
  p->id = id;
  for (char &c : p->fill) c = static_cast<char>('A' + id % 26);
  return p;
}

bool payload_ok(const Payload *p, long id) {
  if (!p || p->id != id) return false;
  for (char c : p->fill)
    if (c != static_cast<char>('A' + id % 26)) return false;
  return true;
}

class GcTest : public ptest::HeapTest {
 protected:
  void build(Graph &g) {
    persist::heap_scope scope(h_);
    ptr<Node> *link = &g.list;
    for (long i = 0; i < kN; ++i) {
      Node *n = persist::make<Node>();
      n->id = i;
      n->payload = payload(1000 + i);
      *link = n;
      link = &n->next;
      ANode *a = persist::make<ANode>();
      a->id = i;
      a->next.store(g.stack.load());
      g.stack.store(a);
      g.vp.push_back(payload(2000 + i));
      g.by_id.emplace(i, payload(3000 + i));
      g.ovec.push_back(i * 3);
      g.olist.push_back(payload(4000 + i));
      g.names.emplace(pstr(name(i)), pstr(name(i * 2)));
      g.text += name(i);
    }
    // A payload chain hanging off one map entry: reachable only ptr to ptr.
    Payload *tail = g.by_id[0];
    for (long i = 0; i < 50; ++i) tail = (tail->next = payload(5000 + i));
  }
  // Blocks no root reaches: payloads, a ptr-linked cycle, and an abandoned container's storage.
  // Returns how many blocks.
  uint64_t garbage() {
    persist::heap_scope scope(h_);
    uint64_t blocks = 0;
    for (long i = 0; i < 300; ++i, ++blocks) payload(-1);
    Payload *first = payload(-2), *p = first;
    ++blocks;
    for (int i = 0; i < 99; ++i, ++blocks) p = (p->next = payload(-3));
    p->next = first;  // a cycle: only reachability counts
    auto *orphan = persist::make<std::vector<ptr<Payload>, A<ptr<Payload>>>>();
    orphan->reserve(10);
    orphan->push_back(first);
    blocks += 2;  // the vector and its array
    return blocks;
  }
  void verify(const Graph &g) {
    long i = 0;
    for (const Node *n = g.list; n; n = n->next, ++i) {
      ASSERT_EQ(i, n->id);
      ASSERT_TRUE(payload_ok(n->payload, 1000 + i)) << i;
    }
    ASSERT_EQ(kN, i);
    i = kN;
    for (const ANode *a = g.stack.load(); a; a = a->next.load()) ASSERT_EQ(--i, a->id);
    ASSERT_EQ(0, i);
    ASSERT_EQ(static_cast<size_t>(kN), g.vp.size());
    ASSERT_EQ(static_cast<size_t>(kN), g.by_id.size());
    ASSERT_EQ(static_cast<size_t>(kN), g.ovec.size());
    ASSERT_EQ(static_cast<size_t>(kN), g.olist.size());
    ASSERT_EQ(static_cast<size_t>(kN), g.names.size());
    auto ol = g.olist.begin();
    std::string text;
    persist::heap_scope scope(h_);  // for the temporary keys
    for (i = 0; i < kN; ++i, ++ol) {
      ASSERT_TRUE(payload_ok(g.vp[static_cast<size_t>(i)].get(), 2000 + i));
      ASSERT_TRUE(payload_ok(g.by_id.at(i).get(), 3000 + i));
      ASSERT_EQ(i * 3, g.ovec[static_cast<size_t>(i)]);
      ASSERT_TRUE(payload_ok(ol->get(), 4000 + i));
      auto it = g.names.find(pstr(name(i)));
      ASSERT_NE(g.names.end(), it);
      ASSERT_EQ(name(i * 2), std::string(it->second.data(), it->second.size()));
      text += name(i);
    }
    ASSERT_EQ(text, std::string(g.text.data(), g.text.size()));
    const Payload *p = g.by_id.at(0)->next;
    for (i = 0; i < 50; ++i, p = p->next) ASSERT_TRUE(payload_ok(p, 5000 + i));
    ASSERT_EQ(nullptr, p);
  }
  uint64_t gc(bool dry_run = false) {
    uint64_t freed = ~uint64_t{0};
    int rc = persist_heap_gc(h_, dry_run, &freed);
    EXPECT_EQ(0, rc) << ptest::err_text(rc);
    return freed;
  }
};

// The collector runs right after an open (as the shim runs it, and as persist.h asks: with no
// volatile state of this session yet), so every collection here follows a reopen.
TEST_F(GcTest, KeepsWhatARootReachesFreesTheRest) {
  Graph &g = persist::root<Graph>(h_, "graph");
  build(g);
  ASSERT_NO_FATAL_FAILURE(verify(g));
  const uint64_t reachable = live_blocks();
  const uint64_t junk = garbage();
  ASSERT_EQ(reachable + junk, live_blocks());

  reopen();
  const uint64_t would = gc(true);
  EXPECT_EQ(reachable + junk, live_blocks()) << "a dry run frees nothing";
  const uint64_t freed = gc();
  EXPECT_EQ(would, freed);
  EXPECT_GE(freed, 400 * sizeof(Payload));
  EXPECT_EQ(reachable, live_blocks()) << "exactly the unreachable blocks were freed";
  ASSERT_HEAP_CONSISTENT(h_);
  ASSERT_NO_FATAL_FAILURE(verify(persist::root<Graph>(h_, "graph")));

  reopen();
  EXPECT_EQ(0u, gc()) << "nothing more to free";
  EXPECT_EQ(reachable, live_blocks());
  ASSERT_NO_FATAL_FAILURE(verify(persist::root<Graph>(h_, "graph")));

  // Unlink half of the ptr-linked list (without freeing it): the next collection takes that.
  Node *n = persist::root<Graph>(h_, "graph").list;
  for (long i = 1; i < kN / 2; ++i) n = n->next;
  n->next = nullptr;  // nodes kN/2.. and their payloads are unreachable now
  reopen();
  gc();
  EXPECT_EQ(reachable - kN, live_blocks()) << "kN/2 nodes and their kN/2 payloads were freed";
  ASSERT_HEAP_CONSISTENT(h_);
  long count = 0;
  for (const Node *m = persist::root<Graph>(h_, "graph").list; m; m = m->next, ++count)
    ASSERT_TRUE(payload_ok(m->payload, 1000 + count));
  EXPECT_EQ(kN / 2, count);
}

// A root object that is itself only ptrs: an all-offset structure, no raw pointer anywhere.
TEST_F(GcTest, OffsetOnlyStructure) {
  struct Table {
    ptr<ptr<Payload>> slots;  // an array of ptrs, designated by a ptr
    long n;
  };
  Table &t = persist::root<Table>(h_, "table");
  {
    persist::heap_scope scope(h_);
    t.n = 64;
    auto *slots = static_cast<ptr<Payload> *>(persist_calloc(h_, 64, sizeof(ptr<Payload>)));
    for (long i = 0; i < 64; ++i) slots[i] = payload(i);  // zeroed memory: valid null ptrs
    t.slots = slots;
    for (int i = 0; i < 10; ++i) payload(-1);
  }
  const uint64_t before = live_blocks();
  reopen();
  gc();
  EXPECT_EQ(before - 10, live_blocks());
  ASSERT_HEAP_CONSISTENT(h_);
  reopen();
  Table &again = persist::root<Table>(h_, "table");
  for (long i = 0; i < 64; ++i) ASSERT_TRUE(payload_ok(again.slots[i].get(), i));
}

}  // namespace
