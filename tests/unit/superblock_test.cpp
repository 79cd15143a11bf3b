// superblock_test.cpp — the two-slot superblock (core/superblock.h): round trip, slot selection by
// sequence number, fallback on a corrupted slot, and the error codes for foreign, damaged and newer
// images, each with a reason that names the problem.
#include "superblock.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <string>
#include <vector>

#include "persist.h"

namespace {

using namespace persist;

constexpr uint64_t kBase = 0x200000000000ull;
constexpr uint64_t kReserve = uint64_t{64} << 30;
constexpr uint64_t kSize = 2 * kSegmentSize;

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

class SuperblockTest : public ::testing::Test {
 protected:
  SuperblockTest() : page_(kPageSize, 0) {}
  uint8_t *page0() { return page_.data(); }
  Superblock slot(int i) const {
    Superblock s;
    memcpy(&s, page_.data() + i * kSuperSlotSize, sizeof s);
    return s;
  }
  // Store sb into slot i with a correct checksum for its contents (as a writer of any version
  // of the library would).
  void put_slot(int i, Superblock sb) {
    sb.checksum = 0;
    sb.checksum = crc32c(&sb, sizeof sb);
    memcpy(page_.data() + i * kSuperSlotSize, &sb, sizeof sb);
  }
  int read(Superblock *out, Msg *why, int *slot = nullptr) {
    return super_read(page_.data(), page_.size(), out, why, slot);
  }
  std::vector<uint8_t> page_;
};

TEST(Crc32c, KnownVectors) {
  // The standard check value of CRC-32C (Castagnoli).
  EXPECT_EQ(0xE3069283u, crc32c("123456789", 9));
  EXPECT_EQ(0u, crc32c("", 0));
  // Incremental use gives the same as one pass.
  uint32_t part = crc32c("12345", 5);
  EXPECT_EQ(0xE3069283u, crc32c("6789", 4, part));
  // 32 zero bytes (RFC 3720 B.4).
  uint8_t zeros[32] = {};
  EXPECT_EQ(0x8A9136AAu, crc32c(zeros, sizeof zeros));
}

TEST_F(SuperblockTest, NewSuperblockDescribesTheHeap) {
  Superblock sb = super_new(kBase, kReserve, kSize, 0);
  EXPECT_EQ(kMagic, sb.magic);
  EXPECT_EQ(kFormatMajor, sb.major);
  EXPECT_EQ(kFormatMinor, sb.minor);
  EXPECT_EQ(sizeof(Superblock), sb.slot_size);
  EXPECT_EQ(kBase, sb.base);
  EXPECT_EQ(kReserve, sb.reserve);
  EXPECT_EQ(kSize, sb.size);
  EXPECT_NE(0u, sb.created_ns);
  Superblock other = super_new(kBase, kReserve, kSize, 0);
  EXPECT_NE(0, memcmp(sb.uuid, other.uuid, sizeof sb.uuid)) << "two heaps got the same uuid";
  static const uint8_t zero[16] = {};
  EXPECT_NE(0, memcmp(sb.uuid, zero, sizeof zero));
}

TEST_F(SuperblockTest, WriteThenReadRoundTrips) {
  Superblock sb = super_new(kBase, kReserve, kSize, kSuperFlagRegion);
  sb.root_table = 5 * kPageSize;
  sb.opens = 3;
  sb.state = kStateClean;
  super_write(page0(), sb);
  EXPECT_EQ(1u, sb.seq) << "the first version of an empty page is seq 1";

  Superblock got;
  Msg why;
  int slot = -1;
  ASSERT_EQ(0, read(&got, &why, &slot)) << why.str();
  EXPECT_EQ(0, memcmp(&sb, &got, sizeof sb)) << "read back differs from what was written";
  EXPECT_EQ(kBase, got.base);
  EXPECT_EQ(kReserve, got.reserve);
  EXPECT_EQ(kSize, got.size);
  EXPECT_EQ(uint32_t{kStateClean}, got.state);
  EXPECT_EQ(kSuperFlagRegion, got.flags);
  EXPECT_EQ(5 * kPageSize, got.root_table);
  EXPECT_EQ(3u, got.opens);
  EXPECT_EQ(1u, got.seq);
  EXPECT_TRUE(slot == 0 || slot == 1);
}

TEST_F(SuperblockTest, SuccessiveWritesAlternateSlotsAndTheLatestWins) {
  Superblock sb = super_new(kBase, kReserve, kSize, 0);
  int prev_slot = -1;
  for (uint64_t v = 1; v <= 6; ++v) {
    Superblock before[2] = {slot(0), slot(1)};
    sb.opens = v * 10;
    super_write(page0(), sb);
    EXPECT_EQ(v, sb.seq);
    Superblock got;
    Msg why;
    int s = -1;
    ASSERT_EQ(0, read(&got, &why, &s)) << why.str();
    EXPECT_EQ(v, got.seq);
    EXPECT_EQ(v * 10, got.opens);
    if (prev_slot >= 0) {
      EXPECT_NE(prev_slot, s) << "write " << v << " overwrote the current slot";
      // The slot that was current before the write is untouched (torn-write safety).
      EXPECT_EQ(0, memcmp(&before[prev_slot], page_.data() + prev_slot * kSuperSlotSize,
                          sizeof(Superblock)))
          << "write " << v << " modified the previously current slot";
    }
    prev_slot = s;
  }
}

TEST_F(SuperblockTest, HigherSequenceSlotWinsWhicheverSlotItIsIn) {
  Superblock a = super_new(kBase, kReserve, kSize, 0);
  Superblock b = a;
  a.seq = 7, a.opens = 111;
  b.seq = 9, b.opens = 222;
  for (int order = 0; order < 2; ++order) {
    put_slot(order, a);
    put_slot(1 - order, b);
    Superblock got;
    Msg why;
    int s = -1;
    ASSERT_EQ(0, read(&got, &why, &s)) << why.str();
    EXPECT_EQ(9u, got.seq);
    EXPECT_EQ(222u, got.opens);
    EXPECT_EQ(1 - order, s);
  }
  // The next write goes to the slot of the older version, with seq = 10.
  put_slot(0, a);
  put_slot(1, b);
  Superblock c = b;
  c.opens = 333;
  super_write(page0(), c);
  EXPECT_EQ(10u, c.seq);
  EXPECT_EQ(333u, slot(0).opens);
  EXPECT_EQ(222u, slot(1).opens);
}

TEST_F(SuperblockTest, CorruptedCurrentSlotFallsBackToTheOther) {
  Superblock sb = super_new(kBase, kReserve, kSize, 0);
  sb.opens = 1;
  super_write(page0(), sb);  // seq 1
  sb.opens = 2;
  super_write(page0(), sb);  // seq 2
  Superblock got;
  Msg why;
  int current = -1;
  ASSERT_EQ(0, read(&got, &why, &current)) << why.str();
  ASSERT_EQ(2u, got.seq);

  // Flip one bit inside the current slot (in the size field): its checksum no longer matches.
  page_[current * kSuperSlotSize + offsetof(Superblock, size)] ^= 0x10;
  Msg why2;
  int s = -1;
  ASSERT_EQ(0, read(&got, &why2, &s)) << why2.str();
  EXPECT_EQ(1 - current, s);
  EXPECT_EQ(1u, got.seq);
  EXPECT_EQ(1u, got.opens);
  EXPECT_EQ(kSize, got.size);
}

TEST_F(SuperblockTest, CorruptedOlderSlotIsIgnored) {
  Superblock sb = super_new(kBase, kReserve, kSize, 0);
  super_write(page0(), sb);
  super_write(page0(), sb);
  Superblock got;
  Msg why;
  int current = -1;
  ASSERT_EQ(0, read(&got, &why, &current)) << why.str();
  page_[(1 - current) * kSuperSlotSize + offsetof(Superblock, seq)] ^= 0x40;  // seq 1 -> 65
  Msg why2;
  int s = -1;
  ASSERT_EQ(0, read(&got, &why2, &s)) << why2.str();
  EXPECT_EQ(current, s) << "a slot with a bad checksum (and a higher seq) was chosen";
  EXPECT_EQ(2u, got.seq);
}

TEST_F(SuperblockTest, BothSlotsCorruptIsAChecksumError) {
  Superblock sb = super_new(kBase, kReserve, kSize, 0);
  super_write(page0(), sb);
  super_write(page0(), sb);
  page_[offsetof(Superblock, base)] ^= 1;
  page_[kSuperSlotSize + offsetof(Superblock, reserve) + 2] ^= 0x80;
  Superblock got;
  Msg why;
  EXPECT_EQ(PERSIST_E_CHECKSUM, read(&got, &why));
  EXPECT_FALSE(why.empty());
  EXPECT_NE(std::string::npos, lower(why.str()).find("checksum")) << why.str();
}

TEST_F(SuperblockTest, OneWrittenSlotWithBadChecksumIsAChecksumError) {
  Superblock sb = super_new(kBase, kReserve, kSize, 0);
  super_write(page0(), sb);  // only one slot written; the other is all zero (no magic)
  Superblock got;
  Msg why;
  int s = -1;
  ASSERT_EQ(0, read(&got, &why, &s)) << why.str();
  page_[s * kSuperSlotSize + offsetof(Superblock, checksum)] ^= 0xff;
  Msg why2;
  EXPECT_EQ(PERSIST_E_CHECKSUM, read(&got, &why2));
  EXPECT_NE(std::string::npos, lower(why2.str()).find("checksum")) << why2.str();
}

TEST_F(SuperblockTest, WrongMagicIsBadMagic) {
  // All zero: nothing there.
  Superblock got;
  Msg why;
  EXPECT_EQ(PERSIST_E_BADMAGIC, read(&got, &why));
  EXPECT_NE(std::string::npos, lower(why.str()).find("magic")) << why.str();

  // Something else's bytes.
  for (size_t i = 0; i < page_.size(); ++i) page_[i] = static_cast<uint8_t>(i * 131 + 7);
  Msg why2;
  EXPECT_EQ(PERSIST_E_BADMAGIC, read(&got, &why2));
  EXPECT_NE(std::string::npos, lower(why2.str()).find("magic")) << why2.str();

  // A valid heap whose magic was changed in both slots (checksums recomputed: only the magic is
  // wrong).
  Superblock sb = super_new(kBase, kReserve, kSize, 0);
  sb.magic = kMagic ^ 0xff00000000000000ull;
  sb.seq = 1;
  put_slot(0, sb);
  sb.seq = 2;
  put_slot(1, sb);
  Msg why3;
  EXPECT_EQ(PERSIST_E_BADMAGIC, read(&got, &why3));
  EXPECT_NE(std::string::npos, lower(why3.str()).find("magic")) << why3.str();
}

TEST_F(SuperblockTest, NewerMajorVersionIsRefused) {
  Superblock sb = super_new(kBase, kReserve, kSize, 0);
  sb.major = kFormatMajor + 1;
  sb.seq = 1;
  put_slot(0, sb);
  sb.seq = 2;
  put_slot(1, sb);
  Superblock got;
  Msg why;
  EXPECT_EQ(PERSIST_E_VERSION, read(&got, &why));
  EXPECT_FALSE(why.empty());
  std::string w = lower(why.str());
  EXPECT_NE(std::string::npos, w.find("version")) << why.str();
  EXPECT_NE(std::string::npos, w.find(std::to_string(kFormatMajor + 1))) << why.str();
}

TEST_F(SuperblockTest, NewerMinorVersionIsReadable) {
  Superblock sb = super_new(kBase, kReserve, kSize, 0);
  sb.minor = kFormatMinor + 3;
  sb.seq = 4;
  put_slot(1, sb);
  Superblock got;
  Msg why;
  int s = -1;
  ASSERT_EQ(0, read(&got, &why, &s)) << why.str();
  EXPECT_EQ(1, s);
  EXPECT_EQ(kFormatMinor + 3, got.minor);
}

TEST_F(SuperblockTest, InvalidGeometryIsCorrupt) {
  struct Case {
    const char *what;
    void (*mutate)(Superblock &);
  } cases[] = {
      {"size not a multiple of the page size", [](Superblock &s) { s.size += 100; }},
      {"size larger than the reservation",
       [](Superblock &s) { s.size = s.reserve + kSegmentSize; }},
      {"size smaller than the metadata of one segment", [](Superblock &s) { s.size = kPageSize; }},
      {"base not page aligned", [](Superblock &s) { s.base += 8; }},
      {"unknown flag", [](Superblock &s) { s.flags = 0x80; }},
      {"unknown state", [](Superblock &s) { s.state = 77; }},
  };
  for (const Case &c : cases) {
    SCOPED_TRACE(c.what);
    std::fill(page_.begin(), page_.end(), 0);
    Superblock sb = super_new(kBase, kReserve, kSize, 0);
    c.mutate(sb);
    sb.seq = 1;
    put_slot(0, sb);
    Superblock got;
    Msg why;
    EXPECT_EQ(PERSIST_E_CORRUPT, read(&got, &why));
    EXPECT_FALSE(why.empty());
  }
}

// Crafted superblocks with valid checksums: a field that does not fit the geometry of a mappable
// heap is refused by the open path (super_check_mapping), never used. A base of 0 (or a relocation
// from 0) would make every small integer of every block a pointer to shift; a size that is not a
// whole number of segments makes every growth fail. (Readers still read such a file.)
TEST_F(SuperblockTest, FieldsOutsideAMappableGeometryAreCorrupt) {
  struct Case {
    const char *what;
    uint32_t flags;
    void (*mutate)(Superblock &);
  } cases[] = {
      {"base 0", 0, [](Superblock &s) { s.base = 0; }},
      {"base below mmap_min_addr", 0, [](Superblock &s) { s.base = 0x1000; }},
      {"base + reserve past the user address space", 0,
       [](Superblock &s) { s.base = kUserTop - kSegmentSize; }},
      {"file heap size not a whole number of segments", 0, [](Superblock &s) { s.size += kPageSize; }},
      {"file heap reserve not a whole number of segments", 0, [](Superblock &s) { s.reserve += kPageSize; }},
      {"relocation from 0", 0,
       [](Superblock &s) { s.flags |= kSuperFlagRelocating, s.reloc_from = 0, s.reloc_to = 0x300000000000; }},
      {"relocation to 0", 0,
       [](Superblock &s) { s.flags |= kSuperFlagRelocating, s.reloc_from = s.base, s.reloc_to = 0; }},
      {"relocation onto an overlapping range", 0,
       [](Superblock &s) { s.flags |= kSuperFlagRelocating, s.reloc_from = s.base, s.reloc_to = s.base + kPageSize; }},
      {"relocation target unaligned", 0,
       [](Superblock &s) { s.flags |= kSuperFlagRelocating, s.reloc_from = s.base, s.reloc_to = 0x300000000008; }},
      {"region heap with base 0", kSuperFlagRegion, [](Superblock &s) { s.base = 0; }},
  };
  for (const Case &c : cases) {
    SCOPED_TRACE(c.what);
    std::fill(page_.begin(), page_.end(), 0);
    Superblock sb = super_new(kBase, kReserve, kSize, c.flags);
    c.mutate(sb);
    sb.seq = 1;
    put_slot(0, sb);
    Superblock got;
    Msg why, why2;
    if (read(&got, &why) == 0) EXPECT_EQ(PERSIST_E_CORRUPT, super_check_mapping(got, &why2));
    else EXPECT_EQ(PERSIST_E_CORRUPT, read(&got, &why));
    EXPECT_FALSE(why.empty() && why2.empty());
  }
}

// What a real heap has is accepted: a region heap ends with a partial segment; an interrupted
// relocation records two disjoint ranges; offsets inside the extent.
TEST_F(SuperblockTest, ValidGeometriesAreAccepted) {
  struct Case {
    const char *what;
    uint32_t flags;
    void (*mutate)(Superblock &);
  } cases[] = {
      {"a fresh heap", 0, [](Superblock &) {}},
      {"a region heap with a partial last segment", kSuperFlagRegion,
       [](Superblock &s) { s.size = kSegmentSize + 20 * kPageSize, s.reserve = s.size; }},
      {"an interrupted relocation", 0,
       [](Superblock &s) { s.flags |= kSuperFlagRelocating, s.reloc_from = s.base, s.reloc_to = 0x300000000000; }},
      {"the highest base that fits", 0, [](Superblock &s) { s.base = kUserTop - s.reserve; }},
  };
  for (const Case &c : cases) {
    SCOPED_TRACE(c.what);
    std::fill(page_.begin(), page_.end(), 0);
    Superblock sb = super_new(kBase, kReserve, kSize, c.flags);
    c.mutate(sb);
    sb.seq = 1;
    put_slot(0, sb);
    Superblock got;
    Msg why;
    ASSERT_EQ(0, read(&got, &why)) << why.str();
    EXPECT_EQ(0, super_check_mapping(got, &why)) << why.str();
  }
}

TEST_F(SuperblockTest, ShortImageIsRejected) {
  Superblock sb = super_new(kBase, kReserve, kSize, 0);
  super_write(page0(), sb);
  Superblock got;
  Msg why;
  int rc = super_read(page0(), 100, &got, &why);
  EXPECT_NE(0, rc);
  EXPECT_FALSE(why.empty());
  Msg why0;
  EXPECT_EQ(PERSIST_E_BADMAGIC, super_read(page0(), 0, &got, &why0)) << "an empty file";
}

}  // namespace
