// snapshot.cpp — `persist snapshot FILE DEST [--json]`: a consistent copy of a heap file, also of
// one a running program holds. Order: page 0 (both superblock slots) is read first, then the file
// is cloned (FICLONE) or copied sparsely, then the saved page 0 is written over the copy's: the
// copy never records an extent or a root table newer than the data it holds (the owner extends
// the file before it records a larger extent). The pages themselves are not copied at one instant
// while the owner runs, so the copy is checked (check_image) and taken again when it does not
// pass; it is linked as DEST only then (newfile.h: a new 0600 file, never over anything). The
// copy of a live heap is dirty, like a heap after a crash, and opens like one.
#include <fcntl.h>
#include <getopt.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "check.h"
#include "heapfile.h"
#include "newfile.h"
#include "progress.h"
#include "tool.h"

namespace persist::tool {
namespace {

constexpr int kAttempts = 5;  // copies taken while a live owner keeps changing the heap

struct Result {
  const char *method = "copy";
  uint64_t bytes = 0, disk_bytes = 0;
  int attempts = 0;
  bool consistent = false;
  std::string problem, state;
};

bool full_pread(int fd, void *buf, size_t n, uint64_t off) {
  auto *p = static_cast<uint8_t *>(buf);
  while (n) {
    ssize_t r = pread(fd, p, n, static_cast<off_t>(off));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    p += r, n -= static_cast<size_t>(r), off += static_cast<uint64_t>(r);
  }
  return true;
}

bool full_pwrite(int fd, const void *buf, size_t n, uint64_t off) {
  auto *p = static_cast<const uint8_t *>(buf);
  while (n) {
    ssize_t r = pwrite(fd, p, n, static_cast<off_t>(off));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    p += r, n -= static_cast<size_t>(r), off += static_cast<uint64_t>(r);
  }
  return true;
}

bool all_zero(const uint8_t *p, size_t n) {
  for (size_t i = 0; i < n; ++i)
    if (p[i]) return false;
  return true;
}

// Copies [off, end) of src to the same place in dst: copy_file_range, else read/write leaving
// zero pages as holes.
bool copy_range(int src, int dst, uint64_t off, uint64_t end, Progress &progress, uint64_t *done) {
  bool kernel_copy = true;
  std::vector<uint8_t> buf;
  while (off < end) {
    size_t n = end - off < (64u << 20) ? static_cast<size_t>(end - off) : (64u << 20);
    if (kernel_copy) {
      loff_t in = static_cast<loff_t>(off), out = static_cast<loff_t>(off);
      ssize_t r = copy_file_range(src, &in, dst, &out, n, 0);
      if (r > 0) {
        off += static_cast<uint64_t>(r), *done += static_cast<uint64_t>(r);
        progress.update(*done);
        continue;
      }
      if (r == 0) return true;  // the source shrank: what is left reads as holes
      if (errno == EINTR) continue;
      if (errno != EXDEV && errno != EINVAL && errno != ENOSYS && errno != EOPNOTSUPP &&
          errno != EPERM)
        return false;
      kernel_copy = false;
    }
    if (buf.empty()) buf.resize(1u << 20);
    if (n > buf.size()) n = buf.size();
    ssize_t r = pread(src, buf.data(), n, static_cast<off_t>(off));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return false;
    if (r == 0) return true;
    for (size_t i = 0; i < static_cast<size_t>(r); i += kPageSize) {
      size_t k = static_cast<size_t>(r) - i < kPageSize ? static_cast<size_t>(r) - i : kPageSize;
      if (!all_zero(buf.data() + i, k) && !full_pwrite(dst, buf.data() + i, k, off + i)) return false;
    }
    off += static_cast<uint64_t>(r), *done += static_cast<uint64_t>(r);
    progress.update(*done);
  }
  return true;
}

// One copy of src into dst, a new empty file (newfile.h). Returns "" or what failed.
std::string copy_once(int src, int dst, Result *res) {
  uint8_t page0[kPageSize];
  if (!full_pread(src, page0, sizeof page0, 0)) return std::string("reading page 0: ") + strerror(errno);
  std::string err;
  struct stat st;
  if (ioctl(dst, FICLONE, src) == 0) {
    res->method = "reflink";
    if (fstat(dst, &st) == 0) res->bytes = static_cast<uint64_t>(st.st_size);
  } else if (fstat(src, &st) != 0) {
    err = std::string("stat: ") + strerror(errno);
  } else {
    res->method = "copy";
    const uint64_t size = static_cast<uint64_t>(st.st_size);
    res->bytes = size;
    if (ftruncate(dst, static_cast<off_t>(size)) != 0) err = std::string("truncate: ") + strerror(errno);
    Progress progress("persist: copying", size);
    uint64_t done = 0;
    for (uint64_t off = 0; err.empty() && off < size;) {
      off_t data = lseek(src, static_cast<off_t>(off), SEEK_DATA);
      off_t hole;
      if (data < 0 && errno == ENXIO) break;  // only a hole is left
      if (data < 0) {                          // no SEEK_DATA here: copy everything
        data = static_cast<off_t>(off);
        hole = static_cast<off_t>(size);
      } else {
        hole = lseek(src, data, SEEK_HOLE);
        if (hole < 0) hole = static_cast<off_t>(size);
      }
      uint64_t end = static_cast<uint64_t>(hole) < size ? static_cast<uint64_t>(hole) : size;
      if (static_cast<uint64_t>(data) >= end) break;
      if (!copy_range(src, dst, static_cast<uint64_t>(data), end, progress, &done))
        err = std::string("copying: ") + strerror(errno);
      off = end;
    }
  }
  if (err.empty() && !full_pwrite(dst, page0, sizeof page0, 0))
    err = std::string("writing page 0: ") + strerror(errno);
  if (err.empty() && fsync(dst) != 0) err = std::string("fsync: ") + strerror(errno);
  if (err.empty() && fstat(dst, &st) == 0) res->disk_bytes = static_cast<uint64_t>(st.st_blocks) * 512;
  return err;
}

// check_image over the copy (without the reachability mark: consistency only).
void verify(const char *tmp, Result *res) {
  HeapFile c;
  Msg why;
  res->consistent = false;
  if (heapfile_open(tmp, &c, &why) != 0) {
    res->problem = why.str();
    res->state = "unreadable";
    return;
  }
  res->state = c.image.sb.state == kStateClean ? "clean" : "dirty";
  HeapReport rep;
  {
    Busy busy("persist: checking the copy");
    res->consistent = check_image(c.image, &rep, 0) == 0 && rep.consistent;
  }
  if (!res->consistent) res->problem = rep.first_problem.empty() ? "inconsistent" : rep.first_problem.str();
  heapfile_close(&c);
}

void sync_dir_of(const char *path) {
  std::string dir(path);
  size_t slash = dir.rfind('/');
  dir = slash == std::string::npos ? "." : slash == 0 ? "/" : dir.substr(0, slash);
  int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    fsync(fd);
    close(fd);
  }
}

void print(const char *path, const char *dest, bool owner_live, const Result &r, bool json) {
  if (json) {
    Json j(stdout);
    j.begin_object();
    j.str("file", path);
    j.str("dest", dest);
    j.boolean("readable", true);
    j.boolean("owner_live", owner_live);
    j.str("method", r.method);
    j.num("bytes", r.bytes);
    j.num("disk_bytes", r.disk_bytes);
    j.num("attempts", static_cast<uint64_t>(r.attempts));
    j.str("state", r.state);
    j.boolean("consistent", r.consistent);
    if (r.consistent) j.null("problem");
    else j.str("problem", r.problem);
    j.end_object();
    return;
  }
  printf("%s -> %s: %s, %s, %s on disk\n", path, dest,
         strcmp(r.method, "reflink") == 0 ? "reflink (shares the file's blocks until written)"
                                          : "copied",
         fmt_bytes(r.bytes).c_str(), fmt_bytes(r.disk_bytes).c_str());
  printf("  owner:    %s\n", owner_live ? "live: a running program holds the heap; the copy is "
                                          "dirty and opens like a heap after a crash"
                                        : "none");
  printf("  state:    %s\n", r.state.c_str());
  printf("  verified: %s%s\n", r.consistent ? "consistent (checked with the heap checker)" : "INCONSISTENT: ",
         r.consistent ? "" : r.problem.c_str());
  if (r.attempts > 1) printf("  attempts: %d (the heap changed while it was copied)\n", r.attempts);
}

}  // namespace

int cmd_snapshot(const Command &cmd, int argc, char **argv) {
  static const option kLong[] = {{"json", no_argument, nullptr, 'j'},
                                 {"help", no_argument, nullptr, 'h'},
                                 {nullptr, 0, nullptr, 0}};
  bool json = false;
  for (int c; (c = getopt_long(argc, argv, ":h", kLong, nullptr)) != -1;) {
    switch (c) {
      case 'j': json = true; break;
      case 'h': print_command_help(cmd, stdout); return kExitOk;
      default: return option_error(cmd, c, argc, argv);
    }
  }
  if (argc - optind < 2) return usage_error(cmd, "missing FILE or DEST");
  if (argc - optind > 2) return usage_error(cmd, "too many arguments");
  const char *path = argv[optind], *dest = argv[optind + 1];
  HeapFile f;
  Msg why;
  int rc = open_heap_arg(path, &f, &why);  // the superblock must be valid; the lock is probed
  if (rc < 0) return report_unreadable(path, rc, why, json);
  struct stat st;
  if (lstat(dest, &st) == 0) {
    fprintf(stderr, "persist snapshot: %s exists; not overwritten\n", dest);
    heapfile_close(&f);
    return kExitUnreadable;
  }
  const bool owner_live = f.owner_live;
  // The copy is a new private file (newfile.h), named DEST only once verified, never over
  // anything (a DEST created meanwhile, a symlink included, is not replaced).
  Result res;
  NewFile nf;
  for (res.attempts = 1;; ++res.attempts) {
    rc = newfile_create(dest, &nf);
    std::string err = rc ? std::string("creating the copy: ") + strerror(-rc) : copy_once(f.fd, nf.fd, &res);
    if (!err.empty()) {
      fprintf(stderr, "persist snapshot: %s: %s\n", dest, err.c_str());
      newfile_close(&nf);
      heapfile_close(&f);
      return kExitUnreadable;
    }
    verify(nf.tmp, &res);
    // A live owner may have changed the heap under the copy: take it again. Without an owner
    // the copy is faithful, and an inconsistent copy means an inconsistent heap.
    if (res.consistent || !owner_live || res.attempts == kAttempts) break;
    newfile_close(&nf);
    usleep(20000);
  }
  heapfile_close(&f);
  rc = newfile_link(&nf, dest);
  newfile_close(&nf);
  if (rc < 0) {
    fprintf(stderr, "persist snapshot: cannot create %s: %s\n", dest, strerror(-rc));
    return kExitUnreadable;
  }
  sync_dir_of(dest);
  print(path, dest, owner_live, res, json);
  return res.consistent ? kExitOk : kExitInconsistent;
}

}  // namespace persist::tool
