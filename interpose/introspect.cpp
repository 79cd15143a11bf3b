// introspect.cpp — glibc's malloc statistics entry points (mallinfo, mallinfo2, malloc_stats,
// malloc_info), answered from the heap's authoritative state. Programs call them for reporting;
// without them, glibc's copies would describe glibc's own, unused heap.
#include <malloc.h>
#include <stdio.h>

#include <climits>
#include <cstring>

#include "bootstrap.h"
#include "check.h"
#include "platform.h"

#define PERSIST_EXPORT extern "C" __attribute__((visibility("default")))

namespace {

persist::HeapReport report() {
  persist::HeapReport r;
  persist::Heap *h = persist::shim::process_heap();
  if (h) persist::check_image(h->image(), &r, 0);
  return r;
}

size_t extent() {
  persist::Heap *h = persist::shim::g_heap.load();
  return h ? h->size.load() : 0;
}

int clamp(uint64_t v) { return v > INT_MAX ? INT_MAX : static_cast<int>(v); }

}  // namespace

PERSIST_EXPORT struct mallinfo2 mallinfo2(void) {
  persist::HeapReport r = report();
  struct mallinfo2 m;
  memset(&m, 0, sizeof m);
  m.arena = extent();
  m.ordblks = r.runs + r.large_blocks;
  m.hblks = r.huge_blocks;
  m.uordblks = r.live_bytes;
  m.fordblks = r.free_bytes;
  return m;
}

PERSIST_EXPORT struct mallinfo mallinfo(void) {
  struct mallinfo2 m2 = mallinfo2();
  struct mallinfo m;
  memset(&m, 0, sizeof m);
  m.arena = clamp(m2.arena);
  m.ordblks = clamp(m2.ordblks);
  m.hblks = clamp(m2.hblks);
  m.uordblks = clamp(m2.uordblks);
  m.fordblks = clamp(m2.fordblks);
  return m;
}

PERSIST_EXPORT void malloc_stats(void) {
  persist::HeapReport r = report();
  persist::Msg m;
  m.add("libpersist heap: extent ").dec(extent()).add(" bytes, in use ").dec(r.live_bytes)
      .add(" bytes in ").dec(r.live_blocks).add(" blocks, free ").dec(r.free_bytes).add(" bytes\n");
  persist::os::write_stderr(m.str(), m.size());
}

PERSIST_EXPORT int malloc_info(int options, FILE *fp) {
  if (options != 0 || !fp) return -1;  // glibc: EINVAL for non-zero options
  persist::HeapReport r = report();
  fprintf(fp,
          "<malloc version=\"libpersist-1\">\n"
          "<heap nr=\"0\">\n"
          "<total type=\"extent\" size=\"%zu\"/>\n"
          "<total type=\"live\" count=\"%llu\" size=\"%llu\"/>\n"
          "<total type=\"free\" size=\"%llu\"/>\n"
          "<total type=\"huge\" count=\"%llu\"/>\n"
          "</heap>\n</malloc>\n",
          extent(), static_cast<unsigned long long>(r.live_blocks),
          static_cast<unsigned long long>(r.live_bytes), static_cast<unsigned long long>(r.free_bytes),
          static_cast<unsigned long long>(r.huge_blocks));
  return 0;
}
