// cpptest.h — a GoogleTest fixture for the C++ API tests: one heap file per test, opened with
// persist_open, reopened (close + open of the same file, at its recorded address) on demand.
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "heaputil.h"
#include "persist.h"
#include "persist.hpp"
#include "testutil.h"

namespace ptest {

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
  // Close and open the same file again: the heap comes back at the address it was created at.
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
