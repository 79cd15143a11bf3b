// superblock.h — reading and writing the superblock (AUTHORITATIVE state, page 0 of the heap).
//
// Two slots hold two versions; an update writes the slot the current one is not in, with a higher
// sequence number and a fresh CRC-32C, so a crash in the middle of an update leaves the previous
// version intact. Readers take the valid slot with the higher sequence number.
#pragma once

#include <cstddef>
#include <cstdint>

#include "layout.h"
#include "msg.h"

namespace persist {

uint32_t crc32c(const void *data, size_t len, uint32_t crc = 0);

// Validate and pick the current superblock of an image whose first `len` bytes are at `page0`.
// Returns 0 or PERSIST_E_BADMAGIC / PERSIST_E_VERSION / PERSIST_E_CHECKSUM / PERSIST_E_CORRUPT
// with the reason in `why`. `slot` (optional) gets the index of the slot used.
int super_read(const uint8_t *page0, size_t len, Superblock *out, Msg *why, int *slot = nullptr);

// Can the heap this superblock describes be mapped and used? Every field the open path uses as an
// address or a length, checked against the others: a file heap's size and reservation whole
// segments, its base and any relocation range inside the user address space (layout.h), the two
// ranges of a relocation disjoint. 0 or PERSIST_E_CORRUPT with the reason. (super_read checks
// what a reader needs; a tool can still read a heap that fails this.)
int super_check_mapping(const Superblock &sb, Msg *why);

// Is slot k (0 or 1) of page0 a valid superblock copy on its own?
bool super_slot_valid(const uint8_t *page0, int k);

// Write `sb` as the next version: seq = current + 1, into the other slot, checksummed.
void super_write(uint8_t *page0, Superblock &sb);

// A fresh superblock for a new heap.
Superblock super_new(uint64_t base, uint64_t reserve, uint64_t size, uint32_t flags);

}  // namespace persist
