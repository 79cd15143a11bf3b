// sitesread.cpp — reading allocation sites and sampled blocks from an image (see sitesread.h).
#include "sitesread.h"

#include <cstring>
#include <initializer_list>

#include "../core/include/persist.h"
#include "reach.h"

namespace persist {

uint64_t sites_table(const Image &img) {
  uint64_t off = img.sb.sites;
  if (!live_block_at(img, off, sizeof(SiteTable))) return 0;
  const auto *t = reinterpret_cast<const SiteTable *>(img.mem + off);
  bool ok = t->magic == kSiteTableMagic && t->capacity == kSiteCapacity &&
            t->modules == kSiteModules && t->frames == kSiteFrames;
  return ok ? off : 0;
}

namespace {

// The table at `table` lies inside the image (sites_table checked it; callers may pass anything).
bool table_in_image(const Image &img, uint64_t table) {
  return table && table <= img.len && img.len - table >= sizeof(SiteTable);
}

}  // namespace

bool site_entry(const Image &img, uint64_t table, uint32_t index, SiteEntry *out) {
  if (index >= kSiteCapacity || !table_in_image(img, table)) return false;
  memcpy(out, img.mem + table + offsetof(SiteTable, site) + uint64_t{index} * sizeof(SiteEntry),
         sizeof *out);
  return out->state == kSiteLive && out->depth <= kSiteFrames;
}

bool site_module(const Image &img, uint64_t table, uint32_t index, SiteModule *out) {
  if (index >= kSiteModules || !table_in_image(img, table)) return false;
  memcpy(out, img.mem + table + offsetof(SiteTable, module) + uint64_t{index} * sizeof(SiteModule),
         sizeof *out);
  out->path[sizeof out->path - 1] = 0;
  return out->state == kSiteLive && out->id_len <= kModuleIdMax;
}

const char *sample_fault_text(unsigned fault) {
  switch (fault) {
    case kSampleValid: return "valid";
    case kSampleBadMagic: return "bad record magic";
    case kSampleNoTable: return "no readable site table";
    case kSampleBadSite: return "site index out of range";
    case kSampleDeadSite: return "site entry not live";
    case kSampleBadSize: return "size 0 or larger than the block";
    case kSampleBadInterval: return "sampling interval 0";
  }
  return "?";
}

const char *sample_fault_key(unsigned fault) {
  switch (fault) {
    case kSampleValid: return "valid";
    case kSampleBadMagic: return "bad_magic";
    case kSampleNoTable: return "no_table";
    case kSampleBadSite: return "bad_site";
    case kSampleDeadSite: return "dead_site";
    case kSampleBadSize: return "bad_size";
    case kSampleBadInterval: return "bad_interval";
  }
  return "?";
}

namespace {

// Checks one walked segment's spans and collects nothing: the first pass (the records are read
// only from segments that walk completely, as HeapView shows only those).
class NullVisitor : public WalkVisitor {};

class Sampler : public WalkVisitor {
 public:
  Sampler(const Image &img, SampleVisitor &v, SampleScan *scan) : img_(img), v_(v), scan_(scan) {}

  void large(uint64_t page, uint32_t pages) override {
    const uint64_t seg = page / kSegmentPages, pg = page % kSegmentPages;
    const uint64_t hdr = seg * kSegmentSize + kHeaderOffset;
    if (hdr + sizeof(SegmentHeader) > img_.len) return;  // (walk_segment checked it)
    PageDesc d;
    memcpy(&d, img_.mem + hdr + offsetof(SegmentHeader, desc) + pg * sizeof(PageDesc), sizeof d);
    if (d.kind != kPageLargeHead || !(d.cls & kLargeSampled)) return;
    const uint64_t off = page * kPageSize, span = uint64_t{pages} * kPageSize;
    if (span < sizeof(SampleRecord) || off > img_.len || img_.len - off < span) return;
    Sample s;
    s.offset = off;
    s.usable = span - sizeof(SampleRecord);
    memcpy(&s.rec, img_.mem + off + s.usable, sizeof s.rec);
    s.block = BlockRef{off, span, page, kPageLargeHead, 0, true};
    judge(s);
  }

  void huge(uint64_t segment, uint32_t, uint64_t bytes) override {
    const uint64_t hdr = segment * kSegmentSize + kHeaderOffset;
    if (hdr + sizeof(SegmentHeader) > img_.len) return;
    Sample s;
    memcpy(&s.rec, img_.mem + hdr + offsetof(SegmentHeader, sample), sizeof s.rec);
    if (s.rec.magic != kSampleMagic) return;  // not sampled (the magic is its commit)
    s.offset = segment * kSegmentSize + kHugeFirstPage * kPageSize;
    s.usable = bytes;
    s.huge = true;
    s.block = BlockRef{s.offset, bytes, segment * kSegmentPages + kHugeFirstPage, -1, 0, true};
    judge(s);
  }

 private:
  void judge(const Sample &s) {
    SampleFault f = fault(s);
    if (f == kSampleValid) {
      ++scan_->valid;
      v_.sample(s);
    } else {
      ++scan_->invalid, ++scan_->fault[f];
      v_.invalid(s, f);
    }
  }
  SampleFault fault(const Sample &s) const {
    const SampleRecord &r = s.rec;
    if (r.magic != kSampleMagic) return kSampleBadMagic;
    if (!scan_->table) return kSampleNoTable;
    if (r.site >= kSiteCapacity) return kSampleBadSite;
    SiteEntry e;
    if (!site_entry(img_, scan_->table, r.site, &e)) return kSampleDeadSite;
    if (r.size == 0 || r.size > s.usable) return kSampleBadSize;
    if (r.interval == 0) return kSampleBadInterval;
    return kSampleValid;
  }
  const Image &img_;
  SampleVisitor &v_;
  SampleScan *scan_;
};

}  // namespace

int scan_samples(const Image &img, SampleVisitor &v, SampleScan *scan, Msg *why) {
  *scan = SampleScan{};
  scan->table = sites_table(img);
  const uint64_t nseg = img.segment_count();
  int rc = 0;
  for (uint64_t i = 0; i < nseg;) {
    if (i * kSegmentSize >= img.len) {  // the rest of the extent is past the end of the image
      if (!rc) {
        why->add("segments ").dec(i).add(" to ").dec(nseg - 1).add(" lie past the end of the file");
        rc = PERSIST_E_CORRUPT;
      }
      scan->segments_skipped += nseg - i;
      break;
    }
    NullVisitor check;
    Msg seg_why;
    uint64_t next = i + 1;
    if (walk_segment(img, i, check, &seg_why, &next) != 0 || next <= i) {
      if (!rc) {
        why->add(seg_why.empty() ? "a segment does not walk" : seg_why.str());
        rc = PERSIST_E_CORRUPT;
      }
      ++scan->segments_skipped;
      ++i;
      continue;
    }
    Sampler s(img, v, scan);
    Msg again;
    uint64_t next2 = next;
    walk_segment(img, i, s, &again, &next2);  // walks as it did (a live owner may differ: checked)
    i = next;
  }
  return rc;
}

// ---- estimation ---------------------------------------------------------------------------------

namespace {

// exp(-y) for 0 <= y < 0.5 by its series (terms fall below 1e-19 relative well before 24).
double exp_neg_small(double y) {
  double term = 1, sum = 1;
  for (int k = 1; k < 24; ++k) {
    term *= -y / k;
    sum += term;
  }
  return sum;
}

}  // namespace

double sample_probability(uint64_t size, uint64_t interval) {
  if (size == 0) return 0;
  if (interval == 0) interval = 1;
  const double x = static_cast<double>(size) / static_cast<double>(interval);
  if (x >= 64) return 1;  // exp(-64) < 2^-92: 1 - that is 1 in a double
  if (x < 0.5) {
    // 1 - exp(-x) = x - x^2/2! + x^3/3! - ...: summed directly, no cancellation for small x.
    double term = x, sum = x;
    for (int k = 2; k < 24; ++k) {
      term *= -x / k;
      sum += term;
    }
    return sum;
  }
  // exp(-x) = exp(-x / 2^m)^(2^m) with x / 2^m < 0.5 (m <= 7): p >= 0.39, no cancellation.
  int m = 0;
  double y = x;
  while (y >= 0.5) y /= 2, ++m;
  double e = exp_neg_small(y);
  while (m--) e *= e;
  return 1 - e;
}

namespace {

class Summer : public SampleVisitor {
 public:
  Summer(const Reach *reach, SiteTotals *out) : reach_(reach), out_(out) {}
  void sample(const Sample &s) override {
    if (reach_ && reach_->marked(s.block)) {
      ++out_->reached_skipped;
      return;
    }
    const double p = sample_probability(s.rec.size, s.rec.interval);
    if (!(p > 0)) return;  // (size and interval are non-zero in a valid sample)
    const double size = static_cast<double>(s.rec.size);
    SiteSum &site = out_->site[s.rec.site];
    if (site.samples == 0) ++out_->sites;
    for (SiteSum *sum : {&site, &out_->total}) {
      ++sum->samples;
      sum->sampled_bytes += s.rec.size;
      sum->blocks += 1 / p;
      sum->bytes += size / p;
      sum->bytes_var += (1 - p) * (size / p) * (size / p);
    }
    if (!out_->interval_min || s.rec.interval < out_->interval_min) out_->interval_min = s.rec.interval;
    if (s.rec.interval > out_->interval_max) out_->interval_max = s.rec.interval;
  }

 private:
  const Reach *reach_;
  SiteTotals *out_;
};

}  // namespace

int sum_sites(const Image &img, const Reach *reach, SiteTotals *out, Msg *why) {
  memset(static_cast<void *>(out), 0, sizeof *out);
  out->unreached_only = reach != nullptr;
  Summer s(reach, out);
  return scan_samples(img, s, &out->scan, why);
}

}  // namespace persist
