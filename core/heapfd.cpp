// heapfd.cpp — the heap's file descriptor (heap.h: heap_file_*). Every descriptor number is the
// program's: it may close ours (daemons close 3..1023 or all of them) or open a file of its own at
// our number (bash's `exec 3>f`). So the descriptor is moved high at open, and before each use
// that changes or reads the file through it (growth, disk reservation, punching, truncation,
// sync, copy, close) it is checked to still be the heap's file: the device and inode recorded at
// open. If it is not, the file is opened again by the absolute path it was opened with and checked
// the same way. A file the heap did not open is never written, and a descriptor that is no longer
// ours is never closed. (A number the program dup2s over between the check and the use can
// still be reached: the window is one system call.)
#include <cerrno>
#include <cstring>

#include "heap.h"
#include "platform.h"

namespace persist {
namespace {

constexpr int kLowestFd = 3;  // never stdin, stdout or stderr

bool is_ours(const Heap *h, int fd) {
  uint64_t dev = 0, ino = 0;
  return fd >= 0 && os::file_identity(fd, &dev, &ino) == 0 && dev == h->file_dev && ino == h->file_ino;
}

}  // namespace

int heap_file_adopt(Heap *h, const char *path) {
  int rc = os::file_identity(h->fd, &h->file_dev, &h->file_ino);
  if (rc) return rc;
  size_t len = strlen(path), at = 0;
  if (path[0] != '/') {  // absolute: the program may change directory
    long n = os::current_dir(h->file_path, sizeof h->file_path);
    if (n <= 0) return n ? static_cast<int>(n) : -ENOENT;
    at = static_cast<size_t>(n);
    if (at + 1 < sizeof h->file_path) h->file_path[at++] = '/';
  }
  if (at + len + 1 > sizeof h->file_path) return -ENAMETOOLONG;
  memcpy(h->file_path + at, path, len + 1);
  int high = os::dup_high(h->fd, kLowestFd);
  if (high >= 0 && high > h->fd) {  // the lock is the open file description's: dup keeps it
    os::close_file(h->fd);
    h->fd = high;
  } else if (high >= 0) {
    os::close_file(high);
  }
  return 0;
}

int heap_file(Heap *h) {
  int cur = __atomic_load_n(&h->fd, __ATOMIC_ACQUIRE);
  if (cur < 0) return -EBADF;  // no file: anonymous or a region
  if (!h->file_ino || is_ours(h, cur)) return cur;  // !file_ino: being opened, not adopted yet
  // Closed, or reused by the program: not ours to use or close. Open the heap's file again, once
  // for all the threads that noticed.
  Guard g(h->file_lock);
  cur = __atomic_load_n(&h->fd, __ATOMIC_ACQUIRE);
  if (is_ours(h, cur)) return cur;  // another thread did
  int fd = -1;
  bool created = false;
  int rc = h->file_path[0] ? os::open_file(h->file_path, false, true, &fd, &created) : -ENOENT;
  // Failing, h->fd keeps its (stale) number: the heap still has a file, which can no longer grow.
  if (rc) return -EBADF;
  // The lock needs no taking again: it belongs to the open file description the heap was opened
  // with, which the heap's mapping still references, so no other process can hold it.
  if (!is_ours(h, fd)) {  // the name now names another file
    os::close_file(fd);
    h->file_path[0] = 0;  // never again: it is not the heap this process opened
    return -EBADF;
  }
  int high = os::dup_high(fd, kLowestFd);
  if (high >= 0) os::close_file(fd), fd = high;
  __atomic_store_n(&h->fd, fd, __ATOMIC_RELEASE);
  return fd;
}

void heap_file_close(Heap *h) {
  if (h->fd >= 0 && (!h->file_ino || is_ours(h, h->fd))) os::close_file(h->fd);  // !file_ino: not adopted yet
  h->fd = -1;
}

}  // namespace persist
