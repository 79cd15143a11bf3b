// relocate.cpp — see relocate.h. Writes user data only (the words of live blocks), each word with
// one store: any prefix of the pass is a valid state to resume from.
#include "relocate.h"

#include "crashpoint.h"
#include "sizeclass.h"

namespace persist {
namespace {

class Rewrite : public WalkVisitor {
 public:
  Rewrite(uint8_t *mem, const Image &img, const MoveRange *r, int n, const uint64_t *skip, int nskip)
      : mem_(mem), img_(img), r_(r), n_(n), skip_(skip), nskip_(nskip) {}
  uint64_t words = 0;

  void run(uint64_t page, uint32_t, unsigned cls, uint32_t used) override {
    if (!used) return;
    const ClassInfo &ci = kClasses.info[cls];
    const uint64_t *bm = img_.bitmap(page);
    for (uint32_t w = 0; w * 64 < ci.capacity; ++w)
      for (uint64_t bits = bm[w]; bits; bits &= bits - 1) {
        uint32_t idx = w * 64 + static_cast<uint32_t>(__builtin_ctzll(bits));
        if (idx < ci.capacity) block(page * kPageSize + uint64_t{idx} * ci.size, ci.size);
      }
  }
  // Pointer-free blocks hold bytes, not pointers: never rewritten.
  void large(uint64_t page, uint32_t pages) override {
    if (!large_noscan(img_, page)) block(page * kPageSize, uint64_t{pages} * kPageSize);
  }
  void huge(uint64_t seg, uint32_t, uint64_t bytes) override {
    if (!huge_noscan(img_, seg)) block(seg * kSegmentSize + kHugeFirstPage * kPageSize, bytes);
  }

 private:
  void block(uint64_t off, uint64_t size) {
    if (off > img_.len || size > img_.len - off) return;
    for (int k = 0; k < nskip_; ++k)
      if (off == skip_[k]) return;
    auto *w = reinterpret_cast<uint64_t *>(mem_ + off);
    for (uint64_t i = 0, n = size / 8; i < n; ++i) {
      uint64_t v = w[i];
      for (int k = 0; k < n_; ++k)
        if (v - r_[k].from < r_[k].len) {
          w[i] = v - r_[k].from + r_[k].to;  // one store: any prefix of the pass can be resumed
          ++words;
          PERSIST_CRASH_POINT("reloc.word");
          break;
        }
    }
  }
  uint8_t *mem_;
  const Image &img_;
  const MoveRange *r_;
  int n_;
  const uint64_t *skip_;
  int nskip_;
};

}  // namespace

int relocate_words(uint8_t *mem, const Image &img, const MoveRange *ranges, int n, const uint64_t *skip,
                   int nskip, uint64_t *words, Msg *why) {
  Rewrite rw(mem, img, ranges, n, skip, nskip);
  int rc = walk_heap(img, rw, why);
  *words = rw.words;
  return rc;
}

}  // namespace persist
