// heap_fuzz.cpp — libFuzzer target over everything that reads a heap file: the superblock
// (super_read, as heapfile_open calls it), the walk and the checker (walk.h, check.h, reach.h),
// the sampled blocks and the site table (sitesread.h) and the tool's readers (tools/readers.h:
// roots, dump, stats, blocks, strings, map, sites), on images built in memory.
//
// Input: byte 0 selects the image (bits 0-1), whether the superblock checksums are recomputed after
// patching (bit 2: so the fuzzer gets past the CRC to hostile geometry, sizes and root table
// offsets), JSON or text output (bit 3) and, on the image with a huge block, which one reader runs
// (bits 4-7, modulo the 7 readers; the small images run them all). Byte 1 holds reader options.
// The rest is either the image itself (mode 0) or a list of patches applied to a real heap image
// built at start-up with the core's region API (mode 1: 2 MiB, its large block sampled but no site
// table, as after a repair dropped it; mode 2: 12 MiB with a huge block; mode 3: 3 MiB; modes 2
// and 3 with a site table and sampled large and huge blocks, written by hand: sites_image.h):
// patch = offset (4 bytes, little endian, modulo the image size), length (1 byte), bytes. A patch
// list keeps the inputs small while the images are megabytes; the patched bytes are restored after
// each run.
#include <stdlib.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <vector>

#include "check.h"
#include "include/persist.h"
#include "layout.h"
#include "progress.h"
#include "readers.h"
#include "rootlist.h"
#include "sitesread.h"
#include "superblock.h"
#include "../sites_image.h"

using namespace persist;
using namespace persist::tool;

namespace {

struct Base {
  uint8_t *mem = nullptr;
  size_t len = 0;
};
Base g_base[3];
FILE *g_null = nullptr;

// A heap in `size` bytes of memory: roots, lists of strings, blocks of many classes, a large
// block, frees (free slots and pages), optionally a huge block and a site table.
Base build(size_t size, bool huge, bool sites) {
  Base b;
  b.len = size;
  b.mem = static_cast<uint8_t *>(aligned_alloc(kPageSize, size));
  memset(b.mem, 0, size);
  persist_heap_t *h = nullptr;
  if (persist_open_region(b.mem, size, PERSIST_OPEN_CREATE, &h) != 0) abort();
  struct Node {
    Node *next;
    char *text;
  };
  auto **list = static_cast<Node **>(persist_heap_root(h, "list", sizeof(Node *)));
  char *cfg = static_cast<char *>(persist_heap_root(h, "config", 64));
  if (!list || !cfg) abort();
  strcpy(cfg, "CONFIG-NAME-XYZ");
  for (int i = 0; i < 40; ++i) {
    auto *n = static_cast<Node *>(persist_alloc(h, sizeof(Node)));
    n->text = static_cast<char *>(persist_alloc(h, 16 + i * 37));
    snprintf(n->text, 16, "node-%d", i);
    n->next = *list;
    *list = n;
    void *garbage = persist_alloc(h, 24 + i * 101);
    memset(garbage, 'g', 24);
    if (i % 3) persist_free(h, garbage);
  }
  char *large = static_cast<char *>(persist_alloc(h, 40000));
  strcpy(large, "LARGE-BLOCK");
  persist_heap_root_set(h, "large", large);
  persist_alloc(h, 100);  // leaked
  char *hb = nullptr;
  if (huge) {
    hb = static_cast<char *>(persist_alloc(h, 4u << 20));
    if (hb) {
      strcpy(hb, "HUGE-BLOCK");
      persist_heap_root_set(h, "huge", hb);
    }
  }
  char *const base = static_cast<char *>(persist_heap_base(h));
  if (!sites) {  // the large block sampled, the site table gone (as check --repair leaves it)
    const uint64_t off = static_cast<uint64_t>(large - base);
    persist_close(h);
    if (!sitesfx::mark_large(b.mem, b.len, off, sitesfx::record(3, 40000, 4096))) abort();
    return b;
  }
  // PERSIST_SITES: a site table and sampled blocks (the large block above, two leaked ones, the
  // huge block), as the recorder leaves them.
  char *table = static_cast<char *>(persist_alloc(h, sizeof(SiteTable)));
  char *s1 = static_cast<char *>(persist_alloc(h, 20000));
  char *s2 = static_cast<char *>(persist_alloc(h, 70000));
  if (!table || !s1 || !s2) abort();
  const uint64_t offs[] = {static_cast<uint64_t>(large - base), static_cast<uint64_t>(s1 - base),
                           static_cast<uint64_t>(s2 - base)};
  const uint64_t sizes[] = {40000, 20000, 70000};
  const uint64_t table_off = static_cast<uint64_t>(table - base);
  const uint64_t huge_off = hb ? static_cast<uint64_t>(hb - base) : 0;
  persist_close(h);
  SiteTable *t = sitesfx::make_table(b.mem, b.len, table_off);
  if (!t) abort();
  const uint8_t id[] = {0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4};
  sitesfx::add_module(t, 0, "/nonexistent/fuzz-program", id, sizeof id);
  sitesfx::add_module(t, 1, "/nonexistent/libfuzz.so", nullptr, 0);
  const uint8_t mods[] = {1, 2, 1, 0, 1};
  const uint32_t frames[] = {0x1234, 0x5678, 0x9abc, 0x7fff1234, 0x40};
  sitesfx::add_site(t, 5, 5, mods, frames);
  sitesfx::add_site(t, 77, 2, mods + 1, frames + 1);
  sitesfx::add_site(t, kSiteCapacity - 1, 1, mods, frames + 2);
  const uint32_t site_of[] = {5, 77, kSiteCapacity - 1};
  for (int i = 0; i < 3; ++i)
    if (!sitesfx::mark_large(b.mem, b.len, offs[i], sitesfx::record(site_of[i], sizes[i], 4096)))
      abort();
  if (huge_off && !sitesfx::mark_huge(b.mem, b.len, huge_off, sitesfx::record(77, 4u << 20, 65536)))
    abort();
  return b;
}

uint32_t le32(const uint8_t *p) { return p[0] | p[1] << 8 | p[2] << 16 | uint32_t{p[3]} << 24; }

void fix_checksums(uint8_t *mem, size_t len) {
  if (len < kPageSize) return;
  for (size_t slot = 0; slot < 2; ++slot) {
    Superblock sb;
    memcpy(&sb, mem + slot * kSuperSlotSize, sizeof sb);
    sb.checksum = 0;
    sb.checksum = crc32c(&sb, sizeof sb);
    memcpy(mem + slot * kSuperSlotSize, &sb, sizeof sb);
  }
}

void read_everything(const uint8_t *mem, size_t len, uint8_t flags, uint8_t opts, bool all,
                     uint64_t probe) {
  Superblock sb;
  Msg why;
  if (super_read(mem, len, &sb, &why) != 0) return;
  Source src;
  src.path = "fuzz.heap";
  src.img.mem = mem;
  src.img.len = len;
  src.img.sb = sb;
  src.file_bytes = src.disk_bytes = len;

  HeapReport rep;
  check_image(src.img, &rep, kCheckReachability);
  std::vector<RootInfo> roots;
  std::string problem;
  read_roots(src.img, &roots, &problem);

  const bool json = flags & 8;
  const unsigned pick = (flags >> 4) % 7;
  if (all || pick == 0) roots_report(src, RootsOptions{json}, g_null);
  if (all || pick == 1) {
    StatsOptions so;
    so.json = json;
    so.reachability = opts & 1;
    stats_report(src, so, g_null);
  }
  if (all || pick == 2) {
    BlocksOptions bo;
    bo.json = json;
    bo.needle = opts & 2 ? "node" : "";
    bo.limit = opts & 4 ? 5 : UINT64_MAX;
    bo.min_size = opts & 8 ? 64 : 0;
    blocks_report(src, bo, g_null);
  }
  if (all || pick == 3) {
    StringsOptions st;
    st.json = json;
    st.all = opts & 16;
    st.min_len = 3;
    strings_report(src, st, g_null);
  }
  if (all || pick == 4) {
    MapOptions mo;
    mo.json = json;
    mo.output = "fuzz.svg";
    mo.pages_per_cell = opts & 32 ? 0 : 1;
    map_report(src, mo, g_null, g_null);
  }
  if (all || pick == 5) {
    DumpOptions d;
    d.json = json;
    d.raw = !json && (opts & 64);
    d.by = DumpOptions::kOffset;
    d.where = probe % (len + kPageSize);
    dump_report(src, d, g_null);
    d.by = DumpOptions::kAddr;
    d.where = sb.base + probe % (len + kPageSize);
    d.has_length = opts & 128;
    d.length = 33;
    dump_report(src, d, g_null);
    d.by = DumpOptions::kRoot;
    d.root = roots.empty() ? "config" : roots[probe % roots.size()].tag;
    dump_report(src, d, g_null);
  }
  if (all || pick == 6) {
    SitesOptions so;
    so.json = json;
    so.leaks = opts & 1;
    so.depth = 1 + (opts >> 1) % 20;
    so.top = (opts >> 5) % 4;
    sites_report(src, so, g_null);
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int *, char ***) {
  progress_disable();
  g_null = fopen("/dev/null", "w");
  g_base[0] = build(2u << 20, false, false);  // one partial segment
  g_base[1] = build(12u << 20, true, true);    // three segments, one huge block
  g_base[2] = build(3u << 20, false, true);    // one partial segment, a site table
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 2) return 0;
  const uint8_t flags = data[0], opts = data[1];
  const int mode = flags & 3;
  data += 2, size -= 2;
  if (mode == 0) {  // the input is the image
    size_t room = (size + kPageSize) / kPageSize * kPageSize;  // readable past a short input
    auto *mem = static_cast<uint8_t *>(aligned_alloc(kPageSize, room));
    memset(mem, 0, room);
    memcpy(mem, data, size);
    if (flags & 4) fix_checksums(mem, room);
    read_everything(mem, size, flags, opts, true, size);
    free(mem);
    return 0;
  }
  Base &b = g_base[mode - 1];
  struct Saved {
    size_t off;
    std::vector<uint8_t> bytes;
  };
  std::vector<Saved> saved;
  uint8_t page0[kPageSize];
  memcpy(page0, b.mem, kPageSize);
  uint64_t probe = 0;
  while (size >= 5) {
    size_t off = le32(data) % b.len, n = data[4];
    data += 5, size -= 5;
    if (n > size) n = size;
    if (n > b.len - off) n = b.len - off;
    if (n == 0) continue;
    saved.push_back({off, std::vector<uint8_t>(b.mem + off, b.mem + off + n)});
    memcpy(b.mem + off, data, n);
    probe = probe * 31 + off;
    data += n, size -= n;
  }
  if (flags & 4) fix_checksums(b.mem, b.len);
  read_everything(b.mem, b.len, flags, opts, mode != 2, probe);
  for (auto it = saved.rbegin(); it != saved.rend(); ++it)
    memcpy(b.mem + it->off, it->bytes.data(), it->bytes.size());
  memcpy(b.mem, page0, kPageSize);
  return 0;
}
