// platform.cpp — the only file of the core that calls the OS directly (see platform.h). It makes
// raw system calls rather than calling libc's wrappers, which other libraries may interpose.
#include "platform.h"

#include "include/persist.h"
#include "msg.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <elf.h>
#include <link.h>
#include <linux/fs.h>
#include <linux/futex.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <type_traits>

extern char **environ;

namespace persist::os {
namespace {

// Saves errno on entry and restores it on exit: the core never leaks errno changes.
struct ErrnoGuard {
  int saved = errno;
  ~ErrnoGuard() { errno = saved; }
};

int fail() { return errno ? -errno : -EIO; }

// Raw system calls: other libraries (sanitizer runtimes, tracers) interpose libc's wrappers, and
// may not be able to serve them yet when ld.so makes its first malloc. -errno on failure.
template <class T>
long arg(T v) {
  if constexpr (std::is_pointer_v<T>) return reinterpret_cast<long>(v);
  else if constexpr (std::is_null_pointer_v<T>) return 0;
  else return static_cast<long>(v);
}

template <class... A>
long sys(long nr, A... args) {
  long r = syscall(nr, arg(args)...);
  return r == -1 ? -static_cast<long>(errno ? errno : EIO) : r;
}

void *sys_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off) {
  long r = sys(SYS_mmap, reinterpret_cast<long>(addr), len, prot, flags, fd, off);
  if (r < 0 && r > -4096) {
    errno = static_cast<int>(-r);
    return MAP_FAILED;
  }
  return reinterpret_cast<void *>(r);
}

}  // namespace

int reserve(uintptr_t addr, size_t size, void **out) {
  ErrnoGuard g;
  int flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE;
  if (addr) flags |= MAP_FIXED_NOREPLACE;
  void *p = sys_mmap(reinterpret_cast<void *>(addr), size, PROT_NONE, flags, -1, 0);
  if (p == MAP_FAILED) return fail();
  if (addr && reinterpret_cast<uintptr_t>(p) != addr) {  // kernels before 4.17 ignore the flag
    sys(SYS_munmap, p, size);
    return -EEXIST;
  }
  *out = p;
  return 0;
}

int map_file(void *addr, size_t size, int fd, bool writable) {
  ErrnoGuard g;
  int prot = PROT_READ | (writable ? PROT_WRITE : 0);
  void *p = sys_mmap(addr, size, prot, MAP_SHARED | MAP_FIXED | MAP_NORESERVE, fd, 0);
  return p == MAP_FAILED ? fail() : 0;
}

int map_file_readonly(int fd, size_t size, const void **out) {
  ErrnoGuard g;
  void *p = sys_mmap(nullptr, size, PROT_READ, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) return fail();
  *out = p;
  return 0;
}

int map_anon(size_t size, void **out) {
  ErrnoGuard g;
  void *p = sys_mmap(nullptr, size, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) return fail();
  *out = p;
  return 0;
}

int map_anon_populated(size_t size, void **out) {
  ErrnoGuard g;
  void *p = sys_mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) return fail();
  sys(SYS_madvise, p, size, MADV_HUGEPAGE);
  sys(SYS_madvise, p, size, MADV_POPULATE_WRITE);  // Linux 5.14+; ignored (faults instead) before
  *out = p;
  return 0;
}

int map_anon_at(uintptr_t addr, size_t size, void **out) {
  ErrnoGuard g;
  int flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | (addr ? MAP_FIXED_NOREPLACE : 0);
  void *p = sys_mmap(reinterpret_cast<void *>(addr), size, PROT_READ | PROT_WRITE, flags, -1, 0);
  if (p == MAP_FAILED) return fail();
  if (addr && reinterpret_cast<uintptr_t>(p) != addr) {
    sys(SYS_munmap, p, size);
    return -EEXIST;
  }
  *out = p;
  return 0;
}

int move_mapping(void *from, size_t size, void *to) {
  ErrnoGuard g;
  long r = sys(SYS_mremap, from, size, size, MREMAP_MAYMOVE | MREMAP_FIXED, to);
  return r < 0 && r > -4096 ? static_cast<int>(r) : 0;
}

int map_file_private(void *addr, size_t size, int fd) {
  ErrnoGuard g;
  void *p = sys_mmap(addr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_FIXED | MAP_NORESERVE, fd, 0);
  return p == MAP_FAILED ? fail() : 0;
}

int map_anon_fixed(void *addr, size_t size) {
  ErrnoGuard g;
  void *p = sys_mmap(addr, size, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1, 0);
  return p == MAP_FAILED ? fail() : 0;
}

int unmap(const void *addr, size_t size) {
  ErrnoGuard g;
  return static_cast<int>(sys(SYS_munmap, addr, size));
}

void discard_anon(void *addr, size_t size) {
  ErrnoGuard g;
  sys(SYS_madvise, addr, size, MADV_DONTNEED);
}

int open_file(const char *path, bool create, bool writable, int *fd, bool *created) {
  ErrnoGuard g;
  // O_NONBLOCK: opening a FIFO must not hang; it has no effect on the regular files we accept.
  int mode = (writable ? O_RDWR : O_RDONLY) | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK;
  *created = false;
  long f = sys(SYS_openat, AT_FDCWD, path, mode, 0);
  if (f == -ENOENT && create && writable) {
    f = sys(SYS_openat, AT_FDCWD, path, mode | O_CREAT | O_EXCL, 0600);
    if (f >= 0) *created = true;
    else if (f == -EEXIST) f = sys(SYS_openat, AT_FDCWD, path, mode, 0);  // lost a creation race
  }
  if (f < 0) return static_cast<int>(f);
  struct stat st;
  long rc = sys(SYS_fstat, f, &st);
  if (rc < 0 || !S_ISREG(st.st_mode)) {
    sys(SYS_close, f);
    return rc < 0 ? static_cast<int>(rc) : S_ISDIR(st.st_mode) ? -EISDIR : -EINVAL;
  }
  if (writable && !*created && (st.st_mode & (S_IWGRP | S_IWOTH))) {
    sys(SYS_close, f);
    return PERSIST_E_MODE;
  }
  *fd = static_cast<int>(f);
  return 0;
}

int create_file(const char *path, int *fd) {
  ErrnoGuard g;
  long f = sys(SYS_openat, AT_FDCWD, path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (f < 0) return static_cast<int>(f);
  *fd = static_cast<int>(f);
  return 0;
}

int copy_file(int src_fd, int dst_fd) {
  ErrnoGuard g;
  struct stat st;
  long rc = sys(SYS_fstat, src_fd, &st);
  if (rc < 0) return static_cast<int>(rc);
  if (static_cast<uint64_t>(st.st_size) > file_size_limit()) return -EFBIG;  // not SIGXFSZ
  rc = sys(SYS_ioctl, dst_fd, FICLONE, src_fd);
  if (rc < 0) {  // no reflink here: copy in the kernel, keeping holes where the source has them
    loff_t in_off = 0, out_off = 0;
    rc = 0;
    while (rc >= 0 && in_off < st.st_size) {
      rc = sys(SYS_copy_file_range, src_fd, &in_off, dst_fd, &out_off, st.st_size - in_off, 0);
      if (rc == 0) break;
      if (rc == -EINTR) rc = 0;
    }
    if (rc >= 0) rc = sys(SYS_ftruncate, dst_fd, st.st_size);
  }
  return rc < 0 ? static_cast<int>(rc) : 0;
}

int link_file(const char *from, const char *to) {
  ErrnoGuard g;
  return static_cast<int>(sys(SYS_linkat, AT_FDCWD, from, AT_FDCWD, to, 0));
}

int unlink_file(const char *path) {
  ErrnoGuard g;
  return static_cast<int>(sys(SYS_unlinkat, AT_FDCWD, path, 0));
}

int rename_file(const char *from, const char *to) {
  ErrnoGuard g;
  return static_cast<int>(sys(SYS_renameat2, AT_FDCWD, from, AT_FDCWD, to, 0));
}

namespace {
// The soft limit of `resource` (UINT64_MAX: unlimited or unreadable).
uint64_t soft_limit(int resource) {
  struct rlimit rl;
  if (sys(SYS_prlimit64, 0, resource, nullptr, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY) return UINT64_MAX;
  return rl.rlim_cur;
}
}  // namespace

uint64_t address_space_left() {
  ErrnoGuard g;
  const uint64_t limit = soft_limit(RLIMIT_AS);
  if (limit == UINT64_MAX) return UINT64_MAX;
  uint64_t mapped = 0;
  long fd = sys(SYS_openat, AT_FDCWD, "/proc/self/statm", O_RDONLY | O_CLOEXEC, 0);
  if (fd >= 0) {
    char buf[128];
    long n = sys(SYS_read, fd, buf, sizeof buf - 1);
    sys(SYS_close, fd);
    for (long i = 0; i < n && buf[i] >= '0' && buf[i] <= '9'; ++i) mapped = mapped * 10 + (buf[i] - '0');
    mapped *= 4096;  // statm counts pages
  }
  return limit > mapped ? limit - mapped : 0;
}

uint64_t file_size_limit() {
  ErrnoGuard g;
  return soft_limit(RLIMIT_FSIZE);
}

int path_mode(const char *path, bool follow, uint32_t *mode) {
  ErrnoGuard g;
  struct stat st;
  long rc = sys(SYS_newfstatat, AT_FDCWD, path, &st, follow ? 0 : AT_SYMLINK_NOFOLLOW);
  if (rc < 0) return static_cast<int>(rc);
  *mode = st.st_mode;
  return 0;
}

int close_file(int fd) {
  ErrnoGuard g;
  return static_cast<int>(sys(SYS_close, fd));
}

int file_size(int fd, uint64_t *size) {
  ErrnoGuard g;
  struct stat st;
  long rc = sys(SYS_fstat, fd, &st);
  if (rc < 0) return static_cast<int>(rc);
  *size = static_cast<uint64_t>(st.st_size);
  return 0;
}

int truncate_file(int fd, uint64_t size) {
  ErrnoGuard g;
  long rc;
  while ((rc = sys(SYS_ftruncate, fd, size)) == -EINTR) {
  }
  return static_cast<int>(rc);
}

int allocate(int fd, uint64_t off, uint64_t len) {
  ErrnoGuard g;
  long rc;
  while ((rc = sys(SYS_fallocate, fd, 0, off, len)) == -EINTR) {
  }
  if (rc != -EOPNOTSUPP) return static_cast<int>(rc);
  // File systems without fallocate: posix_fallocate emulates it by writing (returns errno).
  int e = posix_fallocate(fd, static_cast<off_t>(off), static_cast<off_t>(len));
  return e ? -e : 0;
}

int punch_hole(int fd, uint64_t off, uint64_t len) {
  ErrnoGuard g;
  return static_cast<int>(sys(SYS_fallocate, fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off, len));
}

int lock_file(int fd, bool wait) {
  ErrnoGuard g;
  // An open-file-description lock: inherited across fork like flock, kept across unrelated
  // close() calls (unlike POSIX record locks), and queryable with F_OFD_GETLK without taking it.
  struct flock fl;
  memset(&fl, 0, sizeof fl);
  fl.l_type = F_WRLCK;
  fl.l_whence = SEEK_SET;
  long rc;
  while ((rc = sys(SYS_fcntl, fd, wait ? F_OFD_SETLKW : F_OFD_SETLK, &fl)) == -EINTR) {
  }
  return rc == -EAGAIN || rc == -EACCES ? -EWOULDBLOCK : static_cast<int>(rc);
}

int file_identity(int fd, uint64_t *dev, uint64_t *ino) {
  ErrnoGuard g;
  struct stat st;
  long rc = sys(SYS_fstat, fd, &st);
  if (rc < 0) return static_cast<int>(rc);
  *dev = st.st_dev, *ino = st.st_ino;
  return 0;
}

int dup_high(int fd, int floor) {
  ErrnoGuard g;
  const uint64_t soft = soft_limit(RLIMIT_NOFILE);
  long limit = soft == UINT64_MAX ? 1024 : soft > (1 << 20) ? 1 << 20 : static_cast<long>(soft);
  // F_DUPFD takes the lowest free number at or above its argument: above the 3..1023 that
  // daemons close when the limit allows (not at the limit itself: the kernel's descriptor table
  // grows to the highest number used), else near the limit, else the floor.
  long want = limit - 16 < 1088 ? limit - 16 : 1088;
  long rc = -EMFILE;
  if (want > floor) rc = sys(SYS_fcntl, fd, F_DUPFD_CLOEXEC, want);
  if (rc == -EMFILE || rc == -EINVAL) rc = sys(SYS_fcntl, fd, F_DUPFD_CLOEXEC, floor);
  return static_cast<int>(rc);
}

long current_dir(char *buf, size_t len) {
  ErrnoGuard g;
  long rc = sys(SYS_getcwd, buf, len);
  return rc < 0 ? rc : static_cast<long>(strlen(buf));
}

int file_owner_is_us(int fd) {
  ErrnoGuard g;
  struct stat st;
  long rc = sys(SYS_fstat, fd, &st);
  if (rc < 0) return static_cast<int>(rc);
  return st.st_uid == static_cast<uid_t>(sys(SYS_geteuid)) ? 1 : 0;
}

int sync_range(void *addr, size_t size) {
  ErrnoGuard g;
  return static_cast<int>(sys(SYS_msync, addr, size, MS_SYNC));
}

int sync_file(int fd) {
  ErrnoGuard g;
  return static_cast<int>(sys(SYS_fsync, fd));
}

void futex_wait(std::atomic<int> *word, int expected) {
  ErrnoGuard g;
  sys(SYS_futex, reinterpret_cast<int *>(word), FUTEX_WAIT_PRIVATE, expected, nullptr, nullptr, 0);
}

void futex_wake(std::atomic<int> *word) {
  ErrnoGuard g;
  sys(SYS_futex, reinterpret_cast<int *>(word), FUTEX_WAKE_PRIVATE, 1, nullptr, nullptr, 0);
}

void each_module(int (*fn)(const ModuleInfo &m, void *arg), void *arg) {
  struct Ctx {
    int (*fn)(const ModuleInfo &, void *);
    void *arg;
  } ctx{fn, arg};
  dl_iterate_phdr(
      [](struct dl_phdr_info *info, size_t, void *data) -> int {
        auto *c = static_cast<Ctx *>(data);
        ModuleInfo m{info->dlpi_name, info->dlpi_addr, UINT64_MAX, 0, nullptr, 0};
        for (int i = 0; i < info->dlpi_phnum; ++i) {
          const ElfW(Phdr) &ph = info->dlpi_phdr[i];
          if (ph.p_type == PT_LOAD) {
            uint64_t lo = info->dlpi_addr + ph.p_vaddr, hi = lo + ph.p_memsz;
            if (lo < m.start) m.start = lo;
            if (hi > m.end) m.end = hi;
          } else if (ph.p_type == PT_NOTE) {  // look for NT_GNU_BUILD_ID
            const uint8_t *p = reinterpret_cast<const uint8_t *>(info->dlpi_addr + ph.p_vaddr);
            const uint8_t *end = p + ph.p_memsz;
            while (p + sizeof(ElfW(Nhdr)) <= end) {
              const auto *n = reinterpret_cast<const ElfW(Nhdr) *>(p);
              const uint8_t *name = p + sizeof(ElfW(Nhdr));
              const uint8_t *desc = name + ((n->n_namesz + 3) & ~3u);
              if (desc + n->n_descsz > end) break;
              if (n->n_type == NT_GNU_BUILD_ID && n->n_namesz == 4 && memcmp(name, "GNU", 4) == 0) {
                m.build_id = desc;
                m.id_len = n->n_descsz;
              }
              p = desc + ((n->n_descsz + 3) & ~3u);
            }
          }
        }
        if (m.start >= m.end) return 0;
        return c->fn(m, c->arg);
      },
      &ctx);
}

long self_exe_path(char *buf, size_t len) {
  if (len == 0) return -EINVAL;
  long n = sys(SYS_readlink, "/proc/self/exe", buf, len - 1);
  if (n < 0) return n;
  buf[n] = 0;
  return n;
}

void yield() { sys(SYS_sched_yield); }

uint64_t now_ns() {
  ErrnoGuard g;
  struct timespec ts = {0, 0};
  sys(SYS_clock_gettime, CLOCK_REALTIME, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000u + static_cast<uint64_t>(ts.tv_nsec);
}

uint64_t monotonic_ns() {
  ErrnoGuard g;
  struct timespec ts = {0, 0};
  sys(SYS_clock_gettime, CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000u + static_cast<uint64_t>(ts.tv_nsec);
}

void random_bytes(void *buf, size_t len) {
  ErrnoGuard g;
  auto *p = static_cast<unsigned char *>(buf);
  while (len) {
    // The raw system call: sanitizer runtimes intercept getrandom() and cannot serve it yet when
    // ld.so makes the first malloc.
    long n = syscall(SYS_getrandom, p, len, GRND_NONBLOCK);
    if (n <= 0) break;
    p += n, len -= static_cast<size_t>(n);
  }
  uint64_t x = now_ns() ^ (static_cast<uint64_t>(sys(SYS_getpid)) << 32);
  for (; len; --len, ++p) {  // no entropy available: a time/pid mix is good enough for a uuid
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    *p = static_cast<unsigned char>(x);
  }
}

namespace {
// The parent of `pid` from /proc/<pid>/stat ("pid (comm) state ppid ..."), or -1.
int parent_of(int pid) {
  char path[40] = "/proc/";
  Msg m;
  m.dec(static_cast<uint64_t>(pid)).add("/stat");
  memcpy(path + 6, m.str(), m.size() + 1);
  long fd = sys(SYS_openat, AT_FDCWD, path, O_RDONLY | O_CLOEXEC, 0);
  if (fd < 0) return -1;
  char buf[512];
  long n = sys(SYS_read, fd, buf, sizeof buf - 1);
  sys(SYS_close, fd);
  if (n <= 0) return -1;
  buf[n] = 0;
  const char *p = strrchr(buf, ')');  // comm may contain spaces and parentheses
  if (!p || p[1] != ' ' || !p[2] || p[3] != ' ') return -1;
  int ppid = 0;
  for (p += 4; *p >= '0' && *p <= '9'; ++p) ppid = ppid * 10 + (*p - '0');
  return ppid;
}
}  // namespace

int parent_pid(int pid) {
  ErrnoGuard g;
  return parent_of(pid);
}

int environ_value(int pid, const char *name, char *out, size_t cap) {
  ErrnoGuard g;
  char path[48] = "/proc/";
  Msg m;
  m.dec(static_cast<uint64_t>(pid)).add("/environ");
  memcpy(path + 6, m.str(), m.size() + 1);
  long fd = sys(SYS_openat, AT_FDCWD, path, O_RDONLY | O_CLOEXEC, 0);
  if (fd < 0) return static_cast<int>(fd);
  // Stream the NUL-separated entries through a small buffer; `cur` is the entry being read, of
  // which `keep` bytes are kept (an entry that does not fit in `out` is skipped, as too long).
  size_t nlen = strlen(name), keep = 0;
  bool overflow = false;
  int rc = -ENOENT;
  char buf[1024];
  for (;;) {
    long n = sys(SYS_read, fd, buf, sizeof buf);
    if (n == -EINTR) continue;
    if (n < 0) rc = static_cast<int>(n);
    if (n <= 0) break;
    for (long i = 0; i < n && rc == -ENOENT; ++i) {
      if (buf[i]) {
        if (keep + 1 < cap) out[keep++] = buf[i];
        else overflow = true;
        continue;
      }
      out[keep] = 0;
      if (!overflow && keep > nlen && strncmp(out, name, nlen) == 0 && out[nlen] == '=') {
        memmove(out, out + nlen + 1, keep - nlen);  // the value and its NUL
        rc = 0;
      }
      keep = 0, overflow = false;
    }
    if (rc != -ENOENT) break;
  }
  sys(SYS_close, fd);
  if (rc && cap) out[0] = 0;
  return rc;
}

bool is_ancestor(int pid) {
  ErrnoGuard g;
  int cur = static_cast<int>(sys(SYS_getppid));
  for (int depth = 0; depth < 64 && cur > 1; ++depth) {
    if (cur == pid) return true;
    cur = parent_of(cur);
  }
  return cur == pid && pid > 0;
}

int getpid_cached() { return static_cast<int>(sys(SYS_getpid)); }

void write_stderr(const char *msg, size_t len) {
  ErrnoGuard g;
  while (len) {
    long n = sys(SYS_write, 2, msg, len);
    if (n == -EINTR) continue;
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
  long rc;
  while ((rc = sys(SYS_fcntl, fd, F_OFD_GETLK, &fl)) == -EINTR) {
  }
  if (rc < 0) return static_cast<int>(rc);
  return fl.l_type == F_UNLCK ? 0 : 1;
}

}  // namespace persist::os
