// restart — the warm restart of an aware program, the whole process, through the preload shim
// with its defaults (BENCH.md T4, T5). Run under LD_PRELOAD=libpersist.so with PERSIST_FILE set;
// the runner (bench/lib/extras.py restart) times each process from fork to exit and reads its
// peak RSS.
//
// mode=build: a root "restart" holding a list of `mib` MiB of 128-byte nodes made with plain
//   malloc, each with a function pointer into this executable (as a C++ object holds its vtable
//   pointer) and a value; then exit (close=clean) or die by SIGKILL with the heap dirty
//   (close=kill).
// mode=restart: find the root, check the first node (its function pointer called, its value
//   read) and the count, exit (or SIGKILL itself again with close=kill). It touches one node: a
//   restart that costs more than O(1) is the allocator's doing.
#include <signal.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "bench_util.h"

// Resolved at run time from the preloaded libpersist.so (weak: the program links without it).
extern "C" void *persist_root(const char *tag, size_t size) __attribute__((weak));

namespace {

struct Node {
  Node *next;
  long (*fn)(long);
  long value;
  char pad[128 - 3 * sizeof(long)];
};
static_assert(sizeof(Node) == 128);

struct State {
  Node *head;
  uint64_t count;
  uint64_t magic;
};
constexpr uint64_t kMagic = 0x5245535441525431ull;

__attribute__((noinline)) long twice_plus_one(long v) { return 2 * v + 1; }

}  // namespace

int main(int argc, char **argv) {
  bench::Args a(argc, argv, "mode=build|restart mib=1 close=clean|kill");
  const char *mode = a.str("mode", "restart"), *close = a.str("close", "clean");
  uint64_t mib = a.u64("mib", 1);
  a.check();
  if (!persist_root) {
    fprintf(stderr, "restart: run me under LD_PRELOAD=libpersist.so\n");
    return 2;
  }
  auto *st = static_cast<State *>(persist_root("restart", sizeof(State)));
  if (!st) {
    fprintf(stderr, "restart: persist_root failed\n");
    return 2;
  }
  if (!strcmp(mode, "build")) {
    uint64_t n = (mib << 20) / sizeof(Node);
    Node *head = nullptr;
    for (uint64_t i = 0; i < n; ++i) {
      auto *node = static_cast<Node *>(malloc(sizeof(Node)));
      if (!node) {
        fprintf(stderr, "restart: out of memory after %llu nodes\n", (unsigned long long)i);
        return 1;
      }
      node->next = head;
      node->fn = &twice_plus_one;
      node->value = static_cast<long>(i);
      memset(node->pad, static_cast<int>(i), sizeof node->pad);
      head = node;
    }
    st->head = head;
    st->count = n;
    st->magic = kMagic;
  } else {
    if (st->magic != kMagic || !st->head || st->head->fn(st->head->value) != 2 * st->head->value + 1 ||
        st->head->value != static_cast<long>(st->count - 1)) {
      fprintf(stderr, "restart: the list did not survive the restart\n");
      return 3;
    }
  }
  printf("restart: %s, %llu nodes\n", mode, (unsigned long long)st->count);
  fflush(stdout);
  if (!strcmp(close, "kill")) raise(SIGKILL);
  return 0;
}
