// reach.cpp — see reach.h. Scratch memory comes from anonymous mappings, never from a heap.
#include "reach.h"

#include <cerrno>
#include <cstring>
#include <initializer_list>

#include "../core/include/persist.h"
#include "platform.h"
#include "sizeclass.h"

namespace persist {
namespace {

void *scratch(uint64_t bytes) {
  void *p = nullptr;
  return os::map_anon(bytes ? bytes : 1, &p) == 0 ? p : nullptr;
}

// Where a block's mark bit lives, as a global bit index (bitmap layout).
uint64_t mark_bit(const BlockRef &b) {
  return b.span_page * kBitsPerPage + (b.kind == kPageRunHead ? b.index : 0);
}

}  // namespace

Reach::~Reach() {
  if (bits_) os::unmap(bits_, bits_bytes_);
  if (seg_head_) os::unmap(seg_head_, seg_bytes_);
  if (stack_) os::unmap(stack_, stack_bytes_);
}

bool Reach::marked(const BlockRef &b) const {
  uint64_t bit = mark_bit(b);
  return (bits_[bit / 64] >> (bit % 64)) & 1;
}

bool Reach::mark(const BlockRef &b) {
  uint64_t bit = mark_bit(b), m = uint64_t{1} << (bit % 64);
  if (bits_[bit / 64] & m) return false;
  bits_[bit / 64] |= m;
  ++blocks, bytes += b.size;
  return true;
}

void Reach::push(uint64_t off) {
  BlockRef b;
  if (!find_block(*img_, off, &b, seg_head_) || !b.live || !mark(b)) return;
  if (depth_ == cap_) {  // grow the stack (rare: it starts with room for many blocks)
    uint64_t ncap = cap_ * 2 < max_stack_ ? cap_ * 2 : max_stack_, nbytes = ncap * sizeof(uint64_t);
    auto *n = ncap > cap_ ? static_cast<uint64_t *>(scratch(nbytes)) : nullptr;
    if (!n) {  // full: the block stays marked, and is scanned by rescan_marked
      overflow_ = true;
      return;
    }
    memcpy(n, stack_, depth_ * sizeof(uint64_t));
    os::unmap(stack_, stack_bytes_);
    stack_ = n, cap_ = ncap, stack_bytes_ = nbytes;
  }
  stack_[depth_++] = b.offset;
}

// Push what the words of [offset, offset + size) point to.
void Reach::scan(uint64_t offset, uint64_t size) {
  const Image &img = *img_;
  const uint64_t base = img.sb.base, hsize = img.sb.size;
  uint64_t end = offset + size <= img.len ? offset + size : img.len;
  for (uint64_t o = offset; o + 8 <= end; o += 8) {
    uint64_t w;
    memcpy(&w, img.mem + o, 8);
    if (w - base < hsize) push(w - base);  // a pointer
    else if ((w & ~PERSIST_OFFSET_MASK) == PERSIST_OFFSET_TAG && (w & PERSIST_OFFSET_MASK) < hsize)
      push(w & PERSIST_OFFSET_MASK);  // a tagged offset
    else if ((w & ~PERSIST_OFFSET_MASK) == PERSIST_SELF_TAG) {  // a self-relative link
      int64_t delta = static_cast<int64_t>((w & PERSIST_OFFSET_MASK) << 16) >> 16;
      uint64_t target = o + static_cast<uint64_t>(delta);
      if (target < hsize) push(target);
    }
  }
}

void Reach::drain() {
  while (depth_) {
    BlockRef b;
    if (find_block(*img_, stack_[--depth_], &b, seg_head_) && !b.noscan) scan(b.offset, b.size);
  }
}

namespace {

// Every marked block of the image, scanned again (after an overflow).
class Rescan : public WalkVisitor {
 public:
  Rescan(const Image &img, const Reach &r, void (*fn)(void *, uint64_t, uint64_t), void *arg)
      : img_(img), r_(r), fn_(fn), arg_(arg) {}
  void run(uint64_t page, uint32_t, unsigned cls, uint32_t used) override {
    if (!used) return;
    const ClassInfo &ci = kClasses.info[cls];
    const uint64_t *marks = r_.run_marks(page);
    for (uint32_t w = 0; w * 64 < ci.capacity; ++w)
      for (uint64_t bits = marks[w]; bits; bits &= bits - 1) {
        uint32_t idx = w * 64 + static_cast<uint32_t>(__builtin_ctzll(bits));
        if (idx < ci.capacity) fn_(arg_, page * kPageSize + uint64_t{idx} * ci.size, ci.size);
      }
  }
  void large(uint64_t page, uint32_t pages) override {
    BlockRef b{page * kPageSize, uint64_t{pages} * kPageSize, page, kPageLargeHead, 0, true};
    if (r_.marked(b) && !large_noscan(img_, page)) fn_(arg_, b.offset, b.size);
  }
  void huge(uint64_t seg, uint32_t, uint64_t bytes) override {
    uint64_t page = seg * kSegmentPages + kHugeFirstPage;
    BlockRef b{page * kPageSize, bytes, page, -1, 0, true};
    if (r_.marked(b) && !huge_noscan(img_, seg)) fn_(arg_, b.offset, b.size);
  }

 private:
  const Image &img_;
  const Reach &r_;
  void (*fn_)(void *, uint64_t, uint64_t);
  void *arg_;
};

}  // namespace

int Reach::rescan_marked(Msg *why) {
  while (overflow_) {
    overflow_ = false;
    ++rescans;
    Rescan v(*img_, *this, [](void *self, uint64_t off, uint64_t size) {
      auto *r = static_cast<Reach *>(self);
      r->scan(off, size);
      r->drain();
    }, this);
    int rc = walk_heap(*img_, v, why);
    if (rc) return rc;
  }
  return 0;
}

int Reach::run(const Image &img, Msg *why) {
  img_ = &img;
  const uint64_t nseg = img.segment_count();
  seg_bytes_ = nseg * sizeof(uint32_t);
  bits_bytes_ = nseg * kSegmentPages * kWordsPerPage * sizeof(uint64_t);
  cap_ = max_stack_ < (1 << 16) ? max_stack_ : 1 << 16, stack_bytes_ = cap_ * sizeof(uint64_t);
  seg_head_ = static_cast<uint32_t *>(scratch(seg_bytes_));
  bits_ = static_cast<uint64_t *>(scratch(bits_bytes_));
  stack_ = static_cast<uint64_t *>(scratch(stack_bytes_));
  if (!seg_head_ || !bits_ || !stack_) return -ENOMEM;
  if (!build_segment_index(img, seg_head_)) {
    why->add("the segment headers do not chain");
    return PERSIST_E_CORRUPT;
  }
  // The roots: every table, and every live entry's block.
  uint64_t off = img.sb.root_table;
  for (uint64_t n = 0; off; ++n) {
    BlockRef b;
    if (n > img.sb.size / kRootTableBytes || !find_block(img, off, &b, seg_head_) || !b.live ||
        b.offset != off || b.size < kRootTableBytes) {
      why->add("root table at offset ").hex(off).add(" is not a live block of the heap");
      return PERSIST_E_CORRUPT;
    }
    const auto *t = reinterpret_cast<const RootTableHeader *>(img.mem + off);
    if (t->magic != kRootTableMagic || t->capacity != kRootsPerTable) {
      why->add("root table at offset ").hex(off).add(" has a bad header");
      return PERSIST_E_CORRUPT;
    }
    push(off);
    const auto *e = reinterpret_cast<const RootEntry *>(t + 1);
    for (uint32_t i = 0; i < kRootsPerTable; ++i)
      if (e[i].state == kRootLive) {
        ++roots;
        if (e[i].offset) push(e[i].offset);
      }
    off = t->next;
  }
  // The module table (the program images recorded at close) is kept like a root table.
  // So is the heap's own area (kept, not scanned: it holds offsets and module addresses).
  // The allocation-site table likewise (it holds no pointers).
  for (uint64_t off : {img.sb.actions, img.sb.sites}) {
    BlockRef b;
    if (off && find_block(img, off, &b, seg_head_) && b.live && b.offset == off) mark(b);
  }
  // Scan what is reachable, word by word.
  drain();
  return rescan_marked(why);
}

}  // namespace persist
