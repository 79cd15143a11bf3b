// progress.cpp — see progress.h. Draws with "\r" and erases with "\r\033[K" on stderr.
#include "progress.h"

#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <thread>

namespace persist::tool {
namespace {

bool g_disabled = false;
constexpr uint64_t kDelayNs = 1000000000;  // draw nothing for work shorter than a second
constexpr uint64_t kRedrawNs = 100000000;

uint64_t now_ns() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

bool terminal() { return !g_disabled && isatty(STDERR_FILENO) == 1; }

void erase_line() { fputs("\r\033[K", stderr); }

}  // namespace

void progress_disable() { g_disabled = true; }

Progress::Progress(const char *what, uint64_t total)
    : what_(what), total_(total ? total : 1), step_(total_ / 256 + 1), start_ns_(now_ns()),
      enabled_(terminal()) {
  next_ = enabled_ ? step_ : UINT64_MAX;
}

Progress::~Progress() {
  if (drawn_) {
    erase_line();
    fflush(stderr);
  }
}

void Progress::tick(uint64_t done) {
  next_ = done + step_;
  uint64_t t = now_ns();
  if (t - start_ns_ < kDelayNs || t - last_draw_ns_ < kRedrawNs) return;
  last_draw_ns_ = t;
  if (done > total_) done = total_;
  const int width = 30;
  int fill = static_cast<int>(done * width / total_);
  char bar[width + 1];
  for (int i = 0; i < width; ++i) bar[i] = i < fill ? '#' : '.';
  bar[width] = 0;
  fprintf(stderr, "\r%s [%s] %3d%%", what_, bar, static_cast<int>(done * 100 / total_));
  fflush(stderr);
  drawn_ = true;
}

struct Busy::State {
  const char *what;
  std::mutex m;
  std::condition_variable cv;
  bool stop = false, drawn = false;
  std::thread t;
};

Busy::Busy(const char *what) {
  if (!terminal()) return;
  s_ = new State;
  s_->what = what;
  s_->t = std::thread([st = s_] {
    uint64_t start = now_ns();
    std::unique_lock<std::mutex> lock(st->m);
    while (!st->cv.wait_for(lock, std::chrono::milliseconds(200), [st] { return st->stop; })) {
      uint64_t t = now_ns() - start;
      if (t < kDelayNs) continue;
      fprintf(stderr, "\r%s... %llus", st->what, static_cast<unsigned long long>(t / kDelayNs));
      fflush(stderr);
      st->drawn = true;
    }
    if (st->drawn) {
      erase_line();
      fflush(stderr);
    }
  });
}

Busy::~Busy() {
  if (!s_) return;
  {
    std::lock_guard<std::mutex> lock(s_->m);
    s_->stop = true;
  }
  s_->cv.notify_one();
  s_->t.join();
  delete s_;
}

}  // namespace persist::tool
