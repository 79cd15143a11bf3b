// newfile.h — every file the project writes besides a heap (a kept image FILE.1, a backup
// FILE.bak, a snapshot, a map) is created the way heap.cpp creates a heap file: a new file
// (O_CREAT|O_EXCL: never one that exists, so never one another user planted, never through a
// symlink), mode 0600, written under a temporary name beside its destination, and only then
// given its name. The destination never names a partial file, and nothing is ever written into
// a file that was there before: replacing renames over the old name, it does not open it.
//
// Allocates nothing (the shim keeps FILE.1 from inside its bootstrap); all state is in NewFile.
#pragma once

#include <cstddef>

namespace persist {

struct NewFile {
  int fd = -1;         // open read-write; the caller writes through it
  char tmp[4096] = {};  // the temporary name while the file has no other ("" once it has)
};

// Create a new, empty, private file beside dest, named "<dest>.tmp.<pid>.<random>". 0 or a
// negative errno.
int newfile_create(const char *dest, NewFile *f);
// Give the file the name dest, never replacing anything: -EEXIST when dest exists (the file
// keeps its temporary name; try another or newfile_discard).
int newfile_link(NewFile *f, const char *dest);
// Give the file the name dest, replacing the name of whatever had it (a symlink is replaced, not
// followed; the old file's contents are not touched). Only a file or a symlink is replaced:
// -EINVAL when dest is anything else (a device such as /dev/null, a FIFO, a directory).
int newfile_replace(NewFile *f, const char *dest);
// dest names (through symlinks) a character device, a FIFO or a socket — /dev/null, /dev/stdout,
// a pipe: a stream the caller writes into as it is, since nothing there can be left partial.
bool newfile_is_stream(const char *dest);
// Remove the temporary name if the file still has it, and close the file. Safe to call twice.
void newfile_close(NewFile *f);

}  // namespace persist
