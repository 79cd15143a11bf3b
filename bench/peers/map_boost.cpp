// map_boost — the map task on Boost.Interprocess: a managed_mapped_file of `BENCH_POOL_MIB` MiB
// (default 1024; Boost's segments do not grow on their own), the header and the bucket array
// are named objects, the records come from the segment's allocator, links are offset_ptr (the
// file may map at another address each time).
#include <unistd.h>

#include <boost/interprocess/managed_mapped_file.hpp>
#include <boost/interprocess/offset_ptr.hpp>

#include "map_common.h"

namespace bip = boost::interprocess;

namespace {

struct Node {
  bip::offset_ptr<Node> next;
  uint64_t key, value[2];
};

struct Header {
  uint64_t n, bits;
  bip::offset_ptr<bip::offset_ptr<Node>> buckets;
};

}  // namespace

int main(int argc, char **argv) {
  mapbench::Params p = mapbench::parse(argc, argv);
  const char *pool = getenv("BENCH_POOL_MIB");
  size_t pool_bytes = size_t(pool ? atoi(pool) : 1024) << 20;
  if (!strcmp(p.mode, "build")) {
    unlink(p.file);
    double t0 = bench::now(), t1, t2;
    {
      bip::managed_mapped_file seg(bip::create_only, p.file, pool_bytes);
      Header *hd = seg.construct<Header>("map")();
      hd->bits = mapbench::bucket_bits(p.n);
      hd->buckets = seg.construct<bip::offset_ptr<Node>>("buckets")[uint64_t{1} << hd->bits](nullptr);
      bip::offset_ptr<Node> *b = hd->buckets.get();
      t1 = bench::now();
      for (uint64_t i = 0; i < p.n; ++i) {
        auto *nd = static_cast<Node *>(seg.allocate(sizeof(Node)));
        uint64_t k = mapbench::key_of(i);
        nd->key = k, nd->value[0] = mapbench::value_of(k, 0), nd->value[1] = mapbench::value_of(k, 1);
        bip::offset_ptr<Node> &slot = b[mapbench::bucket_of(k, hd->bits)];
        new (&nd->next) bip::offset_ptr<Node>(slot);
        slot = nd;
      }
      hd->n = p.n;
      t2 = bench::now();
    }  // the destructor unmaps: the close
    double t3 = bench::now();
    bench::result("create_s", t1 - t0), bench::result("insert_s", t2 - t1), bench::result("close_s", t3 - t2);
    return 0;
  }
  double t0 = bench::now(), t1, t2;
  uint64_t found = 0;
  {
    bip::managed_mapped_file seg(bip::open_only, p.file);
    Header *hd = seg.find<Header>("map").first;
    bip::offset_ptr<Node> *b = hd ? hd->buckets.get() : nullptr;
    t1 = bench::now();
    for (uint64_t i = 0; b && i < p.n; ++i) {
      uint64_t k = mapbench::key_of(i);
      for (Node *nd = b[mapbench::bucket_of(k, hd->bits)].get(); nd; nd = nd->next.get())
        if (nd->key == k) {
          found += nd->value[0] == mapbench::value_of(k, 0) && nd->value[1] == mapbench::value_of(k, 1);
          break;
        }
    }
    t2 = bench::now();
  }
  double t3 = bench::now();
  bench::result("open_s", t1 - t0), bench::result("lookup_s", t2 - t1), bench::result("close_s", t3 - t2);
  return mapbench::verdict("map_boost", p.n, found);
}
