// inherit.h — heaps inherited inside a process tree. Every child of a process running under the
// shim inherits LD_PRELOAD and PERSIST_FILE, and so names the heap its ancestor holds. That is
// the ordinary case, not a failure: the first process of the tree to open a heap file persists,
// the rest of the tree runs on volatile heaps, silently (README.md, "Process trees").
#pragma once

namespace persist::shim {

struct TreeHolder {
  int holder = 0;  // the pid the heap records as its owner
  int root = 0;    // the process both descend from: the holder itself when it is our ancestor
};

// The heap file at `path` is locked by another process: is that process in our own tree under
// the shim? True when the owner recorded in the heap is an ancestor of ours, or when our nearest
// common ancestor was started with our LD_PRELOAD (non-empty) and our PERSIST_FILE, i.e. passed
// the same configuration to both (siblings in a pipeline, parallel jobs of `make -j`). Anything
// else (unrelated processes, another user's, an unreadable heap) is false. Does not allocate.
bool held_in_our_tree(const char *path, TreeHolder *out);

}  // namespace persist::shim
