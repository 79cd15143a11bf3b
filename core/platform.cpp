// platform.cpp — the only file of the core that calls the OS directly (see platform.h).
#include "platform.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

namespace persist::os {
namespace {

// Saves errno on entry and restores it on exit: the core never leaks errno changes.
struct ErrnoGuard {
  int saved = errno;
  ~ErrnoGuard() { errno = saved; }
};

int fail() { return errno ? -errno : -EIO; }

}  // namespace

int reserve(uintptr_t addr, size_t size, void **out) {
  ErrnoGuard g;
  int flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE;
  if (addr) flags |= MAP_FIXED_NOREPLACE;
  void *p = mmap(reinterpret_cast<void *>(addr), size, PROT_NONE, flags, -1, 0);
  if (p == MAP_FAILED) return fail();
  if (addr && reinterpret_cast<uintptr_t>(p) != addr) {  // kernels before 4.17 ignore the flag
    munmap(p, size);
    return -EEXIST;
  }
  *out = p;
  return 0;
}

int map_file(void *addr, size_t size, int fd, bool writable) {
  ErrnoGuard g;
  int prot = PROT_READ | (writable ? PROT_WRITE : 0);
  void *p = mmap(addr, size, prot, MAP_SHARED | MAP_FIXED | MAP_NORESERVE, fd, 0);
  return p == MAP_FAILED ? fail() : 0;
}

int map_file_readonly(int fd, size_t size, const void **out) {
  ErrnoGuard g;
  void *p = mmap(nullptr, size, PROT_READ, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) return fail();
  *out = p;
  return 0;
}

int map_anon(size_t size, void **out) {
  ErrnoGuard g;
  void *p = mmap(nullptr, size, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) return fail();
  *out = p;
  return 0;
}

int map_anon_at(uintptr_t addr, size_t size, void **out) {
  ErrnoGuard g;
  int flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | (addr ? MAP_FIXED_NOREPLACE : 0);
  void *p = mmap(reinterpret_cast<void *>(addr), size, PROT_READ | PROT_WRITE, flags, -1, 0);
  if (p == MAP_FAILED) return fail();
  if (addr && reinterpret_cast<uintptr_t>(p) != addr) {
    munmap(p, size);
    return -EEXIST;
  }
  *out = p;
  return 0;
}

int unmap(const void *addr, size_t size) {
  ErrnoGuard g;
  return munmap(const_cast<void *>(addr), size) ? fail() : 0;
}

void discard_anon(void *addr, size_t size) {
  ErrnoGuard g;
  madvise(addr, size, MADV_DONTNEED);
}

int open_file(const char *path, bool create, bool writable, int *fd, bool *created) {
  ErrnoGuard g;
  // O_NONBLOCK: opening a FIFO must not hang; it has no effect on the regular files we accept.
  int mode = (writable ? O_RDWR : O_RDONLY) | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK;
  *created = false;
  int f = open(path, mode);
  if (f < 0 && errno == ENOENT && create && writable) {
    f = open(path, mode | O_CREAT | O_EXCL, 0600);
    if (f >= 0) *created = true;
    else if (errno == EEXIST) f = open(path, mode);  // lost a race with another creator
  }
  if (f < 0) return fail();
  struct stat st;
  if (fstat(f, &st) != 0) {
    int e = fail();
    close(f);
    return e;
  }
  if (!S_ISREG(st.st_mode)) {
    close(f);
    return S_ISDIR(st.st_mode) ? -EISDIR : -EINVAL;
  }
  *fd = f;
  return 0;
}

int close_file(int fd) {
  ErrnoGuard g;
  return close(fd) ? fail() : 0;
}

int file_size(int fd, uint64_t *size) {
  ErrnoGuard g;
  struct stat st;
  if (fstat(fd, &st) != 0) return fail();
  *size = static_cast<uint64_t>(st.st_size);
  return 0;
}

int truncate_file(int fd, uint64_t size) {
  ErrnoGuard g;
  while (ftruncate(fd, static_cast<off_t>(size)) != 0)
    if (errno != EINTR) return fail();
  return 0;
}

int allocate(int fd, uint64_t off, uint64_t len) {
  ErrnoGuard g;
  for (;;) {
    if (fallocate(fd, 0, static_cast<off_t>(off), static_cast<off_t>(len)) == 0) return 0;
    if (errno == EINTR) continue;
    if (errno != EOPNOTSUPP) return fail();
    // File systems without fallocate: posix_fallocate emulates it by writing (returns errno).
    int e = posix_fallocate(fd, static_cast<off_t>(off), static_cast<off_t>(len));
    return e ? -e : 0;
  }
}

int punch_hole(int fd, uint64_t off, uint64_t len) {
  ErrnoGuard g;
  if (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(off),
                static_cast<off_t>(len)) == 0)
    return 0;
  return fail();
}

int lock_file(int fd) {
  ErrnoGuard g;
  // An open-file-description lock: inherited across fork like flock, kept across unrelated
  // close() calls (unlike POSIX record locks), and queryable with F_OFD_GETLK without taking it.
  struct flock fl;
  memset(&fl, 0, sizeof fl);
  fl.l_type = F_WRLCK;
  fl.l_whence = SEEK_SET;
  while (fcntl(fd, F_OFD_SETLK, &fl) != 0) {
    if (errno == EINTR) continue;
    return errno == EAGAIN || errno == EACCES ? -EWOULDBLOCK : fail();
  }
  return 0;
}

int file_owner_is_us(int fd) {
  ErrnoGuard g;
  struct stat st;
  if (fstat(fd, &st) != 0) return fail();
  return st.st_uid == geteuid() ? 1 : 0;
}

int sync_range(void *addr, size_t size) {
  ErrnoGuard g;
  return msync(addr, size, MS_SYNC) ? fail() : 0;
}

int sync_file(int fd) {
  ErrnoGuard g;
  return fsync(fd) ? fail() : 0;
}

uint64_t now_ns() {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000u + static_cast<uint64_t>(ts.tv_nsec);
}

uint64_t monotonic_ns() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000u + static_cast<uint64_t>(ts.tv_nsec);
}

void random_bytes(void *buf, size_t len) {
  ErrnoGuard g;
  auto *p = static_cast<unsigned char *>(buf);
  while (len) {
    ssize_t n = getrandom(p, len, GRND_NONBLOCK);
    if (n <= 0) break;
    p += n, len -= static_cast<size_t>(n);
  }
  uint64_t x = now_ns() ^ (static_cast<uint64_t>(getpid()) << 32);
  for (; len; --len, ++p) {  // no entropy available: a time/pid mix is good enough for a uuid
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    *p = static_cast<unsigned char>(x);
  }
}

int getpid_cached() { return static_cast<int>(getpid()); }

void write_stderr(const char *msg, size_t len) {
  ErrnoGuard g;
  while (len) {
    ssize_t n = write(2, msg, len);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    msg += n, len -= static_cast<size_t>(n);
  }
}

void write_stderr(const char *msg) { write_stderr(msg, strlen(msg)); }

bool secure_mode() { return getauxval(AT_SECURE) != 0; }

const char *getenv_raw(const char *name) {
  if (secure_mode() || !environ) return nullptr;
  size_t n = strlen(name);
  for (char **e = environ; *e; ++e)
    if (strncmp(*e, name, n) == 0 && (*e)[n] == '=') return *e + n + 1;
  return nullptr;
}

int probe_lock(int fd) {
  ErrnoGuard g;
  struct flock fl;
  memset(&fl, 0, sizeof fl);
  fl.l_type = F_WRLCK;
  fl.l_whence = SEEK_SET;
  while (fcntl(fd, F_OFD_GETLK, &fl) != 0)
    if (errno != EINTR) return fail();
  return fl.l_type == F_UNLCK ? 0 : 1;
}

}  // namespace persist::os
