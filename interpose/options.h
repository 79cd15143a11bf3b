// options.h — the shim's configuration: one table of PERSIST_* environment variables, read once
// at initialisation with the core's allocation-free getenv (nothing in secure mode).
#pragma once

#include <cstdint>

namespace persist::shim {

struct Options {
  char file[4096];     // PERSIST_FILE, with %p and %e expanded
  uint64_t addr;       // PERSIST_ADDR (0: the default base)
  uint64_t max;        // PERSIST_MAX (0: the default reserve)
  bool verbose;        // PERSIST_VERBOSE
  bool strict;         // PERSIST_STRICT: failing to persist is fatal
  int on_busy;         // PERSIST_ON_BUSY: OnBusy
  bool secure;         // AT_SECURE: nothing was read, nothing is persisted
  int gc;              // PERSIST_GC: GcPolicy
  bool keep;           // PERSIST_KEEP: keep the previous image as FILE.1 before reclaiming
  int sync;            // PERSIST_SYNC: kSyncNever, kSyncExit, or an interval in milliseconds
  unsigned relocate;   // PERSIST_RELOCATE: PERSIST_RELOCATE_REWRITE or _REFUSE
  uint64_t sites;      // PERSIST_SITES: mean sampling interval in bytes; 0: off
  int images;          // PERSIST_IMAGES: ImagePolicy
};

enum SyncPolicy { kSyncNever = 0, kSyncExit = -1 };

enum GcPolicy { kGcAuto = 0, kGcOpen = 1, kGcNever = 2 };

enum OnBusy { kBusyVolatile = 0, kBusyWait = 1, kBusyFail = 2 };

// Pointers into program images (noaslr.h): fixed (re-execute once with ASLR off when that saves
// the pass), rewrite (keep ASLR, shift them at open), keep (never shift them).
enum ImagePolicy { kImagesFixed = 0, kImagesRewrite = 1, kImagesKeep = 2 };

// Parse the environment into `o`. Bad values are reported (one line each on stderr) and replaced
// by their defaults; the program never stops for a bad variable.
void options_load(Options *o);
// Print the effective configuration (PERSIST_VERBOSE).
void options_print(const Options &o);

}  // namespace persist::shim
