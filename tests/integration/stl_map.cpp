// stl_map.cpp — an aware C++ program under the preload shim, using the default allocator:
// new/delete, std::map, std::string (short ones in the SSO buffer, long ones on the heap) and
// std::vector. A heap-allocated std::map is named by the root "map" (persist_root_set) and by a
// pointer in the root "state"; the next run finds it and checks every entry.
//
// usage: stl_map RUN   (RUN = 1, 2, ...: the number of this run on this heap file)
// Run r adds 500 entries "r<r>-k<i>" and erases those of run r-2, so after run r the map holds the
// entries of runs r-1 and r. Exit: 0 ok, 2 setup problem, 3 wrong contents.
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "persist.h"

namespace {

using Map = std::map<std::string, std::vector<std::string>>;
constexpr uint64_t kMagic = 0x53544c4d41503031ull;  // "STLMAP01"
constexpr int kPerRun = 500;

struct State {
  uint64_t magic;
  uint64_t runs;
  Map *map;
  std::vector<long> *history;  // run numbers, one per run
  std::string *journal;        // "r1;r2;..." grown by += every run
};

std::string key(long run, int i) {
  return "r" + std::to_string(run) + "-k" + std::to_string(i);
}

std::vector<std::string> value(long run, int i) {
  std::vector<std::string> v;
  for (int k = 0; k < i % 7; ++k) {
    std::string s = "v" + std::to_string(run) + "." + std::to_string(i) + "." + std::to_string(k);
    if (k % 2) s += std::string(40 + k, static_cast<char>('a' + (i + k) % 26));  // off SSO
    v.push_back(s);
  }
  return v;
}

int fail(const char *what) {
  fprintf(stderr, "stl_map: %s\n", what);
  return 3;
}

// The map after run r holds exactly the entries of runs max(1, r-1)..r.
int check(const State *st, long r) {
  const Map &m = *st->map;
  size_t expect = 0;
  for (long j = (r > 1 ? r - 1 : 1); j <= r; ++j) {
    for (int i = 0; i < kPerRun; ++i) {
      auto it = m.find(key(j, i));
      if (it == m.end()) return fail(("missing " + key(j, i)).c_str());
      if (it->second != value(j, i)) return fail(("wrong value under " + key(j, i)).c_str());
    }
    expect += kPerRun;
  }
  if (m.size() != expect)
    return fail(("map holds " + std::to_string(m.size()) + " entries").c_str());
  // Iteration order is the key order: walk the tree, not just find().
  std::string prev;
  size_t n = 0;
  for (auto &kv : m) {
    if (n++ && !(prev < kv.first)) return fail("iteration out of order");
    prev = kv.first;
  }
  if (n != expect) return fail("iteration count differs from size()");
  if (st->history->size() != static_cast<size_t>(r)) return fail("history has the wrong length");
  std::string journal;
  for (long j = 1; j <= r; ++j) {
    if ((*st->history)[j - 1] != j) return fail("history entry wrong");
    journal += "r" + std::to_string(j) + ";";
  }
  if (*st->journal != journal) return fail(("journal is '" + *st->journal + "'").c_str());
  return 0;
}

}  // namespace

int main(int argc, char **argv) {
  if (argc < 2) return fprintf(stderr, "usage: stl_map RUN\n"), 2;
  long run = atol(argv[1]);
  persist_heap_t *heap = persist_default_heap();
  persist_stats_t hs;
  if (!heap || persist_heap_stats(heap, &hs) != 0 || !hs.persistent)
    return fprintf(stderr, "stl_map: no persistent default heap (shim not preloaded?)\n"), 2;

  auto *st = static_cast<State *>(persist_root("state", sizeof(State)));
  if (!st) return fprintf(stderr, "stl_map: persist_root: %s\n", strerror(errno)), 2;
  if (st->magic == 0) {
    if (run != 1) return fail("state root is new, but this is not the first run");
    st->magic = kMagic;
    st->map = new Map;
    st->history = new std::vector<long>;
    st->journal = new std::string;
    if (!persist_contains(heap, st->map) || !persist_contains(heap, st->history))
      return fail("operator new did not allocate from the persistent heap");
    if (persist_root_set("map", st->map) != 0) return fail("persist_root_set(map) failed");
  } else {
    if (st->magic != kMagic) return fail("state root has the wrong magic");
    if (static_cast<long>(st->runs) != run - 1) {
      fprintf(stderr, "stl_map: state says %" PRIu64 " runs, this is run %ld\n", st->runs, run);
      return 3;
    }
    size_t sz = 0;
    void *m = persist_root_get("map", &sz);
    if (m != st->map) return fail("root 'map' does not point at the map");
    if (sz < sizeof(Map)) return fail("root 'map' records a size smaller than a std::map");
    if (int rc = check(st, run - 1)) return rc;
  }

  // This run's changes: add run's entries, drop those of run-2, grow the vector and the string.
  Map &m = *st->map;
  for (int i = 0; i < kPerRun; ++i) m[key(run, i)] = value(run, i);
  if (run > 2)
    for (int i = 0; i < kPerRun; ++i) m.erase(key(run - 2, i));
  st->history->push_back(run);
  *st->journal += "r" + std::to_string(run) + ";";
  // Churn that must leave no trace: temporary containers built and destroyed.
  for (int i = 0; i < 200; ++i) {
    std::vector<std::string> tmp(50, std::string(100, 'x'));
    std::map<int, std::string> tmap;
    for (int k = 0; k < 20; ++k) tmap[k] = std::to_string(k) + std::string(30, 'y');
  }
  st->runs = run;
  if (int rc = check(st, run)) return rc;
  printf("stl_map run %ld: %zu entries, journal %zu bytes\n", run, m.size(), st->journal->size());
  return 0;
}
