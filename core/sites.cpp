// sites.cpp — see sites.h.
#include "sites.h"

#include <cerrno>
#include <cstring>

#include "../core/include/persist.h"
#include "platform.h"
#include "sitesread.h"
#include "unwind.h"

namespace persist {

namespace {

// Volatile: call stacks seen in this process (raw return addresses, hashed) -> site index, and the
// loaded modules -> their index in the site table. Both in anonymous memory, under sites_lock.
constexpr uint32_t kCacheSlots = 16384;  // a power of two, 4x the table
constexpr int kLoadedMax = 512;

struct CacheSlot {
  uint64_t key;  // hash of the raw stack; 0: empty
  uint32_t site;
  uint32_t reserved;
};

struct Loaded {
  uintptr_t start, end, bias;
  uint8_t index;  // 1 + index in SiteTable::module; 0: not recordable (table full)
};

}  // namespace

struct SiteCache {
  CacheSlot slot[kCacheSlots];
  uint32_t cached;
  int nloaded;
  Loaded loaded[kLoadedMax];
};

namespace {

uint64_t mix(uint64_t h, uint64_t v) {
  h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
  h *= 0xff51afd7ed558ccdull;
  return h ^ (h >> 33);
}

// -ln(u) for u in (0, 1], without libm: u = m * 2^e with m in [1, 2), ln m by the atanh series
// (|t| <= 1/3: the error of six terms is below 1e-7, far below the sampling noise).
double neg_log(double u) {
  uint64_t bits;
  memcpy(&bits, &u, 8);
  int e = static_cast<int>((bits >> 52) & 0x7ff) - 1023;
  bits = (bits & ((uint64_t{1} << 52) - 1)) | (uint64_t{1023} << 52);
  double m;
  memcpy(&m, &bits, 8);
  double t = (m - 1) / (m + 1), t2 = t * t;
  double ln_m = 2 * t * (1 + t2 * (1.0 / 3 + t2 * (1.0 / 5 + t2 * (1.0 / 7 + t2 * (1.0 / 9 + t2 / 11)))));
  return -(ln_m + e * 0.6931471805599453);
}

// The site table's module for a loaded module: matched by build-id (or by path when it has none),
// added when new. 0 when the table is full.
uint8_t module_index(SiteTable *t, const os::ModuleInfo &m, const char *path) {
  uint32_t id_len = m.build_id && m.id_len <= kModuleIdMax ? m.id_len : 0;
  for (uint32_t i = 0; i < kSiteModules; ++i) {
    SiteModule &e = t->module[i];
    if (__atomic_load_n(&e.state, __ATOMIC_ACQUIRE) != kSiteLive) {
      e.id_len = id_len;
      memcpy(e.build_id, m.build_id, id_len);
      size_t n = strnlen(path, sizeof e.path - 1);
      memcpy(e.path, path, n);
      e.path[n] = 0;
      __atomic_store_n(&e.state, kSiteLive, __ATOMIC_RELEASE);  // published last
      return static_cast<uint8_t>(i + 1);
    }
    bool same = id_len ? e.id_len == id_len && memcmp(e.build_id, m.build_id, id_len) == 0
                       : e.id_len == 0 && strncmp(e.path, path, sizeof e.path) == 0;
    if (same) return static_cast<uint8_t>(i + 1);
  }
  return 0;
}

struct Refresh {
  Heap *h;
  SiteCache *c;
  char exe[256];
};

void refresh_modules(Heap *h) {
  SiteCache *c = h->site_cache;
  Refresh r{h, c, {}};
  long n = os::self_exe_path(r.exe, sizeof r.exe);
  if (n <= 0) strcpy(r.exe, "(main program)");
  c->nloaded = 0;
  os::each_module(
      [](const os::ModuleInfo &m, void *arg) -> int {
        auto *r = static_cast<Refresh *>(arg);
        if (r->c->nloaded >= kLoadedMax) return 1;
        const char *path = m.path && m.path[0] ? m.path : r->exe;
        Loaded &l = r->c->loaded[r->c->nloaded++];
        l.start = m.start, l.end = m.end, l.bias = m.bias;
        l.index = module_index(r->h->sites, m, path);
        return 0;
      },
      &r);
}

const Loaded *find_loaded(SiteCache *c, uintptr_t pc) {
  for (int i = 0; i < c->nloaded; ++i)
    if (pc >= c->loaded[i].start && pc < c->loaded[i].end) return &c->loaded[i];
  return nullptr;
}

// Intern the stack (module, offset frames) in the persistent table: find it or publish it.
uint32_t intern(SiteTable *t, const SiteEntry &want) {
  const uint32_t mask = kSiteCapacity - 1;
  for (uint32_t probe = 0; probe < kSiteCapacity; ++probe) {
    SiteEntry &e = t->site[(want.hash + probe) & mask];
    if (__atomic_load_n(&e.state, __ATOMIC_ACQUIRE) != kSiteLive) {
      e.depth = want.depth;
      e.hash = want.hash;
      memcpy(e.module, want.module, sizeof e.module);
      memcpy(e.offset, want.offset, sizeof e.offset);
      __atomic_store_n(&e.state, kSiteLive, __ATOMIC_RELEASE);  // published last
      return (want.hash + probe) & mask;
    }
    if (e.hash == want.hash && e.depth == want.depth &&
        memcmp(e.module, want.module, sizeof e.module) == 0 &&
        memcmp(e.offset, want.offset, sizeof e.offset) == 0)
      return (want.hash + probe) & mask;
  }
  return kNoSite;  // full
}

SiteTable *site_table(Heap *h, Msg *why) {
  if (uint64_t off = h->sb.sites) {
    Image img = h->image();
    if (sites_table(img) == off) return reinterpret_cast<SiteTable *>(h->at(off));
    why->add("the heap's allocation-site table is damaged (persist check --repair drops it)");
    return nullptr;
  }
  void *p = heap_malloc(h, sizeof(SiteTable));  // zero-filled: fresh pages or cleared below
  if (!p) {
    why->add("no room for the allocation-site table");
    return nullptr;
  }
  auto *t = static_cast<SiteTable *>(p);
  memset(t, 0, sizeof *t);
  t->capacity = kSiteCapacity, t->modules = kSiteModules, t->frames = kSiteFrames;
  __atomic_store_n(&t->magic, kSiteTableMagic, __ATOMIC_RELEASE);
  heap_update_super(h, [](Superblock &sb, uint64_t off) { sb.sites = off; }, h->off(p));
  return t;
}

// The address range of the code this function is part of (libpersist's own frames are skipped).
// Only when the allocator is a shared object of its own: linked into the program, its frames
// cannot be told from the program's and are kept.
void own_code(Heap *h) {
  struct Find {
    uintptr_t pc, lo, hi;
    bool main;
  } f{reinterpret_cast<uintptr_t>(&own_code), 0, 0, false};
  os::each_module(
      [](const os::ModuleInfo &m, void *arg) -> int {
        auto *f = static_cast<Find *>(arg);
        if (f->pc < m.start || f->pc >= m.end) return 0;
        f->lo = m.start, f->hi = m.end, f->main = !m.path || !m.path[0];
        return 1;
      },
      &f);
  if (!f.main) h->sites_skip_lo = f.lo, h->sites_skip_hi = f.hi;
}

}  // namespace

__thread int tl_sampling;

int sites_enable(Heap *h, uint64_t interval, Msg *why) {
  if (!interval) {
    h->sites_interval = 0;
    return 0;
  }
  if (!h->persistent || h->readonly) {
    why->add("the heap is not persistent");
    return -EINVAL;
  }
  if (!unwind_load(why)) return -ENOENT;
  if (!h->site_cache) {
    void *mem = nullptr;
    if (os::map_anon(sizeof(SiteCache), &mem) != 0) {
      why->add("no memory for the site cache");
      return -ENOMEM;
    }
    h->site_cache = static_cast<SiteCache *>(mem);
  }
  SiteTable *t = site_table(h, why);
  if (!t) return PERSIST_E_CORRUPT;
  own_code(h);
  {
    Guard g(h->sites_lock);
    h->sites = t;
    refresh_modules(h);
  }
  __atomic_store_n(&h->sites_interval, interval, __ATOMIC_RELEASE);
  // Threads that allocate already wait for INT64_MAX bytes: make them draw now. (A relaxed store
  // to a counter its owner decrements without atomics: at worst one decrement is lost.)
  Guard g(h->threads_lock);
  for (ThreadHeap *th = h->threads; th; th = th->next_all)
    __atomic_store_n(&th->sample_left, 0, __ATOMIC_RELAXED);
  return 0;
}

int64_t sites_draw(Heap *h, ThreadHeap *th) {
  uint64_t interval = __atomic_load_n(&h->sites_interval, __ATOMIC_ACQUIRE);
  if (!interval) return INT64_MAX;
  uint64_t x = th->sample_rng;
#ifdef PERSIST_CRASH_POINTS
  if (!x) x = 0x2545f4914f6cdd1dull;  // the crash walk needs the same passages in every run
#else
  if (!x) x = reinterpret_cast<uintptr_t>(th) ^ os::monotonic_ns() ^ 0x2545f4914f6cdd1dull;
#endif
  x ^= x >> 12, x ^= x << 25, x ^= x >> 27;  // xorshift64*
  th->sample_rng = x;
  double u = static_cast<double>(((x * 0x2545f4914f6cdd1dull) >> 11) + 1) * (1.0 / 9007199254740992.0);
  double d = neg_log(u) * static_cast<double>(interval);
  return d >= 9.0e18 ? INT64_MAX : static_cast<int64_t>(d);
}

uint32_t sites_record(Heap *h) {
  uintptr_t pcs[kSiteFrames];
  Guard g(h->sites_lock);  // also serialises libunwind's walks (fork.cpp takes this lock)
  SiteCache *c = h->site_cache;
  if (!h->sites || !c) return kNoSite;
  int n = unwind_backtrace(pcs, kSiteFrames, h->sites_skip_lo, h->sites_skip_hi);
  if (n <= 0) return kNoSite;
  uint64_t key = static_cast<uint64_t>(n);
  for (int i = 0; i < n; ++i) key = mix(key, pcs[i]);
  if (!key) key = 1;
  const uint32_t mask = kCacheSlots - 1;
  uint32_t at = static_cast<uint32_t>(key) & mask;
  for (uint32_t probe = 0; probe < 64; ++probe, at = (at + 1) & mask) {
    if (c->slot[at].key == key) return c->slot[at].site;
    if (!c->slot[at].key) break;
  }
  // A stack not seen in this process: its frames as (module, offset), interned in the table.
  SiteEntry e{};
  e.depth = static_cast<uint16_t>(n);
  bool refreshed = false;
  uint64_t hash = static_cast<uint64_t>(n);
  for (int i = 0; i < n; ++i) {
    const Loaded *l = find_loaded(c, pcs[i]);
    if (!l && !refreshed) refresh_modules(h), refreshed = true, l = find_loaded(c, pcs[i]);
    e.module[i] = l ? l->index : 0;
    e.offset[i] = static_cast<uint32_t>(l && l->index ? pcs[i] - l->bias : pcs[i]);
    hash = mix(mix(hash, e.module[i]), e.offset[i]);
  }
  e.hash = static_cast<uint32_t>(hash ^ (hash >> 32));
  uint32_t site = intern(h->sites, e);
  if (site == kNoSite) return kNoSite;
  if (!c->slot[at].key && c->cached < kCacheSlots / 2) {
    c->slot[at].key = key, c->slot[at].site = site;
    ++c->cached;
  }
  return site;
}

}  // namespace persist
