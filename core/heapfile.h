// heapfile.h — opening a heap file read-only for inspection (tools): the file is untrusted input.
// The heap is mapped read-only wherever the kernel likes; nothing is written, no lock is taken,
// but whether a running owner holds the file's lock is reported.
#pragma once

#include <cstdint>

#include "msg.h"
#include "walk.h"

namespace persist {

struct HeapFile {
  int fd = -1;
  Image image;             // mem/len: the whole file, read-only
  uint64_t file_bytes = 0; // size of the file
  bool owner_live = false; // another process holds the heap's lock right now
};

// Returns 0, or a negative code (errno or PERSIST_E_*) with the reason in `why`.
int heapfile_open(const char *path, HeapFile *out, Msg *why);
void heapfile_close(HeapFile *f);

}  // namespace persist
