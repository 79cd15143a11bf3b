// superblock.cpp — see superblock.h. Owns AUTHORITATIVE state: the two superblock slots.
#include "superblock.h"

#include <atomic>
#include <cstring>

#include "../core/include/persist.h"
#include "crashpoint.h"
#include "platform.h"

namespace persist {
namespace {

struct Crc32cTable {
  uint32_t t[256];
  constexpr Crc32cTable() : t() {
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (0x82F63B78u & (0u - (c & 1)));
      t[i] = c;
    }
  }
};
constexpr Crc32cTable kCrc{};

uint32_t slot_checksum(const Superblock &sb) {
  Superblock copy = sb;
  copy.checksum = 0;
  return crc32c(&copy, sizeof copy);
}

enum SlotVerdict { kSlotOk, kSlotNoMagic, kSlotBadSum, kSlotNewer, kSlotBadSize };

SlotVerdict check_slot(const Superblock &sb) {
  if (sb.magic != kMagic) return kSlotNoMagic;
  if (sb.checksum != slot_checksum(sb)) return kSlotBadSum;
  if (sb.major > kFormatMajor) return kSlotNewer;
  if (sb.slot_size != sizeof(Superblock)) return kSlotBadSize;
  return kSlotOk;
}

// A range of `len` bytes at `base` where a heap can be mapped (layout.h: kMinBase, kUserTop).
bool mappable(uint64_t base, uint64_t len) {
  return base % kPageSize == 0 && base >= kMinBase && base <= kUserTop && len <= kUserTop - base;
}

}  // namespace

uint32_t crc32c(const void *data, size_t len, uint32_t crc) {
  auto *p = static_cast<const unsigned char *>(data);
  crc = ~crc;
  while (len--) crc = kCrc.t[(crc ^ *p++) & 0xff] ^ (crc >> 8);
  return ~crc;
}

bool super_slot_valid(const uint8_t *page0, int k) {
  Superblock sb;
  memcpy(&sb, page0 + k * kSuperSlotSize, sizeof sb);
  return check_slot(sb) == kSlotOk;
}

int super_read(const uint8_t *page0, size_t len, Superblock *out, Msg *why, int *slot) {
  if (len < kPageSize) {
    why->add("file too small to be a heap (").dec(len).add(" bytes)");
    return len == 0 ? PERSIST_E_BADMAGIC : PERSIST_E_TOOSMALL;
  }
  Superblock s[2];
  SlotVerdict v[2];
  for (int i = 0; i < 2; ++i) {
    memcpy(&s[i], page0 + i * kSuperSlotSize, sizeof(Superblock));
    v[i] = check_slot(s[i]);
  }
  int pick = -1;
  for (int i = 0; i < 2; ++i)
    if (v[i] == kSlotOk && (pick < 0 || s[i].seq > s[pick].seq)) pick = i;
  if (pick < 0) {
    if (v[0] == kSlotNoMagic && v[1] == kSlotNoMagic) {
      why->add("not a libpersist heap (bad magic)");
      return PERSIST_E_BADMAGIC;
    }
    for (int i = 0; i < 2; ++i)
      if (v[i] == kSlotNewer) {
        why->add("heap format version ").dec(s[i].major).add(".").dec(s[i].minor)
            .add(" is newer than this library's ").dec(kFormatMajor).add(".").dec(kFormatMinor);
        return PERSIST_E_VERSION;
      }
    if (v[0] == kSlotBadSize || v[1] == kSlotBadSize) {
      why->add("superblock has an unexpected slot size");
      return PERSIST_E_CORRUPT;
    }
    why->add("superblock checksum mismatch (both copies)");
    return PERSIST_E_CHECKSUM;
  }
  const Superblock &sb = s[pick];
  if (sb.state != kStateClean && sb.state != kStateDirty) {
    why->add("superblock state ").dec(sb.state).add(" is unknown");
    return PERSIST_E_CORRUPT;
  }
  if (sb.size < kSegmentSize / kSegmentPages * kFirstDataPage || sb.size % kPageSize ||
      sb.reserve > (uint64_t{1} << 47) || sb.base > (uint64_t{1} << 47) ||  // user-space bounds
      sb.base % kPageSize || sb.size > sb.reserve || (sb.flags & ~kSuperFlagsKnown)) {
    why->add("superblock geometry is invalid (size ").dec(sb.size).add(", reserve ")
        .dec(sb.reserve).add(", base ").hex(sb.base).add(")");
    return PERSIST_E_CORRUPT;
  }
  *out = sb;
  if (slot) *slot = pick;
  return 0;
}

int super_check_mapping(const Superblock &sb, Msg *why) {
  const char *bad = nullptr;
  if (!(sb.flags & kSuperFlagRegion) && (sb.size % kSegmentSize || sb.reserve % kSegmentSize))
    bad = "its size and reservation are not whole segments";
  else if (sb.reserve % kPageSize || !mappable(sb.base, sb.reserve))
    bad = "its base address is outside the user address space";
  else if ((sb.flags & kSuperFlagRelocating) && (!mappable(sb.reloc_from, sb.size) || !mappable(sb.reloc_to, sb.size)))
    bad = "an interrupted relocation names a range outside the user address space";
  else if ((sb.flags & kSuperFlagRelocating) && sb.reloc_from < sb.reloc_to + sb.size &&
           sb.reloc_to < sb.reloc_from + sb.size)
    bad = "an interrupted relocation is between overlapping ranges";
  if (!bad) return 0;
  why->add("the superblock cannot describe a heap: ").add(bad).add(" (base ").hex(sb.base).add(", size ")
      .dec(sb.size).add(", reserve ").dec(sb.reserve);
  if (sb.flags & kSuperFlagRelocating) why->add(", relocating ").hex(sb.reloc_from).add(" -> ").hex(sb.reloc_to);
  why->add(")");
  return PERSIST_E_CORRUPT;
}

void super_write(uint8_t *page0, Superblock &sb) {
  Superblock cur[2];
  memcpy(&cur[0], page0, sizeof(Superblock));
  memcpy(&cur[1], page0 + kSuperSlotSize, sizeof(Superblock));
  uint64_t top = 0;
  int current = -1;
  for (int i = 0; i < 2; ++i)
    if (check_slot(cur[i]) == kSlotOk && (current < 0 || cur[i].seq > top)) top = cur[i].seq,
                                                                             current = i;
  sb.seq = top + 1;
  sb.slot_size = sizeof(Superblock);
  sb.checksum = slot_checksum(sb);
  int target = current == 0 ? 1 : 0;
  // The slot being written is not the current one: a torn write leaves the current one valid.
  uint8_t *dst = page0 + target * kSuperSlotSize;
  const auto *src = reinterpret_cast<const uint8_t *>(&sb);
  memcpy(dst, src, sizeof sb / 2);
  PERSIST_CRASH_POINT("super.torn");
  memcpy(dst + sizeof sb / 2, src + sizeof sb / 2, sizeof sb - sizeof sb / 2);
  std::atomic_signal_fence(std::memory_order_seq_cst);
  PERSIST_CRASH_POINT("super.write");
}

Superblock super_new(uint64_t base, uint64_t reserve, uint64_t size, uint32_t flags) {
  Superblock sb;
  memset(&sb, 0, sizeof sb);
  sb.magic = kMagic;
  sb.major = kFormatMajor;
  sb.minor = kFormatMinor;
  sb.slot_size = sizeof(Superblock);
  os::random_bytes(sb.uuid, sizeof sb.uuid);
  sb.base = base;
  sb.reserve = reserve;
  sb.size = size;
  sb.state = kStateDirty;
  sb.flags = flags;
  sb.created_ns = os::now_ns();
  return sb;
}

}  // namespace persist
