// torture_workload — the program the kill -9 torture kills (tests/torture/torture_driver.cpp).
// It runs under the preload shim (LD_PRELOAD=libpersist.so PERSIST_FILE=...) and uses nothing but
// malloc/free/realloc/calloc/new/delete and the root API of the default heap.
//
//   torture_workload run [THREADS]   verify what earlier runs published (exit 3 on any damage),
//                                    print "ready ..." on stdout, then work forever (until killed)
//   torture_workload verify          verify, probe (allocate blocks the size of every record and
//                                    fill them, then verify again: a record whose block the heap
//                                    thinks is free gets overwritten), print the summary, exit 0
//
// Durable state. Root "torture" (struct Global: the number of lists). Root "torture.list.<i>"
// (struct ListHead, one per worker thread, replaced now and then through persist_root_set): a
// singly linked list of checksummed records, newest first. A record is filled completely, then
// linked with ONE pointer store (the commit point); it is unlinked with one store before it is
// freed (or handed to another thread, which frees it: cross-thread frees). The head is never
// removed, so the newest record published is always in the list: ListHead::last_id (written
// after the link) may lag the head's id by one, never more. Every link is written, at random, as
// a raw pointer, an interior pointer, a tagged offset (PERSIST_OFFSET) or a self-relative link
// (PERSIST_SELF_TAG): the collector at open (and relocation) must follow all four. Roots
// "torture.x.<i>.<k>" point at small checksummed blobs set, replaced and removed by worker i.
//
// Both modes print one line: "ready|verified records N bytes B huge H blobs X lists L starts S
// last ID0 ID1 ..." (IDi: the newest record id of list i), which the driver parses.
//
// Besides, every worker churns the heap with temporary blocks of mixed sizes (small, ~100 KiB,
// sometimes 5 MiB), calloc (checked zeroed), realloc (content checked preserved) and frees some of
// them on other threads, so that a kill lands inside the allocator as often as outside.
//
// Exit status: 0 ok (verify), 2 environment (no persistent default heap, bad usage), 3 damage.
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cinttypes>
#include <cstdarg>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <thread>
#include <vector>

#include "persist.h"

namespace {

constexpr uint64_t kGlobalMagic = 0x3147524f54524f54ull;  // "TORTGRO1"
constexpr uint64_t kListMagic = 0x314c525554524f54ull;    // "TORTURL1"
constexpr uint64_t kBlobMagic = 0x31424c4254524f54ull;    // "TORTBLB1"
constexpr unsigned kMaxThreads = 16;
constexpr uint64_t kMaxRecords = 24;  // per list, after an add (bounded live set)
constexpr uint64_t kMaxHuge = 1;      // 5 MiB records per list
constexpr unsigned kExtraRoots = 4;   // torture.x.<i>.<k>, k < kExtraRoots
constexpr size_t kHugeSize = size_t{5} << 20;

// A link between persistent blocks, in one of the encodings the collector follows: a raw pointer
// to the block, a raw interior pointer (to the record's id field, 8 bytes in), a tagged offset
// from the heap base (PERSIST_OFFSET) or a self-relative distance (PERSIST_SELF_TAG). Each link
// written picks one at random; copying a link re-encodes it.
struct Rec;
struct Link {
  uint64_t v;
};

struct Rec {
  Link next;
  uint64_t id;  // per list; strictly decreasing along the list (a replacement keeps the id)
  uint32_t owner;
  uint32_t version;  // replacements of this id
  uint64_t len;      // payload bytes
  uint64_t seed;     // the payload was generated from it (for the message only)
  uint64_t sum;      // checksum of the fields above (next excluded) and the payload
  unsigned char data[];
};

static_assert(offsetof(Rec, id) == 8, "interior links point at Rec::id, 8 bytes in");

struct ListHead {
  uint64_t magic;
  uint64_t index;
  Link head;
  uint64_t last_id;  // id of the newest record linked: head->id or head->id - 1 after a kill
  uint64_t count;    // records in the list; off by at most one after a kill
  uint64_t huge;     // huge records in the list (repaired at start)
  uint64_t moves;    // times this struct was replaced (persist_root_set)
};

struct Global {
  uint64_t magic;
  uint64_t lists;
  uint64_t starts;
};

struct Blob {
  uint64_t magic;
  uint64_t owner;
  uint64_t serial;
  uint64_t len;
  uint64_t sum;
  unsigned char data[];
};

// ---- helpers ---------------------------------------------------------------------------------
struct Rng {
  uint64_t s;
  explicit Rng(uint64_t seed) : s(seed ? seed : 0x9E3779B97F4A7C15ull) {}
  uint64_t next() {
    s ^= s << 13, s ^= s >> 7, s ^= s << 17;
    return s;
  }
  uint64_t below(uint64_t n) { return next() % n; }
  bool chance(unsigned per_mille) { return below(1000) < per_mille; }
};

uint64_t mix(uint64_t h, uint64_t v) {
  h ^= v + 0x9E3779B97F4A7C15ull + (h << 6) + (h >> 2);
  return h * 0xff51afd7ed558ccdull;
}

uint64_t hash_bytes(uint64_t h, const unsigned char *p, uint64_t n) {
  uint64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    memcpy(&w, p + i, 8);
    h = mix(h, w);
  }
  for (; i < n; ++i) h = mix(h, p[i]);
  return mix(h, n);
}

void fill(unsigned char *p, uint64_t n, uint64_t seed) {
  Rng r(seed);
  uint64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t w = r.next() & 0x00ff00ff00ff00ffull;  // never a pointer into the heap by accident
    memcpy(p + i, &w, 8);
  }
  for (; i < n; ++i) p[i] = static_cast<unsigned char>(i * 31 + seed);
}

uint64_t rec_sum(const Rec *r) {
  uint64_t h = mix(0x5245434f5244ull, r->id);
  h = mix(h, (uint64_t{r->owner} << 32) | r->version);
  h = mix(h, r->len);
  h = mix(h, r->seed);
  return hash_bytes(h, r->data, r->len);
}

uint64_t blob_sum(const Blob *b) {
  uint64_t h = mix(mix(mix(kBlobMagic, b->owner), b->serial), b->len);
  return hash_bytes(h, b->data, b->len);
}

persist_heap_t *g_heap;

constexpr uint64_t kTagMask = uint64_t{0xffff} << 48;

uint64_t encode(const Link *where, const Rec *p, unsigned kind) {
  if (!p) return 0;
  switch (kind % 4) {
    case 0:
      return reinterpret_cast<uintptr_t>(p);
    case 1:
      return PERSIST_OFFSET(g_heap, p);
    case 3:
      return reinterpret_cast<uintptr_t>(&p->id);  // interior: records are 16-aligned
    default:
      return ((reinterpret_cast<uintptr_t>(p) - reinterpret_cast<uintptr_t>(where)) &
              PERSIST_OFFSET_MASK) |
             PERSIST_SELF_TAG;
  }
}

// Decode a link; *bad is set when its tag is none of the three.
Rec *decode(const Link *where, uint64_t v, bool *bad = nullptr) {
  if (!v) return nullptr;
  uint64_t tag = v & kTagMask;
  if (tag == 0) return reinterpret_cast<Rec *>((v & 15) == 8 ? v - 8 : v);  // interior: 8 bytes in
  if (tag == PERSIST_OFFSET_TAG) return static_cast<Rec *>(PERSIST_PTR(g_heap, v));
  if (tag == PERSIST_SELF_TAG) {
    uint64_t d = v & PERSIST_OFFSET_MASK;
    if (d & (uint64_t{1} << 47)) d |= kTagMask;  // sign-extend the 48-bit distance
    return reinterpret_cast<Rec *>(reinterpret_cast<uintptr_t>(where) + d);
  }
  if (bad) *bad = true;
  return nullptr;
}

Rec *load(const Link *where, bool *bad = nullptr) {
  return decode(where, __atomic_load_n(&where->v, __ATOMIC_ACQUIRE), bad);
}
void publish(Link *where, const Rec *p, unsigned kind) {  // the single store that commits a link
  __atomic_store_n(&where->v, encode(where, p, kind), __ATOMIC_RELEASE);
}

char g_problem[512];
int damage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int damage(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(g_problem, sizeof g_problem, fmt, ap);
  va_end(ap);
  fprintf(stderr, "torture_workload: DAMAGE: %s\n", g_problem);
  return 3;
}

void list_tag(char *buf, size_t n, unsigned i) {
  snprintf(buf, n, "torture.list.%u", i);
}
void blob_tag(char *buf, size_t n, unsigned i, unsigned k) {
  snprintf(buf, n, "torture.x.%u.%u", i, k);
}

// ---- verification ----------------------------------------------------------------------------
struct Summary {
  uint64_t records = 0, bytes = 0, huge = 0, blobs = 0, lists = 0, starts = 0;
  uint64_t last_id[kMaxThreads] = {};
  std::vector<Rec *> recs;
};

int check_record(const Rec *r, unsigned list, uint64_t pos) {
  if (!persist_contains(g_heap, r))
    return damage("list %u, record %" PRIu64 ": %p outside the heap", list, pos, (void *)r);
  if (reinterpret_cast<uintptr_t>(r) % 16)
    return damage("list %u, record %" PRIu64 ": %p misaligned", list, pos, (void *)r);
  size_t usable = persist_usable_size(g_heap, r);
  if (usable < sizeof(Rec))
    return damage("list %u, record %" PRIu64 ": %p is not a block (usable %zu)", list, pos,
                  (void *)r, usable);
  if (r->owner != list)
    return damage("list %u, record %" PRIu64 " (id %" PRIu64 "): owner %u", list, pos, r->id,
                  r->owner);
  if (r->len > kHugeSize || sizeof(Rec) + r->len > usable)
    return damage("list %u, record %" PRIu64 " (id %" PRIu64 "): length %" PRIu64
                  " does not fit its block of %zu bytes",
                  list, pos, r->id, r->len, usable);
  if (r->sum != rec_sum(r))
    return damage("list %u, record %" PRIu64 " (id %" PRIu64 " v%u, %" PRIu64
                  " bytes at %p): checksum mismatch",
                  list, pos, r->id, r->version, r->len, (void *)r);
  return 0;
}

// Verify list i. repair: fix the counters a kill may leave off by one (run mode).
int verify_list(unsigned i, ListHead *lh, bool repair, Summary *s) {
  if (lh->magic == 0) return 0;  // created, killed before it was initialised
  if (lh->magic != kListMagic) return damage("list %u: bad magic %" PRIx64, i, lh->magic);
  if (lh->index != i) return damage("list %u: index %" PRIu64, i, lh->index);
  uint64_t n = 0, huge = 0, prev_id = 0;
  bool bad = false;
  Rec *newest = load(&lh->head, &bad);
  for (Rec *r = newest; r || bad; r = load(&r->next, &bad)) {
    if (bad) return damage("list %u, record %" PRIu64 ": a link with an unknown tag", i, n);
    if (n > kMaxRecords + 2)
      return damage("list %u: more than %" PRIu64 " records (cycle?)", i, kMaxRecords + 2);
    if (int rc = check_record(r, i, n)) return rc;
    if (n == 0) {
      if (r->id != lh->last_id && r->id != lh->last_id + 1)
        return damage("list %u: newest record has id %" PRIu64 " but last_id is %" PRIu64
                      " (a published record was lost, or one appeared from nowhere)",
                      i, r->id, lh->last_id);
    } else if (r->id >= prev_id) {
      return damage("list %u, record %" PRIu64 ": id %" PRIu64 " after %" PRIu64, i, n, r->id,
                    prev_id);
    }
    prev_id = r->id;
    if (r->len >= kHugeSize) ++huge;
    s->bytes += r->len;
    s->recs.push_back(r);
    ++n;
  }
  if (n == 0 && lh->last_id != 0)
    return damage("list %u: empty, but record %" PRIu64
                  " was published (the head is never "
                  "removed)",
                  i, lh->last_id);
  if (n + 1 < lh->count || n > lh->count + 1)
    return damage("list %u: %" PRIu64 " records, count says %" PRIu64, i, n, lh->count);
  s->records += n;
  s->huge += huge;
  s->lists++;
  s->last_id[i] = n ? newest->id : lh->last_id;
  if (repair) {
    lh->count = n;
    lh->huge = huge;
    if (n) lh->last_id = newest->id;
  }
  return 0;
}

int verify_blobs(unsigned lists, Summary *s) {
  for (unsigned i = 0; i < lists; ++i)
    for (unsigned k = 0; k < kExtraRoots; ++k) {
      char tag[64];
      blob_tag(tag, sizeof tag, i, k);
      size_t size = 0;
      auto *b = static_cast<Blob *>(persist_root_get(tag, &size));
      if (!b) {
        if (errno != ENOENT) return damage("root %s: lookup failed: %s", tag, strerror(errno));
        continue;
      }
      if (!persist_contains(g_heap, b))
        return damage("root %s: %p outside the heap", tag, (void *)b);
      if (b->magic == 0) continue;  // created by persist_root, killed before it was filled
      if (b->magic != kBlobMagic) return damage("root %s: bad magic %" PRIx64, tag, b->magic);
      if (size < sizeof(Blob) || b->len > size - sizeof(Blob))
        return damage("root %s: length %" PRIu64 " but the root records %zu bytes", tag, b->len,
                      size);
      if (b->owner != i || b->sum != blob_sum(b))
        return damage("root %s: checksum mismatch (serial %" PRIu64 ")", tag, b->serial);
      s->blobs++;
    }
  return 0;
}

int verify_all(bool repair, Summary *s) {
  size_t size = 0;
  auto *g = static_cast<Global *>(persist_root_get("torture", &size));
  if (!g) {
    if (errno != ENOENT) return damage("root torture: lookup failed: %s", strerror(errno));
    return 0;  // a new heap
  }
  if (size < sizeof(Global)) return damage("root torture: %zu bytes", size);
  if (g->magic == 0) return 0;  // created, not yet initialised
  if (g->magic != kGlobalMagic) return damage("root torture: bad magic %" PRIx64, g->magic);
  if (g->lists == 0 || g->lists > kMaxThreads)
    return damage("root torture: %" PRIu64 " lists", g->lists);
  s->starts = g->starts;
  for (unsigned i = 0; i < g->lists; ++i) {
    char tag[64];
    list_tag(tag, sizeof tag, i);
    auto *lh = static_cast<ListHead *>(persist_root_get(tag, &size));
    if (!lh) {
      if (errno != ENOENT) return damage("root %s: lookup failed: %s", tag, strerror(errno));
      continue;  // killed before this list's root was created
    }
    if (size < sizeof(ListHead)) return damage("root %s: %zu bytes", tag, size);
    if (int rc = verify_list(i, lh, repair, s)) return rc;
  }
  return verify_blobs(static_cast<unsigned>(g->lists), s);
}

void print_summary(const char *what, const Summary &s) {
  printf("%s records %" PRIu64 " bytes %" PRIu64 " huge %" PRIu64 " blobs %" PRIu64
         " lists %" PRIu64 " starts %" PRIu64 " last",
         what, s.records, s.bytes, s.huge, s.blobs, s.lists, s.starts);
  for (uint64_t i = 0; i < s.lists; ++i) printf(" %" PRIu64, s.last_id[i]);
  printf("\n");
  fflush(stdout);
}

// ---- the work --------------------------------------------------------------------------------
struct Mailbox {  // cross-thread frees: blocks other threads hand to this one
  std::mutex mu;
  std::vector<void *> items;
};
Mailbox g_mail[kMaxThreads];
unsigned g_threads;
std::atomic<uint64_t> g_ops{0};

[[noreturn]] void die(const char *what) {
  fprintf(stderr, "torture_workload: %s: %s\n", what, strerror(errno));
  fflush(stderr);
  _exit(2);
}

[[noreturn]] void die_damage() {
  _exit(3);
}

class Worker {
 public:
  Worker(unsigned index, ListHead *lh, uint64_t seed) : i_(index), lh_(lh), rng_(seed) {}

  void run() {
    for (;;) {
      unsigned op = static_cast<unsigned>(rng_.below(1000));
      if (op < 300)
        add_record();
      else if (op < 380)
        replace_record();
      else if (op < 390)
        move_head();
      else if (op < 420)
        blob_op();
      else if (op < 430)
        self_check();
      else
        churn();
      if (lh_->count > kMaxRecords) remove_record();
      drain_mail();
      g_ops.fetch_add(1, std::memory_order_relaxed);
    }
  }

 private:
  unsigned i_;
  ListHead *lh_;
  Rng rng_;
  void *tmp_[48] = {};
  size_t tmp_size_[48] = {};
  bool tmp_huge_ = false;
  unsigned char *buf_ = nullptr;
  size_t buf_len_ = 0;
  uint64_t buf_seed_ = 0;
  uint64_t serial_ = 0;

  unsigned kind() { return static_cast<unsigned>(rng_.below(4)); }

  size_t record_size() {
    unsigned r = static_cast<unsigned>(rng_.below(1000));
    if (r < 5 && lh_->huge < kMaxHuge) return kHugeSize;   // huge (own segments)
    if (r < 80) return 80 * 1024 + rng_.below(48 * 1024);  // ~100 KiB (large)
    if (r < 250) return 1024 + rng_.below(15 * 1024);      // medium (small classes)
    return rng_.below(600);                                // small
  }

  // A complete record, not yet linked: built by malloc, calloc or a growing realloc.
  Rec *make_record(uint64_t id, uint32_t version, size_t len) {
    size_t total = sizeof(Rec) + len;
    Rec *r = nullptr;
    unsigned how = static_cast<unsigned>(rng_.below(3));
    if (how == 0) {
      r = static_cast<Rec *>(malloc(total));
      if (!r) die("malloc");
    } else if (how == 1) {
      auto *p = static_cast<unsigned char *>(calloc(1, total));
      if (!p) die("calloc");
      for (size_t k = 0; k < total; k += (total > 65536 ? 61 : 1))
        if (p[k]) {
          damage("calloc(%zu) returned a block with byte %zu = %u", total, k, p[k]);
          die_damage();
        }
      r = reinterpret_cast<Rec *>(p);
    } else {
      // build the first part in a smaller block, then realloc to the full size
      size_t part = sizeof(Rec) + len / 3;
      auto *p = static_cast<unsigned char *>(malloc(part));
      if (!p) die("malloc");
      uint64_t s = rng_.next();
      fill(p, part, s);
      uint64_t h = hash_bytes(1, p, part);
      p = static_cast<unsigned char *>(realloc(p, total));
      if (!p) die("realloc");
      if (hash_bytes(1, p, part) != h) {
        damage("realloc(%zu -> %zu) did not preserve the content", part, total);
        die_damage();
      }
      r = reinterpret_cast<Rec *>(p);
    }
    r->next.v = 0;
    r->id = id;
    r->owner = i_;
    r->version = version;
    r->len = len;
    r->seed = rng_.next();
    fill(r->data, len, r->seed);
    r->sum = rec_sum(r);
    return r;
  }

  void dispose(void *p) {  // free here, or hand to another thread
    if (g_threads > 1 && rng_.chance(500)) {
      unsigned to = (i_ + 1 + static_cast<unsigned>(rng_.below(g_threads - 1))) % g_threads;
      Mailbox &m = g_mail[to];
      std::lock_guard<std::mutex> g(m.mu);
      if (m.items.size() < 512) {
        m.items.push_back(p);
        return;
      }
    }
    free(p);
  }

  void add_record() {
    size_t len = record_size();
    uint64_t id = lh_->last_id + 1;
    Rec *r = make_record(id, 0, len);
    r->next.v = encode(&r->next, load(&lh_->head), kind());
    __atomic_thread_fence(__ATOMIC_RELEASE);
    publish(&lh_->head, r, kind());  // committed
    lh_->last_id = id;
    lh_->count++;
    if (len >= kHugeSize) lh_->huge++;
  }

  // Unlink a random record other than the head, then free it (maybe on another thread).
  void remove_record() {
    Rec *prev = load(&lh_->head);
    if (!prev || !load(&prev->next)) return;
    uint64_t pos = 1 + rng_.below(lh_->count > 1 ? lh_->count - 1 : 1);
    for (uint64_t k = 1; k < pos && load(&prev->next) && load(&load(&prev->next)->next); ++k)
      prev = load(&prev->next);
    Rec *victim = load(&prev->next);
    if (!victim) return;
    publish(&prev->next, load(&victim->next), kind());  // unlinked
    lh_->count--;
    if (victim->len >= kHugeSize) lh_->huge--;
    dispose(victim);
  }

  // Replace a random record by a new version (possibly of another size): one store unlinks the
  // old one and links the new one.
  void replace_record() {
    if (!load(&lh_->head)) return;
    uint64_t pos = rng_.below(lh_->count ? lh_->count : 1);
    Link *link = &lh_->head;
    for (uint64_t k = 0; k < pos && load(&load(link)->next); ++k) link = &load(link)->next;
    Rec *old = load(link);
    size_t len = old->len >= kHugeSize ? rng_.below(4096) : record_size();
    if (len >= kHugeSize && old->len < kHugeSize && lh_->huge >= kMaxHuge) len = 100 * 1024;
    Rec *r = make_record(old->id, old->version + 1, len);
    r->next.v = encode(&r->next, load(&old->next), kind());
    __atomic_thread_fence(__ATOMIC_RELEASE);
    publish(link, r, kind());  // committed
    if (old->len >= kHugeSize) lh_->huge--;
    if (len >= kHugeSize) lh_->huge++;
    dispose(old);
  }

  // Replace the ListHead itself: copy it, point the root at the copy, free the old one.
  void move_head() {
    auto *n = static_cast<ListHead *>(malloc(sizeof(ListHead) + rng_.below(256)));
    if (!n) die("malloc");
    *n = *lh_;
    n->head.v = encode(&n->head, load(&lh_->head), kind());  // self-relative links move
    n->moves++;
    char tag[64];
    list_tag(tag, sizeof tag, i_);
    if (persist_root_set(tag, n) != 0) die("persist_root_set");  // committed
    ListHead *old = lh_;
    lh_ = n;
    old->magic = 0xdeadull;  // must no longer be reachable: the verifier would fail on it
    dispose(old);
  }

  void blob_op() {
    char tag[64];
    unsigned k = static_cast<unsigned>(rng_.below(kExtraRoots));
    blob_tag(tag, sizeof tag, i_, k);
    size_t size = 0;
    void *old = persist_root_get(tag, &size);
    unsigned how = static_cast<unsigned>(rng_.below(3));
    if (how == 0 && old) {  // remove
      if (persist_root_remove(tag) != 0) die("persist_root_remove");
      dispose(old);
      return;
    }
    uint64_t len = rng_.below(how == 2 ? 20000 : 200);
    if (!old && how == 1) {  // find-or-create (zeroed), then fill in place
      auto *b = static_cast<Blob *>(persist_root(tag, sizeof(Blob) + len));
      if (!b) die("persist_root");
      b->owner = i_, b->serial = ++serial_, b->len = len;
      fill(b->data, len, serial_);
      b->sum = blob_sum(b);
      __atomic_store_n(&b->magic, kBlobMagic, __ATOMIC_RELEASE);  // committed
      return;
    }
    auto *b = static_cast<Blob *>(malloc(sizeof(Blob) + len));  // build, then set the root
    if (!b) die("malloc");
    b->magic = kBlobMagic, b->owner = i_, b->serial = ++serial_, b->len = len;
    fill(b->data, len, serial_ * 7);
    b->sum = blob_sum(b);
    if (persist_root_set(tag, b) != 0) die("persist_root_set");  // committed
    if (old) dispose(old);
  }

  void self_check() {
    Summary s;
    if (verify_list(i_, lh_, false, &s)) die_damage();
    for (unsigned k = 0; k < 48; ++k)  // temporary blocks still hold their pattern
      if (tmp_[k] && tmp_size_[k] >= 8) {
        uint64_t w;
        memcpy(&w, tmp_[k], 8);
        if (w != (reinterpret_cast<uintptr_t>(tmp_[k]) ^ tmp_size_[k])) {
          damage("temporary block %p (%zu bytes) was overwritten", tmp_[k], tmp_size_[k]);
          die_damage();
        }
      }
  }

  void churn() {
    unsigned r = static_cast<unsigned>(rng_.below(100));
    if (r < 8) {  // a buffer that grows by realloc, small -> large -> (sometimes) huge
      size_t n = buf_len_ == 0 ? 16 : buf_len_ * 2 + rng_.below(64);
      if (n > (rng_.chance(100) ? size_t{6} << 20 : size_t{1} << 20)) n = 16;
      size_t keep = n < buf_len_ ? n : buf_len_;
      uint64_t h = hash_bytes(2, buf_, keep);
      auto *nb = static_cast<unsigned char *>(realloc(buf_, n));
      if (!nb) die("realloc");
      if (hash_bytes(2, nb, keep) != h) {
        damage("realloc(%zu -> %zu) did not preserve the content", buf_len_, n);
        die_damage();
      }
      buf_ = nb;
      buf_len_ = n;
      fill(buf_, n, ++buf_seed_);
      return;
    }
    unsigned k = static_cast<unsigned>(rng_.below(48));
    if (tmp_[k]) {
      if (tmp_size_[k] >= kHugeSize) tmp_huge_ = false;
      dispose(tmp_[k]);
      tmp_[k] = nullptr;
    }
    size_t n;
    unsigned s = static_cast<unsigned>(rng_.below(1000));
    if (s < 2 && !tmp_huge_)
      n = kHugeSize + rng_.below(1 << 20), tmp_huge_ = true;
    else if (s < 60)
      n = 64 * 1024 + rng_.below(80 * 1024);
    else if (s < 200)
      n = 600 + rng_.below(16000);
    else
      n = 1 + rng_.below(300);
    void *p;
    if (rng_.chance(200)) {
      p = calloc(1, n);
      if (!p) die("calloc");
      auto *c = static_cast<unsigned char *>(p);
      for (size_t q = 0; q < n; q += (n > 65536 ? 127 : 1))
        if (c[q]) {
          damage("calloc(%zu) returned a block with byte %zu = %u", n, q, c[q]);
          die_damage();
        }
    } else if (rng_.chance(100)) {
      p = operator new(n);  // new/delete go through the shim too
    } else {
      p = malloc(n);
      if (!p) die("malloc");
    }
    memset(p, 0x3c, n < 4096 ? n : 4096);
    if (n >= 8) {
      uint64_t w = reinterpret_cast<uintptr_t>(p) ^ n;
      memcpy(p, &w, 8);
    }
    tmp_[k] = p;
    tmp_size_[k] = n;
  }

  void drain_mail() {
    Mailbox &m = g_mail[i_];
    std::vector<void *> items;
    {
      std::lock_guard<std::mutex> g(m.mu);
      if (m.items.empty()) return;
      items.swap(m.items);
    }
    for (void *p : items) free(p);
  }
};

int usage() {
  fprintf(stderr, "usage: torture_workload run [THREADS] | verify\n");
  return 2;
}

}  // namespace

int main(int argc, char **argv) {
  if (argc < 2) return usage();
  bool run = strcmp(argv[1], "run") == 0;
  if (!run && strcmp(argv[1], "verify") != 0) return usage();
  g_heap = persist_default_heap();
  persist_stats_t st;
  if (!g_heap || persist_heap_stats(g_heap, &st) != 0 || !st.persistent) {
    fprintf(stderr, "torture_workload: no persistent default heap (run it under the shim)\n");
    return 2;
  }

  Summary s;
  if (int rc = verify_all(run, &s)) return rc;

  if (!run) {
    // Probe: blocks the size of every record, filled; a record whose block is free in the
    // allocator's eyes is handed out again and overwritten, and the second verification fails.
    std::vector<void *> probes;
    for (Rec *r : s.recs)
      for (int k = 0; k < 4; ++k) {
        size_t n = sizeof(Rec) + r->len;
        void *p = malloc(n);
        if (!p) die("malloc (probe)");
        memset(p, 0xa5, n);
        probes.push_back(p);
      }
    Summary again;
    if (int rc = verify_all(false, &again)) {
      fprintf(stderr, "torture_workload: the probe allocations overwrote a published record\n");
      return rc;
    }
    char msg[256] = "";
    if (persist_heap_check(g_heap, msg, sizeof msg) != 0)
      return damage("persist_heap_check after verifying: %s", msg);
    print_summary("verified", s);
    return 0;
  }

  unsigned threads = argc > 2 ? static_cast<unsigned>(atoi(argv[2])) : 4;
  if (threads == 0 || threads > kMaxThreads) return usage();
  auto *g = static_cast<Global *>(persist_root("torture", sizeof(Global)));
  if (!g) die("persist_root(torture)");
  if (g->magic == 0) {
    g->lists = threads;
    __atomic_store_n(&g->magic, kGlobalMagic, __ATOMIC_RELEASE);
  }
  if (g->lists < threads) threads = static_cast<unsigned>(g->lists);  // the heap decides
  g->starts++;
  g_threads = threads;
  std::vector<ListHead *> heads(threads);
  for (unsigned i = 0; i < threads; ++i) {
    char tag[64];
    list_tag(tag, sizeof tag, i);
    auto *lh = static_cast<ListHead *>(persist_root(tag, sizeof(ListHead)));
    if (!lh) die("persist_root(list)");
    if (lh->magic == 0) {
      lh->index = i;
      __atomic_store_n(&lh->magic, kListMagic, __ATOMIC_RELEASE);
    }
    heads[i] = lh;
  }
  print_summary("ready", s);

  uint64_t seed = static_cast<uint64_t>(getpid()) * 0x9E3779B97F4A7C15ull ^ s.starts;
  std::vector<std::thread> ts;
  for (unsigned i = 0; i < threads; ++i)
    ts.emplace_back([i, lh = heads[i], seed] { Worker(i, lh, seed + i * 7919 + 1).run(); });
  for (auto &t : ts) t.join();
  return 0;
}
