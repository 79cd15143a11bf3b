// persist.hpp — the C++ API of libpersist (header-only, C++17), built on persist.h.
//
//   persist::ptr<T>          a pointer-sized self-relative pointer: valid wherever the heap is
//                            mapped, never rewritten by relocation, followed by the collector;
//                            usable as an allocator's fancy pointer.
//   persist::atomic_ptr<T>   the same, lock-free atomic.
//   persist::allocator<T>    a stateless STL allocator (pointer = T*) on the current heap.
//   persist::offset_allocator<T>  the same with pointer = persist::ptr<T>.
//   persist::heap_scope      RAII: make a heap handle the current heap of this thread.
//   persist::root<T>(tag, args...)  find-or-construct a typed root; another type is an error.
//   persist::make<T>(args...), persist::destroy(p)  new/delete on the current heap.
//
// The current heap of a thread is the innermost live heap_scope's heap, else the default heap
// (persist_default_heap(): the process heap when the program runs under LD_PRELOAD=libpersist.so
// or links -lpersist). With neither, allocator/make fall back to ::operator new (the memory is then
// as volatile as any other), while root() throws persist::error (PERSIST_E_NOHEAP).
//
// Heap handles are VOLATILE (they point at state rebuilt at every open), which is why the
// allocators are stateless: an allocator object stored inside a container in the heap holds
// nothing, so the container is valid again in the next run. The cost: a container in a heap that
// is not the default heap must be changed and destroyed inside a heap_scope for that heap (any
// live scope of the thread, not necessarily the innermost): deallocation looks for the block in
// the heaps of the thread's live scopes, then in the default heap, and otherwise hands it to
// ::operator delete.
//
// Fancy pointers with libstdc++ 12 (offset_allocator; tests/cpp/offset_allocator_test.cpp
// counts the words): std::vector, std::deque and std::basic_string store ptr<T> (a deque's map is
// an array of ptr<T>): position-independent. std::list, std::forward_list, std::map/set and
// std::unordered_* compile and allocate through it, but link their nodes with raw pointers.
// Raw pointers in the heap are fine too: relocation rewrites them (DESIGN.md, "Address model").
//
// The collector (persist_heap_gc, and the collection at open) follows raw pointers and ptr words
// in reachable blocks alike, so whatever a root reaches through either is kept; a ptr only counts
// as a link if it is stored in the heap and points into it.
//
// Type identity of a root: FNV-1a of the type's name as the compiler spells it (taken from
// __PRETTY_FUNCTION__, no RTTI: the header works with -fno-rtti), its size and its alignment;
// never 0. Stable across runs and rebuilds with the same compiler (GCC and clang agree on most
// names, e.g. "std::vector<int>", but not on anonymous namespaces); specialise
// persist::type_name<T> for a name that must survive renames or a change of compiler.
#ifndef PERSIST_HPP
#define PERSIST_HPP

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <iterator>
#include <limits>
#include <memory>
#include <new>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>

#include "persist.h"

namespace persist {

// ---- errors -------------------------------------------------------------------------------------

// A failed libpersist call: code() is its negative code (a -errno value or a PERSIST_E_*).
class error : public std::runtime_error {
 public:
  error(int code, const std::string &what)
      : std::runtime_error(describe(code, what)), code_(code) {}
  int code() const noexcept { return code_; }

 private:
  static std::string describe(int code, const std::string &what) {
    if (code < 0 && code > -1000) return what + ": " + std::generic_category().message(-code);
    return what + ": " + persist_strerror(code);
  }
  int code_;
};

// A root exists under the tag with another type identity (PERSIST_E_TYPE).
class type_error : public error {
 public:
  explicit type_error(const std::string &what) : error(PERSIST_E_TYPE, what) {}
};

// ---- self-relative encoding (PERSIST_SELF_TAG) --------------------------------------------------
namespace detail {

constexpr uint64_t kSelfTag = PERSIST_SELF_TAG;
constexpr uint64_t kDeltaMask = PERSIST_OFFSET_MASK;

// The word stored at `self` that designates `target`: PERSIST_SELF_TAG | the signed 48-bit
// distance from self to target; 0 for null. Every user-space address is below 2^47, so every
// distance fits.
inline uint64_t self_encode(const volatile void *self, const volatile void *target) noexcept {
  if (!target) return 0;
  auto d = reinterpret_cast<uintptr_t>(target) - reinterpret_cast<uintptr_t>(self);
  return kSelfTag | (static_cast<uint64_t>(d) & kDeltaMask);
}

inline void *self_decode(const volatile void *self, uint64_t word) noexcept {
  if (!word) return nullptr;
  auto d = static_cast<int64_t>(word << 16) >> 16;  // sign-extend the low 48 bits
  return reinterpret_cast<void *>(reinterpret_cast<uintptr_t>(self) + static_cast<uintptr_t>(d));
}

struct not_void {};
template <class T>
using ref_or_dummy = std::conditional_t<std::is_void_v<T>, not_void, T> &;

template <class From, class To, class = void>
struct static_castable : std::false_type {};
template <class From, class To>
struct static_castable<From, To, std::void_t<decltype(static_cast<To>(std::declval<From>()))>>
    : std::true_type {};

// Iterator member types, only for object types (so iterator_traits<ptr<void>> is empty).
template <class T, bool = std::is_void_v<T>>
struct ptr_iterator_types {};
template <class T>
struct ptr_iterator_types<T, false> {
  using value_type = std::remove_cv_t<T>;
  using reference = T &;
  using iterator_category = std::random_access_iterator_tag;
};

}  // namespace detail

// ---- ptr<T> -------------------------------------------------------------------------------------

// A pointer stored as the distance from its own address to its target. Copying re-encodes it for
// the new location, so it is not trivially copyable: never memcpy one. All-zero bytes are a null
// ptr, so zeroed memory (persist_root, persist_calloc) holds valid null ptrs. Meant for links
// stored in the heap pointing into the same heap: one pointing out of it is neither followed by
// the collector nor adjusted by relocation (unlike a raw pointer into a program image).
template <class T>
class ptr : public detail::ptr_iterator_types<T> {
  template <class U>
  friend class ptr;

 public:
  using element_type = T;
  using difference_type = std::ptrdiff_t;
  using pointer = ptr;
  template <class U>
  using rebind = ptr<U>;

  ptr() noexcept : v_(0) {}
  ptr(T *p) noexcept : v_(detail::self_encode(&v_, p)) {}  // also from nullptr
  ptr(const ptr &o) noexcept : v_(detail::self_encode(&v_, o.get())) {}
  // ptr<Derived> -> ptr<Base>, ptr<T> -> ptr<const T> / ptr<void>: implicit, like raw pointers.
  template <class U, std::enable_if_t<std::is_convertible_v<U *, T *>, int> = 0>
  ptr(const ptr<U> &o) noexcept : v_(detail::self_encode(&v_, static_cast<T *>(o.get()))) {}
  // ptr<void> -> ptr<T>, ptr<Base> -> ptr<Derived>: explicit (static_cast), like raw pointers.
  template <class U, std::enable_if_t<!std::is_convertible_v<U *, T *> &&
                                          detail::static_castable<U *, T *>::value,
                                      int> = 0>
  explicit ptr(const ptr<U> &o) noexcept
      : v_(detail::self_encode(&v_, static_cast<T *>(o.get()))) {}

  ptr &operator=(const ptr &o) noexcept { return *this = o.get(); }
  template <class U, std::enable_if_t<std::is_convertible_v<U *, T *>, int> = 0>
  ptr &operator=(const ptr<U> &o) noexcept {
    return *this = static_cast<T *>(o.get());
  }
  ptr &operator=(T *p) noexcept {
    v_ = detail::self_encode(&v_, p);
    return *this;
  }

  T *get() const noexcept { return static_cast<T *>(detail::self_decode(&v_, v_)); }
  operator T *() const noexcept { return get(); }  // needed by libstdc++'s list (raw node links)
  explicit operator bool() const noexcept { return v_ != 0; }
  T *operator->() const noexcept { return get(); }
  template <class U = T, std::enable_if_t<!std::is_void_v<U>, int> = 0>
  U &operator*() const noexcept {
    return *get();
  }
  template <class U = T, std::enable_if_t<!std::is_void_v<U>, int> = 0>
  U &operator[](difference_type i) const noexcept {
    return get()[i];
  }

  // The stored word (for tests and tools).
  uint64_t raw_word() const noexcept { return v_; }

  static ptr pointer_to(detail::ref_or_dummy<T> r) noexcept { return ptr(std::addressof(r)); }

  ptr &operator+=(difference_type n) noexcept { return *this = get() + n; }
  ptr &operator-=(difference_type n) noexcept { return *this = get() - n; }
  ptr &operator++() noexcept { return *this += 1; }
  ptr &operator--() noexcept { return *this -= 1; }
  ptr operator++(int) noexcept {
    ptr old(*this);
    ++*this;
    return old;
  }
  ptr operator--(int) noexcept {
    ptr old(*this);
    --*this;
    return old;
  }
  friend ptr operator+(const ptr &p, difference_type n) noexcept { return ptr(p.get() + n); }
  friend ptr operator+(difference_type n, const ptr &p) noexcept { return ptr(p.get() + n); }
  friend ptr operator-(const ptr &p, difference_type n) noexcept { return ptr(p.get() - n); }
  friend difference_type operator-(const ptr &a, const ptr &b) noexcept {
    return a.get() - b.get();
  }

  friend void swap(ptr &a, ptr &b) noexcept {
    T *t = a.get();
    a = b.get();
    b = t;
  }

 private:
  uint64_t v_;
};

static_assert(sizeof(ptr<int>) == 8 && alignof(ptr<int>) == 8, "ptr<T> is one word");
static_assert(sizeof(ptr<void>) == 8, "ptr<void> is one word");

// Comparisons: between ptrs, with raw pointers, with nullptr (all by the address designated).
#define PERSIST_PTR_COMPARE(op)                                 \
  template <class T, class U>                                   \
  bool operator op(const ptr<T> &a, const ptr<U> &b) noexcept { \
    return a.get() op b.get();                                  \
  }                                                             \
  template <class T, class U>                                   \
  bool operator op(const ptr<T> &a, U *b) noexcept {            \
    return a.get() op b;                                        \
  }                                                             \
  template <class T, class U>                                   \
  bool operator op(U *a, const ptr<T> &b) noexcept {            \
    return a op b.get();                                        \
  }
PERSIST_PTR_COMPARE(==)
PERSIST_PTR_COMPARE(!=)
PERSIST_PTR_COMPARE(<)
PERSIST_PTR_COMPARE(<=)
PERSIST_PTR_COMPARE(>)
PERSIST_PTR_COMPARE(>=)
#undef PERSIST_PTR_COMPARE
template <class T>
bool operator==(const ptr<T> &a, std::nullptr_t) noexcept {
  return !a;
}
template <class T>
bool operator==(std::nullptr_t, const ptr<T> &a) noexcept {
  return !a;
}
template <class T>
bool operator!=(const ptr<T> &a, std::nullptr_t) noexcept {
  return static_cast<bool>(a);
}
template <class T>
bool operator!=(std::nullptr_t, const ptr<T> &a) noexcept {
  return static_cast<bool>(a);
}

// The casts, as for std::shared_ptr.
template <class T, class U>
ptr<T> static_pointer_cast(const ptr<U> &p) noexcept {
  return ptr<T>(static_cast<T *>(p.get()));
}
template <class T, class U>
ptr<T> const_pointer_cast(const ptr<U> &p) noexcept {
  return ptr<T>(const_cast<T *>(p.get()));
}
template <class T, class U>
ptr<T> reinterpret_pointer_cast(const ptr<U> &p) noexcept {
  return ptr<T>(reinterpret_cast<T *>(p.get()));
}

// ---- atomic_ptr<T> ------------------------------------------------------------------------------

// A lock-free atomic self-relative pointer (the same encoding as ptr<T>): load/store/exchange/
// compare_exchange on T*. Since the encoding is a bijection for a fixed address, comparing words
// is comparing pointers. Zeroed memory is a null atomic_ptr.
template <class T>
class atomic_ptr {
 public:
  static constexpr bool is_always_lock_free = std::atomic<uint64_t>::is_always_lock_free;

  atomic_ptr() noexcept : v_(0) {}
  atomic_ptr(T *p) noexcept : v_(detail::self_encode(&v_, p)) {}
  atomic_ptr(const atomic_ptr &) = delete;
  atomic_ptr &operator=(const atomic_ptr &) = delete;

  T *load(std::memory_order mo = std::memory_order_seq_cst) const noexcept {
    return decode(v_.load(mo));
  }
  void store(T *p, std::memory_order mo = std::memory_order_seq_cst) noexcept {
    v_.store(encode(p), mo);
  }
  T *exchange(T *p, std::memory_order mo = std::memory_order_seq_cst) noexcept {
    return decode(v_.exchange(encode(p), mo));
  }
  bool compare_exchange_weak(T *&expected, T *desired, std::memory_order success,
                             std::memory_order failure) noexcept {
    uint64_t e = encode(expected);
    bool ok = v_.compare_exchange_weak(e, encode(desired), success, failure);
    if (!ok) expected = decode(e);
    return ok;
  }
  bool compare_exchange_strong(T *&expected, T *desired, std::memory_order success,
                               std::memory_order failure) noexcept {
    uint64_t e = encode(expected);
    bool ok = v_.compare_exchange_strong(e, encode(desired), success, failure);
    if (!ok) expected = decode(e);
    return ok;
  }
  bool compare_exchange_weak(T *&expected, T *desired,
                             std::memory_order mo = std::memory_order_seq_cst) noexcept {
    return compare_exchange_weak(expected, desired, mo, failure_order(mo));
  }
  bool compare_exchange_strong(T *&expected, T *desired,
                               std::memory_order mo = std::memory_order_seq_cst) noexcept {
    return compare_exchange_strong(expected, desired, mo, failure_order(mo));
  }
  bool is_lock_free() const noexcept { return v_.is_lock_free(); }

  operator T *() const noexcept { return load(); }
  T *operator=(T *p) noexcept {
    store(p);
    return p;
  }

 private:
  uint64_t encode(T *p) const noexcept { return detail::self_encode(&v_, p); }
  T *decode(uint64_t w) const noexcept { return static_cast<T *>(detail::self_decode(&v_, w)); }
  static constexpr std::memory_order failure_order(std::memory_order mo) noexcept {
    return mo == std::memory_order_acq_rel   ? std::memory_order_acquire
           : mo == std::memory_order_release ? std::memory_order_relaxed
                                             : mo;
  }
  std::atomic<uint64_t> v_;
};

static_assert(sizeof(atomic_ptr<int>) == 8, "atomic_ptr<T> is one word");
static_assert(atomic_ptr<int>::is_always_lock_free, "atomic_ptr<T> is lock-free");

// ---- the current heap ---------------------------------------------------------------------------
namespace detail {
struct scope_link {
  persist_heap_t *heap;
  const scope_link *outer;
};
inline thread_local const scope_link *tls_scope = nullptr;  // innermost heap_scope (VOLATILE)
}  // namespace detail

// Makes `heap` the current heap of this thread until the end of the scope. Scopes nest (strictly,
// as RAII objects do); blocks of the heaps of all the live scopes of a thread can be freed in it.
class heap_scope {
 public:
  explicit heap_scope(persist_heap_t *heap) noexcept : link_{heap, detail::tls_scope} {
    detail::tls_scope = &link_;
  }
  ~heap_scope() { detail::tls_scope = link_.outer; }
  heap_scope(const heap_scope &) = delete;
  heap_scope &operator=(const heap_scope &) = delete;

 private:
  detail::scope_link link_;
};

// The heap allocator<T>, make<T> and root<T>(tag) use on this thread: the innermost heap_scope's
// heap if it is not NULL, else the default heap; NULL if there is none.
inline persist_heap_t *current_heap() noexcept {
  const detail::scope_link *l = detail::tls_scope;
  return l && l->heap ? l->heap : persist_default_heap();
}

namespace detail {

constexpr size_t kMallocAlign = alignof(std::max_align_t);  // what persist_alloc guarantees

inline void *allocate_bytes(persist_heap_t *h, size_t bytes, size_t align) {
  if (!h) {  // no heap at all: behave like new
    if (align > __STDCPP_DEFAULT_NEW_ALIGNMENT__)
      return ::operator new(bytes, std::align_val_t(align));
    return ::operator new(bytes);
  }
  void *p = align > kMallocAlign ? persist_alloc_aligned(h, align, bytes) : persist_alloc(h, bytes);
  if (!p) throw std::bad_alloc();
  return p;
}

// Free p into the heap that holds it: one of this thread's live scopes, else the default heap,
// else it came from ::operator new.
inline void deallocate_bytes(void *p, size_t align) noexcept {
  if (!p) return;
  for (const scope_link *l = tls_scope; l; l = l->outer)
    if (l->heap && persist_contains(l->heap, p)) return persist_free(l->heap, p);
  if (persist_heap_t *d = persist_default_heap(); d && persist_contains(d, p))
    return persist_free(d, p);
  if (align > __STDCPP_DEFAULT_NEW_ALIGNMENT__)
    return ::operator delete(p, std::align_val_t(align));
  ::operator delete(p);
}

// T(args...), or T{args...} for aggregates (C++17 has no parenthesised aggregate init).
template <class T, class... Args>
T *construct_at(void *mem, Args &&...args) {
  if constexpr (std::is_constructible_v<T, Args...>)
    return ::new (mem) T(std::forward<Args>(args)...);
  else
    return ::new (mem) T{std::forward<Args>(args)...};
}

}  // namespace detail

// ---- allocator<T> -------------------------------------------------------------------------------

// A stateless STL allocator on the current heap (see the top of this file): std::vector, std::map,
// std::unordered_map, std::basic_string... built with it live in the heap and are found again in
// the next run through a root. All instances are equal, so containers may swap and move freely.
template <class T>
class allocator {
 public:
  using value_type = T;
  using size_type = std::size_t;
  using difference_type = std::ptrdiff_t;
  using propagate_on_container_copy_assignment = std::true_type;
  using propagate_on_container_move_assignment = std::true_type;
  using propagate_on_container_swap = std::true_type;
  using is_always_equal = std::true_type;
  template <class U>
  struct rebind {
    using other = allocator<U>;
  };

  allocator() noexcept = default;
  template <class U>
  allocator(const allocator<U> &) noexcept {}

  T *allocate(size_type n) {
    if (n > max_size()) throw std::bad_array_new_length();
    return static_cast<T *>(detail::allocate_bytes(current_heap(), n * sizeof(T), alignof(T)));
  }
  void deallocate(T *p, size_type) noexcept { detail::deallocate_bytes(p, alignof(T)); }
  size_type max_size() const noexcept { return std::numeric_limits<size_type>::max() / sizeof(T); }
};

template <class T, class U>
bool operator==(const allocator<T> &, const allocator<U> &) noexcept {
  return true;
}
template <class T, class U>
bool operator!=(const allocator<T> &, const allocator<U> &) noexcept {
  return false;
}

// A string in the heap (std::hash is specialised below, so it can key an unordered_map).
using string = std::basic_string<char, std::char_traits<char>, allocator<char>>;

// ---- offset_allocator<T> ------------------------------------------------------------------------

// allocator<T> with pointer = ptr<T>: containers that store the allocator's pointer type (see the
// top of this file for which do with libstdc++ 12) hold self-relative pointers.
template <class T>
class offset_allocator {
 public:
  using value_type = T;
  using pointer = ptr<T>;
  using const_pointer = ptr<const T>;
  using void_pointer = ptr<void>;
  using const_void_pointer = ptr<const void>;
  using size_type = std::size_t;
  using difference_type = std::ptrdiff_t;
  using propagate_on_container_copy_assignment = std::true_type;
  using propagate_on_container_move_assignment = std::true_type;
  using propagate_on_container_swap = std::true_type;
  using is_always_equal = std::true_type;
  template <class U>
  struct rebind {
    using other = offset_allocator<U>;
  };

  offset_allocator() noexcept = default;
  template <class U>
  offset_allocator(const offset_allocator<U> &) noexcept {}

  pointer allocate(size_type n) {
    if (n > max_size()) throw std::bad_array_new_length();
    return pointer(
        static_cast<T *>(detail::allocate_bytes(current_heap(), n * sizeof(T), alignof(T))));
  }
  void deallocate(pointer p, size_type) noexcept { detail::deallocate_bytes(p.get(), alignof(T)); }
  size_type max_size() const noexcept { return std::numeric_limits<size_type>::max() / sizeof(T); }
};

template <class T, class U>
bool operator==(const offset_allocator<T> &, const offset_allocator<U> &) noexcept {
  return true;
}
template <class T, class U>
bool operator!=(const offset_allocator<T> &, const offset_allocator<U> &) noexcept {
  return false;
}

// ---- make / destroy -----------------------------------------------------------------------------

// new T(args...) on the current heap (aligned for T). Throws std::bad_alloc when the heap is full.
template <class T, class... Args>
T *make(Args &&...args) {
  static_assert(!std::is_array_v<T> && !std::is_reference_v<T>, "make<T>: an object type");
  void *mem = detail::allocate_bytes(current_heap(), sizeof(T), alignof(T));
  try {
    return detail::construct_at<T>(mem, std::forward<Args>(args)...);
  } catch (...) {
    detail::deallocate_bytes(mem, alignof(T));
    throw;
  }
}

// delete p, for p from make<T> (in the current heap or the default heap).
template <class T>
void destroy(T *p) noexcept {
  if (!p) return;
  using U = std::remove_cv_t<T>;
  void *mem = const_cast<U *>(p);
  p->~T();
  detail::deallocate_bytes(mem, alignof(T));
}

// ---- type identity ------------------------------------------------------------------------------
namespace detail {

template <class T>
constexpr const char *signature() noexcept {
  return __PRETTY_FUNCTION__;  // "... signature() [with T = X]" (GCC), "... [T = X]" (clang)
}

constexpr std::string_view name_in_signature(std::string_view s) noexcept {
  size_t b = s.find("T = ");
  size_t e = s.rfind(']');
  if (b == std::string_view::npos || e == std::string_view::npos || e < b + 4) return s;
  return s.substr(b + 4, e - (b + 4));
}

constexpr uint64_t fnv1a(std::string_view s, uint64_t h = 0xcbf29ce484222325ull) noexcept {
  for (char c : s) h = (h ^ static_cast<unsigned char>(c)) * 0x100000001b3ull;
  return h;
}

constexpr uint64_t fnv1a_word(uint64_t v, uint64_t h) noexcept {
  for (int i = 0; i < 8; ++i) h = (h ^ ((v >> (8 * i)) & 0xff)) * 0x100000001b3ull;
  return h;
}

}  // namespace detail

// The name a type's identity is derived from. Specialise it (before the first root<T> of the type)
// to pin the identity of a type across renames or compilers.
template <class T>
struct type_name {
  static constexpr std::string_view value = detail::name_in_signature(detail::signature<T>());
};

// The stored type identity of T: FNV-1a of type_name<T>, sizeof(T) and alignof(T); never 0.
template <class T>
constexpr uint64_t type_id() noexcept {
  using U = std::remove_cv_t<T>;
  uint64_t h = detail::fnv1a(type_name<U>::value);
  h = detail::fnv1a_word(sizeof(U), h);
  h = detail::fnv1a_word(alignof(U), h);
  return h ? h : 1;
}

// ---- root<T> ------------------------------------------------------------------------------------

// The root named tag in heap, as a T: found if it exists with T's identity; otherwise a T is
// constructed from args in a new block (with heap as the current heap, so what T's constructor
// allocates through persist::allocator goes there too) and published only once constructed, so
// a crash never exposes a half-built object (it may leak the block: the collector reclaims it).
// If another thread publishes the tag first, ours is destroyed and theirs returned. Throws
// type_error when the tag holds another type (or an untyped root), error on other failures,
// std::bad_alloc when the heap is full, and whatever T's constructor throws.
template <class T, class... Args>
T &root(persist_heap_t *heap, const char *tag, Args &&...args) {
  static_assert(!std::is_array_v<T> && !std::is_reference_v<T>, "root<T>: an object type");
  using U = std::remove_cv_t<T>;
  constexpr uint64_t id = type_id<U>();
  const std::string what = std::string("persist::root(\"") + (tag ? tag : "") + "\")";
  if (!heap) throw error(PERSIST_E_NOHEAP, what);
  auto find = [&]() -> U * {  // the existing root, or NULL when there is none
    size_t size = 0;
    errno = 0;
    if (void *p = persist_heap_root_typed_get(heap, tag, id, &size)) {
      if (size < sizeof(U)) throw type_error(what + ": the root is smaller than the type");
      return std::launder(static_cast<U *>(p));
    }
    int e = errno;
    if (e == EILSEQ) throw type_error(what + ": published with another type");
    if (e != ENOENT) throw error(e == EINVAL ? PERSIST_E_TAG : -e, what);
    return nullptr;
  };
  if (U *p = find()) return *p;

  heap_scope scope(heap);
  void *mem = detail::allocate_bytes(heap, sizeof(U), alignof(U));
  U *obj;
  try {
    obj = detail::construct_at<U>(mem, std::forward<Args>(args)...);
  } catch (...) {
    persist_free(heap, mem);
    throw;
  }
  for (;;) {
    int rc = persist_heap_root_publish(heap, tag, mem, sizeof(U), id);
    if (rc == 0) return *obj;
    U *theirs = nullptr;
    if (rc == PERSIST_E_EXISTS) {  // lost a race: use the winner's (if it is still there)
      try {
        theirs = find();
      } catch (...) {
        obj->~U();
        persist_free(heap, mem);
        throw;
      }
      if (!theirs) continue;  // removed again meanwhile: publish ours after all
    }
    obj->~U();
    persist_free(heap, mem);
    if (!theirs) throw error(rc, what);
    return *theirs;
  }
}

// root<T> on the current heap (the default heap unless a heap_scope selects another).
template <class T, class... Args>
T &root(const char *tag, Args &&...args) {
  return root<T>(current_heap(), tag, std::forward<Args>(args)...);
}

}  // namespace persist

// ---- std specialisations ------------------------------------------------------------------------
namespace std {

template <class T>
struct pointer_traits<persist::ptr<T>> {
  using pointer = persist::ptr<T>;
  using element_type = T;
  using difference_type = std::ptrdiff_t;
  template <class U>
  using rebind = persist::ptr<U>;
  static pointer pointer_to(persist::detail::ref_or_dummy<T> r) noexcept {
    return pointer(std::addressof(r));
  }
  static T *to_address(const pointer &p) noexcept { return p.get(); }
};

template <class T>
struct hash<persist::ptr<T>> {
  size_t operator()(const persist::ptr<T> &p) const noexcept { return hash<T *>()(p.get()); }
};

template <>
struct hash<persist::string> {
  size_t operator()(const persist::string &s) const noexcept {
    return hash<string_view>()(string_view(s.data(), s.size()));
  }
};

}  // namespace std

#endif  // PERSIST_HPP
