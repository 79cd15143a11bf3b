// platform.h — the primitive OS interface of the core. The only place that includes <sys/mman.h>,
// <fcntl.h> and friends is platform.cpp; every other file talks in heap terms.
//
// Contract: every function returning int returns 0 on success or a negative errno value; none of
// them allocates with malloc, none of them changes errno as seen by the caller (errno is saved and
// restored), and all are safe to call before the C runtime's constructors have run.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace persist::os {

// Reserve [addr, addr+size) with no access and no commit charge. addr != 0: exactly there
// (MAP_FIXED_NOREPLACE; -EEXIST when anything is mapped in the range); addr == 0: anywhere.
int reserve(uintptr_t addr, size_t size, void **out);
// Map fd over [addr, addr+size) MAP_SHARED, replacing our own reservation. Pages past the end of
// the file are not touched by the heap (it extends the file first).
int map_file(void *addr, size_t size, int fd, bool writable);
// Map fd read-only and shared anywhere (tools reading untrusted files).
int map_file_readonly(int fd, size_t size, const void **out);
// Anonymous read-write memory (volatile metadata), lazily committed, zero-filled.
int map_anon(size_t size, void **out);
// Anonymous memory for a bulk copy: transparent huge pages where possible, populated up front (one
// call instead of a fault per page).
int map_anon_populated(size_t size, void **out);
// The same at addr exactly (MAP_FIXED_NOREPLACE), or anywhere when addr is 0.
int map_anon_at(uintptr_t addr, size_t size, void **out);
int unmap(const void *addr, size_t size);
// Move the anonymous mapping [from, from+size) to exactly `to`, replacing what is there
// (mremap MREMAP_FIXED: one atomic step).
int move_mapping(void *from, size_t size, void *to);
// Replace [addr, addr+size) by a private (copy-on-write) mapping of fd, or by anonymous memory.
int map_file_private(void *addr, size_t size, int fd);
int map_anon_fixed(void *addr, size_t size);
// Return anonymous pages to the OS; they read as zero afterwards.
void discard_anon(void *addr, size_t size);

// Files. open_file: O_RDWR|O_CLOEXEC|O_NOFOLLOW, created 0600 with create (created says whether
// it was). An existing file opened for writing must be one only its owner may write:
// PERSIST_E_MODE when its mode lets the group or other users write it (they could change the heap
// under us, or have planted it). The fd is the caller's.
int open_file(const char *path, bool create, bool writable, int *fd, bool *created);
// A new file at path, opened read-write: O_CREAT|O_EXCL (never a file that exists, so never one
// someone else prepared, and never through a symlink), mode 0600. -EEXIST when the name is taken.
int create_file(const char *path, int *fd);
int close_file(int fd);
// link(2) (fails with -EEXIST rather than replace anything) and unlink(2).
int link_file(const char *from, const char *to);
int unlink_file(const char *path);
// rename(2): `to` names the file `from` named, replacing the name (not the contents) of what
// was there; a symlink at `to` is replaced, not followed.
int rename_file(const char *from, const char *to);
// The st_mode of what path names (`follow`: through a final symlink, as stat; else as lstat).
int path_mode(const char *path, bool follow, uint32_t *mode);
int file_size(int fd, uint64_t *size);
// The largest file this process may write (RLIMIT_FSIZE, `ulimit -f`; UINT64_MAX: unlimited).
// Growing a file past it raises SIGXFSZ, which kills by default: callers check first.
uint64_t file_size_limit();
// Address space the process may still map under RLIMIT_AS (`ulimit -v`): the limit less what is
// mapped now (/proc/self/statm). UINT64_MAX when unlimited.
uint64_t address_space_left();
int truncate_file(int fd, uint64_t size);
// Make dst_fd's contents those of src_fd: a reflink (FICLONE) where the file system can, else an
// in-kernel copy over dst (which ends as long as src). Writes only into dst_fd, the caller's file.
int copy_file(int src_fd, int dst_fd);
// Reserve disk blocks for [off, off+len) so later stores through the mapping cannot SIGBUS:
// -ENOSPC when the file system is full.
int allocate(int fd, uint64_t off, uint64_t len);
// Give the disk blocks of [off, off+len) back; the range reads as zero afterwards.
int punch_hole(int fd, uint64_t off, uint64_t len);
// Exclusive, non-blocking lock on the open file description (an OFD lock, never a POSIX record
// lock): -EWOULDBLOCK when another open file description holds it.
int lock_file(int fd, bool wait = false);  // wait: block until it is free
int file_owner_is_us(int fd);  // 1 when the file's owner is our effective uid, 0 if not, <0 error
// The device and inode of what fd refers to (fstat); <0 (-EBADF) when fd is not open.
int file_identity(int fd, uint64_t *dev, uint64_t *ino);
// A close-on-exec duplicate of fd above the 3..1023 that daemons close (from 1088, or near the
// descriptor limit when it is lower; else at `floor` or above), or <0. The original stays open.
int dup_high(int fd, int floor);
// The current directory (getcwd(2)), NUL-terminated in buf; its length or <0.
long current_dir(char *buf, size_t len);

// Durability: msync(MS_SYNC) of a mapped range, then fsync of the file.
int sync_range(void *addr, size_t size);
int sync_file(int fd);

// Futexes (the core's own mutex, heap.h): wait while *word == expected; wake one waiter.
void futex_wait(std::atomic<int> *word, int expected);
void futex_wake(std::atomic<int> *word);

// Loaded modules (dl_iterate_phdr): for each, its path, load bias, mapped range and build-id.
// fn returns non-zero to stop. Does not allocate.
struct ModuleInfo {
  const char *path;
  uint64_t bias, start, end;
  const uint8_t *build_id;
  uint32_t id_len;
};
void each_module(int (*fn)(const ModuleInfo &m, void *arg), void *arg);

// Misc.
void yield();
uint64_t now_ns();         // CLOCK_REALTIME
uint64_t monotonic_ns();   // CLOCK_MONOTONIC
void random_bytes(void *buf, size_t len);
int getpid_cached();
// Is `pid` this process's parent, grandparent...? (Reads /proc/<pid>/stat up the chain.)
bool is_ancestor(int pid);
// The parent of `pid` (from /proc/<pid>/stat), or -1 when it is gone or unreadable.
int parent_pid(int pid);
// The value of `name` in the environment `pid` was started with (/proc/<pid>/environ: what it
// was exec'ed with, not later setenv calls), NUL-terminated in out[cap]. 0, -ENOENT when not set
// (or longer than cap - 1), or another negative errno (-EACCES: another user's process).
int environ_value(int pid, const char *name, char *out, size_t cap);
void write_stderr(const char *msg, size_t len);
void write_stderr(const char *msg);
// The environment variable `name`, read from environ without allocating; nullptr in secure mode
// (setuid/setgid: AT_SECURE) or when unset.
const char *getenv_raw(const char *name);
bool secure_mode();
// The path of the running executable (readlink /proc/self/exe), NUL-terminated; its length or <0.
long self_exe_path(char *buf, size_t len);
// Is the heap's lock (lock_file) held by another open file description? Asks the kernel
// (F_OFD_GETLK) without taking the lock. 1 held, 0 not, or a negative errno.
int probe_lock(int fd);

}  // namespace persist::os
