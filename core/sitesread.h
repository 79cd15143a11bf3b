// sitesread.h — allocation sites in a heap image (read-only, untrusted input): the site table and
// the sampled blocks (layout.h "sampled allocations", "allocation sites"). Used by the collector
// (the table is kept like the heap's own area), the checker and `persist sites`.
//
// Everything here trusts nothing it reads: records and table entries are copied out of the image
// once and then validated (a live owner may be writing them), every offset is checked against the
// image, and a segment that does not walk (walk.h) is skipped, counted, and the scan goes on with
// the next one. Nothing allocates (the core also runs inside malloc), nothing needs libm.
#pragma once

#include <cstdint>

#include "msg.h"
#include "walk.h"

namespace persist {

class Reach;

// The site table's offset if sb.sites names a live block holding a well-formed table, else 0.
uint64_t sites_table(const Image &img);

// Copies entry `index` of the table at `table` (from sites_table) into *out when it is live and
// well formed: state kSiteLive, depth <= kSiteFrames. False otherwise (also when out of range).
bool site_entry(const Image &img, uint64_t table, uint32_t index, SiteEntry *out);
// Copies module `index` (0-based: a frame's module byte minus one) into *out when it is live and
// well formed: state kSiteLive, id_len <= kModuleIdMax; the path is NUL-terminated in the copy.
bool site_module(const Image &img, uint64_t table, uint32_t index, SiteModule *out);

// ---- sampled blocks ----------------------------------------------------------------------------

// Why a sample record is not counted.
enum SampleFault : unsigned {
  kSampleValid = 0,
  kSampleBadMagic,     // a large block flagged kLargeSampled whose record has the wrong magic
  kSampleNoTable,      // no readable site table: the site cannot be named
  kSampleBadSite,      // site index >= the table's capacity
  kSampleDeadSite,     // the site entry is not live (or not well formed)
  kSampleBadSize,      // size 0, or larger than the block's usable size
  kSampleBadInterval,  // interval 0
  kSampleFaults        // (count)
};
// "bad magic", "no site table", ... ; and a key for JSON: "bad_magic", "no_table", ...
const char *sample_fault_text(unsigned fault);
const char *sample_fault_key(unsigned fault);

struct Sample {
  uint64_t offset = 0;  // the block's first byte (heap offset)
  uint64_t usable = 0;  // its usable size: a large span less the record, a huge block's bytes
  bool huge = false;
  SampleRecord rec{};   // a copy of the record
  BlockRef block;       // the block, as walk.h names it (Reach::marked)
};

class SampleVisitor {
 public:
  virtual ~SampleVisitor() = default;
  virtual void sample(const Sample & /*s*/) {}                       // a valid sample
  virtual void invalid(const Sample & /*s*/, SampleFault /*why*/) {}  // a record not counted
};

struct SampleScan {
  uint64_t valid = 0;                     // samples passed to sample()
  uint64_t invalid = 0;                   // records passed to invalid()
  uint64_t fault[kSampleFaults] = {};     // invalid records by fault
  uint64_t segments_skipped = 0;          // segments that do not walk: their blocks are unseen
  uint64_t table = 0;                     // sites_table(img)
};

// Every sampled block of the image: for each live large block whose HEAD descriptor carries
// kLargeSampled, the record in the last sizeof(SampleRecord) bytes of its span; for each huge block
// whose header's sample carries kSampleMagic, that record. Validated against the block and the
// site table (SampleFault); visited in offset order. Returns 0, or PERSIST_E_CORRUPT when some
// segment does not walk (the first reason in `why`; the other segments are still scanned).
int scan_samples(const Image &img, SampleVisitor &v, SampleScan *scan, Msg *why);

// ---- estimation ---------------------------------------------------------------------------------

// The probability that an allocation of `size` bytes is sampled at mean interval `interval`:
// p = 1 - exp(-size / interval) (0 when size is 0; interval 0 counts as 1).
double sample_probability(uint64_t size, uint64_t interval);

// The per-site sums (Horvitz-Thompson): a sample of `size` bytes with probability p stands for
// 1/p blocks and size/p bytes; the variance of the byte estimate is estimated by
// sum((1 - p) * (size / p)^2), so its standard error is the square root of `bytes_var`.
struct SiteSum {
  uint64_t samples = 0;        // valid samples counted
  uint64_t sampled_bytes = 0;  // their requested bytes
  double blocks = 0;           // estimated live blocks
  double bytes = 0;            // estimated live bytes
  double bytes_var = 0;        // estimated variance of `bytes`
};

struct SiteTotals {
  SampleScan scan;
  bool unreached_only = false;   // sum_sites was given a Reach: only blocks no root reaches count
  uint64_t reached_skipped = 0;  // valid samples left out because a root reaches their block
  uint64_t sites = 0;            // sites with at least one counted sample
  uint64_t interval_min = 0, interval_max = 0;  // of the counted samples (0: none)
  SiteSum total;                 // all counted samples
  SiteSum site[kSiteCapacity];   // by site index
};

// Sums the valid samples by site into *out (reset first; the struct is large: ~160 KiB). With
// `reach` (already run over the same image), only samples whose block it did not mark count.
// Returns scan_samples's result.
int sum_sites(const Image &img, const Reach *reach, SiteTotals *out, Msg *why);

}  // namespace persist
