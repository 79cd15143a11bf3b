// cpp_program.cpp — an aware C++ program under the preload shim using persist.hpp on the default
// heap: a persist::root<State> holding a std::map<persist::string, std::vector<int,
// persist::allocator<int>>, ...> and a persist::ptr-linked list, built in run 1 and checked and
// extended in every later run. Each run also leaves 16 MiB of unreachable blocks (and an
// unreachable ptr-linked chain): the collection the shim runs at the next open must free them
// while keeping everything the root reaches.
//
// usage: cpp_program RUN   (RUN = 1, 2, ...: the number of this run on this heap file)
// Run r adds kPerRun map entries "r<r>-k<i>" and erases those of run r-2, and pushes kPerRun nodes
// on the list. Exit: 0 ok, 2 setup problem, 3 wrong contents.
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "persist.h"
#include "persist.hpp"

namespace {

constexpr int kPerRun = 1000;
constexpr uint64_t kGarbageBytes = uint64_t{16} << 20;

using IntVec = std::vector<int, persist::allocator<int>>;
using Map = std::map<persist::string, IntVec, std::less<persist::string>,
                     persist::allocator<std::pair<const persist::string, IntVec>>>;

struct Node {
  long run, i;
  persist::string label;
  persist::ptr<Node> next;
};

struct State {
  explicit State(long run) : created_in(run) {}
  long created_in;
  long runs = 0;
  Map map;
  persist::ptr<Node> list;  // newest first
  std::vector<long, persist::offset_allocator<long>> history;
  uint64_t live_bytes_at_exit = 0;  // before this run's garbage
};

persist::string pstr(const std::string &s) {
  return persist::string(s.data(), s.size());
}
std::string key(long run, int i) {
  return "r" + std::to_string(run) + "-k" + std::to_string(i);
}
std::string label(long run, int i) {
  return "node " + std::to_string(run) + "/" + std::to_string(i) + std::string(i % 40, '.');
}
IntVec value(long run, int i) {
  IntVec v;
  for (int k = 0; k < i % 11; ++k) v.push_back(static_cast<int>(run * 100000 + i * 10 + k));
  return v;
}

int fail(const std::string &what) {
  fprintf(stderr, "cpp_program: %s\n", what.c_str());
  return 3;
}

// After run r: map entries of runs max(1, r-1)..r; r * kPerRun list nodes, newest first.
int check(const State &st, long r) {
  if (st.created_in != 1)
    return fail("the state was constructed again in run " + std::to_string(st.created_in));
  size_t expect = 0;
  for (long j = (r > 1 ? r - 1 : 1); j <= r; ++j, expect += kPerRun)
    for (int i = 0; i < kPerRun; ++i) {
      auto it = st.map.find(pstr(key(j, i)));
      if (it == st.map.end()) return fail("missing " + key(j, i));
      if (it->second != value(j, i)) return fail("wrong value under " + key(j, i));
    }
  if (st.map.size() != expect) return fail("the map holds " + std::to_string(st.map.size()));
  const persist::string *prev = nullptr;
  for (auto &kv : st.map) {
    if (prev && !(*prev < kv.first)) return fail("map iteration out of order");
    prev = &kv.first;
  }
  long j = r, n = 0;
  int i = kPerRun - 1;
  for (const Node *p = st.list; p; p = p->next, ++n) {
    if (p->run != j || p->i != i) return fail("list node " + std::to_string(n) + " out of place");
    if (std::string(p->label.data(), p->label.size()) != label(j, i)) return fail("bad label");
    if (--i < 0) i = kPerRun - 1, --j;
  }
  if (n != r * kPerRun) return fail("the list holds " + std::to_string(n) + " nodes");
  if (st.history.size() != static_cast<size_t>(r)) return fail("history has the wrong length");
  for (long k = 0; k < r; ++k)
    if (st.history[static_cast<size_t>(k)] != k + 1) return fail("history entry wrong");
  return 0;
}

char *volatile g_sink;

}  // namespace

int main(int argc, char **argv) {
  if (argc < 2) return fprintf(stderr, "usage: cpp_program RUN\n"), 2;
  const long run = atol(argv[1]);
  persist_heap_t *heap = persist_default_heap();
  persist_stats_t hs{};
  if (!heap || persist_heap_stats(heap, &hs) != 0 || !hs.persistent)
    return fprintf(stderr, "cpp_program: no persistent default heap (shim not preloaded?)\n"), 2;
  if (persist::current_heap() != heap) return fail("the current heap is not the default heap");

  State &st = persist::root<State>("cpp-state", run);
  if (!persist_contains(heap, &st)) return fail("the root is not in the heap");
  if (st.runs != run - 1)
    return fail("state says " + std::to_string(st.runs) + " runs, this is run " +
                std::to_string(run));
  if (run > 1) {
    if (int rc = check(st, run - 1)) return rc;
    // The open-time collection freed the previous run's garbage (and kept all of the above).
    if (hs.live_bytes > st.live_bytes_at_exit + kGarbageBytes / 2)
      return fail("the previous run's garbage is still live: " + std::to_string(hs.live_bytes) +
                  " bytes, " + std::to_string(st.live_bytes_at_exit) + " at its exit");
  }
  try {
    persist::root<Map>("cpp-state");
    return fail("the root opened as another type");
  } catch (const persist::type_error &) {
  }

  for (int i = 0; i < kPerRun; ++i) st.map[pstr(key(run, i))] = value(run, i);
  if (run > 2)
    for (int i = 0; i < kPerRun; ++i) st.map.erase(pstr(key(run - 2, i)));
  for (int i = 0; i < kPerRun; ++i) {
    Node *n = persist::make<Node>();
    n->run = run, n->i = i;
    n->label = pstr(label(run, i));
    n->next = st.list;
    st.list = n;
  }
  st.history.push_back(run);
  st.runs = run;
  if (int rc = check(st, run)) return rc;

  if (persist_heap_stats(heap, &hs) != 0) return fail("persist_heap_stats failed");
  st.live_bytes_at_exit = hs.live_bytes;
  // Garbage: blocks nothing in the heap points at (the global below is not a root).
  for (uint64_t b = 0; b < kGarbageBytes; b += 1 << 20) {
    g_sink = new char[1 << 20];
    memset(g_sink, 'g', 1 << 20);
  }
  persist::ptr<Node> chain;
  for (int i = 0; i < 100; ++i) {
    Node *n = persist::make<Node>();
    n->next = chain;
    chain = n;
  }
  printf("cpp_program run %ld: %zu entries, %ld nodes, %" PRIu64 " live bytes\n", run,
         st.map.size(), run * kPerRun, st.live_bytes_at_exit);
  return 0;
}
