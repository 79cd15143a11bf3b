// heaputil.h — GoogleTest helpers around the public heap-handle API (persist.h).
#pragma once

#include <gtest/gtest.h>

#include <cerrno>
#include <string>

#include "persist.h"
#include "testutil.h"

namespace ptest {

inline persist_options_t create_opts(uint64_t max_size = 0) {
  persist_options_t o{};
  o.addr = 0;
  o.max_size = max_size;
  o.flags = PERSIST_OPEN_CREATE;
  return o;
}

// "rc=<code> (<strerror>): <message>" of a failed check, "" when the heap is consistent.
inline std::string check_failure(persist_heap_t *h) {
  char msg[1024] = {0};
  int rc = persist_heap_check(h, msg, sizeof msg);
  if (rc == 0) return "";
  return "persist_heap_check rc=" + std::to_string(rc) + " (" + persist_strerror(rc) + "): " + msg;
}

inline std::string err_text(int rc) {
  return std::to_string(rc) + " (" + persist_strerror(rc) + ")";
}

inline persist_stats_t stats_of(persist_heap_t *h) {
  persist_stats_t st{};
  int rc = persist_heap_stats(h, &st);
  EXPECT_EQ(0, rc) << "persist_heap_stats: " << err_text(rc);
  return st;
}

// The heap's authoritative state is consistent (persist_heap_check == 0), else fail with its
// reason.
#define ASSERT_HEAP_CONSISTENT(h) ASSERT_EQ(std::string(), ptest::check_failure(h))
#define EXPECT_HEAP_CONSISTENT(h) EXPECT_EQ(std::string(), ptest::check_failure(h))

// A fixture with one heap file per test in a temporary directory: h_ is opened (created) before
// each test, checked and closed after it; reopen() closes and opens the same file again, at the
// address it was created at.
class HeapTest : public ::testing::Test {
 protected:
  void SetUp() override { open(); }
  void TearDown() override {
    if (h_) {
      EXPECT_HEAP_CONSISTENT(h_);
      EXPECT_EQ(0, persist_close(h_));
      h_ = nullptr;
    }
  }
  void open() {
    persist_options_t o = create_opts();
    o.addr = addr_;
    int rc = persist_open(path_.c_str(), &o, &h_);
    ASSERT_EQ(0, rc) << err_text(rc);
  }
  void reopen() {
    ASSERT_HEAP_CONSISTENT(h_);
    void *base = persist_heap_base(h_);
    ASSERT_EQ(0, persist_close(h_));
    h_ = nullptr;
    int rc = persist_open(path_.c_str(), nullptr, &h_);
    ASSERT_EQ(0, rc) << err_text(rc);
    ASSERT_EQ(base, persist_heap_base(h_));
  }
  uint64_t live_blocks() { return stats_of(h_).live_blocks; }
  bool in_heap(const void *p) const { return persist_contains(h_, p) != 0; }

  uintptr_t addr_ = 0;  // 0: PERSIST_DEFAULT_ADDR
  TempDir dir_;
  std::string path_ = dir_.file("heap");
  persist_heap_t *h_ = nullptr;
};

}  // namespace ptest

