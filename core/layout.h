// layout.h — the on-disk format of a heap file. Everything here is AUTHORITATIVE (persistent) state.
//
// A heap is a sequence of 4 MiB segments, addressed by offsets from the heap base (never pointers).
//
//   segment i at offset i * kSegmentSize:
//     page 0          superblock (segment 0 only; reserved and never backed in other segments)
//     page 1          SegmentHeader, followed by the page descriptors desc[1024]
//     pages 4..11     allocation bitmaps: 256 bits per page (one bit per 16-byte slot)
//     pages 12..1023  data pages: runs of small blocks, large blocks, free pages
//   a huge block takes whole segments: its first segment's header says kSegHuge and how many
//   segments it spans; the block starts at page kHugeFirstPage and runs to the end of the last one.
//
// Commit points (what `kill -9` at any instruction may leave, and why it is still consistent):
//   - a span (run or large block) is created by writing its *_CONT descriptors and zeroing its
//     bitmap first, and publishing its HEAD descriptor last (one 8-byte store);
//   - a small block is allocated when its bitmap bit is set (before the pointer is returned) and
//     free when the bit is cleared (inside free()); a run's span is freed only when its bitmap is
//     empty, by storing kPageFree into its HEAD descriptor;
//   - a segment header is written completely before its kind is stored; growth records the new
//     extent in the superblock after the segment header is in place;
//   - the superblock is never updated in place: the new version goes to the other of two slots,
//     with a higher sequence number and its own checksum (a torn write leaves the old slot valid).
// Whatever is not reachable from these (which bitmap words have a clear bit, thread heaps,
// per-run counters, free-span indexes) is volatile and lives in process memory (see heap.h); it
// is rebuilt from this state.
#pragma once

#include <cstddef>
#include <cstdint>

namespace persist {

// ---- geometry ------------------------------------------------------------------------------
constexpr unsigned kPageShift = 12;
constexpr size_t kPageSize = size_t{1} << kPageShift;
constexpr unsigned kSegmentShift = 22;
constexpr size_t kSegmentSize = size_t{1} << kSegmentShift;
constexpr uint32_t kSegmentPages = kSegmentSize / kPageSize;  // 1024
constexpr size_t kSlotSize = 16;                              // bitmap granularity
constexpr uint32_t kBitsPerPage = kPageSize / kSlotSize;      // 256
constexpr uint32_t kWordsPerPage = kBitsPerPage / 64;         // 4

constexpr size_t kHeaderOffset = kPageSize;      // SegmentHeader within a segment
constexpr size_t kBitmapOffset = 4 * kPageSize;  // bitmap words within a segment
constexpr uint32_t kFirstDataPage = 12;          // first page a span may occupy
constexpr uint32_t kHugeFirstPage = 2;           // where a huge block starts in its segment
constexpr uint32_t kSuperPages = 1;              // pages of the superblock in segment 0

// ---- page descriptors -----------------------------------------------------------------------
enum PageKind : uint8_t {
  kPageFree = 0,       // not part of any live span (also: stale *_CONT of a freed span)
  kPageRunHead = 1,    // first page of a run of small blocks; cls, pages valid
  kPageRunCont = 2,    // later page of a run; back = distance to the head
  kPageLargeHead = 3,  // first page of a large block; pages valid; cls holds kLarge* flags
  kPageLargeCont = 4,  // later page of a large block; back = distance to the head
  kPageMeta = 5,       // segment header / bitmap / superblock pages
};

struct PageDesc {
  uint8_t kind;    // PageKind
  uint8_t cls;     // size class (runs only)
  uint16_t back;   // *_CONT: pages back to the head
  uint32_t pages;  // *_HEAD: length of the span in pages
};
static_assert(sizeof(PageDesc) == 8, "a descriptor is published with one 8-byte store");

// kPageLargeHead flags (in `cls`). kLargeSampled: the block is a sampled allocation; its
// SampleRecord is the last sizeof(SampleRecord) bytes of the span (not part of the usable size).
// kLargeNoScan: a pointer-free block (persist_alloc_noscan): never scanned by the mark nor
// rewritten by relocation; stored with the HEAD descriptor that allocates the block.
constexpr uint8_t kLargeSampled = 1;
constexpr uint8_t kLargeNoScan = 2;
// SegmentHeader::huge_flags. kHugeNoScan: as kLargeNoScan, stored before the header's kind.
constexpr uint32_t kHugeNoScan = 1;

// ---- sampled allocations (PERSIST_SITES) -------------------------------------------------------
// A sampled block carries one record: a large block at the end of its span (committed by setting
// kLargeSampled in its HEAD descriptor after the record is written), a huge block in its segment
// header (committed by storing `magic` last). A sample of `size` bytes taken with mean interval
// `interval` stands for 1/p blocks and size/p bytes, p = 1 - exp(-size / interval).
constexpr uint32_t kSampleMagic = 0x4c504d53;  // "SMPL"
struct SampleRecord {
  uint32_t magic;     // kSampleMagic
  uint32_t site;      // index into SiteTable::site
  uint64_t size;      // bytes requested
  uint64_t interval;  // mean sampling interval in bytes when the block was sampled
  uint64_t reserved;
};
static_assert(sizeof(SampleRecord) == 32);

// ---- segment header ---------------------------------------------------------------------------
constexpr uint32_t kSegmentMagic = 0x50534547;  // "GESP"
enum SegmentKind : uint32_t {
  kSegNormal = 1,  // pages described by desc[]
  kSegHuge = 2,    // one huge block over `segments` segments
  kSegFree = 3,    // `segments` free segments (a freed huge block); only this header is valid
};

struct SegmentHeader {
  uint32_t magic;     // kSegmentMagic
  uint32_t kind;      // SegmentKind; stored last when a header is written
  uint32_t segments;  // segments covered by this header (1 for normal)
  uint32_t pages;     // kSegNormal: pages of this segment inside the extent (<= 1024)
  uint64_t huge_bytes;  // kSegHuge: the block's usable size in bytes
  uint32_t huge_flags;  // kSegHuge: kHugeNoScan (0 in files before format 1.2)
  uint32_t reserved;
  SampleRecord sample;  // kSegHuge: the block's sample, valid when sample.magic == kSampleMagic
  PageDesc desc[kSegmentPages];
};
static_assert(sizeof(SegmentHeader) == 64 + 8 * kSegmentPages);
static_assert(kHeaderOffset + sizeof(SegmentHeader) <= kBitmapOffset);
static_assert(kBitmapOffset + kSegmentPages * kWordsPerPage * 8 == kFirstDataPage * kPageSize);
static_assert(kHugeFirstPage * kPageSize >= kHeaderOffset + 64, "huge block after the header");

// ---- superblock -------------------------------------------------------------------------------
constexpr uint64_t kMagic = 0x0154534953524550ull;  // bytes "PERSIST\x01" at file offset 0
constexpr uint16_t kFormatMajor = 1;
constexpr uint16_t kFormatMinor = 3;  // 1: gc_extent, gc_kept (zero in 1.0 files: "never collected")
                                      // 2: pointer-free blocks (kLargeNoScan, kHugeNoScan)
                                      // 3: hint_open (zero in older files: "not kept")

enum HeapState : uint32_t { kStateClean = 1, kStateDirty = 2 };

// One copy of the superblock. Two copies live in page 0 (slots at 0 and kSuperSlotSize); the valid
// one with the higher `seq` is current. `checksum` is CRC-32C of the slot with checksum = 0.
struct Superblock {
  uint64_t magic;          // kMagic
  uint16_t major;          // kFormatMajor: a newer major is refused
  uint16_t minor;          // kFormatMinor: newer minors are readable
  uint32_t slot_size;      // sizeof(Superblock)
  uint8_t uuid[16];        // identity of this heap, fixed at creation
  uint64_t seq;            // bumped on every update; the higher valid slot wins
  uint64_t base;           // address the heap was last mapped at
  uint64_t reserve;        // address range reserved at open (growth limit)
  uint64_t size;           // extent in bytes: segments [0, size / kSegmentSize) are initialised
  uint32_t state;          // HeapState
  uint32_t flags;          // kSuperFlag*
  uint64_t root_table;     // offset of the first RootTable block, 0 if none yet
  uint64_t created_ns;     // creation time (CLOCK_REALTIME)
  uint64_t opens;          // number of opens, for diagnostics
  uint64_t reloc_from;     // kSuperFlagRelocating: the pass moves words from this base ...
  uint64_t reloc_to;       // ... to this one (recorded before the pass starts)
  uint64_t reloc_words;    // words rewritten by the last relocation
  uint64_t relocations;    // relocations so far
  uint64_t unused_modules; // (format 1.0 drafts; always 0)
  uint64_t owner_pid;      // the process that opened the heap last (informational)
  uint64_t actions;        // offset of the ActionLog (0: none yet)
  uint64_t sites;          // offset of the SiteTable (0: none; PERSIST_SITES never used)
  uint64_t gc_extent;      // extent right after the last collection (0: never collected)
  uint64_t gc_kept;        // bytes the last collection kept (reachable then)
  uint64_t free_hint;      // a segment start where discovery may begin (heap.h): with the clean
                           // mark, where the run left room; while dirty, kept a segment start and
                           // moved to where the heap grows. A hint, never trusted for more
  uint64_t hint_open;      // the open (`opens`) whose run kept free_hint a segment start: a dirty
                           // heap's hint is used only when this is its last open (0: not kept)
  uint64_t reserved[7];
  uint32_t reserved32;
  uint32_t checksum;       // CRC-32C of this slot with this field zero
};
static_assert(sizeof(Superblock) == 256);
static_assert(offsetof(Superblock, magic) == 0);
static_assert(offsetof(Superblock, uuid) == 16);
static_assert(offsetof(Superblock, base) == 40);
static_assert(offsetof(Superblock, checksum) == 252);
constexpr size_t kSuperSlotSize = 2048;
constexpr uint32_t kSuperFlagRegion = 1;      // heap over a caller-provided region (no file)
constexpr uint32_t kSuperFlagRelocating = 2;  // a relocation pass was started and not finished
constexpr uint32_t kSuperFlagsKnown = kSuperFlagRegion | kSuperFlagRelocating;

// Where a heap may be mapped: above the kernel's default mmap_min_addr, below the top of the
// 47-bit user address space (x86-64 and arm64 without 5-level paging). Bases and relocation
// targets outside it are refused as corrupt: a base of 0 would make every small integer a pointer.
constexpr uint64_t kMinBase = 0x10000;
constexpr uint64_t kUserTop = 0x7ffffffff000;

// ---- root table -------------------------------------------------------------------------------
// Root tables are ordinary heap blocks of kRootTableBytes (the largest small class), chained by
// offset. An entry is filled
// completely while its state is kRootEmpty and published with one release store of kRootLive.
constexpr uint32_t kRootTableMagic = 0x544f4f52;  // "ROOT"
constexpr size_t kRootTagBytes = 88;              // NUL-terminated, so tags up to 87 bytes
enum RootState : uint32_t { kRootEmpty = 0, kRootLive = 1 };

struct RootEntry {
  uint32_t state;     // RootState, written last (release)
  uint32_t tag_len;
  uint64_t offset;    // offset of the block (0: none)
  uint64_t size;      // size requested at creation, or usable size of a block set later
  uint64_t type;      // type identity for typed roots (0: untyped)
  uint64_t tag_hash;  // FNV-1a of the tag, for quick comparison
  char tag[kRootTagBytes];
};
static_assert(sizeof(RootEntry) == 128);

constexpr size_t kRootTableBytes = 4 * kPageSize;
struct RootTableHeader {
  uint32_t magic;     // kRootTableMagic
  uint32_t capacity;  // entries in this table
  uint64_t next;      // offset of the next table, 0 at the end (published last)
  uint64_t reserved[14];
};
static_assert(sizeof(RootTableHeader) == sizeof(RootEntry));
constexpr uint32_t kRootsPerTable = (kRootTableBytes - sizeof(RootTableHeader)) / sizeof(RootEntry);

// ---- the heap's own area: action log and program images ------------------------------------------
// One block, created once per heap and named by the superblock's `actions` (the collector keeps it).
//
// Action log: allocate-and-publish and free-and-clear (persist.h) are made crash-atomic by an entry
// here: it names the slot (and, once known, the block) before anything is committed, and is cleared
// after the slot store. Open finishes what an active entry describes (publish.cpp).
//
// Program images: the modules loaded when the heap was last opened or closed. At the next open, a
// module loaded at another address with the same build-id has the words pointing into its old
// range shifted (modules.h, recover.cpp). Two tables: recording fills the one that is not current
// and then flips `modules_current` (one store), so a crash while recording leaves the previous
// record. A move is recorded before a pass shifts any word and cleared after, so that a crash in
// the middle is finished by the next open from the record alone (the module need not be loaded):
// `moving` is the bias the module's pointers go to; `via` is 1 when they go there in two steps,
// through a scratch range no real address can be in (recover.cpp: when the new range overlaps a
// range words are moved from, one pass would not be idempotent); `reloc_phase` says which step
// (1: the first pass, over every move; 2: the second, from the scratch ranges).
constexpr uint32_t kActionLogMagic = 0x4e544341;  // "ACTN"
constexpr uint32_t kActionEntries = 64;
enum ActionState : uint32_t { kActionIdle = 0, kActionActive = 1 };
enum ActionKind : uint32_t { kActionPublish = 1, kActionFreeClear = 2 };

struct ActionEntry {
  uint32_t state;  // ActionState, stored last when an action starts and first when it ends
  uint32_t kind;   // ActionKind
  uint64_t slot;   // offset of the 8-byte slot the action stores into
  uint64_t block;  // offset of the block (publish: written just before the allocation commits)
  uint64_t reserved;
};
static_assert(sizeof(ActionEntry) == 32);

constexpr uint32_t kModuleIdMax = 32;
constexpr uint32_t kModulePathMax = 184;
constexpr uint32_t kModulesMax = 128;

struct ModuleEntry {
  uint64_t bias;     // load bias the heap's pointers into this module were written for
  uint64_t start;    // [start, end): the module's mapped range at that bias
  uint64_t end;
  uint64_t moving;   // non-zero: a pass is shifting its pointers to this bias
  uint32_t id_len;   // build-id length (modules without one are not recorded)
  uint32_t via;      // 1: the move goes through the module's scratch range (two passes)
  uint8_t build_id[kModuleIdMax];
  char path[kModulePathMax];
};
static_assert(sizeof(ModuleEntry) == 256);

struct ModuleTable {
  uint32_t count;  // entries in use (<= kModulesMax)
  uint32_t reserved[15];
  ModuleEntry entry[kModulesMax];
};

constexpr uint32_t kNoModules = 2;  // modules_current when nothing is recorded

struct ActionLog {
  uint32_t magic;            // kActionLogMagic
  uint32_t capacity;         // kActionEntries
  uint32_t modules_current;  // 0 or 1: the valid ModuleTable; kNoModules: none
  uint32_t reloc_phase;      // a move of modules with `via` set: 2 once the first pass is done
  uint64_t reserved[2];
  ActionEntry entry[kActionEntries];
  ModuleTable modules[2];
};
static_assert(offsetof(ActionLog, entry) == 32);
static_assert(sizeof(ActionLog) == 32 + 32 * kActionEntries + 2 * (64 + 256 * kModulesMax));

// ---- allocation sites (PERSIST_SITES) ----------------------------------------------------------
// One block, created the first time a process records sites in this heap, named by the superblock's
// `sites` (the collector keeps it). Sites are call stacks: frames as (module, offset) so that they
// can be symbolised in a later run despite ASLR. `offset` is the frame's return address minus the
// module's load bias (look up offset - 1). The first frame is the allocation's caller (the
// allocator's own frames are not recorded). Entries and modules are filled completely and published
// by storing `state` last (release); sites are found by open addressing on `hash`. Nothing in this
// block is a pointer, so relocation, the image pass and the collector's scan leave it alone.
constexpr uint32_t kSiteTableMagic = 0x45544953;  // "SITE"
constexpr uint32_t kSiteFrames = 16;
constexpr uint32_t kSiteModules = 64;
constexpr uint32_t kSiteCapacity = 4096;  // a power of two
enum SiteState : uint32_t { kSiteEmpty = 0, kSiteLive = 1 };

struct SiteModule {
  uint32_t state;    // SiteState, stored last
  uint32_t id_len;   // build-id length (0: the module has none; symbolised by path only)
  uint8_t build_id[kModuleIdMax];
  char path[216];    // NUL-terminated
};
static_assert(sizeof(SiteModule) == 256);

struct SiteEntry {
  uint32_t state;                 // SiteState, stored last
  uint16_t depth;                 // frames in use
  uint16_t reserved16;
  uint32_t hash;                  // of the frames (module, offset), for the probe
  uint32_t reserved32;
  uint8_t module[kSiteFrames];    // 1 + index into SiteTable::module; 0: in no known module
  uint32_t offset[kSiteFrames];   // return address - module bias (module 0: low 32 bits of it)
};
static_assert(sizeof(SiteEntry) == 96);

struct SiteTable {
  uint32_t magic;     // kSiteTableMagic
  uint32_t capacity;  // entries in site[] (kSiteCapacity)
  uint32_t modules;   // entries in module[] (kSiteModules)
  uint32_t frames;    // kSiteFrames
  uint64_t reserved[6];
  SiteModule module[kSiteModules];
  SiteEntry site[kSiteCapacity];
};
static_assert(offsetof(SiteTable, module) == 64);
static_assert(sizeof(SiteTable) == 64 + 256 * kSiteModules + 96 * kSiteCapacity);

}  // namespace persist
