// sitesread.cpp — reading allocation sites from an image (see sitesread.h).
#include "sitesread.h"

namespace persist {

uint64_t sites_table(const Image &img) {
  uint64_t off = img.sb.sites;
  BlockRef b;
  if (!off || !find_block(img, off, &b) || !b.live || b.offset != off || b.size < sizeof(SiteTable))
    return 0;
  const auto *t = reinterpret_cast<const SiteTable *>(img.mem + off);
  bool ok = t->magic == kSiteTableMagic && t->capacity == kSiteCapacity &&
            t->modules == kSiteModules && t->frames == kSiteFrames;
  return ok ? off : 0;
}

}  // namespace persist
