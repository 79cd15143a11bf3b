// dlopen.cpp — the exported dlopen: the caller's dlopen with RTLD_DEEPBIND taken out of the flags.
//
// Why: a library opened with RTLD_DEEPBIND looks its symbols up in its own dependencies before
// the global scope, so its malloc/free bind to glibc's, not ours, while blocks still cross
// between it and the rest of the program. PHP loads every extension that way: pdo.so called
// glibc's free on a block of our heap and PHP died (issue 15). Since glibc 2.34 there are no
// __malloc_hook & co. to catch those calls (PRELOAD.md §1), so the only way for the library to
// get one allocator is to resolve it in the global scope like every other library. The price: a
// deep-bound library no longer prefers its own copy of a symbol the program also defines, which
// only matters to a library that ships clashing definitions of other libraries' symbols.
//
// The stub is a tail jump, not a call: glibc's dlopen takes its caller from its return address
// (the calling object's DT_RUNPATH and $ORIGIN, its namespace), which must stay the program's.
// The real dlopen is found lazily with dlsym(RTLD_NEXT) (another library's constructor may
// dlopen before ours runs, PRELOAD.md §3); dlsym allocates nothing on glibc 2.36, and we are not
// inside malloc here anyway.
#include <dlfcn.h>

#include <atomic>

namespace {
using DlopenFn = void *(*)(const char *, int);
}  // namespace

extern "C" {
// Read by the stub; written once by the resolver.
__attribute__((visibility("hidden"))) std::atomic<DlopenFn> persist_shim_real_dlopen{nullptr};

__attribute__((visibility("hidden"), used)) DlopenFn persist_shim_resolve_dlopen() {
  DlopenFn f = persist_shim_real_dlopen.load(std::memory_order_acquire);
  if (!f) {
    f = reinterpret_cast<DlopenFn>(dlsym(RTLD_NEXT, "dlopen"));
    persist_shim_real_dlopen.store(f, std::memory_order_release);
  }
  return f;
}
}

static_assert(RTLD_DEEPBIND == 8, "the stub clears bit 3");

#if defined(__x86_64__)
// dlopen(file: rdi, mode: esi): clear RTLD_DEEPBIND, jump to the real one (resolving it first,
// with the arguments saved and the stack 16-byte aligned for the call).
asm(R"(
  .text
  .globl dlopen
  .type dlopen, @function
dlopen:
  .cfi_startproc
  andl $-9, %esi
  movq persist_shim_real_dlopen(%rip), %rax
  testq %rax, %rax
  jz 1f
  jmp *%rax
1:
  pushq %rdi
  .cfi_adjust_cfa_offset 8
  pushq %rsi
  .cfi_adjust_cfa_offset 8
  subq $8, %rsp
  .cfi_adjust_cfa_offset 8
  call persist_shim_resolve_dlopen
  addq $8, %rsp
  .cfi_adjust_cfa_offset -8
  popq %rsi
  .cfi_adjust_cfa_offset -8
  popq %rdi
  .cfi_adjust_cfa_offset -8
  testq %rax, %rax
  jz 2f
  jmp *%rax
2:
  ret
  .cfi_endproc
  .size dlopen, .-dlopen
)");
#else
// Elsewhere a plain forwarder: correct flags, but glibc sees libpersist as the caller (a caller
// relying on its own DT_RUNPATH to find the library must name it by path).
extern "C" __attribute__((visibility("default"))) void *dlopen(const char *file, int mode) {
  DlopenFn f = persist_shim_resolve_dlopen();
  return f ? f(file, mode & ~RTLD_DEEPBIND) : nullptr;
}
#endif
