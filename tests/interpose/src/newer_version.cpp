// newer_version.cpp — test helper: rewrite a heap file's superblock as if a newer library had
// written it (format major + 1, in both slots, each with a valid CRC-32C), using the core's own
// layout and checksum. Usage: newer_version FILE. Exit status 0 on success.
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>

#include "layout.h"
#include "superblock.h"

int main(int argc, char **argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: newer_version FILE\n");
    return 64;
  }
  int fd = open(argv[1], O_RDWR);
  if (fd < 0) return std::perror(argv[1]), 1;
  for (int slot = 0; slot < 2; ++slot) {
    persist::Superblock sb;
    off_t off = static_cast<off_t>(slot * persist::kSuperSlotSize);
    if (pread(fd, &sb, sizeof sb, off) != static_cast<ssize_t>(sizeof sb)) return std::perror("pread"), 1;
    if (sb.magic != persist::kMagic) {
      std::fprintf(stderr, "%s: slot %d has no heap magic\n", argv[1], slot);
      return 1;
    }
    sb.major = persist::kFormatMajor + 1;
    sb.checksum = 0;
    sb.checksum = persist::crc32c(&sb, sizeof sb);
    if (pwrite(fd, &sb, sizeof sb, off) != static_cast<ssize_t>(sizeof sb)) return std::perror("pwrite"), 1;
  }
  close(fd);
  std::printf("%s: format major set to %u in both superblock slots\n", argv[1], persist::kFormatMajor + 1);
  return 0;
}
