// cxx_new.cpp — the C++ operators through whatever allocator runs (the test runs it without the
// shim, as the reference, and under it with PERSIST_MAX=64M): the new-handler loop (a handler
// that frees a reserve and lets the retry succeed), nothrow new returning nullptr, bad_alloc on a huge request, aligned new
// and all delete forms. Exit status 0 when every check holds.
#include <dlfcn.h>
#include <sys/resource.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <new>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

int checks, failures;
#define CHECK(cond, what)                                              \
  do {                                                                 \
    ++checks;                                                          \
    if (!(cond)) {                                                     \
      ++failures;                                                      \
      std::printf("FAILED line %d: %s: %s\n", __LINE__, #cond, what); \
    }                                                                  \
  } while (0)

void *(*p_default_heap)();
int (*p_contains)(const void *, const void *);
bool ours(const void *p) {
  if (!p_default_heap || !p_contains) return true;
  void *h = p_default_heap();
  return h && p_contains(h, p);
}

// A request no allocator can satisfy, hidden from the optimiser.
size_t huge_size() {
  volatile size_t n = SIZE_MAX / 2;
  return n;
}

// The new-handler that frees a reserve and uninstalls itself (so a second failure throws).
int handler_calls = 0;
char *reserve = nullptr;
void release_reserve() {
  ++handler_calls;
  delete[] reserve;
  reserve = nullptr;
  std::set_new_handler(nullptr);
}

// Bound the address space for the reference run (glibc): the shim's heap is bounded by
// PERSIST_MAX=64M instead, which the test sets.
rlimit limit_address_space(size_t extra) {
  rlimit old{};
  getrlimit(RLIMIT_AS, &old);
  long pages = 0;
  if (FILE *f = std::fopen("/proc/self/statm", "r")) {
    if (std::fscanf(f, "%ld", &pages) != 1) pages = 0;
    std::fclose(f);
  }
  rlimit now = old;
  now.rlim_cur = static_cast<rlim_t>(pages) * 4096 + extra;
  setrlimit(RLIMIT_AS, &now);
  return old;
}

int throwing_handler_calls = 0;
void throwing_handler() {
  ++throwing_handler_calls;
  throw std::bad_alloc();
}

struct alignas(256) Wide {
  char bytes[256];
};

}  // namespace

int main() {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  p_default_heap = reinterpret_cast<void *(*)()>(dlsym(RTLD_DEFAULT, "persist_default_heap"));
  p_contains = reinterpret_cast<int (*)(const void *, const void *)>(dlsym(RTLD_DEFAULT, "persist_contains"));
  bool shim = p_default_heap != nullptr;

  // Plain forms, from the heap.
  int *one = new int(7);
  int *arr = new int[1000]();
  CHECK(ours(one) && ours(arr), "new / new[] not from the persistent heap");
  CHECK(reinterpret_cast<uintptr_t>(one) % __STDCPP_DEFAULT_NEW_ALIGNMENT__ == 0, "new int misaligned");
  delete one;
  delete[] arr;

  // The new-handler loop: a request that does not fit fails, the handler frees a 40 MiB reserve
  // and uninstalls itself, and the retried request succeeds.
  {
    const size_t big = size_t{40} << 20;
    rlimit old{};
    if (!shim) old = limit_address_space(size_t{64} << 20);
    reserve = new char[big];
    std::memset(reserve, 1, big);
    std::set_new_handler(release_reserve);
    char *p = nullptr;
    try {
      p = new char[big];
    } catch (const std::bad_alloc &) {
    }
    CHECK(p != nullptr, "new char[40M] failed although the handler freed a 40 MiB reserve");
    CHECK(handler_calls == 1, "the new-handler was not called exactly once (is the heap bounded?)");
    CHECK(reserve == nullptr, "the handler did not free the reserve");
    if (p) std::memset(p, 2, big);
    delete[] p;
    std::set_new_handler(nullptr);
    if (!shim) setrlimit(RLIMIT_AS, &old);
  }
  {
    // A handler that uninstalls itself without freeing anything: new throws after one call.
    static int calls = 0;
    struct Local {
      static void handler() {
        ++calls;
        std::set_new_handler(nullptr);
      }
    };
    std::set_new_handler(Local::handler);
    bool threw = false;
    try {
      void *p = ::operator new(huge_size());
      ::operator delete(p);
    } catch (const std::bad_alloc &) {
      threw = true;
    }
    CHECK(threw && calls == 1, "new(huge) with a self-removing handler: no bad_alloc after one call");
    void *ok = ::operator new(1000);
    CHECK(ok != nullptr && ours(ok), "operator new(1000) after the handler");
    ::operator delete(ok, 1000);
  }

  bool threw = false;
  // A handler that throws: its exception comes out of new.
  std::set_new_handler(throwing_handler);
  threw = false;
  try {
    void *p = ::operator new[](huge_size());
    ::operator delete[](p);
  } catch (const std::bad_alloc &) {
    threw = true;
  }
  CHECK(threw && throwing_handler_calls == 1, "a throwing new-handler's bad_alloc did not propagate");
  std::set_new_handler(nullptr);

  // No handler: bad_alloc, and nothrow forms return nullptr.
  threw = false;
  try {
    void *p = ::operator new(huge_size());
    ::operator delete(p);
  } catch (const std::bad_alloc &) {
    threw = true;
  }
  CHECK(threw, "operator new(SIZE_MAX/2) did not throw bad_alloc");
  threw = false;
  try {
    std::vector<char> v;
    v.reserve(huge_size() / 2);
  } catch (const std::bad_alloc &) {
    threw = true;
  } catch (const std::length_error &) {
    threw = true;  // libstdc++ may reject it before allocating
  }
  CHECK(threw, "vector::reserve(huge) did not throw");
  CHECK(::operator new(huge_size(), std::nothrow) == nullptr, "nothrow new(huge) is not nullptr");
  CHECK(::operator new[](huge_size(), std::nothrow) == nullptr, "nothrow new[](huge) is not nullptr");
  CHECK(::operator new(huge_size(), std::align_val_t(64), std::nothrow) == nullptr,
        "aligned nothrow new(huge) is not nullptr");
  CHECK(::operator new[](huge_size(), std::align_val_t(4096), std::nothrow) == nullptr,
        "aligned nothrow new[](huge) is not nullptr");
  threw = false;
  try {
    void *p = ::operator new(huge_size(), std::align_val_t(128));
    ::operator delete(p, std::align_val_t(128));
  } catch (const std::bad_alloc &) {
    threw = true;
  }
  CHECK(threw, "aligned new(huge) did not throw bad_alloc");
  // A nothrow new with a handler installed: the handler runs, then nullptr.
  {
    static int calls = 0;
    struct Local {
      static void handler() {
        ++calls;
        std::set_new_handler(nullptr);
      }
    };
    std::set_new_handler(Local::handler);
    void *p = ::operator new(huge_size(), std::nothrow);
    CHECK(p == nullptr && calls == 1, "nothrow new did not call the handler once and return nullptr");
    std::set_new_handler(nullptr);
  }

  // Aligned new and every delete form.
  for (size_t a = 32; a <= 8192; a *= 2) {
    void *p = ::operator new(100, std::align_val_t(a));
    CHECK(reinterpret_cast<uintptr_t>(p) % a == 0 && ours(p), "aligned operator new");
    ::operator delete(p, std::align_val_t(a));
    p = ::operator new[](100, std::align_val_t(a));
    CHECK(reinterpret_cast<uintptr_t>(p) % a == 0, "aligned operator new[]");
    ::operator delete[](p, 100, std::align_val_t(a));
    p = ::operator new(100, std::align_val_t(a), std::nothrow);
    CHECK(p && reinterpret_cast<uintptr_t>(p) % a == 0, "aligned nothrow operator new");
    ::operator delete(p, std::align_val_t(a), std::nothrow);
    p = ::operator new[](100, std::align_val_t(a), std::nothrow);
    CHECK(p && reinterpret_cast<uintptr_t>(p) % a == 0, "aligned nothrow operator new[]");
    ::operator delete[](p, std::align_val_t(a), std::nothrow);
    p = ::operator new(100, std::align_val_t(a));
    ::operator delete(p, 100, std::align_val_t(a));
    p = ::operator new[](100, std::align_val_t(a));
    ::operator delete[](p, std::align_val_t(a));
  }
  Wide *w = new Wide[3];
  CHECK(reinterpret_cast<uintptr_t>(w) % 256 == 0, "new Wide[3] (alignas 256) misaligned");
  delete[] w;
  void *p = ::operator new(10, std::nothrow);
  ::operator delete(p, std::nothrow);
  p = ::operator new[](10, std::nothrow);
  ::operator delete[](p, std::nothrow);
  p = ::operator new[](10);
  ::operator delete[](p, 10);

  // Containers of strings: the ordinary case.
  std::map<std::string, std::vector<std::string>> m;
  for (int i = 0; i < 20000; ++i) m[std::to_string(i % 977)].push_back(std::string(i % 90, 'x'));
  size_t total = 0;
  for (auto &kv : m) total += kv.second.size();
  CHECK(total == 20000, "map of vectors");

  std::printf("%d checks, %d failed (%s)\n", checks, failures, shim ? "libpersist" : "libstdc++/glibc");
  return failures ? 1 : 0;
}
