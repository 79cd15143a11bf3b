// sitesread.h — allocation sites in a heap image (read-only, untrusted input): the site table and
// the sampled blocks (layout.h "sampled allocations", "allocation sites"). Used by the collector
// (the table is kept like the heap's own area), the checker and `persist sites`.
#pragma once

#include <cstdint>

#include "walk.h"

namespace persist {

// The site table's offset if sb.sites names a live block holding a well-formed table, else 0.
uint64_t sites_table(const Image &img);

}  // namespace persist
