// corrupt_test.cpp — damaged heaps through every reading subcommand of the tool.
//
//   tool_corrupt_test WORKDIR COUNT SEED_HEAP...
//
// Damages COUNT copies of the seed heaps (real heaps left by programs under the shim): bit flips
// in segment headers, page descriptors and bitmaps, hostile superblock fields with valid
// checksums, root tables pointing anywhere (or at themselves), the allocation-site table and
// sample records (PERSIST_SITES), random bytes, truncation, zeroed pages, and combinations. On
// each damaged file it runs every reading subcommand (info, check, roots, stats, blocks, strings,
// map, sites, dump by root, offset or address in turn, and snapshot on every tenth file) in a
// forked child that calls the tool's run_tool() — this binary is built with
// AddressSanitizer and UndefinedBehaviorSanitizer — with an alarm as the timeout. Every run must
// exit with 0, 1 or 2: a signal (crash, timeout), a sanitizer report or any other status fails
// the test, and the damaged file is kept in WORKDIR/failures for replay with `persist`.
// PERSIST_CORRUPT_SEED picks the random seed (default: fixed, so runs repeat).
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "layout.h"
#include "progress.h"
#include "superblock.h"
#include "tool.h"

extern "C" const char *__asan_default_options() {
  return "exitcode=86:detect_leaks=0:abort_on_error=0:allocator_may_return_null=1:quarantine_size_mb=32";
}
extern "C" const char *__ubsan_default_options() {
  return "exitcode=87:halt_on_error=1:print_stacktrace=1";
}

namespace {

using namespace persist;

constexpr int kTimeoutSeconds = 30;
constexpr int kParallel = 2;

// The seeds stay in their files (read with pread): a small parent process keeps fork() cheap.
struct Seed {
  std::string path;  // the pristine seed
  std::string work;  // its damaged copy (restored after each round)
  int fd = -1;       // the seed, read-only
  Superblock sb{};
  uint64_t len = 0;
  std::vector<uint8_t> read(uint64_t off, uint64_t n) const {
    std::vector<uint8_t> v(n);
    if (pread(fd, v.data(), n, static_cast<off_t>(off)) != static_cast<ssize_t>(n)) perror("pread"), exit(3);
    return v;
  }
  uint8_t at(uint64_t off) const { return read(off, 1)[0]; }
};

struct Edit {
  uint64_t off;
  std::vector<uint8_t> before;
};

class Damager {
 public:
  Damager(Seed &s, std::mt19937_64 &rng) : s_(s), rng_(rng) {}

  // Applies one kind of damage (or a mix) to the work file; describe() says what.
  void damage() {
    fd_ = open(s_.work.c_str(), O_RDWR);
    if (fd_ < 0) perror("open"), exit(3);
    int kind = static_cast<int>(pick(12));
    if (kind == 11) {
      int n = 2 + static_cast<int>(pick(3));
      for (int i = 0; i < n; ++i) {
        int k = static_cast<int>(pick(10));
        one(k == 9 ? 10 : k);
      }
    } else {
      one(kind);
    }
    close(fd_);
  }

  void restore() {
    fd_ = open(s_.work.c_str(), O_RDWR);
    if (fd_ < 0) perror("open"), exit(3);
    if (truncated_) {
      if (ftruncate(fd_, static_cast<off_t>(s_.len)) != 0) perror("ftruncate"), exit(3);
      for (uint64_t p = truncated_at_ / kPageSize * kPageSize; p < s_.len; p += 64 * kPageSize) {
        uint64_t n = s_.len - p < 64 * kPageSize ? s_.len - p : 64 * kPageSize;
        write_at(p, s_.read(p, n).data(), n);
      }
    }
    for (auto it = edits_.rbegin(); it != edits_.rend(); ++it)
      if (it->off < s_.len) write_at(it->off, it->before.data(), it->before.size());
    close(fd_);
    edits_.clear();
    truncated_ = false;
  }

  const std::string &what() const { return what_; }

 private:
  uint64_t pick(uint64_t n) { return n ? rng_() % n : 0; }

  uint64_t interesting() {
    const uint64_t len = s_.len;
    const uint64_t v[] = {0,         1,          7,          8,         16,
                          4095,      4096,       kSegmentSize, len - 1, len,
                          len + 1,   len + 4096, 1ull << 32, 1ull << 63, ~0ull,
                          ~0ull - 15, s_.sb.root_table, s_.sb.base, s_.sb.size * 2, rng_()};
    return v[pick(sizeof v / sizeof v[0])];
  }

  void write_at(uint64_t off, const void *p, uint64_t n) {
    if (pwrite(fd_, p, n, static_cast<off_t>(off)) != static_cast<ssize_t>(n)) perror("pwrite"), exit(3);
  }

  // Overwrite [off, off + n) of the work file, remembering the seed's bytes.
  void put(uint64_t off, const void *p, uint64_t n) {
    if (off >= s_.len) return;
    if (n > s_.len - off) n = s_.len - off;
    edits_.push_back({off, s_.read(off, n)});
    write_at(off, p, n);
  }
  void put64(uint64_t off, uint64_t v) { put(off, &v, 8); }

  uint64_t segments() const { return (s_.len + kSegmentSize - 1) / kSegmentSize; }
  uint64_t seg_off() { return pick(segments()) * kSegmentSize; }

  void note(const std::string &s) { what_ += (what_.empty() ? "" : "; ") + s; }

  void one(int kind) {
    char buf[160];
    switch (kind) {
      case 0: {  // bit flips in a segment's metadata (header, descriptors, bitmaps)
        uint64_t base = seg_off(), n = 1 + pick(8);
        for (uint64_t i = 0; i < n; ++i) {
          uint64_t off = base + kPageSize + pick(kFirstDataPage * kPageSize - kPageSize);
          if (off >= s_.len) continue;
          uint8_t b = s_.at(off) ^ static_cast<uint8_t>(1u << pick(8));
          put(off, &b, 1);
        }
        snprintf(buf, sizeof buf, "%llu bit flips in the metadata of the segment at 0x%llx",
                 static_cast<unsigned long long>(n), static_cast<unsigned long long>(base));
        break;
      }
      case 1: {  // a page descriptor
        uint64_t base = seg_off();
        uint64_t page = kFirstDataPage + pick(kSegmentPages - kFirstDataPage);
        PageDesc d;
        d.kind = static_cast<uint8_t>(pick(8));
        d.cls = static_cast<uint8_t>(pick(3) ? pick(40) : rng_());
        d.back = static_cast<uint16_t>(pick(3) ? pick(20) : rng_());
        d.pages = static_cast<uint32_t>(pick(3) ? pick(40) : interesting());
        put(base + kHeaderOffset + offsetof(SegmentHeader, desc) + page * sizeof d, &d, sizeof d);
        snprintf(buf, sizeof buf, "descriptor of page %llu in the segment at 0x%llx := kind %u cls %u back %u pages %u",
                 static_cast<unsigned long long>(page), static_cast<unsigned long long>(base), d.kind,
                 d.cls, d.back, d.pages);
        break;
      }
      case 2: {  // a segment header's fixed fields
        uint64_t base = seg_off() + kHeaderOffset;
        uint64_t field = pick(5);
        static const size_t kOff[] = {offsetof(SegmentHeader, magic), offsetof(SegmentHeader, kind),
                                      offsetof(SegmentHeader, segments), offsetof(SegmentHeader, pages),
                                      offsetof(SegmentHeader, huge_bytes)};
        if (field == 4) {
          put64(base + kOff[field], interesting());
        } else {
          uint32_t v = static_cast<uint32_t>(field == 1 ? pick(5) : pick(2) ? pick(2000) : interesting());
          put(base + kOff[field], &v, 4);
        }
        snprintf(buf, sizeof buf, "segment header field %llu at 0x%llx", static_cast<unsigned long long>(field),
                 static_cast<unsigned long long>(base));
        break;
      }
      case 3: {  // bitmap words
        uint64_t base = seg_off() + kBitmapOffset, n = 1 + pick(16);
        for (uint64_t i = 0; i < n; ++i)
          put64(base + pick(kSegmentPages * kWordsPerPage) * 8, pick(2) ? ~0ull : rng_());
        snprintf(buf, sizeof buf, "%llu bitmap words near 0x%llx", static_cast<unsigned long long>(n),
                 static_cast<unsigned long long>(base));
        break;
      }
      case 4: {  // superblock fields, with or without a valid checksum
        Superblock sb = s_.sb;
        const char *field;
        switch (pick(8)) {
          case 0: sb.size = interesting() & ~uint64_t{4095}; field = "size"; break;
          case 1: sb.root_table = interesting(); field = "root_table"; break;
          case 2: sb.base = interesting() & ~uint64_t{4095}; field = "base"; break;
          case 3: sb.reserve = interesting(); field = "reserve"; break;
          case 4: sb.state = static_cast<uint32_t>(pick(4)); field = "state"; break;
          case 5: sb.size = interesting() & ~uint64_t{4095}; sb.reserve = ~0ull; field = "size+reserve"; break;
          case 6: sb.major = static_cast<uint16_t>(pick(3)); field = "major"; break;
          default: sb.slot_size = static_cast<uint32_t>(pick(512)); field = "slot_size"; break;
        }
        bool fix = pick(4) != 0;
        sb.checksum = 0;
        if (fix) sb.checksum = crc32c(&sb, sizeof sb);
        put(0, &sb, sizeof sb);
        put(kSuperSlotSize, &sb, sizeof sb);
        snprintf(buf, sizeof buf, "superblock %s%s", field, fix ? " (checksum fixed)" : " (bad checksum)");
        break;
      }
      case 5: {  // the root table
        uint64_t t = s_.sb.root_table;
        if (!t || t + kRootTableBytes > s_.len) {
          one(6);
          return;
        }
        switch (pick(5)) {
          case 0: put64(t + offsetof(RootTableHeader, next), pick(2) ? t : interesting()); break;
          case 1: {
            uint32_t cap = static_cast<uint32_t>(pick(2) ? pick(300) : rng_());
            put(t + offsetof(RootTableHeader, capacity), &cap, 4);
            break;
          }
          case 2:
          case 3: {
            uint64_t e = t + sizeof(RootTableHeader) + pick(8) * sizeof(RootEntry);
            switch (pick(4)) {
              case 0: put64(e + offsetof(RootEntry, offset), interesting()); break;
              case 1: put64(e + offsetof(RootEntry, size), interesting()); break;
              case 2: {
                uint32_t st = static_cast<uint32_t>(pick(3));
                put(e + offsetof(RootEntry, state), &st, 4);
                break;
              }
              default: {
                std::vector<uint8_t> tag(kRootTagBytes);
                for (auto &c : tag) c = static_cast<uint8_t>(1 + pick(255));
                put(e + offsetof(RootEntry, tag), tag.data(), tag.size());
              }
            }
            break;
          }
          default: {
            uint32_t magic = static_cast<uint32_t>(rng_());
            put(t, &magic, 4);
          }
        }
        snprintf(buf, sizeof buf, "root table at 0x%llx", static_cast<unsigned long long>(t));
        break;
      }
      case 6: {  // random bytes anywhere
        uint64_t n = 1 + pick(32);
        for (uint64_t i = 0; i < n; ++i) {
          uint8_t b = static_cast<uint8_t>(rng_());
          put(pick(s_.len), &b, 1);
        }
        snprintf(buf, sizeof buf, "%llu random bytes", static_cast<unsigned long long>(n));
        break;
      }
      case 7: {  // truncation
        uint64_t at;
        switch (pick(3)) {
          case 0: at = pick(s_.len); break;
          case 1: at = pick(s_.len / kPageSize + 1) * kPageSize; break;
          default: at = pick(segments()) * kSegmentSize + kPageSize * pick(20); break;
        }
        if (at > s_.len) at = s_.len;
        if (ftruncate(fd_, static_cast<off_t>(at)) != 0) perror("ftruncate"), exit(3);
        if (!truncated_ || at < truncated_at_) truncated_at_ = at;
        truncated_ = true;
        snprintf(buf, sizeof buf, "truncated to %llu bytes", static_cast<unsigned long long>(at));
        break;
      }
      case 10: {  // the allocation-site table and sample records (PERSIST_SITES)
        sites(buf, sizeof buf);
        break;
      }
      default: {  // a zeroed metadata page
        uint64_t off = seg_off() + (1 + pick(kFirstDataPage - 1)) * kPageSize;
        std::vector<uint8_t> zero(kPageSize, 0);
        put(off, zero.data(), zero.size());
        snprintf(buf, sizeof buf, "zeroed the page at 0x%llx", static_cast<unsigned long long>(off));
        break;
      }
    }
    note(buf);
  }

  // Damage to what `persist sites` reads: the table's header, entries and modules, the
  // superblock's pointer to it, the sampled flag of large blocks and their records, huge blocks'
  // records.
  void sites(char *buf, size_t len) {
    const uint64_t t = s_.sb.sites;
    const bool table = t && t + sizeof(SiteTable) <= s_.len;
    switch (pick(table ? 7 : 3)) {
      case 0: {  // a large block's descriptor gets the flag, its record garbage or hostile fields
        uint64_t seg = pick(segments());
        if (seg * kSegmentSize + kHeaderOffset + sizeof(SegmentHeader) > s_.len) seg = 0;
        std::vector<uint8_t> hb = s_.read(seg * kSegmentSize + kHeaderOffset, sizeof(SegmentHeader));
        SegmentHeader h;
        memcpy(&h, hb.data(), sizeof h);
        std::vector<uint32_t> heads;
        for (uint32_t p = kFirstDataPage; p < kSegmentPages; ++p)
          if (h.desc[p].kind == kPageLargeHead && h.desc[p].pages) heads.push_back(p);
        if (heads.empty()) {
          snprintf(buf, len, "no large block in segment %llu", static_cast<unsigned long long>(seg));
          return;
        }
        uint32_t p = heads[pick(heads.size())];
        PageDesc d = h.desc[p];
        d.cls ^= pick(3) ? kLargeSampled : static_cast<uint8_t>(rng_());
        put(seg * kSegmentSize + kHeaderOffset + offsetof(SegmentHeader, desc) + p * sizeof d, &d, sizeof d);
        SampleRecord r{kSampleMagic, static_cast<uint32_t>(pick(2) ? pick(kSiteCapacity) : rng_()),
                       pick(2) ? pick(100000) : interesting(), pick(4) ? 4096 : interesting(), 0};
        if (pick(4) == 0) r.magic = static_cast<uint32_t>(rng_());
        uint64_t end = seg * kSegmentSize + (uint64_t{p} + d.pages) * kPageSize;
        if (pick(3)) put(end - sizeof r, &r, sizeof r);
        snprintf(buf, len, "sampled flag / record of the large block at page %u of segment %llu", p,
                 static_cast<unsigned long long>(seg));
        return;
      }
      case 1: {  // a segment header's sample record (huge blocks)
        uint64_t seg = pick(segments());
        SampleRecord r{pick(3) ? kSampleMagic : static_cast<uint32_t>(rng_()),
                       static_cast<uint32_t>(pick(2) ? pick(kSiteCapacity) : rng_()), interesting(),
                       pick(2) ? 65536 : interesting(), rng_()};
        put(seg * kSegmentSize + kHeaderOffset + offsetof(SegmentHeader, sample), &r, sizeof r);
        snprintf(buf, len, "sample record in the header of segment %llu", static_cast<unsigned long long>(seg));
        return;
      }
      case 2: {  // the superblock's `sites`, checksum fixed
        Superblock sb = s_.sb;
        sb.sites = pick(3) ? interesting() : (t ? t + 16 * pick(8) : s_.sb.root_table);
        sb.checksum = 0;
        sb.checksum = crc32c(&sb, sizeof sb);
        put(0, &sb, sizeof sb);
        put(kSuperSlotSize, &sb, sizeof sb);
        snprintf(buf, len, "superblock sites := 0x%llx", static_cast<unsigned long long>(sb.sites));
        return;
      }
      case 3: {  // the table's header
        uint32_t v = static_cast<uint32_t>(pick(2) ? rng_() : pick(8192));
        put(t + 4 * pick(4), &v, 4);
        snprintf(buf, len, "site table header at 0x%llx", static_cast<unsigned long long>(t));
        return;
      }
      case 4:
      case 5: {  // an entry: live, with hostile depth, modules and offsets
        uint64_t e = t + offsetof(SiteTable, site) + pick(kSiteCapacity) * sizeof(SiteEntry);
        SiteEntry se;
        std::vector<uint8_t> raw = s_.read(e, sizeof se);
        memcpy(&se, raw.data(), sizeof se);
        se.state = pick(4) ? kSiteLive : static_cast<uint32_t>(rng_());
        if (pick(2)) se.depth = static_cast<uint16_t>(pick(3) ? pick(40) : rng_());
        for (auto &m : se.module) if (pick(3) == 0) m = static_cast<uint8_t>(rng_());
        for (auto &o : se.offset) if (pick(3) == 0) o = static_cast<uint32_t>(rng_());
        put(e, &se, sizeof se);
        snprintf(buf, len, "site entry at 0x%llx", static_cast<unsigned long long>(e));
        return;
      }
      default: {  // a module: id length, build-id, an unterminated or hostile path
        uint64_t e = t + offsetof(SiteTable, module) + pick(kSiteModules) * sizeof(SiteModule);
        SiteModule m;
        std::vector<uint8_t> raw = s_.read(e, sizeof m);
        memcpy(&m, raw.data(), sizeof m);
        m.state = pick(4) ? kSiteLive : static_cast<uint32_t>(rng_());
        if (pick(2)) m.id_len = static_cast<uint32_t>(pick(2) ? pick(40) : rng_());
        for (auto &b : m.build_id) if (pick(4) == 0) b = static_cast<uint8_t>(rng_());
        static const char *const kPaths[] = {"/dev/zero", "/proc/self/mem", "/", "/etc/passwd",
                                             "/dev/stdin", "", "relative/path", "/usr/bin/env"};
        switch (pick(4)) {
          case 0: memset(m.path, 'A' + static_cast<int>(pick(26)), sizeof m.path); break;  // no NUL
          case 1: snprintf(m.path, sizeof m.path, "%s", kPaths[pick(8)]); break;
          default: break;
        }
        put(e, &m, sizeof m);
        snprintf(buf, len, "site module at 0x%llx", static_cast<unsigned long long>(e));
        return;
      }
    }
  }

  Seed &s_;
  std::mt19937_64 &rng_;
  int fd_ = -1;
  std::vector<Edit> edits_;
  bool truncated_ = false;
  uint64_t truncated_at_ = 0;
  std::string what_;
};

struct Child {
  pid_t pid;
  std::vector<std::string> argv;
  std::string err;  // its stderr
};

struct Tally {
  std::map<std::string, std::map<int, uint64_t>> by_cmd;  // command -> exit status -> runs
  uint64_t runs = 0, failures = 0;
};

template <class T>
bool read_file(const std::string &path, T *out) {
  FILE *f = fopen(path.c_str(), "r");
  if (!f) return false;
  char buf[65536];
  size_t n;
  out->clear();
  while ((n = fread(buf, 1, sizeof buf, f)) > 0) out->insert(out->end(), buf, buf + n);
  fclose(f);
  return true;
}

pid_t spawn(const std::vector<std::string> &args, const std::string &err_path) {
  fflush(nullptr);
  pid_t pid = fork();
  if (pid < 0) perror("fork"), exit(3);
  if (pid) return pid;
  int out = open("/dev/null", O_WRONLY);
  int err = open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (out < 0 || err < 0) _exit(90);
  dup2(out, 1), dup2(err, 2);
  alarm(kTimeoutSeconds);
  std::vector<char *> argv;
  for (const std::string &a : args) argv.push_back(const_cast<char *>(a.c_str()));
  argv.push_back(nullptr);
  int rc = persist::tool::run_tool(static_cast<int>(args.size()), argv.data());
  fflush(stdout), fflush(stderr);
  _exit(rc);
}

// Waits for one child; false when it failed (reported on stdout).
bool reap(std::vector<Child> &running, Tally &t, const std::string &what) {
  int status = 0;
  pid_t pid = waitpid(-1, &status, 0);
  if (pid < 0) perror("waitpid"), exit(3);
  size_t i = 0;
  while (i < running.size() && running[i].pid != pid) ++i;
  if (i == running.size()) return true;
  Child c = running[i];
  running.erase(running.begin() + static_cast<long>(i));
  std::string err;
  read_file(c.err, &err);
  unlink(c.err.c_str());
  ++t.runs;
  std::string cmd = c.argv[1];
  bool ok = WIFEXITED(status) && WEXITSTATUS(status) <= 2 &&
            err.find("Sanitizer") == std::string::npos && err.find("runtime error") == std::string::npos;
  t.by_cmd[cmd][WIFEXITED(status) ? WEXITSTATUS(status) : 1000 + WTERMSIG(status)]++;
  if (ok) return true;
  ++t.failures;
  printf("FAIL: persist");
  for (size_t k = 1; k < c.argv.size(); ++k) printf(" %s", c.argv[k].c_str());
  if (WIFSIGNALED(status))
    printf("\n  killed by signal %d%s\n", WTERMSIG(status),
           WTERMSIG(status) == SIGALRM ? " (timeout: a hang)" : "");
  else
    printf("\n  exit status %d\n", WEXITSTATUS(status));
  printf("  damage: %s\n  stderr:\n%s\n", what.c_str(), err.substr(0, 6000).c_str());
  return false;
}

}  // namespace

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: %s WORKDIR COUNT SEED_HEAP...\n", argv[0]);
    return 64;
  }
  persist::tool::progress_disable();
  const std::string dir = argv[1];
  const long count = atol(argv[2]);
  uint64_t seed_value = 20240501;
  if (const char *e = getenv("PERSIST_CORRUPT_SEED")) seed_value = strtoull(e, nullptr, 0);
  printf("corrupt_test: %ld damaged files from %d seed heaps, seed %llu\n", count, argc - 3,
         static_cast<unsigned long long>(seed_value));
  mkdir((dir + "/failures").c_str(), 0700);

  std::vector<Seed> seeds;
  for (int i = 3; i < argc; ++i) {
    Seed s;
    s.path = argv[i];
    s.fd = open(s.path.c_str(), O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (s.fd < 0 || fstat(s.fd, &st) != 0) perror(argv[i]), exit(3);
    s.len = static_cast<uint64_t>(st.st_size);
    Msg why;
    std::vector<uint8_t> page0 = s.read(0, s.len < kPageSize ? s.len : kPageSize);
    if (super_read(page0.data(), page0.size(), &s.sb, &why) != 0) {
      fprintf(stderr, "%s: not a heap: %s\n", argv[i], why.str());
      return 3;
    }
    s.work = dir + "/damaged-" + std::to_string(i - 3) + ".heap";
    std::string cmd = "cp '" + s.path + "' '" + s.work + "'";
    if (system(cmd.c_str()) != 0) perror("cp"), exit(3);
    printf("  seed %s: %llu bytes, extent %llu, root table at 0x%llx, site table at 0x%llx\n", argv[i],
           static_cast<unsigned long long>(s.len), static_cast<unsigned long long>(s.sb.size),
           static_cast<unsigned long long>(s.sb.root_table), static_cast<unsigned long long>(s.sb.sites));
    seeds.push_back(std::move(s));
  }

  Tally tally;
  uint64_t failed_files = 0;
  for (long n = 0; n < count; ++n) {
    Seed &s = seeds[static_cast<size_t>(n) % seeds.size()];
    std::mt19937_64 rng(seed_value * 1000003 + static_cast<uint64_t>(n));
    Damager d(s, rng);
    d.damage();
    const std::string &f = s.work;
    // Options drawn from the file's generator, independent of which seed it came from.
    const bool json = rng() % 2, all = rng() % 3;
    const unsigned dump_by = rng() % 3;
    // Offsets to dump: mostly in the first segment, where the small blocks are (a dump of the
    // huge block is 5 MiB of output), sometimes anywhere, past the end included.
    auto where = [&] {
      uint64_t range = rng() % 4 ? (s.len < kSegmentSize ? s.len : kSegmentSize) : s.len + kPageSize;
      return rng() % range;
    };
    const std::string probe = std::to_string(where());
    char addr[32];
    snprintf(addr, sizeof addr, "%llx", static_cast<unsigned long long>(s.sb.base + where()));
    std::vector<std::vector<std::string>> cmds = {
        {"persist", "info", f},
        {"persist", "check", f},
        {"persist", "roots", f},
        {"persist", "stats", f},
        {"persist", "blocks", f, "--contains", "node", "--limit", "40"},
        {"persist", "strings", f, all ? "--all" : "-n6"},
        {"persist", "map", f, "-o", "/dev/null"},
    };
    switch (rng() % 3) {
      case 0: cmds.push_back({"persist", "sites", f}); break;
      case 1: cmds.push_back({"persist", "sites", f, "--leaks", "--depth", "2"}); break;
      default: cmds.push_back({"persist", "sites", f, "--top", "3", "--depth", "20"}); break;
    }
    // dump: by root, offset or address in turn.
    if (dump_by == 0) cmds.push_back({"persist", "dump", f, "--root", rng() % 2 ? "config" : "list"});
    else if (dump_by == 1) cmds.push_back({"persist", "dump", f, "--offset", probe});
    else cmds.push_back({"persist", "dump", f, "--addr", addr, "--raw"});
    if (json)
      for (auto &c : cmds)
        if (c.back() != "--raw") c.push_back("--json");
    std::string dest = dir + "/snapshot-" + std::to_string(n) + ".heap";
    if (n % 10 == 0) cmds.push_back({"persist", "snapshot", f, dest});

    std::vector<Child> running;
    bool file_ok = true;
    for (size_t k = 0; k < cmds.size(); ++k) {
      if (running.size() == kParallel) file_ok &= reap(running, tally, d.what());
      std::string err = dir + "/err-" + std::to_string(k);
      running.push_back({spawn(cmds[k], err), cmds[k], err});
    }
    while (!running.empty()) file_ok &= reap(running, tally, d.what());
    unlink(dest.c_str());
    if (!file_ok) {
      ++failed_files;
      std::string keep = dir + "/failures/damaged-" + std::to_string(n) + ".heap";
      std::string cmd = "cp --sparse=always '" + f + "' '" + keep + "'";
      if (system(cmd.c_str()) == 0) printf("  kept as %s\n", keep.c_str());
    }
    d.restore();
  }
  struct stat null_st;  // `map -o /dev/null` writes into it, never renames a file over it
  if (stat("/dev/null", &null_st) != 0 || !S_ISCHR(null_st.st_mode)) {
    printf("FAIL: a tool replaced /dev/null\n");
    return 1;
  }

  printf("\n%llu runs on %ld damaged files; exit statuses by command (1000+N: signal N):\n",
         static_cast<unsigned long long>(tally.runs), count);
  for (const auto &c : tally.by_cmd) {
    printf("  %-9s", c.first.c_str());
    for (const auto &r : c.second) printf("  %d: %llu", r.first, static_cast<unsigned long long>(r.second));
    printf("\n");
  }
  // The damage must be seen: `check` cannot call every damaged file consistent.
  const auto &chk = tally.by_cmd["check"];
  uint64_t check_ok = chk.count(0) ? chk.at(0) : 0;
  if (check_ok * 10 > static_cast<uint64_t>(count) * 9) {
    printf("FAIL: check called %llu of %ld damaged files consistent: the damage is not reaching the heaps\n",
           static_cast<unsigned long long>(check_ok), count);
    return 1;
  }
  if (tally.failures) {
    printf("FAIL: %llu runs on %llu files failed\n", static_cast<unsigned long long>(tally.failures),
           static_cast<unsigned long long>(failed_files));
    return 1;
  }
  printf("PASS\n");
  return 0;
}
