// map_persist — the map task on libpersist through its heap-handle API: the header is a root,
// the buckets and the records are plain persist_alloc blocks linked by raw pointers (the heap
// opens at the address it was created at, so raw pointers stay valid).
#include <persist.h>
#include <unistd.h>

#include "../src/persist_util.h"
#include "map_common.h"

namespace {

struct Node {
  Node *next;
  uint64_t key, value[2];
};

struct Header {
  uint64_t n, bits;
  Node **buckets;
};

}  // namespace

int main(int argc, char **argv) {
  mapbench::Params p = mapbench::parse(argc, argv);
  if (!strcmp(p.mode, "build")) {
    unlink(p.file);
    double t0 = bench::now();
    persist_heap_t *h = bench::open_or_die(p.file, PERSIST_OPEN_CREATE);
    auto *hd = static_cast<Header *>(persist_heap_root(h, "map", sizeof(Header)));
    hd->bits = mapbench::bucket_bits(p.n);
    hd->buckets = static_cast<Node **>(persist_calloc(h, uint64_t{1} << hd->bits, sizeof(Node *)));
    double t1 = bench::now();
    for (uint64_t i = 0; i < p.n; ++i) {
      auto *nd = static_cast<Node *>(persist_alloc(h, sizeof(Node)));
      uint64_t k = mapbench::key_of(i);
      nd->key = k, nd->value[0] = mapbench::value_of(k, 0), nd->value[1] = mapbench::value_of(k, 1);
      Node **b = &hd->buckets[mapbench::bucket_of(k, hd->bits)];
      nd->next = *b;
      *b = nd;
    }
    hd->n = p.n;
    double t2 = bench::now();
    persist_close(h);
    double t3 = bench::now();
    bench::result("create_s", t1 - t0), bench::result("insert_s", t2 - t1), bench::result("close_s", t3 - t2);
    return 0;
  }
  double t0 = bench::now();
  persist_heap_t *h = bench::open_or_die(p.file, 0);
  auto *hd = static_cast<Header *>(persist_heap_root_get(h, "map", nullptr));
  double t1 = bench::now();
  uint64_t found = 0;
  for (uint64_t i = 0; hd && i < p.n; ++i) {
    uint64_t k = mapbench::key_of(i);
    for (Node *nd = hd->buckets[mapbench::bucket_of(k, hd->bits)]; nd; nd = nd->next)
      if (nd->key == k) {
        found += nd->value[0] == mapbench::value_of(k, 0) && nd->value[1] == mapbench::value_of(k, 1);
        break;
      }
  }
  double t2 = bench::now();
  persist_close(h);
  double t3 = bench::now();
  bench::result("open_s", t1 - t0), bench::result("lookup_s", t2 - t1), bench::result("close_s", t3 - t2);
  return mapbench::verdict("map_persist", p.n, found);
}
