// newfile.cpp — see newfile.h. Owns no heap state; only os:: calls and fixed buffers.
#include "newfile.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstdint>
#include <cstring>

#include "msg.h"
#include "platform.h"

namespace persist {

int newfile_create(const char *dest, NewFile *f) {
  *f = NewFile{};
  size_t len = strlen(dest);
  for (int attempt = 0; attempt < 16; ++attempt) {
    uint64_t r = 0;
    os::random_bytes(&r, sizeof r);
    Msg suffix;
    suffix.add(".tmp.").dec(static_cast<uint64_t>(os::getpid_cached())).add(".").hex(r);
    if (len + suffix.size() + 1 > sizeof f->tmp) return -ENAMETOOLONG;
    memcpy(f->tmp, dest, len);
    memcpy(f->tmp + len, suffix.str(), suffix.size() + 1);
    int rc = os::create_file(f->tmp, &f->fd);
    if (rc == 0) return 0;
    f->tmp[0] = 0;
    if (rc != -EEXIST) return rc;  // a name taken (by chance, or planted): draw another
  }
  return -EEXIST;
}

int newfile_link(NewFile *f, const char *dest) {
  if (!f->tmp[0]) return -EINVAL;
  int rc = os::link_file(f->tmp, dest);
  if (rc == 0) {
    os::unlink_file(f->tmp);
    f->tmp[0] = 0;
  }
  return rc;
}

int newfile_replace(NewFile *f, const char *dest) {
  if (!f->tmp[0]) return -EINVAL;
  uint32_t mode = 0;
  if (os::path_mode(dest, false, &mode) == 0 && !S_ISREG(mode) && !S_ISLNK(mode)) return -EINVAL;
  int rc = os::rename_file(f->tmp, dest);
  if (rc == 0) f->tmp[0] = 0;
  return rc;
}

bool newfile_is_stream(const char *dest) {
  uint32_t mode = 0;
  return os::path_mode(dest, true, &mode) == 0 && (S_ISCHR(mode) || S_ISFIFO(mode) || S_ISSOCK(mode));
}

void newfile_close(NewFile *f) {
  if (f->tmp[0]) os::unlink_file(f->tmp);
  f->tmp[0] = 0;
  if (f->fd >= 0) os::close_file(f->fd);
  f->fd = -1;
}

}  // namespace persist
