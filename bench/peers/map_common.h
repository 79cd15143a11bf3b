// map_common.h — the task every persistent peer performs, through its own API (BENCH.md T8):
// a chained hash map of `n` small records (key + two words of value), built in a fresh
// persistent heap, closed; then, in a second process, the heap reopened and every key looked up
// and checked. Each program runs one half per invocation:
//   mode=build  file=PATH n=1000000   create, insert n records, close
//   mode=lookup file=PATH n=1000000   open, look up all n keys and check their values, close
// and reports its phases in seconds (RESULT create_s / insert_s / close_s, or open_s / lookup_s /
// close_s). Keys are i * an odd constant (distinct for every i); the bucket count is the next
// power of two above n, so chains are short and the time is the allocator's and the heap's.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "../src/bench_util.h"

namespace mapbench {

inline uint64_t key_of(uint64_t i) { return (i + 1) * 0x9e3779b97f4a7c15ull; }
inline uint64_t value_of(uint64_t key, int j) { return j ? ~key : key >> 3; }
inline uint64_t bucket_bits(uint64_t n) {
  uint64_t b = 1;
  while ((uint64_t{1} << b) < n) ++b;
  return b;
}
inline uint64_t bucket_of(uint64_t key, uint64_t bits) {
  return ((key ^ (key >> 29)) * 0xbf58476d1ce4e5b9ull) >> (64 - bits);
}

struct Params {
  const char *mode, *file;
  uint64_t n;
};

inline Params parse(int argc, char **argv) {
  bench::Args a(argc, argv, "mode=build|lookup file=PATH n=1000000");
  Params p{a.str("mode", "build"), a.str("file", nullptr), a.u64("n", 1000000)};
  a.check();
  if (!p.file) {
    fprintf(stderr, "%s: file=PATH is required\n", argv[0]);
    exit(2);
  }
  return p;
}

// After a lookup pass: every key must have been found with its values.
inline int verdict(const char *who, uint64_t n, uint64_t found) {
  if (found != n) {
    fprintf(stderr, "%s: found %llu of %llu records\n", who, (unsigned long long)found, (unsigned long long)n);
    return 1;
  }
  return 0;
}

}  // namespace mapbench
