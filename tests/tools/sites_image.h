// sites_image.h — writing the PERSIST_SITES format (core/layout.h "sampled allocations",
// "allocation sites") into a heap image by hand, for the tests of the reading side (sites_test.cpp)
// and the fuzz target: a site table in a block the heap allocated, modules and sites in it, the
// superblock naming it, and sample records on large and huge blocks. Header-only; works on an
// image in memory (a file heap read into a buffer, or a region heap after persist_close).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "layout.h"
#include "superblock.h"
#include "walk.h"

namespace sitesfx {

using namespace persist;

// The image of mem[0, len) with its current superblock (false when it has none).
inline bool image_of(const uint8_t *mem, size_t len, Image *img) {
  Msg why;
  Superblock sb;
  if (super_read(mem, len, &sb, &why) != 0) return false;
  img->mem = mem, img->len = len, img->sb = sb;
  return true;
}

inline SampleRecord record(uint32_t site, uint64_t size, uint64_t interval) {
  SampleRecord r{};
  r.magic = kSampleMagic, r.site = site, r.size = size, r.interval = interval;
  return r;
}

// The HEAD descriptor of the large block at `off` (nullptr when off is not a live large block).
inline PageDesc *large_head(uint8_t *mem, size_t len, uint64_t off, BlockRef *b) {
  Image img;
  if (!image_of(mem, len, &img) || !find_block(img, off, b) || !b->live || b->offset != off ||
      b->kind != kPageLargeHead)
    return nullptr;
  uint64_t seg = b->span_page / kSegmentPages, pg = b->span_page % kSegmentPages;
  auto *h = reinterpret_cast<SegmentHeader *>(mem + seg * kSegmentSize + kHeaderOffset);
  return &h->desc[pg];
}

// Makes the large block at `off` a sampled one: `rec` in the span's last 32 bytes, then the flag.
inline bool mark_large(uint8_t *mem, size_t len, uint64_t off, const SampleRecord &rec) {
  BlockRef b;
  PageDesc *d = large_head(mem, len, off, &b);
  if (!d) return false;
  memcpy(mem + off + b.size - sizeof rec, &rec, sizeof rec);
  d->cls |= kLargeSampled;
  return true;
}

// The huge block at `off`: its sample goes into its segment header.
inline bool mark_huge(uint8_t *mem, size_t len, uint64_t off, const SampleRecord &rec) {
  Image img;
  BlockRef b;
  if (!image_of(mem, len, &img) || !find_block(img, off, &b) || b.kind != -1 || b.offset != off)
    return false;
  uint64_t seg = off / kSegmentSize;
  auto *h = reinterpret_cast<SegmentHeader *>(mem + seg * kSegmentSize + kHeaderOffset);
  h->sample = rec;
  return true;
}

// Formats an empty site table in the block at `off` (at least sizeof(SiteTable) bytes) and names
// it in the superblock.
inline SiteTable *make_table(uint8_t *mem, size_t len, uint64_t off) {
  auto *t = reinterpret_cast<SiteTable *>(mem + off);
  memset(t, 0, sizeof *t);
  t->magic = kSiteTableMagic, t->capacity = kSiteCapacity, t->modules = kSiteModules;
  t->frames = kSiteFrames;
  Image img;
  if (!image_of(mem, len, &img)) return nullptr;
  Superblock sb = img.sb;
  sb.sites = off;
  super_write(mem, sb);
  return t;
}

inline void set_superblock_sites(uint8_t *mem, size_t len, uint64_t off) {
  Image img;
  if (!image_of(mem, len, &img)) return;
  Superblock sb = img.sb;
  sb.sites = off;
  super_write(mem, sb);
}

// Module `index` (0-based); frames name it as index + 1.
inline void add_module(SiteTable *t, uint32_t index, const char *path, const uint8_t *id,
                       uint32_t id_len) {
  SiteModule &m = t->module[index];
  m.id_len = id_len;
  if (id_len) memcpy(m.build_id, id, id_len);
  strncpy(m.path, path, sizeof m.path - 1);
  m.state = kSiteLive;
}

// Site `index` with `depth` frames: modules[k] is 1 + a module index (0: none).
inline void add_site(SiteTable *t, uint32_t index, uint16_t depth, const uint8_t *modules,
                     const uint32_t *offsets) {
  SiteEntry &e = t->site[index];
  e.depth = depth;
  for (uint16_t k = 0; k < depth && k < kSiteFrames; ++k) e.module[k] = modules[k], e.offset[k] = offsets[k];
  e.hash = index;
  e.state = kSiteLive;
}

}  // namespace sitesfx
