// forkpublish_test.cpp — fork while other threads are inside allocate-and-publish: every child
// can publish too and exits (the action log's lock and entries were held by threads the child
// does not have: the fork handlers take the lock, and the child frees the entries).
#include <gtest/gtest.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <thread>
#include <vector>

#include "heaputil.h"
#include "persist.h"

namespace {

class ForkPublishTest : public ptest::HeapTest {};

TEST_F(ForkPublishTest, ChildrenOfAForkDuringPublishPublishAndExit) {
  auto **slots = static_cast<void **>(persist_alloc(h_, 64 * sizeof(void *)));
  ASSERT_NE(nullptr, slots);
  std::atomic<bool> stop{false};
  std::vector<std::thread> publishers;
  for (int t = 0; t < 3; ++t)
    publishers.emplace_back([&, t] {
      while (!stop.load(std::memory_order_relaxed)) {
        void *old = slots[t];
        if (!persist_heap_alloc_publish(h_, 32, &slots[t])) return;
        if (old) persist_free(h_, old);
      }
    });
  int hung = 0;
  for (int i = 0; i < 40; ++i) {
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      for (int k = 0; k < 70; ++k)  // more than the log's 64 entries
        if (!persist_heap_alloc_publish(h_, 32, &slots[10 + k % 50])) _exit(2);
      _exit(0);
    }
    int st = 0;
    pid_t got = 0;
    for (int w = 0; w < 500 && (got = waitpid(pid, &st, WNOHANG)) == 0; ++w) usleep(10000);
    if (got == 0) {
      ++hung;
      kill(pid, SIGKILL);
      waitpid(pid, &st, 0);
    } else {
      EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << "child " << i << " status " << st;
    }
  }
  stop = true;
  for (auto &t : publishers) t.join();
  EXPECT_EQ(0, hung) << hung << " of 40 children hung";
  EXPECT_HEAP_CONSISTENT(h_);
}

}  // namespace
