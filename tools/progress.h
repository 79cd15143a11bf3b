// progress.h — feedback on stderr for work that can take more than a second on a large heap: a
// progress bar (Progress) when the amount of work is known, an elapsed-time line (Busy) around a
// call that cannot report progress (the core's check_image). Both draw only when stderr is a
// terminal, and only once the work has run for a second; they erase their line when done, so
// nothing is left in the output of a pipe or a log.
#pragma once

#include <cstdint>

namespace persist::tool {

// Never draw (tests and the fuzz target call the readers with a terminal on stderr sometimes).
void progress_disable();

class Progress {
 public:
  Progress(const char *what, uint64_t total);
  ~Progress();
  Progress(const Progress &) = delete;
  Progress &operator=(const Progress &) = delete;
  // Cheap unless `done` has passed the next checkpoint (about 1/256 of the total).
  void update(uint64_t done) {
    if (done >= next_) tick(done);
  }

 private:
  void tick(uint64_t done);
  const char *what_;
  uint64_t total_, next_, step_;
  uint64_t start_ns_, last_draw_ns_ = 0;
  bool enabled_, drawn_ = false;
};

class Busy {
 public:
  explicit Busy(const char *what);
  ~Busy();
  Busy(const Busy &) = delete;
  Busy &operator=(const Busy &) = delete;

 private:
  struct State;
  State *s_ = nullptr;
};

}  // namespace persist::tool
