// api.h — how the shim hands its process heap to the public API (the default heap).
#pragma once

namespace persist {

struct Heap;
void api_set_default_heap(Heap *h);
// Called when the default heap is asked for before it exists (opens it lazily).
void api_set_default_provider(Heap *(*fn)());

}  // namespace persist
