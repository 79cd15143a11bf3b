// errors_test.cpp — error paths of the public API: files that are not heaps (foreign, empty,
// directories, newer format, damaged superblock), persist_strerror, and the malloc-family edge
// cases of the handle API (sizes that overflow, zero sizes, bad alignments, NULL).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <set>
#include <string>
#include <vector>

#include "heaputil.h"
#include "layout.h"
#include "persist.h"
#include "sizeclass.h"
#include "superblock.h"
#include "testutil.h"

namespace {

// ---- opening things that are not (usable) heaps -----------------------------------------------

class OpenErrors : public ::testing::Test {
 protected:
  int try_open(const std::string &path, unsigned flags = 0) {
    persist_options_t o = ptest::create_opts();
    o.flags = flags;
    persist_heap_t *h = nullptr;
    int rc = persist_open(path.c_str(), &o, &h);
    if (rc == 0) {
      EXPECT_NE(nullptr, h);
      persist_close(h);
    }
    return rc;
  }
  // A real heap file, closed.
  void make_heap(const std::string &path) {
    persist_options_t o = ptest::create_opts();
    persist_heap_t *h = nullptr;
    int rc = persist_open(path.c_str(), &o, &h);
    ASSERT_EQ(0, rc) << ptest::err_text(rc);
    ASSERT_NE(nullptr, persist_heap_root(h, "r", 100));
    ASSERT_EQ(0, persist_close(h));
  }
  // Rewrite both superblock slots of a closed heap file through f, with valid checksums.
  template <class F>
  void edit_superblocks(const std::string &path, F f) {
    int fd = open(path.c_str(), O_RDWR);
    ASSERT_GE(fd, 0);
    for (int slot = 0; slot < 2; ++slot) {
      persist::Superblock sb;
      off_t at = static_cast<off_t>(slot * persist::kSuperSlotSize);
      ASSERT_EQ(ssize_t(sizeof sb), pread(fd, &sb, sizeof sb, at));
      if (sb.magic != persist::kMagic) continue;  // a slot never written
      f(sb);
      sb.checksum = 0;
      sb.checksum = persist::crc32c(&sb, sizeof sb);
      ASSERT_EQ(ssize_t(sizeof sb), pwrite(fd, &sb, sizeof sb, at));
    }
    close(fd);
  }
  ptest::TempDir tmp_;
};

TEST_F(OpenErrors, FileOfRandomBytesIsBadMagic) {
  std::string path = tmp_.file("random");
  std::vector<uint8_t> junk(1 << 20);
  ptest::Rng rng(3);
  for (auto &b : junk) b = static_cast<uint8_t>(rng.next());
  ASSERT_TRUE(ptest::write_file(path, junk.data(), junk.size()));
  EXPECT_EQ(PERSIST_E_BADMAGIC, try_open(path));
  // CREATE must not format over an existing foreign file.
  EXPECT_EQ(PERSIST_E_BADMAGIC, try_open(path, PERSIST_OPEN_CREATE));
  std::string after;
  ASSERT_TRUE(ptest::read_file(path, &after));
  EXPECT_EQ(junk.size(), after.size());
  EXPECT_EQ(0, memcmp(junk.data(), after.data(), junk.size())) << "the foreign file was modified";
}

TEST_F(OpenErrors, TextFileIsBadMagic) {
  std::string path = tmp_.file("text");
  std::string text;
  for (int i = 0; i < 1000; ++i)
    text += "this is not a heap file, line " + std::to_string(i) + "\n";
  ASSERT_TRUE(ptest::write_file(path, text.data(), text.size()));
  EXPECT_EQ(PERSIST_E_BADMAGIC, try_open(path));
}

TEST_F(OpenErrors, EmptyFileWithoutCreateIsBadMagic) {
  std::string path = tmp_.file("empty");
  ASSERT_TRUE(ptest::write_file(path, "", 0));
  EXPECT_EQ(PERSIST_E_BADMAGIC, try_open(path));
}

TEST_F(OpenErrors, MissingFileWithoutCreateIsENOENT) {
  std::string path = tmp_.file("missing");
  EXPECT_EQ(-ENOENT, try_open(path));
  EXPECT_NE(0, access(path.c_str(), F_OK)) << "open without CREATE created the file";
}

TEST_F(OpenErrors, DirectoryIsAnError) {
  std::string path = tmp_.file("dir");
  ASSERT_EQ(0, mkdir(path.c_str(), 0700));
  int rc = try_open(path);
  EXPECT_LT(rc, 0);
  rc = try_open(path, PERSIST_OPEN_CREATE);
  EXPECT_LT(rc, 0) << "CREATE on a directory";
  EXPECT_STRNE("", persist_strerror(rc));
}

TEST_F(OpenErrors, NewerMajorVersionIsRefused) {
  std::string path = tmp_.file("newer");
  make_heap(path);
  edit_superblocks(path, [](persist::Superblock &sb) { sb.major = persist::kFormatMajor + 1; });
  EXPECT_EQ(PERSIST_E_VERSION, try_open(path));
}

TEST_F(OpenErrors, NewerMinorVersionOpens) {
  std::string path = tmp_.file("newer-minor");
  make_heap(path);
  edit_superblocks(path, [](persist::Superblock &sb) { sb.minor = persist::kFormatMinor + 1; });
  EXPECT_EQ(0, try_open(path));
}

// Crafted superblocks (valid checksums) whose fields do not fit: refused before anything is
// mapped or rewritten, and the file is left as it was.
TEST_F(OpenErrors, CraftedSuperblockFieldsAreRefusedAndTheFileIsUntouched) {
  struct Case {
    const char *what;
    void (*mutate)(persist::Superblock &);
  } cases[] = {
      {"base 0", [](persist::Superblock &sb) { sb.base = 0; }},
      {"relocation from 0", [](persist::Superblock &sb) {
         sb.flags |= persist::kSuperFlagRelocating, sb.reloc_from = 0, sb.reloc_to = sb.base;
       }},
      {"size not a whole number of segments", [](persist::Superblock &sb) { sb.size -= persist::kPageSize; }},
  };
  for (const Case &c : cases) {
    SCOPED_TRACE(c.what);
    std::string path = tmp_.file("crafted");
    unlink(path.c_str());
    make_heap(path);
    edit_superblocks(path, c.mutate);
    std::string before, after;
    ASSERT_TRUE(ptest::read_file(path, &before));
    EXPECT_EQ(PERSIST_E_CORRUPT, try_open(path));
    EXPECT_EQ(PERSIST_E_CORRUPT, try_open(path, PERSIST_OPEN_CREATE));
    ASSERT_TRUE(ptest::read_file(path, &after));
    EXPECT_TRUE(before == after) << "the crafted heap was modified";
  }
}

TEST_F(OpenErrors, BothSuperblocksDamagedIsChecksumError) {
  std::string path = tmp_.file("damaged");
  make_heap(path);
  int fd = open(path.c_str(), O_RDWR);
  ASSERT_GE(fd, 0);
  for (int slot = 0; slot < 2; ++slot) {
    uint8_t b;
    off_t at = static_cast<off_t>(slot * persist::kSuperSlotSize + 48);  // inside reserve
    ASSERT_EQ(1, pread(fd, &b, 1, at));
    b ^= 0x20;
    ASSERT_EQ(1, pwrite(fd, &b, 1, at));
  }
  close(fd);
  EXPECT_EQ(PERSIST_E_CHECKSUM, try_open(path));
}

TEST_F(OpenErrors, SecondOpenOfAnOpenHeapIsBusy) {
  std::string path = tmp_.file("busy");
  persist_options_t o = ptest::create_opts();
  persist_heap_t *h = nullptr;
  ASSERT_EQ(0, persist_open(path.c_str(), &o, &h));
  persist_heap_t *h2 = nullptr;
  int rc = persist_open(path.c_str(), nullptr, &h2);
  EXPECT_EQ(PERSIST_E_BUSY, rc) << ptest::err_text(rc);
  if (rc == 0) persist_close(h2);
  // The failed open did not disturb the first handle.
  void *p = persist_alloc(h, 100);
  EXPECT_NE(nullptr, p);
  ASSERT_HEAP_CONSISTENT(h);
  ASSERT_EQ(0, persist_close(h));
  // Once closed, it opens again.
  EXPECT_EQ(0, try_open(path));
}

// ---- persist_strerror ------------------------------------------------------------------------

TEST(Strerror, EveryCodeHasItsOwnNonEmptyMessage) {
  const int codes[] = {PERSIST_E_BADMAGIC, PERSIST_E_VERSION,   PERSIST_E_CHECKSUM,
                       PERSIST_E_CORRUPT,  PERSIST_E_ADDRINUSE, PERSIST_E_BUSY,
                       PERSIST_E_NOHEAP,   PERSIST_E_TOOSMALL,  PERSIST_E_EXISTS,
                       PERSIST_E_NOTBLOCK, PERSIST_E_TAG,       PERSIST_E_MOVED};
  std::set<std::string> seen;
  for (int c : codes) {
    const char *m = persist_strerror(c);
    ASSERT_NE(nullptr, m) << c;
    EXPECT_GT(strlen(m), 3u) << "code " << c;
    EXPECT_TRUE(seen.insert(m).second) << "code " << c << " shares its message: " << m;
  }
  // -errno values and unknown codes get a message too.
  for (int c : {-ENOMEM, -ENOENT, -EINVAL, -EEXIST, -EACCES, -ENOSPC}) {
    const char *m = persist_strerror(c);
    ASSERT_NE(nullptr, m);
    EXPECT_GT(strlen(m), 3u) << "code " << c;
    EXPECT_EQ(0u, seen.count(m)) << "errno code " << c << " reads like a PERSIST_E code";
  }
  for (int c : {-999999, 12345, -1012}) {
    const char *m = persist_strerror(c);
    ASSERT_NE(nullptr, m) << c;
    EXPECT_GT(strlen(m), 0u) << c;
  }
  const char *ok = persist_strerror(0);
  ASSERT_NE(nullptr, ok);
  EXPECT_GT(strlen(ok), 0u);
}

// ---- malloc-family edge cases ----------------------------------------------------------------

class AllocEdges : public ::testing::Test {
 protected:
  void SetUp() override {
    persist_options_t o = ptest::create_opts();
    int rc = persist_open(tmp_.file("heap").c_str(), &o, &h_);
    ASSERT_EQ(0, rc) << ptest::err_text(rc);
  }
  void TearDown() override {
    if (h_) {
      EXPECT_HEAP_CONSISTENT(h_);
      EXPECT_EQ(0, persist_close(h_));
    }
  }
  ptest::TempDir tmp_;
  persist_heap_t *h_ = nullptr;
};

TEST_F(AllocEdges, HugeRequestsFailWithENOMEM) {
  for (size_t s :
       {SIZE_MAX, SIZE_MAX - 4095, SIZE_MAX / 2 + 1, size_t(PTRDIFF_MAX), size_t(1) << 48}) {
    errno = 0;
    EXPECT_EQ(nullptr, persist_alloc(h_, s)) << s;
    EXPECT_EQ(ENOMEM, errno) << "size " << s;
    errno = 0;
    EXPECT_EQ(nullptr, persist_alloc_aligned(h_, 64, s)) << s;
    EXPECT_EQ(ENOMEM, errno) << "aligned, size " << s;
  }
  // More than the reservation (64 GiB by default) cannot be mapped.
  errno = 0;
  EXPECT_EQ(nullptr, persist_alloc(h_, size_t{128} << 30));
  EXPECT_EQ(ENOMEM, errno);
  // The heap still works.
  void *p = persist_alloc(h_, 100);
  ASSERT_NE(nullptr, p);
  persist_free(h_, p);
}

TEST_F(AllocEdges, CallocOverflowFailsWithENOMEM) {
  struct {
    size_t n, s;
  } cases[] = {{SIZE_MAX, 2},
               {2, SIZE_MAX},
               {SIZE_MAX / 2 + 2, 2},
               {size_t(1) << 33, size_t(1) << 33},
               {SIZE_MAX, SIZE_MAX}};
  for (auto c : cases) {
    errno = 0;
    EXPECT_EQ(nullptr, persist_calloc(h_, c.n, c.s)) << c.n << " x " << c.s;
    EXPECT_EQ(ENOMEM, errno) << c.n << " x " << c.s;
  }
  void *p = persist_calloc(h_, 0, 100);
  EXPECT_NE(nullptr, p) << "calloc(0, n) is a zero-size allocation";
  persist_free(h_, p);
}

TEST_F(AllocEdges, ReallocToZeroFreesAndReturnsNull) {
  void *p = persist_alloc(h_, 200);
  ASSERT_NE(nullptr, p);
  uint64_t live = ptest::stats_of(h_).live_blocks;
  EXPECT_EQ(nullptr, persist_realloc(h_, p, 0));
  EXPECT_EQ(live - 1, ptest::stats_of(h_).live_blocks) << "realloc(p, 0) did not free p";
}

TEST_F(AllocEdges, ReallocOfNullAllocates) {
  void *p = persist_realloc(h_, nullptr, 300);
  ASSERT_NE(nullptr, p);
  EXPECT_GE(persist_usable_size(h_, p), 300u);
  memset(p, 1, 300);
  persist_free(h_, p);
}

TEST_F(AllocEdges, FailedReallocLeavesTheBlockAlone) {
  void *p = persist_alloc(h_, 1000);
  ASSERT_NE(nullptr, p);
  ptest::fill_pattern(p, 9, 0, 1000);
  errno = 0;
  EXPECT_EQ(nullptr, persist_realloc(h_, p, SIZE_MAX));
  EXPECT_EQ(ENOMEM, errno);
  EXPECT_EQ(SIZE_MAX, ptest::check_pattern(p, 9, 0, 1000));
  EXPECT_GE(persist_usable_size(h_, p), 1000u);
  persist_free(h_, p);
}

TEST_F(AllocEdges, ZeroSizeAllocationIsAUniqueLiveBlock) {
  void *a = persist_alloc(h_, 0);
  void *b = persist_alloc(h_, 0);
  ASSERT_NE(nullptr, a);
  ASSERT_NE(nullptr, b);
  EXPECT_NE(a, b);
  EXPECT_TRUE(persist_contains(h_, a));
  EXPECT_EQ(0u, reinterpret_cast<uintptr_t>(a) % 16);
  persist_free(h_, a);
  persist_free(h_, b);
}

TEST_F(AllocEdges, FreeOfNullIsHarmlessAndFreePreservesErrno) {
  persist_free(h_, nullptr);
  void *p = persist_alloc(h_, 64);
  ASSERT_NE(nullptr, p);
  errno = 12345;
  persist_free(h_, p);
  EXPECT_EQ(12345, errno) << "persist_free changed errno";
  errno = 777;
  persist_free(h_, nullptr);
  EXPECT_EQ(777, errno);
  EXPECT_EQ(0u, persist_usable_size(h_, nullptr));
}

TEST_F(AllocEdges, NonPowerOfTwoAlignmentIsEINVAL) {
  for (size_t a : {size_t(3), size_t(24), size_t(48), size_t(100), size_t(4097), size_t(65535),
                   (size_t(1) << 20) + 16, SIZE_MAX}) {
    errno = 0;
    EXPECT_EQ(nullptr, persist_alloc_aligned(h_, a, 64)) << "alignment " << a;
    EXPECT_EQ(EINVAL, errno) << "alignment " << a;
  }
}

// Sizes near the large/huge boundary (kMaxLarge: the data pages of one segment) with an
// alignment above a page: the padding the alignment needs must not turn into ENOMEM.
TEST_F(AllocEdges, AlignedAllocationsAroundTheLargeLimit) {
  for (size_t a : {size_t(8192), size_t(16384), size_t(65536), size_t(1) << 20}) {
    for (size_t s : {persist::kMaxLarge - a, persist::kMaxLarge - 4096, persist::kMaxLarge - 1000,
                     persist::kMaxLarge, persist::kMaxLarge + 1}) {
      errno = 0;
      void *p = persist_alloc_aligned(h_, a, s);
      ASSERT_NE(nullptr, p) << "alignment " << a << " size " << s << " (kMaxLarge "
                            << persist::kMaxLarge << "): errno " << errno;
      EXPECT_EQ(0u, reinterpret_cast<uintptr_t>(p) % a);
      EXPECT_GE(persist_usable_size(h_, p), s);
      static_cast<char *>(p)[s - 1] = 1;
      persist_free(h_, p);
    }
  }
}

TEST_F(AllocEdges, PowerOfTwoAlignmentsAreHonoured) {
  std::vector<void *> ps;
  for (unsigned k = 0; k <= 21; ++k) {
    size_t a = size_t(1) << k;
    for (size_t s : {size_t(1), size_t(100), size_t(5000), size_t(70000)}) {
      void *p = persist_alloc_aligned(h_, a, s);
      ASSERT_NE(nullptr, p) << "alignment " << a << " size " << s << " errno " << errno;
      EXPECT_EQ(0u, reinterpret_cast<uintptr_t>(p) % a) << "alignment " << a << " size " << s;
      EXPECT_GE(persist_usable_size(h_, p), s);
      memset(p, 0xcd, s);
      ps.push_back(p);
    }
  }
  for (void *p : ps) persist_free(h_, p);
}

}  // namespace
