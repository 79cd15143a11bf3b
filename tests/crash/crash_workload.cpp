// crash_workload — the program the crash tests kill. `run HEAP OPS SEED`: open (or create) the
// heap, collect leftovers, verify what earlier runs published, then do OPS deterministic operations
// on a list of checksummed records reached from the root "journal": append, unlink, replace
// (realloc by copy), extra roots set/removed, small, large and huge blocks; close. `verify HEAP`:
// open, verify, check. With CRASH_WORKLOAD_ADDR set an existing heap is first moved there (the
// relocation rewrites the records' raw pointers: extra roots hold raw pointers to records).
// A record is published when the single store linking it is done; after any
// crash every published record must be intact and the heap consistent.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include <unistd.h>

#include "persist.h"

namespace {

struct Record {
  uint64_t next;  // offset of the next record (0: end)
  uint64_t id;
  uint64_t len;   // payload bytes
  uint64_t sum;   // checksum of id, len and payload
  unsigned char data[];
};

struct Journal {
  uint64_t head;   // offset of the first record
  uint64_t next_id;
};

uint64_t checksum(const Record *r) {
  uint64_t h = 1469598103934665603ull ^ r->id ^ (r->len << 32);
  for (uint64_t i = 0; i < r->len; ++i) h = (h ^ r->data[i]) * 1099511628211ull;
  return h;
}

struct Rng {
  uint64_t s;
  uint64_t next() {
    s ^= s << 13, s ^= s >> 7, s ^= s << 17;
    return s;
  }
};

persist_heap_t *h;
Record *at(uint64_t off) { return static_cast<Record *>(PERSIST_PTR(h, off)); }

int fail(const char *what, uint64_t a = 0) {
  fprintf(stderr, "crash_workload: %s (%llu)\n", what, static_cast<unsigned long long>(a));
  return 2;
}

int verify(uint64_t *count) {
  size_t sz = 0;
  auto *j = static_cast<Journal *>(persist_heap_root_get(h, "journal", &sz));
  *count = 0;
  if (!j) return 0;  // nothing published yet
  uint64_t off = j->head, n = 0;
  while (off) {
    if (++n > 10000000) return fail("cycle in the record list");
    Record *r = at(off);
    if (persist_usable_size(h, r) < sizeof(Record) + r->len) return fail("record outgrew its block", off);
    if (checksum(r) != r->sum) return fail("record checksum mismatch", r->id);
    off = r->next;
  }
  for (int i = 0; i < 8; ++i) {  // extra roots point at records or nothing
    std::string tag = "extra" + std::to_string(i);
    Record *r = static_cast<Record *>(persist_heap_root_get(h, tag.c_str(), nullptr));
    if (r && checksum(r) != r->sum) return fail("extra root's record is damaged", i);
  }
  char msg[512];
  if (persist_heap_check(h, msg, sizeof msg) != 0) {
    fprintf(stderr, "crash_workload: check: %s\n", msg);
    return 2;
  }
  *count = n;
  return 0;
}

Record *make(Rng &rng, uint64_t id) {
  uint64_t pick = rng.next() % 100, len;
  if (pick < 80) len = rng.next() % 600;
  else if (pick < 97) len = 20000 + rng.next() % 200000;  // large
  else len = (5u << 20) + rng.next() % 100000;            // huge
  auto *r = static_cast<Record *>(persist_alloc(h, sizeof(Record) + len));
  if (!r) return nullptr;
  r->next = 0;
  r->id = id;
  r->len = len;
  for (uint64_t i = 0; i < len; ++i) r->data[i] = static_cast<unsigned char>(id * 31 + i);
  r->sum = checksum(r);
  return r;
}

int run(uint64_t ops, uint64_t seed) {
  uint64_t count;
  if (int rc = verify(&count)) return rc;
  auto *j = static_cast<Journal *>(persist_heap_root(h, "journal", sizeof(Journal)));
  if (!j) return fail("cannot create the journal root");
  Rng rng{seed * 2654435761u + j->next_id + 1};
  for (uint64_t op = 0; op < ops; ++op) {
    uint64_t kind = rng.next() % 10;
    if (kind < 5 || !j->head) {  // append: fill, then publish with one store
      Record *r = make(rng, j->next_id++);
      if (!r) return fail("allocation failed");
      r->next = j->head;
      __atomic_store_n(&j->head, PERSIST_OFFSET(h, r), __ATOMIC_RELEASE);
    } else if (kind < 7) {  // unlink the first record, then free it
      Record *r = at(j->head);
      __atomic_store_n(&j->head, r->next, __ATOMIC_RELEASE);
      for (int i = 0; i < 8; ++i) {  // an extra root may point at it: drop that first
        std::string tag = "extra" + std::to_string(i);
        if (persist_heap_root_get(h, tag.c_str(), nullptr) == r) persist_heap_root_remove(h, tag.c_str());
      }
      persist_free(h, r);
    } else if (kind < 9) {  // replace the first record by a grown copy
      Record *old = at(j->head);
      auto *r = static_cast<Record *>(persist_alloc(h, sizeof(Record) + old->len + 64));
      if (!r) return fail("allocation failed");
      memcpy(r, old, sizeof(Record) + old->len);
      for (int i = 0; i < 64; ++i) r->data[old->len + i] = static_cast<unsigned char>(i);
      r->len += 64;
      r->sum = checksum(r);
      __atomic_store_n(&j->head, PERSIST_OFFSET(h, r), __ATOMIC_RELEASE);
      for (int i = 0; i < 8; ++i) {
        std::string tag = "extra" + std::to_string(i);
        if (persist_heap_root_get(h, tag.c_str(), nullptr) == old) persist_heap_root_set(h, tag.c_str(), r);
      }
      persist_free(h, old);
    } else {  // point an extra root at the first record, or remove one
      std::string tag = "extra" + std::to_string(rng.next() % 8);
      if (rng.next() % 2) persist_heap_root_set(h, tag.c_str(), at(j->head));
      else persist_heap_root_remove(h, tag.c_str());
    }
  }
  return 0;
}

// ---- publish mode: every allocation is an allocate-and-publish, every free a free-and-clear ----
struct Slots {
  void *slot[64];
};

int verify_published(uint64_t *count) {
  auto *s = static_cast<Slots *>(persist_heap_root_get(h, "slots", nullptr));
  *count = 0;
  if (!s) return 0;
  for (auto *p : s->slot) {
    if (!p) continue;
    auto *r = static_cast<Record *>(p);
    // Linked and zero-filled (the crash came before it was filled in), or filled in completely.
    if (r->sum == 0 && r->id == 0 && r->len == 0) continue;
    if (r->sum != checksum(r)) return fail("published record damaged", r->id);
    ++*count;
  }
  char msg[512];
  if (persist_heap_check(h, msg, sizeof msg) != 0) {
    fprintf(stderr, "crash_workload: check: %s\n", msg);
    return 2;
  }
  return 0;
}

int run_published(uint64_t ops, uint64_t seed) {
  uint64_t count;
  if (int rc = verify_published(&count)) return rc;
  auto *s = static_cast<Slots *>(persist_heap_root(h, "slots", sizeof(Slots)));
  if (!s) return fail("cannot create the slots root");
  Rng rng{seed * 2654435761u + 7};
  for (uint64_t op = 0; op < ops; ++op) {
    void **slot = &s->slot[rng.next() % 64];
    if (*slot && rng.next() % 3 == 0) {
      if (persist_heap_free_clear(h, slot)) return fail("free_clear failed");
      continue;
    }
    if (*slot && persist_heap_free_clear(h, slot)) return fail("free_clear failed");
    uint64_t pick = rng.next() % 100;
    uint64_t len = pick < 85 ? rng.next() % 500 : pick < 98 ? 30000 + rng.next() % 100000 : (5u << 20);
    auto *r = static_cast<Record *>(persist_heap_alloc_publish(h, sizeof(Record) + len, slot));
    if (!r) return fail("alloc_publish failed");
    r->id = op + 1;
    r->len = len;
    for (uint64_t i = 0; i < len; ++i) r->data[i] = static_cast<unsigned char>(op * 7 + i);
    __atomic_store_n(&r->sum, checksum(r), __ATOMIC_RELEASE);  // filled in
  }
  return 0;
}

}  // namespace

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: crash_workload run HEAP OPS SEED | verify HEAP\n");
    return 64;
  }
  // A new heap is created at a fixed address; an existing one opens where it is, or moves to
  // CRASH_WORKLOAD_ADDR (the relocation phase of crash_points.sh).
  const char *move = getenv("CRASH_WORKLOAD_ADDR");
  bool exists = access(argv[2], F_OK) == 0;
  persist_options_t o{exists ? (move ? strtoull(move, nullptr, 0) : 0) : 0x600000000000ull, 0,
                      PERSIST_OPEN_CREATE, PERSIST_RELOCATE_REWRITE};
  int rc = persist_open(argv[2], &o, &h);
  if (rc) {
    fprintf(stderr, "crash_workload: open: %s\n", persist_strerror(rc));
    return 2;
  }
  // The publish phase checks that nothing leaks: no collection may hide it.
  if (!getenv("CRASH_WORKLOAD_NOGC") && persist_heap_gc(h, 0, nullptr) != 0) return fail("collection failed");
  // CRASH_WORKLOAD_SITES=N: sample allocation sites every N bytes on average (the sampled phase).
  if (const char *sites = getenv("CRASH_WORKLOAD_SITES"))
    if (persist_heap_sample_sites(h, strtoull(sites, nullptr, 0)) != 0) return fail("sampling sites failed");
  uint64_t count = 0;
  if (strcmp(argv[1], "verify-published") == 0) {
    rc = verify_published(&count);
    if (!rc) printf("%llu records\n", static_cast<unsigned long long>(count));
  } else if (strcmp(argv[1], "publish") == 0) {
    rc = run_published(argc > 3 ? strtoull(argv[3], nullptr, 10) : 100, argc > 4 ? strtoull(argv[4], nullptr, 10) : 1);
  } else if (strcmp(argv[1], "verify") == 0) {
    rc = verify(&count);
    if (!rc) printf("%llu records\n", static_cast<unsigned long long>(count));
  } else {
    rc = run(argc > 3 ? strtoull(argv[3], nullptr, 10) : 100, argc > 4 ? strtoull(argv[4], nullptr, 10) : 1);
  }
  if (persist_close(h)) return fail("close failed");
  return rc;
}
