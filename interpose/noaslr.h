// noaslr.h — PERSIST_IMAGES=fixed: keep the program's images where the heap's pointers into them
// (C++ vtables, function pointers, string literals) expect them, so that no open has to scan the
// heap to shift them.
//
// With ASLR, every run loads the executable and its libraries at new addresses, and the image pass
// (core/recover.h) rewrites every live word that points into them: O(heap) at every start. With
// the process's personality set to ADDR_NO_RANDOMIZE before exec, the kernel and ld.so load the
// same images at the same addresses every time, so after one pass (the first run so started) the
// recorded addresses hold and opens are O(1). The shim gets there by re-executing the program once
// at start, as sanitizer runtimes do when the layout does not suit them: only when the heap has
// roots, is not held by another process, and records a loaded module at another address than this
// process has it (modules_moved_in_file). The re-executed process finds a marker in its
// environment, removes it, and clears ADDR_NO_RANDOMIZE again, so its own children get ASLR.
//
// The trade-off (README): the program itself runs without address randomisation. Secure-mode
// (setuid) programs are never re-executed (the kernel would drop the flag anyway), nor programs
// under valgrind or a sanitizer. PERSIST_IMAGES=rewrite keeps ASLR and pays the pass;
// PERSIST_IMAGES=keep never shifts image pointers.
#pragma once

namespace persist::shim {

// At start, before anything reads the environment: when this process is the shim's re-execution
// (the marker names our pid), remove the marker from the environment and restore the personality
// for our children. Returns true when it was.
bool noaslr_adopt_reexec();

// Before opening the heap at `path` (PERSIST_IMAGES=fixed): re-execute the program with its images
// at fixed addresses when that saves a pass over the heap. Returns only when it did not (nothing to
// gain, already fixed, or the re-execution failed: then the open's pass does the work). `verbose`:
// say so on stderr (PERSIST_VERBOSE).
void noaslr_reexec_if_moved(const char *path, bool verbose);

}  // namespace persist::shim
