// modules.h — pointers from the heap into program images (executables and shared libraries) that
// ASLR loads elsewhere on the next run: C++ vtables, function pointers, string literals.
//
// At close the heap records the loaded modules (ModuleTable in the heap's own area, layout.h). At open, each recorded
// module that is loaded again with the same build-id at another address contributes a MoveRange
// to the relocation pass; a module loaded with another build-id is reported and its pointers are
// left alone (never "fixed" into a different binary). Modules dlopen'ed after the heap is opened
// are not loaded yet at open and so are not matched.
#pragma once

#include <cstdint>

#include "heap.h"
#include "relocate.h"

namespace persist {

// Plan the module moves of an opening heap: stores `moving` in the table (persistently, before
// any word changes) and appends the ranges to out[*n..max). Reports changed modules in `report`.
void modules_plan(Heap *h, MoveRange *out, int max, int *n, Msg *report);
// After the pass: the moved modules' entries now describe where they are.
void modules_done(Heap *h);
// Record the modules loaded now (at close or process exit) in the table that is not current, then
// make it current: no allocation, and a crash while recording leaves the previous record.
void modules_record(Heap *h);

}  // namespace persist
