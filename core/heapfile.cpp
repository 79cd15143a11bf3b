// heapfile.cpp — see heapfile.h. Opens a heap file read-only for the tools. Owns no heap state:
// the file is untrusted input, mapped read-only, never written and never locked. Only the
// superblock is validated here (super_read); everything past it is left to walk/check, which
// bounds-check against image.len.
#include "heapfile.h"

#include <cerrno>

#include "include/persist.h"
#include "platform.h"
#include "superblock.h"

namespace persist {
namespace {

void add_errno(Msg *why, int code) {
  switch (-code) {
    case ENOENT: why->add("no such file"); break;
    case EACCES: why->add("permission denied"); break;
    case EISDIR: why->add("is a directory"); break;
    case EINVAL: why->add("not a regular file"); break;
    case ELOOP: why->add("is a symbolic link (not followed)"); break;
    case ENOMEM: why->add("out of memory or address space"); break;
    default: why->add("error ").dec(static_cast<uint64_t>(-code)); break;
  }
}

}  // namespace

int heapfile_open(const char *path, HeapFile *out, Msg *why) {
  Msg unused;
  if (!why) why = &unused;
  *out = HeapFile{};
  int fd = -1;
  bool created = false;
  int rc = os::open_file(path, /*create=*/false, /*writable=*/false, &fd, &created);
  if (rc < 0) {
    why->add("cannot open ").add(path).add(": ");
    add_errno(why, rc);
    return rc;
  }
  uint64_t size = 0;
  rc = os::file_size(fd, &size);
  if (rc < 0) {
    why->add("cannot stat ").add(path).add(": ");
    add_errno(why, rc);
    os::close_file(fd);
    return rc;
  }
  if (size < kPageSize) {  // also keeps mmap away from an empty file
    why->add(path).add(": ");
    if (size == 0) {
      why->add("empty file, not a libpersist heap");
      os::close_file(fd);
      return PERSIST_E_BADMAGIC;
    }
    why->add("file too small to be a heap (").dec(size).add(" bytes)");
    os::close_file(fd);
    return PERSIST_E_TOOSMALL;
  }
  if (size != static_cast<uint64_t>(static_cast<size_t>(size))) {
    why->add(path).add(": file too large to map");
    os::close_file(fd);
    return -EFBIG;
  }
  const void *mem = nullptr;
  rc = os::map_file_readonly(fd, static_cast<size_t>(size), &mem);
  if (rc < 0) {
    why->add("cannot map ").add(path).add(": ");
    add_errno(why, rc);
    os::close_file(fd);
    return rc;
  }
  auto *bytes = static_cast<const uint8_t *>(mem);
  Superblock sb;
  Msg reason;
  rc = super_read(bytes, static_cast<size_t>(size), &sb, &reason);
  if (rc < 0) {
    why->add(path).add(": ").add(reason.str());
    os::unmap(mem, static_cast<size_t>(size));
    os::close_file(fd);
    return rc;
  }
  out->fd = fd;
  out->image.mem = bytes;
  out->image.len = size;
  out->image.sb = sb;
  out->file_bytes = size;
  // A failed probe (no /proc, say) reads as "no owner": the report is advisory.
  out->owner_live = os::probe_lock(fd) == 1;
  return 0;
}

void heapfile_close(HeapFile *f) {
  if (f->image.mem) os::unmap(f->image.mem, static_cast<size_t>(f->image.len));
  if (f->fd >= 0) os::close_file(f->fd);
  *f = HeapFile{};
}

}  // namespace persist
