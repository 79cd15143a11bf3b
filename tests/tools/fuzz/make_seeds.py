#!/usr/bin/env python3
"""make_seeds.py DIR — seed inputs for heap_fuzz (see heap_fuzz.cpp for the input format): each
targets one structure of the small (modes 1, 3) or huge (mode 2) base image, so the fuzzer starts
next to the code that reads it."""
import os
import struct
import sys

PAGE = 4096
HEADER = PAGE  # SegmentHeader of segment 0
DESC = HEADER + 64  # page descriptors
BITMAP = 4 * PAGE
SEG = 4 << 20


def patch(off, data):
    return struct.pack('<IB', off, len(data)) + data


def sb_field(off, fmt, value):  # both superblock slots; the checksum is fixed (flag bit 2)
    data = struct.pack(fmt, value)
    return patch(off, data) + patch(2048 + off, data)


seeds = {
    'plain_small': bytes([1, 0xff]),
    'plain_huge_each': b''.join(bytes([2 | (k << 4), 0x3f]) for k in range(1)),
    'raw_empty': bytes([0, 0]),
    'desc_kind': bytes([1, 0]) + patch(DESC + 12 * 8, bytes([4, 0, 1, 0, 1, 0, 0, 0])),
    'desc_pages': bytes([1, 0]) + patch(DESC + 12 * 8 + 4, struct.pack('<I', 5000)),
    'desc_cls': bytes([1, 0]) + patch(DESC + 12 * 8 + 1, bytes([77])),
    'seg_kind_huge': bytes([1, 0]) + patch(HEADER + 4, struct.pack('<II', 2, 3)),
    'seg_pages': bytes([1, 0]) + patch(HEADER + 12, struct.pack('<I', 1024)),
    'bitmap_ones': bytes([1, 0x10]) + patch(BITMAP + 12 * 32, b'\xff' * 64),
    'sb_size': bytes([5, 0]) + sb_field(56, '<Q', 64 << 20),
    'sb_size_small': bytes([5, 0]) + sb_field(56, '<Q', 13 * PAGE),
    'sb_root_table': bytes([5, 0]) + sb_field(72, '<Q', 12 * PAGE + 16),
    'sb_base': bytes([5, 0]) + sb_field(40, '<Q', 0xfffffffffffff000),
    'huge_header': bytes([2 | (1 << 4), 0]) + patch(SEG + HEADER + 16, struct.pack('<Q', 1 << 40)),
    'huge_segments': bytes([6 | (3 << 4), 0x10]) + patch(SEG + HEADER + 8, struct.pack('<I', 7)),
    # the 3 MiB image with a site table (mode 3): all readers; `persist sites` with --leaks, JSON
    'plain_sites': bytes([3, 0xff]),
    'sites_leaks_json': bytes([3 | 8, 0x01]),
    # the huge image, sites reader only (reader 6), its huge block's sample record damaged
    'huge_sample': bytes([2 | (6 << 4), 0x01]) + patch(SEG + HEADER + 32, struct.pack('<II', 0x4c504d53, 5000)),
}

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
for name, data in seeds.items():
    with open(os.path.join(out, name), 'wb') as f:
        f.write(data)
