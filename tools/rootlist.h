// rootlist.h — reading the root table of an untrusted heap image for display (info, roots, dump
// --root). Validation of the roots themselves (each points at a live block) is the
// checker's job (check.h); this only follows the chain safely and lists the published entries.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "walk.h"

namespace persist::tool {

struct RootInfo {
  std::string tag;      // raw bytes up to the NUL (may be non-printable in a damaged file)
  uint64_t offset = 0;  // offset of the block from the heap base (0: none)
  uint64_t size = 0;    // size recorded in the entry
  uint64_t type = 0;    // type identity of a typed root (0: untyped)
  bool in_bounds = true;  // [offset, offset + size) lies inside the image
};

// Lists the published (kRootLive) entries of the root table chain, in table order. Every table
// offset is checked (aligned, inside img.len) and a cycle or an overlong chain ends the walk.
// Returns true when the whole chain was read; false with the reason in *problem otherwise (the
// entries read before the problem are still in *out).
bool read_roots(const Image &img, std::vector<RootInfo> *out, std::string *problem);

}  // namespace persist::tool
