// bench_util.h — what every bench program shares: a clock, a small fast PRNG, key=value
// arguments, size distributions, and the one output format the runner parses:
//   RESULT <name>=<value>
// (other lines are for humans). Header-only. Arguments are key=value words; check() rejects
// unknown keys so a typo in the runner's table cannot silently measure a default.
#pragma once

#include <pthread.h>
#include <time.h>
#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

namespace bench {

inline double now() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

// xoshiro-style generator state seeded through splitmix64: fast, deterministic per seed.
class Rng {
 public:
  explicit Rng(uint64_t seed) {
    for (auto &w : s_) w = splitmix(seed);
  }
  uint64_t next() {
    uint64_t r = rotl(s_[1] * 5, 7) * 9, t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return r;
  }
  // Uniform in [0, n).
  uint64_t below(uint64_t n) { return static_cast<uint64_t>((static_cast<__uint128_t>(next()) * n) >> 64); }
  // Uniform in [lo, hi].
  uint64_t range(uint64_t lo, uint64_t hi) { return lo + below(hi - lo + 1); }
  // Log-uniform in [lo, hi]: as many blocks in 16..32 as in 1024..2048 (small sizes dominate).
  uint64_t log_range(uint64_t lo, uint64_t hi) {
    double u = static_cast<double>(next() >> 11) * (1.0 / 9007199254740992.0);
    double v = std::exp(std::log(double(lo)) + u * (std::log(double(hi) + 1) - std::log(double(lo))));
    uint64_t r = static_cast<uint64_t>(v);
    return r < lo ? lo : r > hi ? hi : r;
  }

 private:
  static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  static uint64_t splitmix(uint64_t &x) {
    uint64_t z = (x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  uint64_t s_[4];
};

// Arguments as key=value words: `larson threads=2 seconds=1`.
class Args {
 public:
  Args(int argc, char **argv, const char *usage) : argc_(argc), argv_(argv), usage_(usage) {
    for (int i = 1; i < argc; ++i)
      if (!strchr(argv[i], '=')) {
        bool help = !strcmp(argv[i], "-h") || !strcmp(argv[i], "--help");
        fprintf(help ? stdout : stderr, "usage: %s %s\n", argv[0], usage);
        exit(help ? 0 : 2);
      }
  }
  // Call once every key was read: an unknown key is an error.
  void check() {
    for (int i = 1; i < argc_; ++i)
      if (!used(argv_[i])) {
        fprintf(stderr, "%s: unknown argument %s\nusage: %s %s\n", argv_[0], argv_[i], argv_[0], usage_);
        exit(2);
      }
  }
  double num(const char *key, double def) {
    const char *v = find(key);
    return v ? strtod(v, nullptr) : def;
  }
  uint64_t u64(const char *key, uint64_t def) { return static_cast<uint64_t>(num(key, static_cast<double>(def))); }
  const char *str(const char *key, const char *def) {
    const char *v = find(key);
    return v ? v : def;
  }

 private:
  const char *find(const char *key) {
    size_t n = strlen(key);
    for (int i = 1; i < argc_; ++i)
      if (!strncmp(argv_[i], key, n) && argv_[i][n] == '=') {
        seen_.push_back(i);
        return argv_[i] + n + 1;
      }
    return nullptr;
  }
  bool used(const char *arg) {
    for (int i : seen_)
      if (argv_[i] == arg) return true;
    return false;
  }
  int argc_;
  char **argv_;
  const char *usage_;
  std::vector<int> seen_;
};

inline void result(const char *name, double value) { printf("RESULT %s=%.6g\n", name, value); }

// Write to a block so the allocator's memory is really used (and the compiler cannot drop the
// allocation): the first and the last byte, the cheapest touch that still faults its pages in.
inline void touch(void *p, size_t n) {
  auto *c = static_cast<volatile char *>(p);
  c[0] = static_cast<char>(n);
  c[n - 1] = static_cast<char>(n >> 8);
}

// Start n threads running fn(i) and join them.
template <class Fn>
void run_threads(unsigned n, Fn fn) {
  std::vector<std::thread> ts;
  ts.reserve(n);
  for (unsigned i = 0; i < n; ++i) ts.emplace_back(fn, i);
  for (auto &t : ts) t.join();
}

}  // namespace bench
