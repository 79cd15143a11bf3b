// sites_fixture_cxx.cpp — the C++ part of the symbolizer fixture (sites_fixture.c): a function
// whose symbol is mangled (_ZN2fx5deltaEi), to check the demangling.
#include <cstdlib>

void *volatile fx_sink;  // the allocation escapes: the compiler cannot drop malloc and free

namespace fx {
__attribute__((noinline)) int delta(int n) {
  int *p = static_cast<int *>(std::malloc(sizeof(int) * static_cast<unsigned>(n + 1)));
  fx_sink = p;
  p[0] = n;
  int v = p[0] * 3;
  std::free(p);
  return v;
}
}  // namespace fx

extern "C" int fx_delta_call(int n) { return fx::delta(n) + 1; }
