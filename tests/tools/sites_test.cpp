// sites_test — the reading side of PERSIST_SITES: core/sitesread.h (enumeration and validation of
// sample records, the site table, the estimates, the leak filter), tools/symbols.h (the ELF
// reader and symbolizer, on fixture programs built as PIE and non-PIE) and `persist sites`
// (report and command line). Heaps are made with the core API and the samples and site table
// written by hand into their images (sites_image.h). Linked with the sanitized build of the core
// and the tool (persist_toollib_asan), so the damaged-input cases run under ASan and UBSan.
#include <elf.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "check.h"
#include "persist.h"
#include "progress.h"
#include "reach.h"
#include "readers.h"
#include "sites_image.h"
#include "sitesread.h"
#include "symbols.h"
#include "testutil.h"
#include "tool.h"

extern "C" const char *__asan_default_options() { return "detect_leaks=0"; }

namespace {

using namespace persist;
using namespace persist::tool;

constexpr uintptr_t kAddr = 0x530000000000ull;
constexpr uint64_t kInterval = 4096;

// ---- fixtures ------------------------------------------------------------------------------------

std::string slurp(const std::string &path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

void spill(const std::string &path, const std::string &bytes) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::string run_capture(const std::string &cmd) {
  std::string out;
  FILE *p = popen(cmd.c_str(), "r");
  if (!p) return out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  pclose(p);
  return out;
}

// Function symbols of a binary by nm: name -> (address, size).
std::map<std::string, std::pair<uint64_t, uint64_t>> nm_functions(const std::string &file) {
  std::map<std::string, std::pair<uint64_t, uint64_t>> out;
  std::istringstream in(run_capture(std::string(PERSIST_NM) + " --defined-only -S '" + file + "'"));
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream l(line);
    std::string addr, size, type, name;
    if (!(l >> addr >> size >> type >> name)) continue;
    if (type != "T" && type != "t") continue;
    out[name] = {std::stoull(addr, nullptr, 16), std::stoull(size, nullptr, 16)};
  }
  return out;
}

std::vector<uint8_t> build_id_of(const std::string &file) {
  ElfFile f;
  std::string why;
  EXPECT_TRUE(f.open(file, &why)) << why;
  return f.build_id();
}

// A heap image built with the core API; the samples and the table are written into `bytes`.
struct Heap {
  std::string bytes;
  uint64_t table = 0;                 // the block reserved for the site table
  std::vector<uint64_t> large;        // large blocks, in allocation order
  std::vector<uint64_t> large_sizes;  // the sizes asked for
  uint64_t huge = 0, huge2 = 0;       // two huge blocks (huge2 stays unsampled)
  uint64_t rooted = 0;                // the large block root "keep" names
  uint8_t *mem() { return reinterpret_cast<uint8_t *>(&bytes[0]); }
  Image img() {
    Image i;
    EXPECT_TRUE(sitesfx::image_of(mem(), bytes.size(), &i));
    return i;
  }
};

// `n_large` large blocks of the given sizes (cycled), two huge blocks; a root "keep" names the
// first large block; a block reserved for the site table (named by the superblock only later).
Heap make_heap(const std::string &path, int n_large, std::vector<uint64_t> sizes, bool with_huge = true) {
  persist_heap_t *h = nullptr;
  persist_options_t o{kAddr, 0, PERSIST_OPEN_CREATE, 0};
  EXPECT_EQ(0, persist_open(path.c_str(), &o, &h));
  char *base = static_cast<char *>(persist_heap_base(h));
  Heap r;
  void *t = persist_alloc(h, sizeof(SiteTable));
  r.table = static_cast<uint64_t>(static_cast<char *>(t) - base);
  for (int i = 0; i < n_large; ++i) {
    uint64_t size = sizes[static_cast<size_t>(i) % sizes.size()];
    char *p = static_cast<char *>(persist_alloc(h, size));
    EXPECT_NE(nullptr, p);
    memset(p, 0, size);
    r.large.push_back(static_cast<uint64_t>(p - base));
    r.large_sizes.push_back(size);
    if (i == 0) {
      EXPECT_EQ(0, persist_heap_root_set(h, "keep", p));
      r.rooted = r.large.back();
    }
  }
  if (with_huge) {
    char *hb = static_cast<char *>(persist_alloc(h, 5u << 20));
    char *hb2 = static_cast<char *>(persist_alloc(h, 5u << 20));
    EXPECT_NE(nullptr, hb);
    EXPECT_NE(nullptr, hb2);
    r.huge = static_cast<uint64_t>(hb - base);
    r.huge2 = static_cast<uint64_t>(hb2 - base);
  }
  EXPECT_EQ(0, persist_close(h));
  r.bytes = slurp(path);
  return r;
}

// Three sites (0, 7, 4095) over fixture modules; site 9 stays empty.
SiteTable *add_table(Heap &hp, const std::string &module_path = "/nonexistent/prog",
                     const std::vector<uint8_t> &id = {1, 2, 3, 4}) {
  SiteTable *t = sitesfx::make_table(hp.mem(), hp.bytes.size(), hp.table);
  sitesfx::add_module(t, 0, module_path.c_str(), id.data(), static_cast<uint32_t>(id.size()));
  sitesfx::add_module(t, 1, "/nonexistent/libother.so", nullptr, 0);
  const uint8_t mods[] = {1, 1, 2, 0};
  const uint32_t offs0[] = {0x1000, 0x2000, 0x300, 0x12345678};
  sitesfx::add_site(t, 0, 4, mods, offs0);
  const uint32_t offs7[] = {0x1100, 0x2100};
  sitesfx::add_site(t, 7, 2, mods, offs7);
  const uint32_t offs4095[] = {0x1200};
  sitesfx::add_site(t, 4095, 1, mods, offs4095);
  return t;
}

uint64_t usable_of(Heap &hp, uint64_t off) {
  BlockRef b;
  Image img = hp.img();
  EXPECT_TRUE(find_block(img, off, &b));
  return b.kind == -1 ? b.size : b.size - sizeof(SampleRecord);
}

class Collect : public SampleVisitor {
 public:
  void sample(const Sample &s) override { valid.push_back(s); }
  void invalid(const Sample &s, SampleFault f) override { bad.push_back({s, f}); }
  std::vector<Sample> valid;
  std::vector<std::pair<Sample, SampleFault>> bad;
};

// A report into a string (sites_report writes to a FILE).
int report(Heap &hp, const SitesOptions &o, std::string *out) {
  Source src;
  src.path = "test.heap";
  src.img = hp.img();
  src.file_bytes = src.disk_bytes = hp.bytes.size();
  char *buf = nullptr;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  int rc = sites_report(src, o, f);
  fclose(f);
  out->assign(buf, len);
  free(buf);
  return rc;
}

nlohmann::json report_json(Heap &hp, SitesOptions o, int *rc) {
  o.json = true;
  std::string out;
  *rc = report(hp, o, &out);
  return nlohmann::json::parse(out);
}

// run_tool in a forked child: its exit status and stdout (stderr into *err).
int tool(std::vector<std::string> args, std::string *out, std::string *err = nullptr) {
  ptest::TempDir d;
  std::string o = d.file("out"), e = d.file("err");
  fflush(nullptr);
  pid_t pid = fork();
  if (pid == 0) {
    if (!freopen(o.c_str(), "w", stdout) || !freopen(e.c_str(), "w", stderr)) _exit(99);
    args.insert(args.begin(), "persist");
    std::vector<char *> argv;
    for (auto &a : args) argv.push_back(&a[0]);
    argv.push_back(nullptr);
    int rc = run_tool(static_cast<int>(args.size()), argv.data());
    fflush(stdout), fflush(stderr);
    _exit(rc);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  *out = slurp(o);
  if (err) *err = slurp(e);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 1000 + WTERMSIG(status);
}

class SitesTest : public ::testing::Test {
 protected:
  void SetUp() override { progress_disable(); }
  ptest::TempDir dir;
};

// ---- estimation -----------------------------------------------------------------------------------

TEST(SitesMath, ProbabilityMatchesLibm) {
  const uint64_t intervals[] = {1, 7, 512, 4096, 65536, 1u << 20, 1ull << 40};
  for (uint64_t r : intervals)
    for (uint64_t s = 1; s < (1ull << 50); s = s * 3 + 1) {
      double want = -std::expm1(-static_cast<double>(s) / static_cast<double>(r));
      double got = sample_probability(s, r);
      ASSERT_NEAR(got, want, 1e-13 * want) << "size " << s << " interval " << r;
      ASSERT_GT(got, 0);
      ASSERT_LE(got, 1);
    }
  EXPECT_EQ(0, sample_probability(0, 4096));
  EXPECT_EQ(1, sample_probability(1ull << 40, 1));
  EXPECT_GT(sample_probability(5, 0), 0.99);  // interval 0 counts as 1
}

// The estimator the tool uses is unbiased: Poisson sampling over allocated bytes (each allocation
// of s bytes sampled with p = 1 - exp(-s/R)), weighted by 1/p, gives back the true live bytes and
// blocks within the standard error it reports.
TEST(SitesMath, HorvitzThompsonUnbiased) {
  std::mt19937_64 rng(42);
  std::uniform_real_distribution<double> u(0, 1);
  const uint64_t sizes[] = {24, 100, 700, 4000, 20000, 300000};
  for (uint64_t interval : {512ull, 4096ull, 65536ull}) {
    double true_bytes = 0, true_blocks = 0, est_bytes = 0, est_blocks = 0, var = 0, var_blocks = 0;
    for (int i = 0; i < 400000; ++i) {
      uint64_t s = sizes[rng() % 6];
      true_bytes += s, true_blocks += 1;
      double p = sample_probability(s, interval);
      if (u(rng) < p) {
        est_bytes += s / p, est_blocks += 1 / p;
        var += (1 - p) * (s / p) * (s / p);
        var_blocks += (1 - p) / (p * p);
      }
    }
    double se = std::sqrt(var);
    EXPECT_NEAR(est_bytes, true_bytes, 4 * se) << "interval " << interval;
    EXPECT_NEAR(est_blocks, true_blocks, 4 * std::sqrt(var_blocks)) << "interval " << interval;
    EXPECT_LT(se / true_bytes, 0.05);
  }
}

// ---- enumeration and validation ----------------------------------------------------------------------

TEST_F(SitesTest, EnumeratesSampledLargeAndHugeBlocks) {
  Heap hp = make_heap(dir.file("a.heap"), 12, {20000, 4096 * 6 - 32, 16385, 100000, 4096 * 5 - 100});
  add_table(hp);
  uint8_t *m = hp.mem();
  const size_t len = hp.bytes.size();
  // Sample every other large block; large[1] stays unsampled, as does the second huge block.
  std::map<uint64_t, SampleRecord> want;
  for (size_t i = 0; i < hp.large.size(); i += 2) {
    SampleRecord r = sitesfx::record(i % 4 ? 7 : 0, hp.large_sizes[i] - i, kInterval + i);
    ASSERT_TRUE(sitesfx::mark_large(m, len, hp.large[i], r));
    want[hp.large[i]] = r;
  }
  SampleRecord hr = sitesfx::record(4095, 5u << 20, 1u << 20);
  ASSERT_TRUE(sitesfx::mark_huge(m, len, hp.huge, hr));
  want[hp.huge] = hr;

  Image img = hp.img();
  EXPECT_EQ(hp.table, sites_table(img));
  Collect c;
  SampleScan scan;
  Msg why;
  EXPECT_EQ(0, scan_samples(img, c, &scan, &why)) << why.str();
  EXPECT_TRUE(c.bad.empty());
  EXPECT_EQ(want.size(), scan.valid);
  EXPECT_EQ(0u, scan.invalid);
  EXPECT_EQ(0u, scan.segments_skipped);
  ASSERT_EQ(want.size(), c.valid.size());
  uint64_t last = 0;
  for (const Sample &s : c.valid) {
    EXPECT_GE(s.offset, last) << "offset order";
    last = s.offset;
    ASSERT_TRUE(want.count(s.offset)) << s.offset;
    EXPECT_EQ(0, memcmp(&want[s.offset], &s.rec, sizeof s.rec));
    EXPECT_EQ(usable_of(hp, s.offset), s.usable);
    EXPECT_EQ(s.offset == hp.huge, s.huge);
    EXPECT_EQ(s.offset, s.block.offset);
    BlockRef b;
    ASSERT_TRUE(find_block(img, s.offset, &b));
    EXPECT_EQ(b.span_page, s.block.span_page);
    EXPECT_EQ(b.kind, s.block.kind);
  }
  // The heap stays consistent for the checker with the flags and records in place.
  HeapReport rep;
  EXPECT_EQ(0, check_image(img, &rep)) << rep.first_problem.str();
}

TEST_F(SitesTest, SumsBySiteWithTheEstimates) {
  Heap hp = make_heap(dir.file("a.heap"), 30, {20000, 50000, 19000}, false);
  add_table(hp);
  const uint32_t site_of[] = {0, 7, 4095};
  double want_bytes[kSiteCapacity] = {}, want_blocks[kSiteCapacity] = {}, want_var[kSiteCapacity] = {};
  uint64_t want_samples[kSiteCapacity] = {};
  for (size_t i = 0; i < hp.large.size(); ++i) {
    uint32_t site = site_of[i % 3];
    uint64_t size = hp.large_sizes[i] - 17 * i, interval = i % 2 ? 4096 : 65536;
    ASSERT_TRUE(sitesfx::mark_large(hp.mem(), hp.bytes.size(), hp.large[i], sitesfx::record(site, size, interval)));
    double p = -std::expm1(-static_cast<double>(size) / static_cast<double>(interval));
    want_bytes[site] += size / p, want_blocks[site] += 1 / p;
    want_var[site] += (1 - p) * (size / p) * (size / p);
    ++want_samples[site];
  }
  Image img = hp.img();
  std::unique_ptr<SiteTotals> t(new SiteTotals);
  Msg why;
  ASSERT_EQ(0, sum_sites(img, nullptr, t.get(), &why));
  EXPECT_EQ(3u, t->sites);
  EXPECT_EQ(4096u, t->interval_min);
  EXPECT_EQ(65536u, t->interval_max);
  double total = 0;
  for (uint32_t s : site_of) {
    EXPECT_EQ(want_samples[s], t->site[s].samples);
    EXPECT_NEAR(want_bytes[s], t->site[s].bytes, 1e-9 * want_bytes[s]);
    EXPECT_NEAR(want_blocks[s], t->site[s].blocks, 1e-9 * want_blocks[s]);
    EXPECT_NEAR(want_var[s], t->site[s].bytes_var, 1e-9 * want_var[s] + 1e-6);
    total += want_bytes[s];
  }
  EXPECT_NEAR(total, t->total.bytes, 1e-9 * total);
  EXPECT_EQ(30u, t->total.samples);

  // The report: sorted by bytes, shares summing to 100, the JSON keys documented in README.md.
  int rc = 0;
  nlohmann::json j = report_json(hp, SitesOptions{}, &rc);
  EXPECT_EQ(kExitOk, rc);
  EXPECT_EQ("present", j["site_table"]);
  EXPECT_EQ(3u, j["sites_total"]);
  ASSERT_EQ(3u, j["sites"].size());
  double share = 0, prev = 1e300;
  for (auto &s : j["sites"]) {
    double b = s["estimated_bytes"].get<double>();
    EXPECT_LE(b, prev);
    prev = b;
    share += s["share_pct"].get<double>();
    uint32_t idx = s["site"];
    EXPECT_NEAR(want_bytes[idx], b, 1);
    EXPECT_EQ(want_samples[idx], s["samples"]);
    for (const char *k : {"estimated_bytes_stderr", "estimated_blocks", "sampled_bytes", "depth", "frames"})
      EXPECT_TRUE(s.contains(k)) << k;
  }
  EXPECT_NEAR(100, share, 0.05);
  // Site 0's frames: two in the program, one in a module without build-id, one in no module.
  for (auto &s : j["sites"]) {
    if (s["site"] != 0) continue;
    ASSERT_EQ(4u, s["frames"].size());
    EXPECT_EQ("/nonexistent/prog", s["frames"][0]["module"]);
    EXPECT_EQ("01020304", s["frames"][0]["build_id"]);
    EXPECT_EQ(0x1000u, s["frames"][0]["offset"]);
    EXPECT_TRUE(s["frames"][0]["symbol"].is_null());
    EXPECT_EQ("prog+0x1000", s["frames"][0]["text"]);
    EXPECT_TRUE(s["frames"][2]["build_id"].is_null());
    EXPECT_EQ("libother.so+0x300", s["frames"][2]["text"]);
    EXPECT_TRUE(s["frames"][3]["module"].is_null());
    EXPECT_EQ(0x12345678u, s["frames"][3]["offset"]);
  }
  ASSERT_EQ(2u, j["modules"].size());
  EXPECT_EQ("missing", j["modules"][0]["status"]);

  // --top 1, and text with --depth 1.
  SitesOptions o;
  o.top = 1;
  j = report_json(hp, o, &rc);
  EXPECT_EQ(1u, j["sites"].size());
  EXPECT_EQ(3u, j["sites_total"]);
  std::string text;
  o.depth = 1;
  EXPECT_EQ(kExitOk, report(hp, o, &text));
  EXPECT_NE(std::string::npos, text.find("3 allocation sites, 30 samples")) << text;
  EXPECT_NE(std::string::npos, text.find("... 2 more sites (--top)")) << text;
  EXPECT_NE(std::string::npos, text.find("more frame")) << text;
  EXPECT_NE(std::string::npos, text.find("note: frames in prog are shown as offsets (missing)")) << text;
}

TEST_F(SitesTest, InvalidRecordsAreCountedNotSummed) {
  Heap hp = make_heap(dir.file("a.heap"), 10, {30000});
  SiteTable *t = add_table(hp);
  // A damaged entry (depth past the frames) and an empty one.
  t->site[100].state = kSiteLive, t->site[100].depth = kSiteFrames + 1;
  uint8_t *m = hp.mem();
  const size_t len = hp.bytes.size();
  const uint64_t u = usable_of(hp, hp.large[0]);
  struct Case {
    SampleRecord rec;
    SampleFault fault;
  } cases[] = {
      {sitesfx::record(0, 1000, kInterval), kSampleValid},
      {sitesfx::record(0, 1000, kInterval), kSampleBadMagic},  // magic changed below
      {sitesfx::record(kSiteCapacity, 1000, kInterval), kSampleBadSite},
      {sitesfx::record(UINT32_MAX, 1000, kInterval), kSampleBadSite},
      {sitesfx::record(9, 1000, kInterval), kSampleDeadSite},    // empty entry
      {sitesfx::record(100, 1000, kInterval), kSampleDeadSite},  // damaged entry
      {sitesfx::record(7, 0, kInterval), kSampleBadSize},
      {sitesfx::record(7, u + 1, kInterval), kSampleBadSize},
      {sitesfx::record(7, u, 0), kSampleBadInterval},
      {sitesfx::record(7, u, kInterval), kSampleValid},  // exactly the usable size
  };
  cases[1].rec.magic = 0x12345678;
  ASSERT_EQ(10u, hp.large.size());
  for (size_t i = 0; i < 10; ++i) ASSERT_TRUE(sitesfx::mark_large(m, len, hp.large[i], cases[i].rec));
  // The huge block: a record with a bad site.
  ASSERT_TRUE(sitesfx::mark_huge(m, len, hp.huge, sitesfx::record(5000, 10, 10)));

  Image img = hp.img();
  Collect c;
  SampleScan scan;
  Msg why;
  EXPECT_EQ(0, scan_samples(img, c, &scan, &why));
  EXPECT_EQ(2u, scan.valid);
  EXPECT_EQ(9u, scan.invalid);
  EXPECT_EQ(1u, scan.fault[kSampleBadMagic]);
  EXPECT_EQ(3u, scan.fault[kSampleBadSite]);
  EXPECT_EQ(2u, scan.fault[kSampleDeadSite]);
  EXPECT_EQ(2u, scan.fault[kSampleBadSize]);
  EXPECT_EQ(1u, scan.fault[kSampleBadInterval]);
  for (auto &b : c.bad) {
    if (b.first.offset == hp.huge) {
      EXPECT_EQ(kSampleBadSite, b.second);
      continue;
    }
    size_t i = 0;
    while (hp.large[i] != b.first.offset) ++i;
    EXPECT_EQ(cases[i].fault, b.second) << "case " << i;
  }
  // The report counts them as problems: exit 1, the valid ones still listed.
  int rc = 0;
  nlohmann::json j = report_json(hp, SitesOptions{}, &rc);
  EXPECT_EQ(kExitInconsistent, rc);
  EXPECT_FALSE(j["consistent"].get<bool>());
  EXPECT_EQ(9u, j["invalid_samples"]);
  EXPECT_EQ(3u, j["invalid"]["bad_site"]);
  EXPECT_EQ(2u, j["samples"]);
  EXPECT_EQ(2u, j["sites"].size());
}

TEST_F(SitesTest, NoTableDamagedTable) {
  Heap hp = make_heap(dir.file("a.heap"), 4, {30000});
  uint8_t *m = hp.mem();
  const size_t len = hp.bytes.size();
  ASSERT_TRUE(sitesfx::mark_large(m, len, hp.large[1], sitesfx::record(0, 1000, kInterval)));
  // No table at all: the samples cannot be named; that is not damage (check --repair drops a
  // damaged table and leaves the samples).
  {
    std::unique_ptr<SiteTotals> t(new SiteTotals);
    Msg why;
    EXPECT_EQ(0, sum_sites(hp.img(), nullptr, t.get(), &why));
    EXPECT_EQ(1u, t->scan.fault[kSampleNoTable]);
    EXPECT_EQ(0u, t->total.samples);
    int rc = 0;
    nlohmann::json j = report_json(hp, SitesOptions{}, &rc);
    EXPECT_EQ(kExitOk, rc);
    EXPECT_EQ("none", j["site_table"]);
    EXPECT_TRUE(j["sites"].empty());
    std::string text;
    EXPECT_EQ(kExitOk, report(hp, SitesOptions{}, &text));
    EXPECT_NE(std::string::npos, text.find("no allocation sites recorded")) << text;
  }
  // A table with a bad header, one that is not a block's start, one outside the heap: damaged.
  add_table(hp);
  auto *t = reinterpret_cast<SiteTable *>(m + hp.table);
  for (int k = 0; k < 4; ++k) {
    SiteTable saved = *t;
    uint64_t at = hp.table;
    if (k == 0) t->magic ^= 1;
    if (k == 1) t->capacity = 1u << 30;
    if (k == 2) at = hp.table + 16;
    if (k == 3) at = 1ull << 50;
    sitesfx::set_superblock_sites(m, len, at);
    Image img = hp.img();
    EXPECT_EQ(0u, sites_table(img)) << k;
    int rc = 0;
    nlohmann::json j = report_json(hp, SitesOptions{}, &rc);
    EXPECT_EQ(kExitInconsistent, rc) << k;
    EXPECT_EQ("damaged", j["site_table"]) << k;
    EXPECT_TRUE(j["sites"].empty());
    EXPECT_NE(std::string::npos, j["first_problem"].get<std::string>().find("allocation-site table"));
    *t = saved;
  }
  sitesfx::set_superblock_sites(m, len, hp.table);
  EXPECT_EQ(hp.table, sites_table(hp.img()));
}

TEST_F(SitesTest, LeaksAreTheBlocksNoRootReaches) {
  Heap hp = make_heap(dir.file("a.heap"), 6, {30000});
  add_table(hp);
  uint8_t *m = hp.mem();
  const size_t len = hp.bytes.size();
  // large[0] is rooted; large[1] is linked from it (a pointer at the recorded base); the rest and
  // the huge block leak.
  uint64_t ptr = kAddr + hp.large[1];
  memcpy(m + hp.large[0], &ptr, 8);
  for (size_t i = 0; i < 6; ++i)
    ASSERT_TRUE(sitesfx::mark_large(m, len, hp.large[i], sitesfx::record(i < 2 ? 0 : 7, 30000, kInterval)));
  ASSERT_TRUE(sitesfx::mark_huge(m, len, hp.huge, sitesfx::record(4095, 5u << 20, kInterval)));
  Image img = hp.img();
  Reach reach;
  Msg why;
  ASSERT_EQ(0, reach.run(img, &why)) << why.str();
  std::unique_ptr<SiteTotals> t(new SiteTotals);
  ASSERT_EQ(0, sum_sites(img, &reach, t.get(), &why));
  EXPECT_TRUE(t->unreached_only);
  EXPECT_EQ(2u, t->reached_skipped);
  EXPECT_EQ(5u, t->total.samples);
  EXPECT_EQ(0u, t->site[0].samples);
  EXPECT_EQ(4u, t->site[7].samples);
  EXPECT_EQ(1u, t->site[4095].samples);

  SitesOptions o;
  o.leaks = true;
  int rc = 0;
  nlohmann::json j = report_json(hp, o, &rc);
  EXPECT_EQ(kExitOk, rc);
  EXPECT_TRUE(j["leaks"].get<bool>());
  EXPECT_TRUE(j["reachability"].get<bool>());
  EXPECT_EQ(2u, j["reachable_samples_skipped"]);
  ASSERT_EQ(2u, j["sites"].size());
  EXPECT_EQ(4095u, j["sites"][0]["site"]);  // the huge block is the biggest leak
  EXPECT_EQ(7u, j["sites"][1]["site"]);
  std::string text;
  EXPECT_EQ(kExitOk, report(hp, o, &text));
  EXPECT_NE(std::string::npos, text.find("leaks only")) << text;
  EXPECT_NE(std::string::npos, text.find("estimated leaked")) << text;
}

// A segment that does not walk hides its samples; the others are still read, and the report says
// the heap is damaged. --leaks then cannot be answered (the mark needs the whole heap).
TEST_F(SitesTest, DamagedSegmentIsSkipped) {
  Heap hp = make_heap(dir.file("a.heap"), 3, {30000});
  add_table(hp);
  uint8_t *m = hp.mem();
  const size_t len = hp.bytes.size();
  ASSERT_TRUE(sitesfx::mark_large(m, len, hp.large[1], sitesfx::record(7, 30000, kInterval)));
  ASSERT_TRUE(sitesfx::mark_huge(m, len, hp.huge, sitesfx::record(0, 5u << 20, kInterval)));
  ASSERT_GT(hp.huge / kSegmentSize, hp.large[1] / kSegmentSize);
  // Break a descriptor in the large block's segment (a CONT page that is not part of its span).
  BlockRef b;
  ASSERT_NE(nullptr, sitesfx::large_head(m, len, hp.large[1], &b));
  auto *h = reinterpret_cast<SegmentHeader *>(m + hp.large[1] / kSegmentSize * kSegmentSize + kHeaderOffset);
  h->desc[b.span_page % kSegmentPages + 1].back = 99;
  Image img = hp.img();
  Collect c;
  SampleScan scan;
  Msg why;
  EXPECT_EQ(PERSIST_E_CORRUPT, scan_samples(img, c, &scan, &why));
  EXPECT_FALSE(why.empty());
  EXPECT_EQ(1u, scan.segments_skipped);
  ASSERT_EQ(1u, c.valid.size());
  EXPECT_EQ(hp.huge, c.valid[0].offset);
  int rc = 0;
  nlohmann::json j = report_json(hp, SitesOptions{}, &rc);
  EXPECT_EQ(kExitInconsistent, rc);
  EXPECT_EQ(1u, j["sites"].size());
  SitesOptions o;
  o.leaks = true;
  j = report_json(hp, o, &rc);
  EXPECT_EQ(kExitInconsistent, rc);
  EXPECT_FALSE(j["reachability"].get<bool>());
  EXPECT_TRUE(j["sites"].empty());
}

// A superblock (with a valid checksum) claiming an extent far past the file: the scan reads what
// the file holds and counts the rest as skipped, at once (not segment by segment).
TEST_F(SitesTest, ExtentPastTheFile) {
  Heap hp = make_heap(dir.file("a.heap"), 2, {30000}, false);
  add_table(hp);
  ASSERT_TRUE(sitesfx::mark_large(hp.mem(), hp.bytes.size(), hp.large[1], sitesfx::record(7, 30000, kInterval)));
  Image img = hp.img();
  Superblock sb = img.sb;
  sb.size = uint64_t{1} << 46, sb.reserve = uint64_t{1} << 47;  // 16M segments
  super_write(hp.mem(), sb);
  img = hp.img();
  ASSERT_EQ(uint64_t{1} << 46, img.sb.size);
  Collect c;
  SampleScan scan;
  Msg why;
  EXPECT_EQ(PERSIST_E_CORRUPT, scan_samples(img, c, &scan, &why));
  EXPECT_NE(nullptr, strstr(why.str(), "past the end of the file")) << why.str();
  EXPECT_EQ(img.segment_count() - hp.bytes.size() / kSegmentSize, scan.segments_skipped);
  EXPECT_EQ(1u, c.valid.size());
  int rc = 0;
  nlohmann::json j = report_json(hp, SitesOptions{}, &rc);
  EXPECT_EQ(kExitInconsistent, rc);
  EXPECT_EQ(1u, j["sites"].size());
}

// Random damage to the table, the records, descriptors and headers: every read stays in bounds
// (this binary runs under ASan and UBSan) and the report exits 0 or 1.
TEST_F(SitesTest, RandomDamageNeverCrashes) {
  Heap hp = make_heap(dir.file("a.heap"), 8, {30000, 17000, 70000});
  add_table(hp);
  for (size_t i = 0; i < hp.large.size(); ++i)
    ASSERT_TRUE(sitesfx::mark_large(hp.mem(), hp.bytes.size(), hp.large[i],
                                    sitesfx::record(i % 2 ? 7 : 0, 10000, kInterval)));
  ASSERT_TRUE(sitesfx::mark_huge(hp.mem(), hp.bytes.size(), hp.huge, sitesfx::record(4095, 1 << 20, kInterval)));
  const std::string pristine = hp.bytes;
  std::vector<uint64_t> hot;  // where the sites format lives
  for (uint64_t o : hp.large) hot.push_back(o + usable_of(hp, o));
  hot.push_back(hp.table), hot.push_back(hp.table + offsetof(SiteTable, site) + 7 * sizeof(SiteEntry));
  hot.push_back(hp.table + offsetof(SiteTable, module));
  hot.push_back(hp.huge / kSegmentSize * kSegmentSize + kHeaderOffset);
  hot.push_back(kHeaderOffset), hot.push_back(0);
  std::mt19937_64 rng(7);
  for (int round = 0; round < 300; ++round) {
    hp.bytes = pristine;
    uint8_t *m = hp.mem();
    int edits = 1 + static_cast<int>(rng() % 12);
    for (int k = 0; k < edits; ++k) {
      uint64_t at = hot[rng() % hot.size()] + rng() % 160;
      if (rng() % 4 == 0) at = rng() % hp.bytes.size();
      if (at >= hp.bytes.size()) continue;
      m[at] = static_cast<uint8_t>(rng() % 3 == 0 ? 0xff : rng());
    }
    // Large-head descriptors with the flag on, anywhere.
    if (rng() % 3 == 0) {
      auto *h = reinterpret_cast<SegmentHeader *>(m + kHeaderOffset);
      PageDesc &d = h->desc[kFirstDataPage + rng() % (kSegmentPages - kFirstDataPage)];
      d.cls ^= kLargeSampled;
    }
    if (rng() % 5 == 0) sitesfx::set_superblock_sites(m, hp.bytes.size(), rng() % 3 ? rng() : hp.table + 8);
    if (rng() % 7 == 0) hp.bytes.resize(rng() % hp.bytes.size());
    Image img;
    if (!sitesfx::image_of(hp.mem(), hp.bytes.size(), &img)) continue;
    SitesOptions o;
    o.leaks = rng() % 2;
    o.json = rng() % 2;
    o.top = rng() % 3;
    std::string out;
    int rc = report(hp, o, &out);
    ASSERT_TRUE(rc == kExitOk || rc == kExitInconsistent) << "round " << round << " rc " << rc;
    if (o.json) {
      EXPECT_TRUE(nlohmann::json::accept(out)) << out.substr(0, 300);
    }
  }
}

// ---- the symbolizer ---------------------------------------------------------------------------------

struct FixtureFn {
  const char *symbol;  // as nm prints it
  const char *shown;   // as the symbolizer names it
};
const FixtureFn kFixtureFns[] = {{"fx_alpha", "fx_alpha"},
                                 {"fx_beta", "fx_beta"},
                                 {"fx_gamma_static", "fx_gamma_static"},
                                 {"_ZN2fx5deltaEi", "fx::delta(int)"},
                                 {"fx_delta_call", "fx_delta_call"},
                                 {"main", "main"}};

class SymbolsTest : public ::testing::TestWithParam<const char *> {};

TEST_P(SymbolsTest, NamesOffsetsInsideKnownFunctions) {
  const std::string file = GetParam();
  auto fns = nm_functions(file);
  ASSERT_FALSE(fns.empty()) << "nm found no functions in " << file;
  std::vector<uint8_t> id = build_id_of(file);
  ASSERT_FALSE(id.empty()) << "no build-id in " << file;
  // The build-id agrees with readelf's.
  std::string notes = run_capture(std::string(PERSIST_READELF) + " -n '" + file + "'");
  EXPECT_NE(std::string::npos, notes.find(build_id_hex(id.data(), id.size()))) << notes;

  Symbolizer sym;
  for (const FixtureFn &f : kFixtureFns) {
    ASSERT_TRUE(fns.count(f.symbol)) << f.symbol << " not in " << file;
    const uint64_t addr = fns[f.symbol].first, size = fns[f.symbol].second;
    ASSERT_GT(size, 2u) << f.symbol;
    // A return address just inside, in the middle and at the end (the call is the last insn).
    for (uint64_t delta : {uint64_t{1}, size / 2, size}) {
      FrameName n = sym.name(file, id.data(), id.size(), addr + delta);
      EXPECT_TRUE(n.resolved) << f.symbol << "+" << delta;
      EXPECT_EQ(f.shown, n.function) << f.symbol << "+" << delta;
      EXPECT_EQ(delta, n.function_offset);
      char want[128];
      snprintf(want, sizeof want, "%s+0x%llx", f.shown, static_cast<unsigned long long>(delta));
      EXPECT_EQ(want, n.text);
      EXPECT_EQ(base_name(file), n.module);
    }
    // A return address at a function's first byte belongs to the call before it.
    FrameName before = sym.name(file, id.data(), id.size(), addr);
    EXPECT_NE(f.shown, before.function) << f.symbol;
  }
  const Symbolizer::ModuleInfo *mi = sym.info(file, id.data(), id.size());
  ASSERT_NE(nullptr, mi);
  EXPECT_EQ(ModuleStatus::kOk, mi->status);
  EXPECT_TRUE(mi->symtab);
  EXPECT_EQ(file, mi->file);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, SymbolsTest,
                         ::testing::Values(PERSIST_FIXTURE_PIE, PERSIST_FIXTURE_NOPIE),
                         [](const ::testing::TestParamInfo<const char *> &i) {
                           return std::string(i.param).find("nopie") != std::string::npos ? "NonPie" : "Pie";
                         });

TEST(Symbols, PieAndNonPieDifferInAddresses) {
  // The two fixtures really are the two cases: a PIE links near 0, a non-PIE at 0x400000.
  auto pie = nm_functions(PERSIST_FIXTURE_PIE), nopie = nm_functions(PERSIST_FIXTURE_NOPIE);
  ASSERT_TRUE(pie.count("fx_alpha") && nopie.count("fx_alpha"));
  EXPECT_LT(pie["fx_alpha"].first, 0x400000u);
  EXPECT_GE(nopie["fx_alpha"].first, 0x400000u);
}

TEST(Symbols, WrongBuildIdMissingFileAndCandidates) {
  ptest::TempDir d;
  const std::string file = PERSIST_FIXTURE_PIE;
  auto fns = nm_functions(file);
  std::vector<uint8_t> id = build_id_of(file);
  const uint64_t off = fns["fx_alpha"].first + 4;
  Symbolizer sym;
  // Another build-id: never named from this file.
  std::vector<uint8_t> other = id;
  other[0] ^= 0xff;
  FrameName n = sym.name(file, other.data(), other.size(), off);
  EXPECT_FALSE(n.resolved);
  char want[64];
  snprintf(want, sizeof want, "%s+0x%llx", base_name(file).c_str(), static_cast<unsigned long long>(off));
  EXPECT_EQ(want, n.text);
  ASSERT_NE(nullptr, sym.info(file, other.data(), other.size()));
  EXPECT_EQ(ModuleStatus::kIdMismatch, sym.info(file, other.data(), other.size())->status);
  EXPECT_NE(std::string::npos, sym.info(file, other.data(), other.size())->problem.find("build-id"));
  // No build-id recorded: named by path (unverified).
  n = sym.name(file, nullptr, 0, off);
  EXPECT_TRUE(n.resolved);
  EXPECT_EQ("fx_alpha", n.function);
  // A missing file.
  const std::string gone = d.file("gone/prog");
  n = sym.name(gone, id.data(), id.size(), off);
  EXPECT_FALSE(n.resolved);
  EXPECT_EQ("prog+0x" + [&] { char b[32]; snprintf(b, sizeof b, "%llx", (unsigned long long)off); return std::string(b); }(), n.text);
  EXPECT_EQ(ModuleStatus::kMissing, sym.info(gone, id.data(), id.size())->status);
  // ... found again through a candidate (--binary) with its build-id.
  Symbolizer sym2;
  sym2.add_candidate(PERSIST_FIXTURE_NOPIE);  // another build-id: not taken
  sym2.add_candidate(file);
  n = sym2.name(gone, id.data(), id.size(), off);
  EXPECT_TRUE(n.resolved);
  EXPECT_EQ("fx_alpha", n.function);
  EXPECT_EQ(file, sym2.info(gone, id.data(), id.size())->file);
  // A relative or empty path is not opened.
  n = sym.name("", id.data(), id.size(), off);
  EXPECT_FALSE(n.resolved);
}

TEST(Symbols, StrippedBinaryFallsBackToDynsym) {
  ptest::TempDir d;
  const std::string stripped = d.file("stripped");
  ASSERT_EQ(0, system((std::string(PERSIST_OBJCOPY) + " --strip-all '" + PERSIST_FIXTURE_PIE + "' '" +
                       stripped + "'").c_str()));
  std::vector<uint8_t> id = build_id_of(stripped);
  EXPECT_EQ(build_id_of(PERSIST_FIXTURE_PIE), id);  // stripping keeps the build-id note
  ElfFile f;
  std::string why;
  ASSERT_TRUE(f.open(stripped, &why)) << why;
  EXPECT_FALSE(f.has_symtab());
  auto fns = nm_functions(PERSIST_FIXTURE_PIE);
  Symbolizer sym;
  FrameName n = sym.name(stripped, id.data(), id.size(), fns["fx_gamma_static"].first + 3);
  EXPECT_NE("fx_gamma_static", n.function);  // a static function is not in .dynsym
  const Symbolizer::ModuleInfo *mi = sym.info(stripped, id.data(), id.size());
  ASSERT_NE(nullptr, mi);
  EXPECT_FALSE(mi->symtab);
  if (!n.resolved) {
    EXPECT_EQ(base_name(stripped), n.text.substr(0, n.text.find('+')));
  }
}

// Files that are not (good) ELF: refused or read as far as they are valid, never a crash.
TEST(Symbols, HostileFiles) {
  ptest::TempDir d;
  const std::string good = slurp(PERSIST_FIXTURE_PIE);
  ASSERT_GT(good.size(), 4096u);
  auto try_file = [&](const std::string &bytes, const char *what) {
    std::string p = d.file("x");
    spill(p, bytes);
    ElfFile f;
    std::string why;
    if (f.open(p, &why)) {
      std::vector<ElfFile::Symbol> syms;
      bool symtab = false;
      f.load_functions(&syms, &symtab);
      for (size_t i = 0; i < syms.size() && i < 100; ++i) (void)f.name(syms[i].name);
    }
    Symbolizer sym;
    std::vector<uint8_t> id = {1, 2, 3};
    (void)sym.name(p, id.data(), id.size(), 0x1234);
    (void)sym.name(p, nullptr, 0, 0x1234);
    SUCCEED() << what;
  };
  try_file("", "empty");
  try_file("hello, world\n", "text");
  try_file(good.substr(0, 64), "header only");
  try_file(good.substr(0, 4096), "first page");
  try_file(good.substr(0, good.size() / 2), "half");
  {
    ElfFile f;
    std::string why;
    spill(d.file("t"), "#!/bin/sh\n" + std::string(200, '#') + "\necho not elf\n");
    EXPECT_FALSE(f.open(d.file("t"), &why));
    EXPECT_NE(std::string::npos, why.find("not an ELF file")) << why;
    ElfFile g;
    EXPECT_FALSE(g.open(d.path(), &why));  // a directory
    ElfFile h;
    EXPECT_FALSE(h.open(d.file("nothing"), &why));
  }
  // Random damage to the headers and tables of a real binary.
  std::mt19937_64 rng(11);
  Elf64_Ehdr eh;
  memcpy(&eh, good.data(), sizeof eh);
  for (int round = 0; round < 400; ++round) {
    std::string bad = good;
    int edits = 1 + static_cast<int>(rng() % 8);
    for (int k = 0; k < edits; ++k) {
      uint64_t at;
      switch (rng() % 4) {
        case 0: at = rng() % sizeof eh; break;  // the ELF header
        case 1: at = eh.e_shoff + rng() % (uint64_t{eh.e_shnum} * sizeof(Elf64_Shdr)); break;
        case 2: at = eh.e_phoff + rng() % (uint64_t{eh.e_phnum} * sizeof(Elf64_Phdr)); break;
        default: at = rng() % bad.size();
      }
      if (at >= bad.size()) continue;
      bad[at] = static_cast<char>(rng() % 2 ? 0xff : rng());
    }
    if (rng() % 5 == 0) bad.resize(rng() % bad.size());
    try_file(bad, "damaged");
  }
}

// ---- the command line -------------------------------------------------------------------------------

TEST_F(SitesTest, CommandLine) {
  Heap hp = make_heap(dir.file("a.heap"), 4, {30000}, false);
  const std::string file = dir.file("a.heap");
  std::string out, err;
  // No table: said so, exit 0.
  EXPECT_EQ(0, tool({"sites", file}, &out, &err)) << err;
  EXPECT_NE(std::string::npos, out.find("no allocation sites recorded")) << out;
  EXPECT_EQ(0, tool({"sites", file, "--json"}, &out));
  EXPECT_EQ("none", nlohmann::json::parse(out)["site_table"]);

  // Samples over the fixture program's functions: symbolised from the real binary.
  const std::string prog = PERSIST_FIXTURE_PIE;
  auto fns = nm_functions(prog);
  std::vector<uint8_t> id = build_id_of(prog);
  SiteTable *t = sitesfx::make_table(hp.mem(), hp.bytes.size(), hp.table);
  sitesfx::add_module(t, 0, prog.c_str(), id.data(), static_cast<uint32_t>(id.size()));
  const uint8_t mods[] = {1, 1};
  const uint32_t a[] = {static_cast<uint32_t>(fns["fx_alpha"].first + 5), static_cast<uint32_t>(fns["main"].first + 9)};
  const uint32_t b[] = {static_cast<uint32_t>(fns["_ZN2fx5deltaEi"].first + 7), static_cast<uint32_t>(fns["main"].first + 20)};
  sitesfx::add_site(t, 3, 2, mods, a);
  sitesfx::add_site(t, 8, 2, mods, b);
  for (size_t i = 0; i < 4; ++i)
    ASSERT_TRUE(sitesfx::mark_large(hp.mem(), hp.bytes.size(), hp.large[i],
                                    sitesfx::record(i < 3 ? 3 : 8, 25000, kInterval)));
  spill(file, hp.bytes);
  EXPECT_EQ(0, tool({"sites", file}, &out, &err)) << err;
  EXPECT_NE(std::string::npos, out.find("fx_alpha+0x5 (" + base_name(prog) + ")")) << out;
  EXPECT_NE(std::string::npos, out.find("main+0x9 (" + base_name(prog) + ")")) << out;
  EXPECT_NE(std::string::npos, out.find("fx::delta(int)+0x7")) << out;
  EXPECT_LT(out.find("fx_alpha"), out.find("fx::delta")) << "sorted by bytes";
  EXPECT_NE(std::string::npos, out.find("75.0%")) << out;
  EXPECT_EQ(0, tool({"sites", file, "--depth", "1"}, &out));
  EXPECT_EQ(std::string::npos, out.find("main+0x9")) << out;
  EXPECT_EQ(0, tool({"sites", "--json", file}, &out));
  nlohmann::json j = nlohmann::json::parse(out);
  ASSERT_EQ(2u, j["sites"].size());
  EXPECT_EQ("fx_alpha", j["sites"][0]["frames"][0]["symbol"]);
  EXPECT_EQ(5u, j["sites"][0]["frames"][0]["symbol_offset"]);
  EXPECT_EQ(prog, j["sites"][0]["frames"][0]["module"]);
  EXPECT_EQ(build_id_hex(id.data(), id.size()), j["sites"][0]["frames"][0]["build_id"]);
  EXPECT_EQ("main", j["sites"][0]["frames"][1]["symbol"]);
  EXPECT_EQ("fx::delta(int)", j["sites"][1]["frames"][0]["symbol"]);
  EXPECT_NEAR(75.0, j["sites"][0]["share_pct"].get<double>(), 0.01);
  ASSERT_EQ(1u, j["modules"].size());
  EXPECT_EQ("ok", j["modules"][0]["status"]);
  EXPECT_EQ(prog, j["modules"][0]["symbols_from"]);
  // --leaks: large[0] is rooted.
  EXPECT_EQ(0, tool({"sites", file, "--leaks", "--json"}, &out));
  j = nlohmann::json::parse(out);
  EXPECT_EQ(1u, j["reachable_samples_skipped"]);
  EXPECT_EQ(3u, j["samples"]);
  // --binary: the recorded path gone, the build-id found in a copy.
  std::string copy = dir.file("prog-copy");
  spill(copy, slurp(prog));
  SiteTable *t2 = reinterpret_cast<SiteTable *>(hp.mem() + hp.table);
  strcpy(t2->module[0].path, "/gone/away/prog");
  spill(file, hp.bytes);
  EXPECT_EQ(0, tool({"sites", file}, &out));
  EXPECT_NE(std::string::npos, out.find("note: frames in prog are shown as offsets (missing)")) << out;
  EXPECT_EQ(0, tool({"sites", file, "--binary", copy, "--top", "1"}, &out));
  EXPECT_NE(std::string::npos, out.find("fx_alpha+0x5 (prog)")) << out;
  EXPECT_NE(std::string::npos, out.find("1 more site")) << out;

  // Usage errors and unreadable files.
  EXPECT_EQ(kExitUsage, tool({"sites"}, &out, &err));
  EXPECT_NE(std::string::npos, err.find("missing FILE"));
  EXPECT_EQ(kExitUsage, tool({"sites", file, "--depth", "0"}, &out));
  EXPECT_EQ(kExitUsage, tool({"sites", file, "--top", "x"}, &out));
  EXPECT_EQ(kExitUsage, tool({"sites", file, "--bogus"}, &out));
  EXPECT_EQ(kExitUsage, tool({"sites", file, file}, &out));
  EXPECT_EQ(kExitOk, tool({"sites", "--help"}, &out));
  EXPECT_NE(std::string::npos, out.find("usage: persist sites"));
  EXPECT_EQ(kExitUnreadable, tool({"sites", dir.file("nope.heap")}, &out));
  EXPECT_EQ(kExitUnreadable, tool({"sites", dir.file("nope.heap"), "--json"}, &out));
  EXPECT_FALSE(nlohmann::json::parse(out)["readable"].get<bool>());
  // A damaged table: exit 1.
  t2->magic = 0;
  spill(file, hp.bytes);
  EXPECT_EQ(kExitInconsistent, tool({"sites", file}, &out, &err));
  EXPECT_NE(std::string::npos, out.find("table is damaged")) << out;
  EXPECT_NE(std::string::npos, err.find("allocation-site table")) << err;
}

}  // namespace
