// map_pmemobj — the map task on PMDK's libpmemobj, through its atomic API: each record is
// allocated with pmemobj_alloc straight into its bucket slot (the constructor links the old
// chain head and persists the record; the slot is published atomically) — PMDK's fastest
// crash-consistent way to add a node, the same guarantee libpersist's plain malloc+link gives
// against a process crash. Pool: `pool_mib` MiB (PMDK pools do not grow), default 1024.
// On a file system that is not persistent memory (tmpfs, ext4) PMDK makes each persist an msync;
// PMEM_IS_PMEM_FORCE=1 makes it flush cache lines instead (what it would do on real pmem).
#include <libpmemobj.h>
#include <unistd.h>

#include "map_common.h"

namespace {

struct Node {
  PMEMoid next;
  uint64_t key, value[2];
};

struct Root {
  uint64_t n, bits;
  PMEMoid buckets;  // array of PMEMoid
};

struct Ctor {
  PMEMoid head;
  uint64_t key;
};

int construct(PMEMobjpool *pop, void *ptr, void *arg) {
  auto *nd = static_cast<Node *>(ptr);
  auto *c = static_cast<Ctor *>(arg);
  nd->next = c->head;
  nd->key = c->key, nd->value[0] = mapbench::value_of(c->key, 0), nd->value[1] = mapbench::value_of(c->key, 1);
  pmemobj_persist(pop, nd, sizeof *nd);
  return 0;
}

const char *kLayout = "bench-map";

}  // namespace

int main(int argc, char **argv) {
  mapbench::Params p = mapbench::parse(argc, argv);
  const char *pool = getenv("BENCH_POOL_MIB");
  size_t pool_bytes = size_t(pool ? atoi(pool) : 1024) << 20;
  if (!strcmp(p.mode, "build")) {
    unlink(p.file);
    double t0 = bench::now();
    PMEMobjpool *pop = pmemobj_create(p.file, kLayout, pool_bytes, 0600);
    if (!pop) {
      fprintf(stderr, "pmemobj_create %s: %s\n", p.file, pmemobj_errormsg());
      return 1;
    }
    auto *root = static_cast<Root *>(pmemobj_direct(pmemobj_root(pop, sizeof(Root))));
    root->bits = mapbench::bucket_bits(p.n);
    pmemobj_persist(pop, &root->bits, sizeof root->bits);
    if (pmemobj_zalloc(pop, &root->buckets, sizeof(PMEMoid) << root->bits, 1)) {
      fprintf(stderr, "pmemobj_zalloc: %s\n", pmemobj_errormsg());
      return 1;
    }
    auto *buckets = static_cast<PMEMoid *>(pmemobj_direct(root->buckets));
    double t1 = bench::now();
    for (uint64_t i = 0; i < p.n; ++i) {
      uint64_t k = mapbench::key_of(i);
      PMEMoid *slot = &buckets[mapbench::bucket_of(k, root->bits)];
      Ctor c{*slot, k};
      if (pmemobj_alloc(pop, slot, sizeof(Node), 2, construct, &c)) {
        fprintf(stderr, "pmemobj_alloc: %s\n", pmemobj_errormsg());
        return 1;
      }
    }
    root->n = p.n;
    pmemobj_persist(pop, &root->n, sizeof root->n);
    double t2 = bench::now();
    pmemobj_close(pop);
    double t3 = bench::now();
    bench::result("create_s", t1 - t0), bench::result("insert_s", t2 - t1), bench::result("close_s", t3 - t2);
    return 0;
  }
  double t0 = bench::now();
  PMEMobjpool *pop = pmemobj_open(p.file, kLayout);
  if (!pop) {
    fprintf(stderr, "pmemobj_open %s: %s\n", p.file, pmemobj_errormsg());
    return 1;
  }
  auto *root = static_cast<Root *>(pmemobj_direct(pmemobj_root(pop, sizeof(Root))));
  auto *buckets = static_cast<PMEMoid *>(pmemobj_direct(root->buckets));
  double t1 = bench::now();
  uint64_t found = 0;
  for (uint64_t i = 0; i < p.n; ++i) {
    uint64_t k = mapbench::key_of(i);
    for (PMEMoid o = buckets[mapbench::bucket_of(k, root->bits)]; !OID_IS_NULL(o);) {
      auto *nd = static_cast<Node *>(pmemobj_direct(o));
      if (nd->key == k) {
        found += nd->value[0] == mapbench::value_of(k, 0) && nd->value[1] == mapbench::value_of(k, 1);
        break;
      }
      o = nd->next;
    }
  }
  double t2 = bench::now();
  pmemobj_close(pop);
  double t3 = bench::now();
  bench::result("open_s", t1 - t0), bench::result("lookup_s", t2 - t1), bench::result("close_s", t3 - t2);
  return mapbench::verdict("map_pmemobj", p.n, found);
}
