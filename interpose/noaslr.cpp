// noaslr.cpp — see noaslr.h. Runs inside the first malloc: no allocation (buffers are mmap'ed),
// no stdio, only system calls.
#include "noaslr.h"

#include <fcntl.h>
#include <sys/personality.h>
#include <unistd.h>

#include <cstring>

#include "modules.h"
#include "msg.h"
#include "platform.h"

extern char **environ;

namespace persist::shim {
namespace {

constexpr char kMarker[] = "PERSIST_ASLR_OFF_FOR=";  // the pid whose ASLR we turned off
constexpr size_t kMarkerLen = sizeof kMarker - 1;
constexpr size_t kMaxCmdline = size_t{64} << 20;  // far above any ARG_MAX in use

bool parse_pid(const char *s, long *out) {
  long v = 0;
  if (!*s) return false;
  for (; *s; ++s) {
    if (*s < '0' || *s > '9' || v > 1 << 30) return false;
    v = v * 10 + (*s - '0');
  }
  *out = v;
  return true;
}

// Address randomisation is on for our next exec: the personality does not turn it off and the
// system does not either (randomize_va_space 0).
bool randomised() {
  int p = personality(0xffffffff);
  if (p == -1 || (p & ADDR_NO_RANDOMIZE)) return false;
  int fd = open("/proc/sys/kernel/randomize_va_space", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return true;
  char c = 0;
  bool on = read(fd, &c, 1) == 1 && c != '0';
  close(fd);
  return on;
}

// /proc/self/cmdline into an mmap'ed buffer (NUL-separated arguments). 0, or an error.
int read_cmdline(char **buf, size_t *len, size_t *cap) {
  int fd = open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  size_t size = 64 << 10, used = 0;
  void *mem = nullptr;
  if (os::map_anon(size, &mem)) {
    close(fd);
    return -1;
  }
  for (;;) {
    if (used == size) {  // grow: a new buffer, twice the size
      void *bigger = nullptr;
      if (size * 2 > kMaxCmdline || os::map_anon(size * 2, &bigger)) break;
      memcpy(bigger, mem, used);
      os::unmap(mem, size);
      mem = bigger, size *= 2;
    }
    ssize_t n = read(fd, static_cast<char *>(mem) + used, size - used);
    if (n < 0) break;
    if (n == 0) {
      close(fd);
      *buf = static_cast<char *>(mem), *len = used, *cap = size;
      return used ? 0 : -1;
    }
    used += static_cast<size_t>(n);
  }
  close(fd);
  os::unmap(mem, size);
  return -1;
}

}  // namespace

bool noaslr_adopt_reexec() {
  if (!environ) return false;
  for (char **e = environ; *e; ++e) {
    if (strncmp(*e, kMarker, kMarkerLen) != 0) continue;
    long pid = 0;
    bool ours = parse_pid(*e + kMarkerLen, &pid) && pid == os::getpid_cached();
    for (char **d = e; *d; ++d) d[0] = d[1];  // neither the program nor its children see it
    if (!ours) return false;                 // a stale copy (a child given our environment)
    int p = personality(0xffffffff);
    if (p != -1 && (p & ADDR_NO_RANDOMIZE)) personality(static_cast<unsigned long>(p & ~ADDR_NO_RANDOMIZE));
    return true;
  }
  return false;
}

void noaslr_reexec_if_moved(const char *path, bool verbose) {
  if (!environ || !randomised() || !modules_moved_in_file(path)) return;
  char *cmd = nullptr;
  size_t len = 0, cap = 0;
  if (read_cmdline(&cmd, &len, &cap)) return;
  size_t argc = 0, envc = 0;
  for (size_t i = 0; i < len; ++i) argc += cmd[i] == 0;
  if (cmd[len - 1] != 0) {  // a program that rewrote its arguments: not ours to repeat
    os::unmap(cmd, cap);
    return;
  }
  while (environ[envc]) ++envc;
  static char marker[kMarkerLen + 24];
  Msg m;
  m.add(kMarker).dec(static_cast<uint64_t>(os::getpid_cached()));
  if (m.size() >= sizeof marker) {
    os::unmap(cmd, cap);
    return;
  }
  memcpy(marker, m.str(), m.size() + 1);
  const size_t vec_bytes = (argc + 1 + envc + 2) * sizeof(char *);
  void *vec = nullptr;
  if (os::map_anon(vec_bytes, &vec)) {
    os::unmap(cmd, cap);
    return;
  }
  char **argv = static_cast<char **>(vec), **envp = argv + argc + 1;
  for (size_t i = 0, a = 0; a < argc; ++a) {
    argv[a] = cmd + i;
    i += strlen(cmd + i) + 1;
  }
  argv[argc] = nullptr;
  for (size_t i = 0; i < envc; ++i) envp[i] = environ[i];
  envp[envc] = marker;
  envp[envc + 1] = nullptr;
  if (verbose)
    os::write_stderr("libpersist: running the program again with its images at fixed addresses, so "
                     "that the heap's pointers into them hold (PERSIST_IMAGES=fixed)\n");
  int p = personality(0xffffffff);
  if (p != -1 && personality(static_cast<unsigned long>(p | ADDR_NO_RANDOMIZE)) != -1) {
    execve("/proc/self/exe", argv, envp);
    personality(static_cast<unsigned long>(p));  // exec failed: the open's pass does the work
  }
  os::unmap(vec, vec_bytes);
  os::unmap(cmd, cap);
}

}  // namespace persist::shim
