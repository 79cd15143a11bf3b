// bootstrap.cpp — see bootstrap.h. Initialisation order does not matter: whoever allocates first
// opens the heap (PRELOAD.md §3: other libraries' constructors run before ours).
#include "bootstrap.h"

#include <dlfcn.h>
#include <pthread.h>

#include <time.h>

#include <cstdlib>
#include <cstring>

#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#else
#define RUNNING_ON_VALGRIND 0
#endif

#include "../core/include/persist.h"
#include "api.h"
#include "inherit.h"
#include "modules.h"
#include "newfile.h"
#include "noaslr.h"
#include "options.h"
#include "platform.h"
#include "sites.h"

namespace persist::shim {

std::atomic<Heap *> g_heap{nullptr};

namespace {

constexpr size_t kBootBytes = size_t{1} << 20;
alignas(64) char g_boot[kBootBytes];
std::atomic<size_t> g_boot_used{0};

std::atomic<int> g_init{0};  // 0 not started, 1 in progress, 2 done
int g_sync = kSyncNever;     // PERSIST_SYNC of the process heap
uint64_t g_sites = 0;        // PERSIST_SITES of the process heap (armed by the constructor)
bool g_verbose = false;      // PERSIST_VERBOSE
std::atomic<pthread_t> g_init_thread{};

void say(const Msg &m) { os::write_stderr(m.str(), m.size()); }

const char *sanitizer_loaded() {
  static const char *const kRuntimes[][2] = {{"__asan_init", "AddressSanitizer"},
                                             {"__tsan_init", "ThreadSanitizer"},
                                             {"__msan_init", "MemorySanitizer"},
                                             {"__hwasan_init", "HWAddressSanitizer"}};
  for (const auto &r : kRuntimes)
    if (dlsym(RTLD_DEFAULT, r[0])) return r[1];
  return nullptr;
}

[[noreturn]] void fatal(const char *what) {
  Msg m;
  m.add("libpersist: fatal (PERSIST_STRICT or PERSIST_ON_BUSY=fail): ").add(what).add("\n");
  say(m);
  abort();
}

Heap *volatile_heap(const Options &o) {
  Heap *h = nullptr;
  Msg why;
  if (heap_open_anonymous(0, o.max, &h, &why) != 0) {
    Msg m;
    m.add("libpersist: cannot even create a volatile heap: ").add(why.str()).add("\n");
    say(m);
    return nullptr;
  }
  return h;
}

// PERSIST_SYNC=<ms>: a detached thread that makes the heap durable periodically.
void start_sync_thread(Heap *h, int ms) {
  static Heap *heap;
  static int period;
  heap = h, period = ms;
  pthread_t t;
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  auto body = [](void *) -> void * {
    for (;;) {
      struct timespec ts = {period / 1000, (period % 1000) * 1000000L};
      nanosleep(&ts, nullptr);
      if (heap->persistent) heap_sync(heap);  // false in a forked child
    }
    return nullptr;
  };
  if (pthread_create(&t, &attr, body, nullptr) != 0) {
    Msg m;
    m.add("libpersist: cannot start the PERSIST_SYNC thread; syncing at exit instead\n");
    say(m);
    g_sync = kSyncExit;
  }
  pthread_attr_destroy(&attr);
}

// Reclaim what the previous runs left and no root reaches (DESIGN.md, "Leftovers"), keeping the
// previous image first when asked to.
void reclaim(Heap *h, const Options &o) {
  if (o.keep) {
    // FILE.1 is a new private file put in place by rename (newfile.h): an existing FILE.1, or a
    // file someone planted under that name, is replaced, never written into.
    Msg dest;
    dest.add(o.file).add(".1");
    NewFile nf;
    int rc = newfile_create(dest.str(), &nf);
    int fd = heap_file(h);
    if (!rc) rc = fd < 0 ? fd : os::copy_file(fd, nf.fd);
    if (!rc) rc = newfile_replace(&nf, dest.str());
    newfile_close(&nf);
    if (rc) {
      Msg m;
      m.add("libpersist: cannot keep the previous image as ").add(dest.str()).add(": ")
          .add(persist_strerror(rc)).add("; not reclaiming\n");
      say(m);
      return;
    }
  }
  GcReport rep;
  Msg why;
  int rc = heap_collect(h, false, &rep, &why);
  Msg m;
  if (rc) {
    m.add("libpersist: not reclaiming leftovers: ").add(why.empty() ? persist_strerror(rc) : why.str())
        .add("\n");
    say(m);
  } else if (o.verbose) {
    m.add("libpersist: reclaimed ").dec(rep.freed_blocks).add(" blocks (").dec(rep.freed_bytes)
        .add(" bytes) no root reaches; kept ").dec(rep.kept_blocks).add(" blocks from ")
        .dec(rep.roots).add(" roots; extent ").dec(rep.old_size).add(" -> ").dec(rep.new_size)
        .add(" bytes; ").dec(rep.ns / 1000).add(" us\n");
    say(m);
  }
}

Heap *open_process_heap() {
  const bool reexecuted = noaslr_adopt_reexec();
  Options o;
  options_load(&o);
  if (o.secure) return volatile_heap(o);  // setuid/setgid programs never persist
  if (const char *san = sanitizer_loaded()) {
    // A sanitizer replaces malloc for most of the program: blocks would come from two heaps.
    Msg m;
    m.add("libpersist: the ").add(san).add(" runtime is loaded and replaces malloc: not persisting\n");
    say(m);
    return volatile_heap(o);
  }
  if (o.verbose) options_print(o);
  if (o.images == kImagesFixed && !reexecuted && !RUNNING_ON_VALGRIND) noaslr_reexec_if_moved(o.file, o.verbose);
  Heap *h = nullptr;
  Msg why;
  unsigned flags = PERSIST_OPEN_CREATE | (o.on_busy == kBusyWait ? unsigned{PERSIST_OPEN_WAIT} : 0u) |
                   (o.images == kImagesKeep ? unsigned{PERSIST_OPEN_KEEP_IMAGES} : 0u);
  int rc = heap_open_file(o.file, o.addr, o.max, flags, o.relocate, &h, &why);
  if (rc == 0) {
    if (!h->notes.empty()) {
      Msg m;
      m.add("libpersist: ").add(h->notes.str()).add("\n");
      say(m);
    }
    if (h->sb.opens > 1 && (o.gc == kGcOpen || (o.gc == kGcAuto && heap_gc_due(h)))) reclaim(h, o);
    g_sync = o.sync;
    g_sites = o.sites;
    g_verbose = o.verbose;
    if (o.sync > 0) start_sync_thread(h, o.sync);
    if (o.verbose) {
      Msg m;
      m.add("libpersist: heap ").add(o.file).add(" at ").hex(reinterpret_cast<uintptr_t>(h->base))
          .add(", ").dec(h->size.load()).add(" bytes, ")
          .add(h->sb.opens <= 1 ? "new" : h->clean_at_open ? "closed cleanly" : "not closed cleanly");
      if (h->old_base && h->old_base != reinterpret_cast<uint64_t>(h->base))
        m.add("; moved from ").hex(h->old_base);
      if (h->relocated_words) m.add("; ").dec(h->relocated_words).add(" words rewritten");
      if (reexecuted) m.add("; images at fixed addresses (re-executed with ASLR off)");
      m.add("\n");
      say(m);
    }
    api_set_default_heap(h);
    return h;
  }
  TreeHolder tree;
  if (rc == PERSIST_E_BUSY && held_in_our_tree(o.file, &tree)) {
    // Inherited from our own tree: the designed outcome, not a failure (inherit.h), so neither
    // PERSIST_STRICT nor PERSIST_ON_BUSY=fail applies, and only PERSIST_VERBOSE mentions it.
    if (o.verbose) {
      Msg m;
      m.add("libpersist: not persisting: ").add(o.file).add(" is held by process ").dec(tree.holder);
      if (tree.root == tree.holder) m.add(", an ancestor of this one");
      else m.add(", of the process tree started by process ").dec(tree.root);
      m.add("; running on a volatile heap\n");
      say(m);
    }
    return volatile_heap(o);
  }
  const char *reason = why.empty() ? persist_strerror(rc) : why.str();
  if (o.strict || (rc == PERSIST_E_BUSY && o.on_busy == kBusyFail)) fatal(reason);
  // Never die for persistence: run on a volatile heap and say why, once.
  Msg m;
  m.add("libpersist: not persisting: ").add(reason).add("; running on a volatile heap\n");
  say(m);
  return volatile_heap(o);
}

Heap *default_provider() { return process_heap(); }

// Flush and mark the heap clean when the process exits normally. The mapping stays: other
// libraries' destructors call free() after ours (PRELOAD.md §3).
__attribute__((destructor)) void at_exit() {
  Heap *h = g_heap.load(std::memory_order_acquire);
  if (!h || !h->persistent) return;
  if (g_verbose && h->sites_interval) {
    Msg m;
    m.add("libpersist: allocation sites: ").dec(h->samples.load()).add(" blocks sampled, ")
        .dec(h->samples_lost.load()).add(" samples lost (no backtrace, site table full or no memory)\n");
    say(m);
  }
  if (h->record_images) modules_record(h);  // where the images are, for pointers into them (modules.h)
  heap_mark_clean(h, g_sync != kSyncNever);
}

// Is another allocator the one that runs? Valgrind redirects every malloc symbol to its own
// (even though dlsym still names us, PRELOAD.md §9); a library earlier in the lookup order than
// us wins the symbols; both mean nothing this process allocates is persisted.
bool detect_other_allocator() {
  void *p = malloc(1);  // through the PLT: whichever malloc really wins
  Heap *h = g_heap.load(std::memory_order_acquire);
  bool ours = h && h->contains(p);
  free(p);
  if (ours) return true;
  Msg m;
  if (RUNNING_ON_VALGRIND)
    m.add("libpersist: valgrind replaces malloc, so nothing is persisted (run with "
          "--soname-synonyms=somalloc=nouserintercepts to keep libpersist's allocator)\n");
  else
    m.add("libpersist: another allocator comes first in the symbol lookup order (a library loaded "
          "before libpersist defines malloc), so nothing is persisted\n");
  say(m);
  return false;
}

// Open the heap (and arm the exit hook) even if the program never allocates, and check that our
// malloc is the one that runs.
// Allocation sites are armed here, not at open: loading libunwind means dlopen, which the first
// allocation (possibly inside ld.so, PRELOAD.md §3) cannot do.
__attribute__((constructor)) void at_start() {
  api_set_default_provider(default_provider);
  process_heap();
  if (!detect_other_allocator()) return;
  Heap *h = g_heap.load(std::memory_order_acquire);
  if (g_sites && h && h->persistent) {
    Msg why;
    if (sites_enable(h, g_sites, &why) != 0) {
      Msg m;
      m.add("libpersist: not recording allocation sites (PERSIST_SITES): ").add(why.str()).add("\n");
      say(m);
    }
  }
}

}  // namespace

Heap *process_heap_slow() {
  for (;;) {
    int st = g_init.load(std::memory_order_acquire);
    if (st == 2) return g_heap.load(std::memory_order_acquire);
    if (st == 1) {
      if (pthread_equal(g_init_thread.load(std::memory_order_relaxed), pthread_self())) return nullptr;
      continue;  // another thread is opening the heap: wait for it
    }
    int expect = 0;
    if (!g_init.compare_exchange_strong(expect, 1, std::memory_order_acq_rel)) continue;
    g_init_thread.store(pthread_self(), std::memory_order_relaxed);
    api_set_default_provider(default_provider);
    Heap *h = open_process_heap();
    g_heap.store(h, std::memory_order_release);
    g_init.store(2, std::memory_order_release);
    return h;
  }
}

void *boot_alloc(size_t size, size_t align) {
  if (align < 16) align = 16;
  if (size > kBootBytes) return nullptr;
  size_t used = g_boot_used.load(std::memory_order_relaxed);
  for (;;) {
    size_t start = (used + 16 + align - 1) & ~(align - 1);  // 16 bytes before: the size
    size_t end = start + ((size + 15) & ~size_t{15});
    if (end > kBootBytes) return nullptr;
    if (g_boot_used.compare_exchange_weak(used, end, std::memory_order_relaxed)) {
      size_t *hdr = reinterpret_cast<size_t *>(g_boot + start - 16);
      hdr[0] = end - start;
      return g_boot + start;
    }
  }
}

bool boot_contains(const void *p) {
  auto a = reinterpret_cast<uintptr_t>(p), b = reinterpret_cast<uintptr_t>(g_boot);
  return a - b < kBootBytes;
}

size_t boot_usable_size(const void *p) {
  return reinterpret_cast<const size_t *>(p)[-2];
}

namespace {
using FreeFn = void (*)(void *);
using SizeFn = size_t (*)(void *);
std::atomic<FreeFn> g_next_free{nullptr};
std::atomic<SizeFn> g_next_usable{nullptr};
}  // namespace

void foreign_free(void *p) {
  FreeFn f = g_next_free.load(std::memory_order_acquire);
  if (!f) {
    f = reinterpret_cast<FreeFn>(dlsym(RTLD_NEXT, "free"));
    g_next_free.store(f, std::memory_order_release);
  }
  if (f) f(p);  // glibc's free copes with its own blocks; anything else it would have to anyway
}

size_t foreign_usable_size(void *p) {
  SizeFn f = g_next_usable.load(std::memory_order_acquire);
  if (!f) {
    f = reinterpret_cast<SizeFn>(dlsym(RTLD_NEXT, "malloc_usable_size"));
    g_next_usable.store(f, std::memory_order_release);
  }
  return f ? f(p) : 0;
}

}  // namespace persist::shim
