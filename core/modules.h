// modules.h — the program images (executables and shared libraries) a heap's pointers may point
// into: C++ vtables, function pointers, string literals. The table of the modules loaded when the
// heap was last opened or closed (ModuleTable in the heap's own area, layout.h) is AUTHORITATIVE:
// it says for which load addresses the heap's image pointers were written. recover.cpp plans the
// moves from it; this file reads it, matches it against what is loaded now, and records it.
//
// A module is matched by build-id: loaded again with the same build-id at another bias, its
// pointers can be shifted; loaded with another build-id (rebuilt), it is reported and its pointers
// are left alone (never "fixed" into a different binary). Modules dlopen'ed after the heap is
// opened are not loaded at open, so they are not matched then.
#pragma once

#include <cstdint>

#include "heap.h"

namespace persist {

// The current module table of a heap image (nullptr: none recorded, or the area is not valid).
const ModuleTable *modules_table(const Image &img);
ModuleTable *modules_table(Heap *h);

// Where the module of entry e is loaded now, found by its build-id: true and its bias, or false
// (*rebuilt: a module with its file name but another build-id is loaded).
bool module_loaded(const ModuleEntry &e, uint64_t *bias, bool *rebuilt);

// Would some recorded module that is loaded now sit at another address than recorded? O(modules):
// what the shim asks before deciding to run the program with its images at fixed addresses.
bool modules_moved(const ModuleTable *t);

// The same question of the heap file at `path`, before opening it: true when the heap has roots
// (what no root reaches is never fixed, the open's collection resets it), no other process holds
// it, and modules_moved says so of its table. Reads the superblock and the area only, no data
// page; no allocation (it runs in the first malloc). Any doubt (no file, damaged, held) is false.
bool modules_moved_in_file(const char *path);

// Record the modules loaded now (at open, after recovery, and at close) in the table that is not
// current, then make it current with one store: no allocation, and a crash while recording leaves
// the previous record. Entries of modules this process has not loaded (another program's
// executable) are kept unless their range overlaps one that is loaded now (their pointers could no
// longer be told apart). A table with a move in progress is never replaced (recover.cpp first).
void modules_record(Heap *h);

}  // namespace persist
