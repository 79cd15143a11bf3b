// rootlist.cpp — see rootlist.h. Reads the root table chain (layout.h: RootTableHeader followed
// by `capacity` RootEntry slots, chained by `next`) with memcpy, never through a pointer cast, so
// a misaligned or out-of-range offset in a damaged file cannot fault.
#include "rootlist.h"

#include <cstring>
#include <set>

#include "layout.h"
#include "tool.h"

namespace persist::tool {

bool read_roots(const Image &img, std::vector<RootInfo> *out, std::string *problem) {
  out->clear();
  uint64_t off = img.sb.root_table;
  std::set<uint64_t> seen;  // tables visited: a repeat is a cycle
  // Tables are heap blocks of kRootTableBytes that do not overlap: no more fit in the image.
  const uint64_t max_tables = img.len / kRootTableBytes;
  while (off != 0) {
    if (!seen.insert(off).second) {
      *problem = "root table chain loops back to the table at " + fmt_hex(off);
      return false;
    }
    if (seen.size() > max_tables) {
      *problem = "root table chain is longer than the file has room for";
      return false;
    }
    if (off % kSlotSize) {  // a table is a heap block: it starts on a slot boundary
      *problem = "root table at " + fmt_hex(off) + " is misaligned";
      return false;
    }
    if (off >= img.len || img.len - off < sizeof(RootTableHeader)) {
      *problem = "root table at " + fmt_hex(off) + " lies outside the file";
      return false;
    }
    RootTableHeader h;
    memcpy(&h, img.mem + off, sizeof h);
    if (h.magic != kRootTableMagic) {
      *problem = "root table at " + fmt_hex(off) + " has a bad magic";
      return false;
    }
    if (h.capacity > kRootsPerTable) {
      *problem = "root table at " + fmt_hex(off) + " claims " + std::to_string(h.capacity) +
                 " entries (at most " + std::to_string(kRootsPerTable) + ")";
      return false;
    }
    if ((img.len - off - sizeof h) / sizeof(RootEntry) < h.capacity) {
      *problem = "root table at " + fmt_hex(off) + " runs past the end of the file";
      return false;
    }
    for (uint32_t i = 0; i < h.capacity; ++i) {
      RootEntry e;
      memcpy(&e, img.mem + off + sizeof h + uint64_t{i} * sizeof e, sizeof e);
      if (e.state != kRootLive) continue;
      RootInfo r;
      r.tag.assign(e.tag, strnlen(e.tag, sizeof e.tag));
      r.offset = e.offset;
      r.size = e.size;
      r.type = e.type;
      r.in_bounds = e.offset < img.len && e.size <= img.len - e.offset;
      out->push_back(std::move(r));
    }
    off = h.next;
  }
  return true;
}

}  // namespace persist::tool
