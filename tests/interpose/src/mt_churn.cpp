// mt_churn.cpp — a multi-threaded C++ program for the interposer tests: threads churn
// std::map / std::string / std::vector, hand objects to each other and delete what other threads
// allocated. Its output depends only on its arguments (THREADS ROUNDS), never on scheduling, so
// the run under the shim must print exactly what the run without it prints.
#include <algorithm>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

namespace {

uint64_t mix(uint64_t x) {
  x ^= x >> 33, x *= 0xff51afd7ed558ccdULL, x ^= x >> 33, x *= 0xc4ceb9fe1a85ec53ULL;
  return x ^ (x >> 33);
}

struct Item {  // handed from one thread to the next, deleted by the receiver
  uint64_t id;
  std::string text;
  std::vector<uint32_t> nums;
};

struct Mailbox {
  std::mutex mu;
  std::condition_variable cv;
  std::deque<std::unique_ptr<Item>> q;
  bool closed = false;
};

struct Result {
  uint64_t map_sum = 0;        // sum over the thread's final map
  uint64_t received_sum = 0;   // checksum of the items received (order-independent)
  uint64_t received = 0;
  size_t map_size = 0;
  std::string longest;
};

uint64_t text_hash(const std::string &s) {
  uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ULL;
  return h;
}

void worker(int t, int threads, int rounds, std::vector<Mailbox> &boxes, Result &out) {
  std::map<uint64_t, std::string> m;
  std::unordered_map<std::string, uint64_t> counts;
  Mailbox &next = boxes[(t + 1) % threads];
  Mailbox &mine = boxes[t];
  auto drain = [&](bool wait) {
    std::deque<std::unique_ptr<Item>> got;
    {
      std::unique_lock<std::mutex> lk(mine.mu);
      if (wait) mine.cv.wait(lk, [&] { return mine.closed || !mine.q.empty(); });
      got.swap(mine.q);
    }
    for (auto &it : got) {  // cross-thread delete: these were allocated by thread t-1
      uint64_t h = text_hash(it->text);
      for (uint32_t v : it->nums) h += v;
      out.received_sum += mix(it->id ^ h);
      ++out.received;
      it.reset();
    }
  };
  for (int r = 0; r < rounds; ++r) {
    uint64_t seed = mix(static_cast<uint64_t>(t) << 32 | static_cast<uint64_t>(r));
    for (int k = 0; k < 64; ++k) {
      uint64_t key = mix(seed + static_cast<uint64_t>(k)) % 5000;
      std::string s(static_cast<size_t>(8 + key % 300), static_cast<char>('a' + key % 26));
      s += std::to_string(key);
      if (key % 7 == 0) m.erase(key);
      else m[key] = s;
      counts[s.substr(0, 3)]++;
    }
    auto item = std::make_unique<Item>();
    item->id = seed;
    item->text.assign(static_cast<size_t>(16 + seed % 2000), static_cast<char>('A' + seed % 26));
    item->nums.resize(static_cast<size_t>(seed % 500));
    for (size_t i = 0; i < item->nums.size(); ++i) item->nums[i] = static_cast<uint32_t>(mix(seed + i));
    {
      std::lock_guard<std::mutex> lk(next.mu);
      next.q.push_back(std::move(item));
    }
    next.cv.notify_one();
    if (r % 16 == 0) drain(false);
  }
  {
    std::lock_guard<std::mutex> lk(next.mu);
    next.closed = true;
  }
  next.cv.notify_one();
  for (;;) {
    drain(true);
    std::lock_guard<std::mutex> lk(mine.mu);
    if (mine.closed && mine.q.empty()) break;
  }
  for (auto &kv : m) {
    out.map_sum += mix(kv.first) ^ text_hash(kv.second);
    if (kv.second.size() > out.longest.size()) out.longest = kv.second;
  }
  out.map_size = m.size();
  (void)counts;
}

}  // namespace

int main(int argc, char **argv) {
  int threads = argc > 1 ? atoi(argv[1]) : 8;
  int rounds = argc > 2 ? atoi(argv[2]) : 4000;
  std::vector<Mailbox> boxes(static_cast<size_t>(threads));
  std::vector<Result> results(static_cast<size_t>(threads));
  // Several waves of threads: thread creation and exit (TLS, DTV, thread caches) are part of it.
  for (int wave = 0; wave < 3; ++wave) {
    for (auto &b : boxes) b.closed = false;
    std::vector<std::thread> ts;
    for (int t = 0; t < threads; ++t)
      ts.emplace_back(worker, t, threads, rounds / 3, std::ref(boxes), std::ref(results[static_cast<size_t>(t)]));
    for (auto &th : ts) th.join();
  }
  uint64_t total = 0;
  for (int t = 0; t < threads; ++t) {
    const Result &r = results[static_cast<size_t>(t)];
    printf("thread %d: map %zu entries, sum %016llx, received %llu items, sum %016llx, longest %zu\n", t,
           r.map_size, static_cast<unsigned long long>(r.map_sum), static_cast<unsigned long long>(r.received),
           static_cast<unsigned long long>(r.received_sum), r.longest.size());
    total += r.map_sum + r.received_sum;
  }
  printf("total %016llx\n", static_cast<unsigned long long>(total));
  return 0;
}
