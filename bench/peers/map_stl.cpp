// map_stl — the map task on libpersist through its C++ API: a std::unordered_map with
// persist::allocator, found again through a typed root (persist::root<Map>), all on a heap handle
// made current with persist::heap_scope. The standard container's nodes link with raw pointers,
// which stay valid because the heap opens where it was created (or are rewritten if it moves).
#include <persist.hpp>
#include <unistd.h>

#include <array>
#include <unordered_map>

#include "../src/persist_util.h"
#include "map_common.h"

namespace {

using Value = std::array<uint64_t, 2>;
using Map = std::unordered_map<uint64_t, Value, std::hash<uint64_t>, std::equal_to<uint64_t>,
                               persist::allocator<std::pair<const uint64_t, Value>>>;

}  // namespace

int main(int argc, char **argv) {
  mapbench::Params p = mapbench::parse(argc, argv);
  if (!strcmp(p.mode, "build")) {
    unlink(p.file);
    double t0 = bench::now();
    persist_heap_t *h = bench::open_or_die(p.file, PERSIST_OPEN_CREATE);
    double t1, t2;
    {
      persist::heap_scope scope(h);
      Map &m = persist::root<Map>(h, "map");
      m.reserve(p.n);
      t1 = bench::now();
      for (uint64_t i = 0; i < p.n; ++i) {
        uint64_t k = mapbench::key_of(i);
        m.emplace(k, Value{mapbench::value_of(k, 0), mapbench::value_of(k, 1)});
      }
      t2 = bench::now();
    }
    persist_close(h);
    double t3 = bench::now();
    bench::result("create_s", t1 - t0), bench::result("insert_s", t2 - t1), bench::result("close_s", t3 - t2);
    return 0;
  }
  double t0 = bench::now();
  persist_heap_t *h = bench::open_or_die(p.file, 0);
  uint64_t found = 0;
  double t1, t2;
  {
    persist::heap_scope scope(h);
    Map &m = persist::root<Map>(h, "map");
    t1 = bench::now();
    for (uint64_t i = 0; i < p.n; ++i) {
      uint64_t k = mapbench::key_of(i);
      auto it = m.find(k);
      found += it != m.end() && it->second[0] == mapbench::value_of(k, 0) && it->second[1] == mapbench::value_of(k, 1);
    }
    t2 = bench::now();
  }
  persist_close(h);
  double t3 = bench::now();
  bench::result("open_s", t1 - t0), bench::result("lookup_s", t2 - t1), bench::result("close_s", t3 - t2);
  return mapbench::verdict("map_stl", p.n, found);
}
