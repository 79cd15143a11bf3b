// testutil.h — helpers shared by the unit tests: a unique temporary directory per test, a fast
// deterministic RNG, byte patterns derived from a seed (fill and verify), and small formatting
// helpers for failure messages. Header-only; nothing here touches the allocator under test.
#pragma once

#include <fcntl.h>
#include <ftw.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace ptest {

// ---- temporary directory ----------------------------------------------------------------------
// Created under /dev/shm when it is writable (tmpfs: no disk traffic), else $TMPDIR or /tmp.
// Removed recursively by the destructor.
class TempDir {
 public:
  TempDir() {
    std::string base;
    if (access("/dev/shm", W_OK | X_OK) == 0) {
      base = "/dev/shm";
    } else if (const char *t = getenv("TMPDIR"); t && *t) {
      base = t;
    } else {
      base = "/tmp";
    }
    std::string templ = base + "/persist-test-XXXXXX";
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", templ.c_str());
    if (!mkdtemp(buf)) {
      fprintf(stderr, "mkdtemp(%s): %s\n", buf, strerror(errno));
      abort();
    }
    path_ = buf;
  }
  ~TempDir() {
    if (getenv("PERSIST_TEST_KEEP")) {
      fprintf(stderr, "kept test directory %s\n", path_.c_str());
      return;
    }
    nftw(path_.c_str(), &TempDir::remove_entry, 16, FTW_DEPTH | FTW_PHYS);
  }
  TempDir(const TempDir &) = delete;
  TempDir &operator=(const TempDir &) = delete;

  const std::string &path() const { return path_; }
  std::string file(const std::string &name) const { return path_ + "/" + name; }

 private:
  static int remove_entry(const char *p, const struct stat *, int, struct FTW *) {
    remove(p);
    return 0;
  }
  std::string path_;
};

// ---- RNG: xoshiro256** seeded through splitmix64
// -------------------------------------------------
inline uint64_t splitmix64(uint64_t &x) {
  uint64_t z = (x += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

class Rng {
 public:
  explicit Rng(uint64_t seed = 1) { reseed(seed); }
  void reseed(uint64_t seed) {
    uint64_t x = seed;
    for (auto &w : s_) w = splitmix64(x);
  }
  uint64_t next() {
    uint64_t result = rotl(s_[1] * 5, 7) * 9;
    uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
  }
  // Uniform in [0, n) (n > 0); the bias of the modulo is irrelevant here.
  uint64_t below(uint64_t n) { return next() % n; }
  // Uniform in [lo, hi].
  uint64_t range(uint64_t lo, uint64_t hi) { return lo + below(hi - lo + 1); }
  // Log-uniform in [lo, hi] (lo >= 1): small values as likely per octave as large ones.
  uint64_t log_range(uint64_t lo, uint64_t hi) {
    unsigned lo_bits = 63 - __builtin_clzll(lo), hi_bits = 63 - __builtin_clzll(hi);
    unsigned b = static_cast<unsigned>(range(lo_bits, hi_bits));
    uint64_t a = uint64_t{1} << b, z = (b == 63) ? ~uint64_t{0} : (a << 1) - 1;
    if (a < lo) a = lo;
    if (z > hi) z = hi;
    return range(a, z);
  }
  bool chance(unsigned percent) { return below(100) < percent; }

 private:
  static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  uint64_t s_[4];
};

// ---- patterns ----------------------------------------------------------------------------------
// Byte j of a block with seed s is byte (j % 8) of pattern_word(s, j / 8) (little endian). The
// pattern depends on the position, so a block that moved or was partly overwritten by a neighbour
// (another seed) is caught, and a prefix stays valid when the block grows.
inline uint64_t pattern_word(uint64_t seed, uint64_t i) {
  uint64_t x = (seed + i) * 0x9E3779B97F4A7C15ull;
  return x ^ (x >> 29) ^ seed;
}
inline uint8_t pattern_byte(uint64_t seed, uint64_t j) {
  return static_cast<uint8_t>(pattern_word(seed, j >> 3) >> (8 * (j & 7)));
}

// Write the pattern over bytes [from, to) of the block at p.
inline void fill_pattern(void *p, uint64_t seed, size_t from, size_t to) {
  auto *b = static_cast<uint8_t *>(p);
  size_t j = from;
  for (; j < to && (j & 7); ++j) b[j] = pattern_byte(seed, j);
  for (; j + 8 <= to; j += 8) {
    uint64_t w = pattern_word(seed, j >> 3);
    memcpy(b + j, &w, 8);
  }
  for (; j < to; ++j) b[j] = pattern_byte(seed, j);
}

// Returns the index of the first byte in [from, to) that does not match, or SIZE_MAX.
inline size_t check_pattern(const void *p, uint64_t seed, size_t from, size_t to) {
  auto *b = static_cast<const uint8_t *>(p);
  size_t j = from;
  for (; j < to && (j & 7); ++j)
    if (b[j] != pattern_byte(seed, j)) return j;
  for (; j + 8 <= to; j += 8) {
    uint64_t w;
    memcpy(&w, b + j, 8);
    if (w != pattern_word(seed, j >> 3)) {
      for (size_t k = j; k < j + 8; ++k)
        if (b[k] != pattern_byte(seed, k)) return k;
    }
  }
  for (; j < to; ++j)
    if (b[j] != pattern_byte(seed, j)) return j;
  return SIZE_MAX;
}

// Returns the index of the first non-zero byte in [0, n), or SIZE_MAX.
inline size_t first_nonzero(const void *p, size_t n) {
  auto *b = static_cast<const uint8_t *>(p);
  size_t j = 0;
  for (; j + 8 <= n; j += 8) {
    uint64_t w;
    memcpy(&w, b + j, 8);
    if (w) break;
  }
  for (; j < n; ++j)
    if (b[j]) return j;
  return SIZE_MAX;
}

// ---- misc --------------------------------------------------------------------------------------
inline uint64_t env_u64(const char *name, uint64_t dflt) {
  const char *v = getenv(name);
  if (!v || !*v) return dflt;
  char *end = nullptr;
  unsigned long long x = strtoull(v, &end, 0);
  if (end == v) return dflt;
  if (*end == 'k' || *end == 'K') x *= 1000;
  if (*end == 'm' || *end == 'M') x *= 1000000;
  return x;
}

inline std::string hexstr(uint64_t v) {
  char b[32];
  snprintf(b, sizeof b, "0x%" PRIx64, v);
  return b;
}

inline bool write_file(const std::string &path, const void *data, size_t len) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return false;
  auto *p = static_cast<const char *>(data);
  while (len) {
    ssize_t n = write(fd, p, len);
    if (n <= 0) {
      close(fd);
      return false;
    }
    p += n, len -= static_cast<size_t>(n);
  }
  return close(fd) == 0;
}

inline bool read_file(const std::string &path, std::string *out) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  out->clear();
  char buf[65536];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0) {
      close(fd);
      return false;
    }
    if (n == 0) break;
    out->append(buf, static_cast<size_t>(n));
  }
  close(fd);
  return true;
}

}  // namespace ptest
